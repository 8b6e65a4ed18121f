//! Writing into uninitialised buffers without zero-filling them first.
//!
//! Kernels whose output is fully overwritten (the LSTM's per-step gate buffers) allocate
//! it with `ndarray::Array::uninit` and initialise each piece with [`write_slice`] right
//! before it is used, instead of zero-filling the whole buffer and then overwriting it.

use std::mem::MaybeUninit;

/// Copies `src` into `dst` (same length) and returns `dst`, now initialised.
///
/// Panics when the lengths differ.
pub fn write_slice<'a, T: Copy>(dst: &'a mut [MaybeUninit<T>], src: &[T]) -> &'a mut [T] {
    assert_eq!(
        dst.len(),
        src.len(),
        "write_slice: destination of {} elements, source of {}",
        dst.len(),
        src.len()
    );
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
    // SAFETY: every element of `dst` was written just above; `MaybeUninit<T>` and `T`
    // have the same layout.
    unsafe { &mut *(dst as *mut [MaybeUninit<T>] as *mut [T]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_slice_copies_and_returns_the_initialised_slice() {
        let mut buf = [MaybeUninit::<f32>::uninit(); 3];
        let out = write_slice(&mut buf, &[1.0, 2.0, 3.0]);
        out[1] += 1.0;
        assert_eq!(out, &[1.0, 3.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "write_slice")]
    fn write_slice_length_mismatch_panics() {
        let mut buf = [MaybeUninit::<f32>::uninit(); 2];
        write_slice(&mut buf, &[1.0]);
    }
}

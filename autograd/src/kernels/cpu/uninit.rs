//! Writing into uninitialised buffers without zero-filling them first.
//!
//! Kernels whose output is fully overwritten (the LSTM's per-step gate buffers) allocate
//! it with `ndarray::Array::uninit` and initialise each piece with [`write_slice`] right
//! before it is used, instead of zero-filling the whole buffer and then overwriting it.
//! Outputs that one kernel call overwrites whole (a GEMM's `C` with `beta = 0`, a
//! gradient buffer every element of which the backward writes) come from [`overwritten`]
//! / [`overwritten_array`]: the zero-fill of such buffers was about 3% of the NAO
//! controller's training step (issue 15's bench, `perf` profile).

use crate::dtype::Float;
use ndarray::{Array, ArrayViewMut, Dimension, IntoDimension};
use std::mem::MaybeUninit;

/// Whether fresh buffers start as NaN instead of uninitialised: in this crate's unit tests
/// and in debug builds, so that an element a kernel forgets to write shows up as NaN in
/// the tests' results instead of as whatever the allocator left there.
const POISON: bool = cfg!(any(test, debug_assertions));

/// A `len`-element vector filled by `fill`, allocated without zero-filling it first.
///
/// `fill` gets the whole buffer as `&mut [T]`; before its first write an element holds
/// no value (NaN in this crate's unit tests and in debug builds). The vector's length is
/// set only after `fill` returns, so a panic inside it leaves nothing uninitialised
/// reachable.
///
/// # Safety
/// `fill` must write every element, and must not read an element before writing it.
pub unsafe fn overwritten<T: Float>(len: usize, fill: impl FnOnce(&mut [T])) -> Vec<T> {
    if POISON {
        let mut v = vec![T::nan(); len];
        fill(&mut v);
        return v;
    }
    let mut v: Vec<T> = Vec::with_capacity(len);
    let spare = &mut v.spare_capacity_mut()[..len];
    // SAFETY: `MaybeUninit<T>` and `T` have the same layout, and `T` (f32/f64) has no
    // drop glue. The slice is only written through before each element is read (the
    // caller's promise), so no uninitialised value is ever read.
    let buf = unsafe { &mut *(spare as *mut [MaybeUninit<T>] as *mut [T]) };
    fill(buf);
    // SAFETY: `fill` wrote all `len` elements (the caller's promise).
    unsafe { v.set_len(len) };
    v
}

/// An array of `shape` (row-major) filled by `fill` through a mutable view, allocated
/// without zero-filling it first: [`overwritten`] for arrays.
///
/// # Safety
/// As for [`overwritten`]: `fill` must write every element before reading it.
pub unsafe fn overwritten_array<T: Float, Sh: IntoDimension>(
    shape: Sh,
    fill: impl FnOnce(ArrayViewMut<T, Sh::Dim>),
) -> Array<T, Sh::Dim> {
    let dim = shape.into_dimension();
    let len = dim.size();
    let fill_view = |buf: &mut [T]| {
        fill(ArrayViewMut::from_shape(dim.clone(), buf).expect("length is the shape's size"))
    };
    // SAFETY: passed on from the caller.
    let v = unsafe { overwritten(len, fill_view) };
    Array::from_shape_vec(dim, v).expect("length is the shape's size")
}

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
    fn overwritten_returns_what_fill_wrote() {
        // SAFETY: the closure writes every element before reading any.
        let v = unsafe {
            overwritten::<f32>(5, |b| {
                b.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32)
            })
        };
        assert_eq!(v, [0.0, 1.0, 2.0, 3.0, 4.0]);
        // SAFETY: as above.
        let a = unsafe { overwritten_array::<f64, _>((2, 3), |mut a| a.fill(2.0)) };
        assert_eq!(a, ndarray::Array2::from_elem((2, 3), 2.0));
    }

    /// In tests an element a kernel does not write is NaN, so the kernels' own tests catch
    /// a missed element.
    #[test]
    fn unwritten_elements_are_nan_in_tests() {
        // SAFETY: deliberately breaks the contract for the last element, which is only
        // inspected here, where `POISON` makes it NaN rather than uninitialised.
        let v = unsafe { overwritten::<f32>(3, |b| b[..2].fill(1.0)) };
        assert!(POISON && v[2].is_nan(), "{v:?}");
    }

    #[test]
    #[should_panic(expected = "write_slice")]
    fn write_slice_length_mismatch_panics() {
        let mut buf = [MaybeUninit::<f32>::uninit(); 2];
        write_slice(&mut buf, &[1.0]);
    }
}

//! Index kernels on row-major buffers viewed as `(outer, n, inner)` around one axis (see
//! [`super::lanes`]): `index_select`/`index_add` (whole slices picked by a list of indices:
//! embedding lookups are `index_select` on axis 0 of the `(V, D)` weight) and
//! `gather`/`scatter_add` (one index per output element, like `torch.gather`).
//!
//! Indices must already be checked against `n` by the caller (which panics with a message
//! naming the index and the size); these kernels only `debug_assert`.

use crate::dtype::Float;

/// `out[o, j, :] = src[o, idx[j], :]` for `src: (outer, n, inner)`,
/// `out: (outer, idx.len(), inner)`.
pub fn index_select<T: Float>(src: &[T], n: usize, inner: usize, idx: &[usize], out: &mut [T]) {
    let k = idx.len();
    if n * inner == 0 || k * inner == 0 {
        return;
    }
    for (sb, ob) in src.chunks(n * inner).zip(out.chunks_mut(k * inner)) {
        for (&i, orow) in idx.iter().zip(ob.chunks_mut(inner)) {
            debug_assert!(i < n);
            orow.copy_from_slice(&sb[i * inner..(i + 1) * inner]);
        }
    }
}

/// The adjoint of [`index_select`]: `dst[o, idx[j], :] += g[o, j, :]` (repeated indices
/// accumulate).
pub fn index_add<T: Float>(g: &[T], n: usize, inner: usize, idx: &[usize], dst: &mut [T]) {
    let k = idx.len();
    if n * inner == 0 || k * inner == 0 {
        return;
    }
    for (gb, db) in g.chunks(k * inner).zip(dst.chunks_mut(n * inner)) {
        for (&i, grow) in idx.iter().zip(gb.chunks(inner)) {
            debug_assert!(i < n);
            db[i * inner..(i + 1) * inner]
                .iter_mut()
                .zip(grow)
                .for_each(|(d, &v)| *d += v);
        }
    }
}

/// `out[o, j, i] = src[o, idx[o, j, i], i]` for `src: (outer, n, inner)` and
/// `idx, out: (outer, k, inner)`.
pub fn gather<T: Float>(src: &[T], n: usize, inner: usize, idx: &[usize], k: usize, out: &mut [T]) {
    if n * inner == 0 || k * inner == 0 {
        return;
    }
    for ((sb, ib), ob) in src
        .chunks(n * inner)
        .zip(idx.chunks(k * inner))
        .zip(out.chunks_mut(k * inner))
    {
        for (irow, orow) in ib.chunks(inner).zip(ob.chunks_mut(inner)) {
            for (c, (&j, o)) in irow.iter().zip(orow.iter_mut()).enumerate() {
                debug_assert!(j < n);
                *o = sb[j * inner + c];
            }
        }
    }
}

/// The adjoint of [`gather`]: `dst[o, idx[o, j, i], i] += g[o, j, i]`.
pub fn scatter_add<T: Float>(
    g: &[T],
    n: usize,
    inner: usize,
    idx: &[usize],
    k: usize,
    dst: &mut [T],
) {
    if n * inner == 0 || k * inner == 0 {
        return;
    }
    for ((gb, ib), db) in g
        .chunks(k * inner)
        .zip(idx.chunks(k * inner))
        .zip(dst.chunks_mut(n * inner))
    {
        for (irow, grow) in ib.chunks(inner).zip(gb.chunks(inner)) {
            for (c, (&j, &v)) in irow.iter().zip(grow).enumerate() {
                debug_assert!(j < n);
                db[j * inner + c] += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_select_and_index_add_are_adjoint_by_hand() {
        // src (1, 3, 2): rows [0 1] [2 3] [4 5]
        let src = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0.0; 6];
        index_select(&src, 3, 2, &[2, 0, 2], &mut out);
        assert_eq!(out, [4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
        let mut dst = [0.0; 6];
        index_add(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 3, 2, &[2, 0, 2], &mut dst);
        assert_eq!(dst, [1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    }

    #[test]
    fn gather_and_scatter_add_by_hand() {
        // src (1, 2, 3), gather along the middle axis with idx (1, 1, 3).
        let src = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0.0; 3];
        gather(&src, 2, 3, &[1, 0, 1], 1, &mut out);
        assert_eq!(out, [3.0, 1.0, 5.0]);
        let mut dst = [0.0; 6];
        scatter_add(&[1.0, 2.0, 3.0], 2, 3, &[1, 0, 1], 1, &mut dst);
        assert_eq!(dst, [0.0, 2.0, 0.0, 1.0, 0.0, 3.0]);
    }
}

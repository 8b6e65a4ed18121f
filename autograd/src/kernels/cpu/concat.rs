//! Joining arrays along an axis (the CPU kernel behind `concat` and `stack`).

use crate::dtype::Float;
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

/// The arrays joined along `ax` (their other axes agree; checked by the caller). Row-major
/// inputs are copied block by block (`concat_blocks`), others through ndarray.
pub fn concat<T: Float>(views: &[ArrayViewD<T>], ax: usize) -> ArrayD<T> {
    if views.iter().all(|v| v.is_standard_layout()) {
        return concat_blocks(views, ax);
    }
    ndarray::concatenate(Axis(ax), views).expect("concat: shapes were checked")
}

/// [`concat`] of row-major arrays: for each index of the axes before `ax`, one
/// contiguous block of every input in turn (a channel concat of NCHW tensors copies whole
/// `C_i x H x W` blocks per image); split over images for large outputs.
fn concat_blocks<T: Float>(views: &[ArrayViewD<T>], ax: usize) -> ArrayD<T> {
    use rayon::prelude::*;
    let mut shape = views[0].shape().to_vec();
    shape[ax] = views.iter().map(|v| v.shape()[ax]).sum();
    let outer: usize = shape[..ax].iter().product();
    let blocks: Vec<usize> = views.iter().map(|v| v.len() / outer.max(1)).collect();
    let row: usize = blocks.iter().sum();
    let len = outer * row;
    let mut out: Vec<T> = Vec::with_capacity(len);
    let fill = |(o, dst): (usize, &mut [std::mem::MaybeUninit<T>])| {
        let mut at = 0;
        for (v, &b) in views.iter().zip(&blocks) {
            let src = &v.as_slice().expect("row-major")[o * b..(o + 1) * b];
            for (d, &x) in dst[at..at + b].iter_mut().zip(src) {
                d.write(x);
            }
            at += b;
        }
    };
    if row > 0 {
        let dst = &mut out.spare_capacity_mut()[..len];
        if len >= super::par::ELEMENTWISE_MIN && outer > 1 {
            dst.par_chunks_mut(row).enumerate().for_each(fill);
        } else {
            dst.chunks_mut(row).enumerate().for_each(fill);
        }
    }
    // SAFETY: the `outer` rows of `row` elements were all written above (len = outer * row).
    unsafe { out.set_len(len) };
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("concat: shape and length agree")
}

#[cfg(test)]
mod tests {
    /// The row-major block copy agrees with ndarray's concatenate on every axis (NCHW
    /// channel concat included) and with empty inputs.
    #[test]
    fn concat_blocks_match_ndarray_concatenate() {
        use ndarray::{ArrayD, Axis, IxDyn};
        let arr = |shape: &[usize], seed: usize| {
            let n: usize = shape.iter().product();
            ArrayD::from_shape_vec(
                IxDyn(shape),
                (0..n).map(|i| ((i * 7 + seed * 13) % 31) as f32).collect(),
            )
            .unwrap()
        };
        for ax in 0..4 {
            let mut shapes = [vec![3, 4, 5, 6], vec![3, 4, 5, 6], vec![3, 4, 5, 6]];
            shapes[1][ax] = 2;
            shapes[2][ax] = 0;
            let arrs: Vec<_> = shapes.iter().enumerate().map(|(i, s)| arr(s, i)).collect();
            let views: Vec<_> = arrs.iter().map(|a| a.view()).collect();
            let want = ndarray::concatenate(Axis(ax), &views).unwrap();
            assert_eq!(super::concat_blocks(&views, ax), want, "axis {ax}");
        }
        // Big enough for the parallel path.
        let a = arr(&[64, 16, 32, 32], 1);
        let b = arr(&[64, 8, 32, 32], 2);
        let want = ndarray::concatenate(Axis(1), &[a.view(), b.view()]).unwrap();
        assert_eq!(super::concat_blocks(&[a.view(), b.view()], 1), want);
    }
}

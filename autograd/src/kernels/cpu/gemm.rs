//! The one GEMM entry point for every matrix product on the CPU:
//! `C = alpha * op(A) * op(B) + beta * C`, where `op` is an optional transpose (a stride
//! swap, never a copy).
//!
//! * General shapes go to `matrixmultiply` (through `ndarray::linalg::general_mat_mul`),
//!   single-threaded per call.
//! * Large products called from outside a rayon worker are split by rows of `C` across the
//!   rayon pool, so both cores work on one big GEMM; inside a rayon worker (conv over
//!   images, parallel children) the call stays single-threaded: no nested threading.
//! * Matrix-vector shapes (`M == 1` or `N == 1`) take a hand-written loop, because
//!   matrixmultiply reaches only ~6 GFLOP/s there (NAO decodes one architecture at a time).

use crate::dtype::Float;
use ndarray::{ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul};
use rayon::prelude::*;

/// Products with at least this many multiply-adds are split across threads.
const PAR_FLOPS: usize = super::par::GEMM_MIN_FLOPS;

/// `c = alpha * op(a) * op(b) + beta * c`. With `beta = 0`, `c` is only written, never
/// read (as BLAS and matrixmultiply do), so it may be a buffer from
/// [`crate::kernels::cpu::uninit::overwritten`].
///
/// Panics naming all three shapes when they do not fit.
pub fn gemm<T: Float>(
    alpha: T,
    a: ArrayView2<T>,
    trans_a: bool,
    b: ArrayView2<T>,
    trans_b: bool,
    beta: T,
    mut c: ArrayViewMut2<T>,
) {
    let a = if trans_a { a.reversed_axes() } else { a };
    let b = if trans_b { b.reversed_axes() } else { b };
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(
        k == k2 && c.dim() == (m, n),
        "gemm: op(A) {:?} x op(B) {:?} does not fit C {:?}",
        a.dim(),
        b.dim(),
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // beta = 0 overwrites C without reading it (C may be unwritten memory).
        if beta == T::zero() {
            c.fill(T::zero());
        } else {
            c.map_inplace(|v| *v *= beta);
        }
        return;
    }
    if m == 1 {
        return gemv_row(alpha, a, b, beta, c);
    }
    if n == 1 {
        // c^T = b^T a^T: a row-vector product on the transposed views.
        return gemv_row(
            alpha,
            b.reversed_axes(),
            a.reversed_axes(),
            beta,
            c.reversed_axes(),
        );
    }
    let threads = rayon::current_num_threads();
    if m * n * k >= PAR_FLOPS
        && threads > 1
        && rayon::current_thread_index().is_none()
        && m >= 2 * threads
    {
        let chunk = m.div_ceil(threads * 2).max(8);
        let a_rows: Vec<ArrayView2<T>> = a.axis_chunks_iter(Axis(0), chunk).collect();
        let c_rows: Vec<ArrayViewMut2<T>> = c.axis_chunks_iter_mut(Axis(0), chunk).collect();
        a_rows
            .into_par_iter()
            .zip(c_rows)
            .for_each(|(a_blk, mut c_blk)| {
                general_mat_mul(alpha, &a_blk, &b, beta, &mut c_blk);
            });
    } else {
        general_mat_mul(alpha, &a, &b, beta, &mut c);
    }
}

/// `c (1 x n) = alpha * a (1 x k) * b (k x n) + beta * c`, vectorisable loops.
fn gemv_row<T: Float>(
    alpha: T,
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    beta: T,
    mut c: ArrayViewMut2<T>,
) {
    let a = a.row(0);
    let mut c = c.row_mut(0);
    let (k, n) = b.dim();
    if b.strides()[1] == 1 || n == 1 {
        // Rows of b are contiguous: c += a[i] * b[i, :] (axpy per row).
        let mut acc = vec![T::zero(); n];
        for i in 0..k {
            let ai = a[i];
            let row = b.row(i);
            match row.as_slice() {
                Some(r) => acc.iter_mut().zip(r).for_each(|(s, &x)| *s += ai * x),
                None => acc
                    .iter_mut()
                    .zip(row.iter())
                    .for_each(|(s, &x)| *s += ai * x),
            }
        }
        for (cv, s) in c.iter_mut().zip(acc) {
            *cv = if beta == T::zero() {
                alpha * s
            } else {
                alpha * s + beta * *cv
            };
        }
    } else {
        // Columns of b are contiguous (b is a transposed view): dot products.
        let a_vec: Vec<T> = a.to_vec();
        for (j, cv) in c.iter_mut().enumerate() {
            let col = b.column(j);
            let s = match col.as_slice() {
                Some(cs) => dot(&a_vec, cs),
                None => a_vec
                    .iter()
                    .zip(col.iter())
                    .fold(T::zero(), |s, (&x, &y)| s + x * y),
            };
            *cv = if beta == T::zero() {
                alpha * s
            } else {
                alpha * s + beta * *cv
            };
        }
    }
}

/// A dot product with 8 independent accumulators so the compiler can vectorise it.
fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += x[c * 8 + l] * y[c * 8 + l];
        }
    }
    let mut s = acc.iter().fold(T::zero(), |s, &v| s + v);
    for i in chunks * 8..x.len() {
        s += x[i] * y[i];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        let (m, k) = a.dim();
        let n = b.dim().1;
        Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum())
    }

    fn arr(m: usize, n: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_fn((m, n), |(i, j)| {
            (((i * 31 + j * 17 + seed as usize * 7) % 23) as f64 - 11.0) / 7.0
        })
    }

    #[test]
    fn gemm_matches_naive_for_all_transposes_and_gemv_shapes() {
        for &(m, k, n) in &[
            (3, 4, 5),
            (1, 96, 384),
            (64, 96, 1),
            (1, 7, 1),
            (130, 70, 90),
        ] {
            let a = arr(m, k, 1);
            let b = arr(k, n, 2);
            let want = naive(&a, &b);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_in = if ta { a.t().to_owned() } else { a.clone() };
                let b_in = if tb { b.t().to_owned() } else { b.clone() };
                let mut c = Array2::from_elem((m, n), 1.0);
                gemm(2.0, a_in.view(), ta, b_in.view(), tb, 0.5, c.view_mut());
                let want2 = &want * 2.0 + 0.5;
                for (x, y) in c.iter().zip(want2.iter()) {
                    assert!(
                        (x - y).abs() < 1e-9,
                        "({m},{k},{n}) ta={ta} tb={tb}: {x} vs {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn large_gemm_split_across_threads_matches() {
        let a = arr(300, 200, 3);
        let b = arr(200, 150, 4);
        let mut c = Array2::zeros((300, 150));
        gemm(1.0, a.view(), false, b.view(), false, 0.0, c.view_mut());
        let want = naive(&a, &b);
        assert!(c.iter().zip(want.iter()).all(|(x, y)| (x - y).abs() < 1e-9));
    }

    /// With beta = 0, C is only written: NaN (or unwritten memory) in it does not reach
    /// the result, also when the inner dimension is empty (which used to compute 0 x C).
    #[test]
    fn beta_zero_overwrites_c_without_reading_it() {
        for &(m, k, n) in &[(3, 0, 4), (1, 5, 6), (6, 5, 1), (40, 30, 20)] {
            let (a, b) = (arr(m, k, 5), arr(k, n, 6));
            let mut c = Array2::from_elem((m, n), f64::NAN);
            gemm(1.0, a.view(), false, b.view(), false, 0.0, c.view_mut());
            let want = naive(&a, &b);
            assert!(
                c.iter().zip(want.iter()).all(|(x, y)| (x - y).abs() < 1e-9),
                "({m},{k},{n}): {c:?}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn gemm_shape_mismatch_names_shapes() {
        let a = Array2::<f32>::zeros((2, 3));
        let b = Array2::<f32>::zeros((4, 5));
        let mut c = Array2::<f32>::zeros((2, 5));
        gemm(1.0, a.view(), false, b.view(), false, 0.0, c.view_mut());
    }
}

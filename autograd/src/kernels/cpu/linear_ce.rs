//! The softmax decoder of a language model and its loss in one kernel:
//! `sum_n CE(x_n W^T + b, label_n)` computed block by block, never holding the `N x V`
//! logits.
//!
//! For PTB at the search sizes the logits are `8960 x 10,000` (358 MB in f32); building
//! them, their probabilities and their gradient as whole tensors costs more in page
//! faults than in arithmetic. Here each block of rows is multiplied out into one reused
//! buffer, turned into probabilities in place, and — when a gradient will be needed —
//! immediately turned into the gradients of `x`, `W` and `b` (`P - onehot` times the other
//! factor, accumulated over blocks). The FLOPs are those of the unfused `matmul_t` +
//! `cross_entropy` (one product forward, two backward). The op is
//! [`crate::ops::linear_ce::linear_cross_entropy`].

use crate::dtype::Float;
use crate::kernels::cpu::gemm::gemm;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Rows per block: the logits buffer is `BLOCK x V`.
const BLOCK: usize = 1024;

/// Turns each row of `logits` (`rows x v`) into `softmax - onehot(label)` scaled by
/// `scale` (when `grad`), returning the sum over rows of `-log softmax[label]` (f64, in
/// row order). Without `grad` the rows are left holding `exp(logit - max)` (scratch).
///
/// Each row is a few vectorisable passes: bias add, max and sum with 8 independent
/// lanes (combined in a fixed order, so the result does not depend on threads), and the
/// exponentials through [`Float::exp_inplace`] (f32: the vectorised polynomial of
/// `kernels::cpu::fastmath`; f64: libm).
fn rows_softmax<T: Float>(
    logits: &mut [T],
    bias: &[T],
    v: usize,
    labels: &[usize],
    scale: T,
    grad: bool,
) -> f64 {
    let row = |(xr, &l): (&mut [T], &usize)| -> f64 {
        xr.iter_mut().zip(bias).for_each(|(x, &b)| *x += b);
        let m = lanes_fold(xr, T::neg_infinity(), T::max);
        let picked = xr[l];
        xr.iter_mut().for_each(|x| *x -= m);
        T::exp_inplace(xr);
        let s = lanes_fold(xr, T::zero(), |a, b| a + b);
        if grad {
            let r = scale / s;
            xr.iter_mut().for_each(|x| *x *= r);
            xr[l] -= scale;
        }
        (s.ln() - (picked - m)).to_f64().unwrap()
    };
    let losses: Vec<f64> = logits
        .par_chunks_mut(v)
        .zip(labels.par_iter())
        .map(row)
        .collect();
    losses.iter().sum()
}

/// Folds `x` with `f` in 8 interleaved lanes (element `i` goes to lane `i % 8`), then the
/// lanes and the tail in order: a fixed order the compiler can vectorise.
fn lanes_fold<T: Float>(x: &[T], init: T, f: impl Fn(T, T) -> T) -> T {
    let mut acc = [init; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] = f(acc[k], c[k]);
        }
    }
    let mut r = acc.iter().fold(init, |a, &b| f(a, b));
    for &t in chunks.remainder() {
        r = f(r, t);
    }
    r
}

/// The gradients of the mean loss w.r.t. `x (N, D)`, `w (V, D)` and `b (V)`, row-major.
pub struct LinearCeGrads<T> {
    /// `(N, D)`.
    pub dx: Vec<T>,
    /// `(V, D)`.
    pub dw: Vec<T>,
    /// `(V)`.
    pub db: Vec<T>,
}

/// The summed (not yet averaged) loss `sum_n CE(x_n W^T + b, labels_n)` of row-major
/// `x (n x d)`, `w (v x d)`, `b (v)`, in blocks of `BLOCK` (1024) rows, and, when `grad`, the
/// gradients of the *mean* loss (see the module docs). Labels are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub fn linear_cross_entropy<T: Float>(
    x: &[T],
    w: &[T],
    b: &[T],
    n: usize,
    d: usize,
    v: usize,
    labels: &[usize],
    grad: bool,
) -> (f64, Option<LinearCeGrads<T>>) {
    let xa = ArrayView2::from_shape((n, d), x).unwrap();
    let wa = ArrayView2::from_shape((v, d), w).unwrap();
    let scale = T::one() / T::of(n.max(1) as f64);
    let mut saved = grad.then(|| LinearCeGrads {
        dx: vec![T::zero(); n * d],
        dw: vec![T::zero(); v * d],
        db: vec![T::zero(); v],
    });
    let mut buf = vec![T::zero(); BLOCK.min(n) * v];
    let mut total = 0.0;
    for r0 in (0..n).step_by(BLOCK) {
        let rows = BLOCK.min(n - r0);
        let xb = xa.slice(ndarray::s![r0..r0 + rows, ..]);
        let lb = &mut buf[..rows * v];
        let mut la = ArrayViewMut2::from_shape((rows, v), &mut *lb).unwrap();
        gemm(T::one(), xb, false, wa, true, T::zero(), la.view_mut());
        total += rows_softmax(lb, b, v, &labels[r0..r0 + rows], scale, grad);
        if let Some(s) = saved.as_mut() {
            let p = ArrayView2::from_shape((rows, v), &*lb).unwrap();
            let dxb =
                ArrayViewMut2::from_shape((rows, d), &mut s.dx[r0 * d..(r0 + rows) * d]).unwrap();
            gemm(T::one(), p, false, wa, false, T::zero(), dxb);
            let dwa = ArrayViewMut2::from_shape((v, d), &mut s.dw[..]).unwrap();
            gemm(T::one(), p, true, xb, false, T::one(), dwa);
            // db += column sums of P, split over column ranges.
            s.db.par_chunks_mut(1024).enumerate().for_each(|(ci, dbc)| {
                let c0 = ci * 1024;
                for r in 0..rows {
                    let pr = &lb[r * v + c0..r * v + c0 + dbc.len()];
                    dbc.iter_mut().zip(pr).for_each(|(a, &p)| *a += p);
                }
            });
        }
    }
    (total, saved)
}

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
            add_column_sums(&mut s.db, lb, v);
        }
    }
    (total, saved)
}

/// [`linear_cross_entropy`] of `x` with a locked column mask folded in: row `r` of `x`
/// belongs to stream `r % g` (time-major `(T, g)` rows, as a language model's outputs)
/// and is multiplied by row `r % g` of `mask (g x d)` before the product. Only the
/// columns a stream keeps (non-zero mask entries) enter its products, so at a dropout of
/// p the three products cost `1 - p` of the dense ones; the result is the dense op's on
/// `x * mask`, and `dx` is `mask * d(x * mask)` (zero in dropped columns).
///
/// Streams are taken in blocks of about `BLOCK` rows. Per stream (in parallel): the kept
/// columns of its rows and of `W` are gathered, its logits `(T x V)` multiplied out into
/// the block's buffer and turned into probabilities, and `dx` follows. Then `dW` is
/// accumulated in parallel over ranges of `V` rows, each range adding the streams in
/// order: every sum has a fixed order, so the result does not depend on the number of
/// threads. `n` must be a multiple of `g` (checked by the caller).
#[allow(clippy::too_many_arguments)]
pub fn linear_cross_entropy_masked<T: Float>(
    x: &[T],
    mask: &[T],
    w: &[T],
    b: &[T],
    (n, d, v, g): (usize, usize, usize, usize),
    labels: &[usize],
    grad: bool,
) -> (f64, Option<LinearCeGrads<T>>) {
    let t = n / g.max(1);
    let scale = T::one() / T::of(n.max(1) as f64);
    let kept: Vec<Vec<usize>> = (0..g)
        .map(|s| (0..d).filter(|&j| mask[s * d + j] != T::zero()).collect())
        .collect();
    let mut saved = grad.then(|| LinearCeGrads {
        dx: vec![T::zero(); n * d],
        dw: vec![T::zero(); v * d],
        db: vec![T::zero(); v],
    });
    let per_block = (BLOCK / t.max(1)).clamp(1, g.max(1));
    let mut buf = vec![T::zero(); per_block.min(g) * t * v];
    let mut total = 0.0;
    for s0 in (0..g).step_by(per_block) {
        let streams = per_block.min(g - s0);
        let pbuf = &mut buf[..streams * t * v];
        // Per stream: its kept inputs (t x k, mask applied), its loss, its dx (t x k).
        let outs: Vec<(Vec<T>, f64, Vec<T>)> = pbuf
            .par_chunks_mut(t * v)
            .enumerate()
            .map_init(Vec::new, |wk, (i, p)| {
                let s = s0 + i;
                let ks = &kept[s];
                let k = ks.len();
                let xs: Vec<T> = (0..t)
                    .flat_map(|r| {
                        let row = &x[(r * g + s) * d..(r * g + s + 1) * d];
                        ks.iter().map(move |&j| row[j] * mask[s * d + j])
                    })
                    .collect();
                wk.clear();
                wk.extend(w.chunks_exact(d).flat_map(|row| ks.iter().map(|&j| row[j])));
                let xa = ArrayView2::from_shape((t, k), &xs[..]).unwrap();
                let wa = ArrayView2::from_shape((v, k), &wk[..]).unwrap();
                let pa = ArrayViewMut2::from_shape((t, v), &mut *p).unwrap();
                gemm(T::one(), xa, false, wa, true, T::zero(), pa);
                let ls: Vec<usize> = (0..t).map(|r| labels[r * g + s]).collect();
                let loss = rows_softmax(p, b, v, &ls, scale, grad);
                let mut dxs = Vec::new();
                if grad {
                    dxs = vec![T::zero(); t * k];
                    let pv = ArrayView2::from_shape((t, v), &*p).unwrap();
                    let dxa = ArrayViewMut2::from_shape((t, k), &mut dxs[..]).unwrap();
                    gemm(T::one(), pv, false, wa, false, T::zero(), dxa);
                }
                (xs, loss, dxs)
            })
            .collect();
        total += outs.iter().map(|o| o.1).sum::<f64>();
        let Some(sv) = saved.as_mut() else { continue };
        for (i, (_, _, dxs)) in outs.iter().enumerate() {
            let s = s0 + i;
            let ks = &kept[s];
            for r in 0..t {
                let row = &mut sv.dx[(r * g + s) * d..(r * g + s + 1) * d];
                for (jj, &j) in ks.iter().enumerate() {
                    row[j] = dxs[r * ks.len() + jj] * mask[s * d + j];
                }
            }
        }
        // dW[rows, kept(s)] += P_s[:, rows]^T x_s, over ranges of V rows, streams in order.
        let pbuf = &*pbuf;
        sv.dw
            .par_chunks_mut(DW_ROWS * d)
            .enumerate()
            .for_each(|(ci, dwc)| {
                let (v0, rows) = (ci * DW_ROWS, dwc.len() / d);
                let mut tmp = Vec::new();
                for (i, (xs, _, _)) in outs.iter().enumerate() {
                    let ks = &kept[s0 + i];
                    let k = ks.len();
                    if k == 0 {
                        continue;
                    }
                    tmp.resize(rows * k, T::zero());
                    let p =
                        ArrayView2::from_shape((t, v), &pbuf[i * t * v..(i + 1) * t * v]).unwrap();
                    let pr = p.slice(ndarray::s![.., v0..v0 + rows]);
                    let xa = ArrayView2::from_shape((t, k), &xs[..]).unwrap();
                    let ta = ArrayViewMut2::from_shape((rows, k), &mut tmp[..]).unwrap();
                    gemm(T::one(), pr, true, xa, false, T::zero(), ta);
                    for (dr, tr) in dwc.chunks_exact_mut(d).zip(tmp.chunks_exact(k)) {
                        for (&j, &tv) in ks.iter().zip(tr) {
                            dr[j] += tv;
                        }
                    }
                }
            });
        add_column_sums(&mut sv.db, pbuf, v);
    }
    (total, saved)
}

/// Rows of `W` per parallel range of the masked op's `dW` accumulation.
const DW_ROWS: usize = 512;

/// `db += ` the column sums of `p` (rows of length `v`), split over column ranges.
fn add_column_sums<T: Float>(db: &mut [T], p: &[T], v: usize) {
    let rows = p.len() / v.max(1);
    db.par_chunks_mut(1024).enumerate().for_each(|(ci, dbc)| {
        let c0 = ci * 1024;
        for r in 0..rows {
            let pr = &p[r * v + c0..r * v + c0 + dbc.len()];
            dbc.iter_mut().zip(pr).for_each(|(a, &p)| *a += p);
        }
    });
}

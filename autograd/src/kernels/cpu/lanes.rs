//! Kernels that work along one axis of a row-major array: softmax, log-softmax, their
//! backward rules, L2 normalisation and the fused softmax cross-entropy.
//!
//! A row-major array reduced along axis `a` is viewed as `(outer, n, inner)`, where `n` is
//! the size of axis `a`, `outer` the product of the axes before it and `inner` the product
//! of the axes after it. Element `(o, j, i)` sits at `o * n * inner + j * inner + i`, so:
//!
//! * for the last axis (`inner == 1`) every lane is a contiguous slice of length `n`;
//! * for any other axis, each block `o` is an `(n, inner)` row-major matrix and the kernels
//!   sweep its rows, which are contiguous, keeping `inner` running maxima/sums.
//!
//! Either way nothing is transposed or copied. Large arrays are split over blocks with rayon.

use crate::dtype::Float;
use rayon::prelude::*;

/// Arrays with at least this many elements are processed with rayon.
const PAR_THRESHOLD: usize = super::par::LANES_MIN;

/// `(outer, n, inner)` of `shape` around `axis` (see the module docs).
pub fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let n = shape[axis];
    let inner = shape[axis + 1..].iter().product();
    (outer, n, inner)
}

/// Runs `f(block_index, blocks_of_each_slice...)` over blocks of `block` elements, in
/// parallel when the arrays are large.
fn for_blocks2<T: Float>(
    x: &[T],
    y: &mut [T],
    block: usize,
    f: impl Fn(&[T], &mut [T]) + Sync + Send,
) {
    if block == 0 {
        return;
    }
    if x.len() >= PAR_THRESHOLD && x.len() / block > 1 {
        x.par_chunks(block)
            .zip(y.par_chunks_mut(block))
            .for_each(|(xb, yb)| f(xb, yb));
    } else {
        x.chunks(block)
            .zip(y.chunks_mut(block))
            .for_each(|(xb, yb)| f(xb, yb));
    }
}

fn for_blocks3<T: Float>(
    x: &[T],
    y: &[T],
    z: &mut [T],
    block: usize,
    f: impl Fn(&[T], &[T], &mut [T]) + Sync + Send,
) {
    if block == 0 {
        return;
    }
    if x.len() >= PAR_THRESHOLD && x.len() / block > 1 {
        x.par_chunks(block)
            .zip(y.par_chunks(block))
            .zip(z.par_chunks_mut(block))
            .for_each(|((xb, yb), zb)| f(xb, yb, zb));
    } else {
        x.chunks(block)
            .zip(y.chunks(block))
            .zip(z.chunks_mut(block))
            .for_each(|((xb, yb), zb)| f(xb, yb, zb));
    }
}

/// Softmax (or log-softmax when `log`) of `x` along the middle axis of `(outer, n, inner)`,
/// written to `y` (same length). Numerically stable: the lane maximum is subtracted first.
pub fn softmax_forward<T: Float>(x: &[T], y: &mut [T], n: usize, inner: usize, log: bool) {
    assert_eq!(x.len(), y.len(), "softmax_forward: buffer lengths differ");
    for_blocks2(x, y, n * inner, |xb, yb| {
        if inner == 1 {
            let m = xb.iter().cloned().fold(T::neg_infinity(), T::max);
            yb.iter_mut().zip(xb).for_each(|(yv, &xv)| *yv = xv - m);
            T::exp_inplace(yb);
            let s = yb.iter().fold(T::zero(), |s, &e| s + e);
            if log {
                // (x - m) - ln s keeps full precision when |m| is large.
                let ls = s.ln();
                yb.iter_mut()
                    .zip(xb)
                    .for_each(|(yv, &xv)| *yv = (xv - m) - ls);
            } else {
                let r = T::one() / s;
                yb.iter_mut().for_each(|yv| *yv *= r);
            }
            return;
        }
        let mut m = vec![T::neg_infinity(); inner];
        for row in xb.chunks(inner) {
            m.iter_mut().zip(row).for_each(|(mv, &xv)| *mv = mv.max(xv));
        }
        let mut s = vec![T::zero(); inner];
        for (yr, xr) in yb.chunks_mut(inner).zip(xb.chunks(inner)) {
            for ((yv, &xv), (sv, &mv)) in yr.iter_mut().zip(xr).zip(s.iter_mut().zip(&m)) {
                let e = (xv - mv).exp();
                *yv = e;
                *sv += e;
            }
        }
        if log {
            let ls: Vec<T> = s.iter().map(|&sv| sv.ln()).collect();
            for (yr, xr) in yb.chunks_mut(inner).zip(xb.chunks(inner)) {
                yr.iter_mut()
                    .zip(xr)
                    .zip(ls.iter().zip(&m))
                    .for_each(|((yv, &xv), (&l, &mv))| *yv = (xv - mv) - l);
            }
        } else {
            let r: Vec<T> = s.iter().map(|&sv| T::one() / sv).collect();
            for yr in yb.chunks_mut(inner) {
                yr.iter_mut().zip(&r).for_each(|(yv, &rv)| *yv *= rv);
            }
        }
    });
}

/// Backward of [`softmax_forward`] from its output `y` and the output gradient `g`:
/// softmax `dx = y * (g - sum_j g y)`, log-softmax `dx = g - exp(y) * sum_j g`.
pub fn softmax_backward<T: Float>(
    y: &[T],
    g: &[T],
    dx: &mut [T],
    n: usize,
    inner: usize,
    log: bool,
) {
    assert!(
        y.len() == g.len() && g.len() == dx.len(),
        "softmax_backward: buffer lengths differ"
    );
    for_blocks3(y, g, dx, n * inner, |yb, gb, db| {
        let mut s = vec![T::zero(); inner];
        for (yr, gr) in yb.chunks(inner).zip(gb.chunks(inner)) {
            for ((sv, &yv), &gv) in s.iter_mut().zip(yr).zip(gr) {
                *sv += if log { gv } else { gv * yv };
            }
        }
        for ((dr, yr), gr) in db
            .chunks_mut(inner)
            .zip(yb.chunks(inner))
            .zip(gb.chunks(inner))
        {
            for (((dv, &yv), &gv), &sv) in dr.iter_mut().zip(yr).zip(gr).zip(&s) {
                *dv = if log {
                    gv - yv.exp() * sv
                } else {
                    yv * (gv - sv)
                };
            }
        }
    });
}

/// L2 normalisation along the middle axis of `(outer, n, inner)`:
/// `y = x / max(||x||, eps)`. Writes `y` and returns each lane's norm `||x||`
/// (`outer * inner` values, in block-then-inner order).
pub fn l2_normalize_forward<T: Float>(
    x: &[T],
    y: &mut [T],
    n: usize,
    inner: usize,
    eps: T,
) -> Vec<T> {
    let lanes = if n * inner == 0 { 0 } else { x.len() / n };
    let mut norms = vec![T::zero(); lanes];
    if n * inner == 0 {
        return norms;
    }
    let block = n * inner;
    let run = |xb: &[T], yb: &mut [T], nb: &mut [T]| {
        for row in xb.chunks(inner) {
            nb.iter_mut().zip(row).for_each(|(s, &v)| *s += v * v);
        }
        nb.iter_mut().for_each(|s| *s = s.sqrt());
        let r: Vec<T> = nb.iter().map(|&s| T::one() / s.max(eps)).collect();
        for (yr, xr) in yb.chunks_mut(inner).zip(xb.chunks(inner)) {
            yr.iter_mut()
                .zip(xr)
                .zip(&r)
                .for_each(|((yv, &xv), &rv)| *yv = xv * rv);
        }
    };
    if x.len() >= PAR_THRESHOLD && x.len() / block > 1 {
        x.par_chunks(block)
            .zip(y.par_chunks_mut(block))
            .zip(norms.par_chunks_mut(inner))
            .for_each(|((xb, yb), nb)| run(xb, yb, nb));
    } else {
        x.chunks(block)
            .zip(y.chunks_mut(block))
            .zip(norms.chunks_mut(inner))
            .for_each(|((xb, yb), nb)| run(xb, yb, nb));
    }
    norms
}

/// Backward of [`l2_normalize_forward`] from the output `y`, the saved lane norms and the
/// output gradient `g`: where `||x|| > eps`, `dx = (g - y * sum_j g y) / ||x||`; where the
/// norm was clamped to `eps`, `y = x / eps` is linear and `dx = g / eps`.
pub fn l2_normalize_backward<T: Float>(
    y: &[T],
    norms: &[T],
    g: &[T],
    dx: &mut [T],
    n: usize,
    inner: usize,
    eps: T,
) {
    let block = n * inner;
    if block == 0 {
        return;
    }
    for (((yb, gb), db), nb) in y
        .chunks(block)
        .zip(g.chunks(block))
        .zip(dx.chunks_mut(block))
        .zip(norms.chunks(inner))
    {
        let mut s = vec![T::zero(); inner];
        for (yr, gr) in yb.chunks(inner).zip(gb.chunks(inner)) {
            for ((sv, &yv), &gv) in s.iter_mut().zip(yr).zip(gr) {
                *sv += gv * yv;
            }
        }
        for ((dr, yr), gr) in db
            .chunks_mut(inner)
            .zip(yb.chunks(inner))
            .zip(gb.chunks(inner))
        {
            for ((((dv, &yv), &gv), &sv), &nv) in dr.iter_mut().zip(yr).zip(gr).zip(&s).zip(nb) {
                *dv = if nv > eps {
                    (gv - yv * sv) / nv
                } else {
                    gv / eps
                };
            }
        }
    }
}

/// Fused softmax cross-entropy over rows of `logits` (`rows x c`, row-major): writes the
/// softmax probabilities to `probs` and returns the SUM over rows of `-log p[label]`
/// (accumulated in f64). Labels must already be checked to be `< c`.
pub fn cross_entropy_forward<T: Float>(
    logits: &[T],
    probs: &mut [T],
    c: usize,
    labels: &[usize],
) -> f64 {
    if c == 0 {
        return 0.0;
    }
    // One exp per element: each row's maximum m and sum s give both the probabilities and
    // -log p[label] = ln s - (x[label] - m), exact even where p underflows.
    let row_loss = |(xr, pr): (&[T], &mut [T]), l: usize| -> f64 {
        let m = xr.iter().cloned().fold(T::neg_infinity(), T::max);
        pr.iter_mut().zip(xr).for_each(|(p, &x)| *p = x - m);
        T::exp_inplace(pr);
        let s = pr.iter().fold(T::zero(), |s, &e| s + e);
        let r = T::one() / s;
        pr.iter_mut().for_each(|p| *p *= r);
        (s.ln() - (xr[l] - m)).to_f64().unwrap()
    };
    if logits.len() >= PAR_THRESHOLD {
        // Per-row losses summed in order afterwards: the result does not depend on how
        // rayon split the work.
        let losses: Vec<f64> = logits
            .par_chunks(c)
            .zip(probs.par_chunks_mut(c))
            .zip(labels.par_iter())
            .map(|(rows, &l)| row_loss(rows, l))
            .collect();
        losses.iter().sum()
    } else {
        logits
            .chunks(c)
            .zip(probs.chunks_mut(c))
            .zip(labels)
            .map(|(rows, &l)| row_loss(rows, l))
            .sum()
    }
}

/// Backward of the mean cross-entropy: `dlogits = scale * (probs - onehot(labels))` with
/// `scale = dloss / rows`.
pub fn cross_entropy_backward<T: Float>(
    probs: &[T],
    c: usize,
    labels: &[usize],
    scale: T,
) -> Vec<T> {
    let mut d: Vec<T> = probs.iter().map(|&p| p * scale).collect();
    for (r, &l) in labels.iter().enumerate() {
        d[r * c + l] -= scale;
    }
    d
}

/// [`l2_normalize_forward`] for contiguous lanes of length `n` (the last axis), one
/// lane at a time: same sums in the same order, without the per-lane scratch vectors and
/// tiny parallel tasks of the strided version.
pub fn l2_normalize_rows_forward<T: Float>(x: &[T], y: &mut [T], n: usize, eps: T) -> Vec<T> {
    let mut norms = Vec::with_capacity(x.len() / n);
    for (xr, yr) in x.chunks(n).zip(y.chunks_mut(n)) {
        let mut s = T::zero();
        for &v in xr {
            s += v * v;
        }
        let s = s.sqrt();
        norms.push(s);
        let r = T::one() / s.max(eps);
        yr.iter_mut().zip(xr).for_each(|(yv, &xv)| *yv = xv * r);
    }
    norms
}

/// [`l2_normalize_backward`] for contiguous lanes of length `n`.
pub fn l2_normalize_rows_backward<T: Float>(
    y: &[T],
    norms: &[T],
    g: &[T],
    dx: &mut [T],
    n: usize,
    eps: T,
) {
    for (((yr, gr), dr), &nv) in y
        .chunks(n)
        .zip(g.chunks(n))
        .zip(dx.chunks_mut(n))
        .zip(norms)
    {
        let mut s = T::zero();
        for (&gv, &yv) in gr.iter().zip(yr) {
            s += gv * yv;
        }
        for ((dv, &yv), &gv) in dr.iter_mut().zip(yr).zip(gr) {
            *dv = if nv > eps {
                (gv - yv * s) / nv
            } else {
                gv / eps
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_lanes_match_by_hand_for_last_and_middle_axis() {
        // (outer 1, n 2, inner 2): softmax over n of columns [0, ln 3] and [1, 1].
        let x = [0.0f64, 1.0, 3f64.ln(), 1.0];
        let mut y = [0.0; 4];
        softmax_forward(&x, &mut y, 2, 2, false);
        let want = [0.25, 0.5, 0.75, 0.5];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{y:?}");
        }
        let x = [1000.0f32, 1000.0];
        let mut y = [0.0f32; 2];
        softmax_forward(&x, &mut y, 2, 1, true);
        assert!((y[0] + std::f32::consts::LN_2).abs() < 1e-6, "{y:?}");
    }

    /// The contiguous last-axis path gives the bits of the general lane kernel.
    #[test]
    fn l2_normalize_rows_match_the_lane_kernel_bitwise() {
        let x: Vec<f32> = (0..39_936)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let n = 96;
        let (mut y1, mut y2) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        let n1 = l2_normalize_rows_forward(&x, &mut y1, n, 1e-6);
        let n2 = l2_normalize_forward(&x, &mut y2, n, 1, 1e-6);
        assert_eq!((&y1, &n1), (&y2, &n2));
        let g: Vec<f32> = x.iter().map(|v| v * 0.3 - 0.1).collect();
        let (mut d1, mut d2) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        l2_normalize_rows_backward(&y1, &n1, &g, &mut d1, n, 1e-6);
        l2_normalize_backward(&y2, &n2, &g, &mut d2, n, 1, 1e-6);
        assert_eq!(d1, d2);
    }
}

//! Batch-norm kernels on a row-major `(N, C, HW)` layout (an NCHW tensor with `HW = H * W`,
//! or an `(N, C)` matrix with `HW = 1`). Channel statistics and gradient sums run in
//! parallel over channels (accumulated in f64); the elementwise passes run in parallel over
//! images, one fused `a[c] * u + b[c] * v + d[c]` per element.

use crate::dtype::Float;
use crate::kernels::cpu::simd::multiversion;
use rayon::prelude::*;

/// The `(N, C, HW)` layout of a batch-norm input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnLayout {
    /// Images (batch rows).
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Positions per channel and image.
    pub hw: usize,
}

impl BnLayout {
    /// Elements per channel over the batch (`N * HW`).
    pub fn per_channel(&self) -> usize {
        self.n * self.hw
    }

    /// The `HW` slice of channel `ci` in image `ni`.
    fn plane<'a, T>(&self, x: &'a [T], ni: usize, ci: usize) -> &'a [T] {
        &x[(ni * self.c + ci) * self.hw..][..self.hw]
    }
}

/// Lanes of the f64 accumulators: enough independent additions to keep the adder busy.
const LANES: usize = 16;

/// Adds the `LANES` partial sums in a fixed order.
#[inline(always)]
fn reduce_lanes(acc: &[f64; LANES]) -> f64 {
    let mut h = [0.0; 8];
    for l in 0..8 {
        h[l] = acc[l] + acc[l + 8];
    }
    ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]))
}

multiversion! {
    /// `out[0] = sum x`, `out[1] = sum (x - mean)^2` over one plane (the second only when
    /// `out.len() > 1`, using `mean`), in f64 lanes.
    fn plane_sums<T: Float>(x: &[T], mean: f64, out: &mut [f64]) {
        let mut acc = [0.0f64; LANES];
        let mut xc = x.chunks_exact(LANES);
        if out.len() == 1 {
            for a in &mut xc {
                for l in 0..LANES {
                    acc[l] += a[l].to_f64().unwrap();
                }
            }
            for (l, v) in xc.remainder().iter().enumerate() {
                acc[l] += v.to_f64().unwrap();
            }
        } else {
            for a in &mut xc {
                for l in 0..LANES {
                    let d = a[l].to_f64().unwrap() - mean;
                    acc[l] += d * d;
                }
            }
            for (l, v) in xc.remainder().iter().enumerate() {
                let d = v.to_f64().unwrap() - mean;
                acc[l] += d * d;
            }
        }
        out[out.len() - 1] = reduce_lanes(&acc);
    }
}

multiversion! {
    /// `out = (sum dy, sum dy * (x - mean))` over one plane, in f64 lanes.
    fn plane_grad_sums<T: Float>(x: &[T], dy: &[T], mean: f64, out: &mut [f64]) {
        let mut s = [0.0f64; LANES];
        let mut sx = [0.0f64; LANES];
        let mut xc = x.chunks_exact(LANES);
        let mut dc = dy.chunks_exact(LANES);
        for (a, g) in (&mut xc).zip(&mut dc) {
            for l in 0..LANES {
                let gv = g[l].to_f64().unwrap();
                s[l] += gv;
                sx[l] += gv * (a[l].to_f64().unwrap() - mean);
            }
        }
        for (l, (a, g)) in xc.remainder().iter().zip(dc.remainder()).enumerate() {
            let gv = g.to_f64().unwrap();
            s[l] += gv;
            sx[l] += gv * (a.to_f64().unwrap() - mean);
        }
        out[0] = reduce_lanes(&s);
        out[1] = reduce_lanes(&sx);
    }
}

/// Per-channel batch mean and biased variance (two passes, f64 accumulation in a fixed
/// order: lanes within each plane, then the planes in image order).
pub fn bn_batch_stats<T: Float>(x: &[T], l: BnLayout) -> (Vec<f64>, Vec<f64>) {
    let m = l.per_channel().max(1) as f64;
    (0..l.c)
        .into_par_iter()
        .map(|ci| {
            let mut o = [0.0f64; 1];
            let mut mean = 0.0;
            for ni in 0..l.n {
                plane_sums(l.plane(x, ni, ci), 0.0, &mut o);
                mean += o[0];
            }
            mean /= m;
            let mut o2 = [0.0f64; 2];
            let mut var = 0.0;
            for ni in 0..l.n {
                plane_sums(l.plane(x, ni, ci), mean, &mut o2);
                var += o2[1];
            }
            (mean, var / m)
        })
        .unzip()
}

/// Per-channel `(sum dy, sum dy * (x - mean))`, f64 accumulation in a fixed order (one
/// pass).
pub fn bn_grad_sums<T: Float>(
    x: &[T],
    dy: &[T],
    l: BnLayout,
    mean: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    (0..l.c)
        .into_par_iter()
        .map(|ci| {
            let (mut s, mut sx) = (0.0, 0.0);
            let mut o = [0.0f64; 2];
            for ni in 0..l.n {
                plane_grad_sums(l.plane(x, ni, ci), l.plane(dy, ni, ci), mean[ci], &mut o);
                s += o[0];
                sx += o[1];
            }
            (s, sx)
        })
        .unzip()
}

/// `out = a[c] * u + b[c] * v + d[c]` elementwise, in parallel over images; `v` may be
/// empty (then the `b` term is skipped).
pub fn bn_affine2<T: Float>(u: &[T], v: &[T], l: BnLayout, a: &[T], b: &[T], d: &[T]) -> Vec<T> {
    let mut out = vec![T::zero(); u.len()];
    let img = l.c * l.hw;
    if img == 0 {
        return out;
    }
    out.par_chunks_mut(img).enumerate().for_each(|(ni, o)| {
        for ci in 0..l.c {
            let start = ci * l.hw;
            let base = ni * img + start;
            let oc = &mut o[start..start + l.hw];
            let uc = &u[base..base + l.hw];
            let (ac, dc) = (a[ci], d[ci]);
            if v.is_empty() {
                oc.iter_mut().zip(uc).for_each(|(o, &x)| *o = ac * x + dc);
            } else {
                let bc = b[ci];
                let vc = &v[base..base + l.hw];
                oc.iter_mut()
                    .zip(uc.iter().zip(vc))
                    .for_each(|(o, (&x, &y))| *o = ac * x + bc * y + dc);
            }
        }
    });
    out
}

//! Batch-norm kernels on a row-major `(N, C, HW)` layout (an NCHW tensor with `HW = H * W`,
//! or an `(N, C)` matrix with `HW = 1`). Channel statistics and gradient sums run in
//! parallel over channels (accumulated in f64); the elementwise passes run in parallel over
//! images, one fused `a[c] * u + b[c] * v + d[c]` per element.

use crate::dtype::Float;
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

    fn channel_sum(&self, ci: usize, f: impl Fn(usize) -> f64) -> f64 {
        (0..self.n)
            .map(|ni| {
                let start = (ni * self.c + ci) * self.hw;
                (start..start + self.hw).map(&f).sum::<f64>()
            })
            .sum()
    }
}

/// Per-channel batch mean and biased variance (two passes, f64 accumulation).
pub fn bn_batch_stats<T: Float>(x: &[T], l: BnLayout) -> (Vec<f64>, Vec<f64>) {
    let m = l.per_channel().max(1) as f64;
    (0..l.c)
        .into_par_iter()
        .map(|ci| {
            let mean = l.channel_sum(ci, |i| x[i].to_f64().unwrap()) / m;
            let var = l.channel_sum(ci, |i| {
                let d = x[i].to_f64().unwrap() - mean;
                d * d
            }) / m;
            (mean, var)
        })
        .unzip()
}

/// Per-channel `(sum dy, sum dy * (x - mean))`, f64 accumulation.
pub fn bn_grad_sums<T: Float>(
    x: &[T],
    dy: &[T],
    l: BnLayout,
    mean: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    (0..l.c)
        .into_par_iter()
        .map(|ci| {
            let s = l.channel_sum(ci, |i| dy[i].to_f64().unwrap());
            let sx = l.channel_sum(ci, |i| {
                dy[i].to_f64().unwrap() * (x[i].to_f64().unwrap() - mean[ci])
            });
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

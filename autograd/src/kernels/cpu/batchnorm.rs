//! Batch-norm kernels on a row-major `(N, C, HW)` layout (an NCHW tensor with `HW = H * W`,
//! or an `(N, C)` matrix with `HW = 1`). Channel statistics and gradient sums run in
//! parallel over channels (per plane in lanes of the element type, over planes in f64); the elementwise passes run in parallel over
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

/// Lanes of the per-plane accumulators: enough independent additions to keep the adders
/// busy (four AVX2 vectors of f32).
const LANES: usize = 32;

/// Adds the `LANES` partial sums in a fixed order, in f64.
#[inline(always)]
fn reduce_lanes<T: Float>(acc: &[T; LANES]) -> f64 {
    let mut h = [0.0f64; 8];
    for (l, hl) in h.iter_mut().enumerate() {
        *hl = (acc[l].to_f64().unwrap() + acc[l + 8].to_f64().unwrap())
            + (acc[l + 16].to_f64().unwrap() + acc[l + 24].to_f64().unwrap());
    }
    ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]))
}

multiversion! {
    /// `out = (sum d, sum d^2)` with `d = x - shift` over one plane: lanes of `T` within the
    /// plane (a plane has at most a few thousand elements), reduced in f64.
    fn plane_sums<T: Float>(x: &[T], shift: T, out: &mut [f64; 2]) {
        let mut s = [T::zero(); LANES];
        let mut s2 = [T::zero(); LANES];
        let mut xc = x.chunks_exact(LANES);
        for a in &mut xc {
            for l in 0..LANES {
                let d = a[l] - shift;
                s[l] += d;
                s2[l] += d * d;
            }
        }
        for (l, &v) in xc.remainder().iter().enumerate() {
            let d = v - shift;
            s[l] += d;
            s2[l] += d * d;
        }
        *out = [reduce_lanes(&s), reduce_lanes(&s2)];
    }
}

multiversion! {
    /// `out = (sum dy, sum dy * (x - mean))` over one plane: lanes of `T`, reduced in f64.
    fn plane_grad_sums<T: Float>(x: &[T], dy: &[T], mean: T, out: &mut [f64; 2]) {
        let mut s = [T::zero(); LANES];
        let mut sx = [T::zero(); LANES];
        let mut xc = x.chunks_exact(LANES);
        let mut dc = dy.chunks_exact(LANES);
        for (a, g) in (&mut xc).zip(&mut dc) {
            for l in 0..LANES {
                s[l] += g[l];
                sx[l] += g[l] * (a[l] - mean);
            }
        }
        for (l, (&a, &g)) in xc.remainder().iter().zip(dc.remainder()).enumerate() {
            s[l] += g;
            sx[l] += g * (a - mean);
        }
        *out = [reduce_lanes(&s), reduce_lanes(&sx)];
    }
}

/// Per-channel batch mean and biased variance in one pass over `x`: sums of `d = x - K`
/// and `d^2` with `K` the channel's first element (shifting keeps `E[d^2] - E[d]^2` free of
/// cancellation), per plane in lanes of `T`, then over the planes in image order in f64.
pub fn bn_batch_stats<T: Float>(x: &[T], l: BnLayout) -> (Vec<f64>, Vec<f64>) {
    let m = l.per_channel().max(1) as f64;
    (0..l.c)
        .into_par_iter()
        .map(|ci| {
            let shift = l.plane(x, 0, ci).first().copied().unwrap_or(T::zero());
            let (mut s, mut s2) = (0.0f64, 0.0f64);
            let mut o = [0.0f64; 2];
            for ni in 0..l.n {
                plane_sums(l.plane(x, ni, ci), shift, &mut o);
                s += o[0];
                s2 += o[1];
            }
            let md = s / m;
            (shift.to_f64().unwrap() + md, (s2 / m - md * md).max(0.0))
        })
        .unzip()
}

/// Per-channel `(sum dy, sum dy * (x - mean))`: per plane in lanes of `T`, then over the
/// planes in image order in f64 (one pass).
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
            let mc = T::of(mean[ci]);
            for ni in 0..l.n {
                plane_grad_sums(l.plane(x, ni, ci), l.plane(dy, ni, ci), mc, &mut o);
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
    let len = u.len();
    let mut out: Vec<T> = Vec::with_capacity(len);
    let img = l.c * l.hw;
    if img == 0 {
        return vec![T::zero(); len];
    }
    assert!(len == l.n * img && (v.is_empty() || v.len() == len));
    // Every element is written below, so the buffer is not zero-filled first.
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(img)
        .enumerate()
        .for_each(|(ni, o)| {
            for ci in 0..l.c {
                let start = ci * l.hw;
                let base = ni * img + start;
                let oc = &mut o[start..start + l.hw];
                let uc = &u[base..base + l.hw];
                let (vc, bc) = if v.is_empty() {
                    (&[][..], T::zero())
                } else {
                    (&v[base..base + l.hw], b[ci])
                };
                affine_plane(oc, uc, vc, a[ci], bc, d[ci]);
            }
        });
    // SAFETY: the chunks above cover `0..len` (len = n * img) and write every element.
    unsafe { out.set_len(len) };
    out
}

multiversion! {
    /// One plane of [`bn_affine2`]: `o = a u + d`, or `o = a u + b v + d` when `v` is not
    /// empty (AVX2 where available; no FMA, so the same bits on every path).
    fn affine_plane<T: Float>(
        o: &mut [std::mem::MaybeUninit<T>],
        u: &[T],
        v: &[T],
        a: T,
        b: T,
        d: T,
    ) {
        if v.is_empty() {
            o.iter_mut().zip(u).for_each(|(o, &x)| {
                o.write(a * x + d);
            });
        } else {
            o.iter_mut().zip(u.iter().zip(v)).for_each(|(o, (&x, &y))| {
                o.write(a * x + b * y + d);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f32 statistics and gradient sums (lanes of f32 within a plane) against an f64
    /// two-pass reference, on data far from zero with a small spread (where a naive
    /// one-pass `E[x^2] - E[x]^2` would cancel) and ragged plane sizes.
    #[test]
    fn f32_sums_match_f64_two_pass_reference() {
        for &(n, c, hw) in &[(3, 2, 37), (5, 3, 1024), (4, 2, 1)] {
            let l = BnLayout { n, c, hw };
            let len = n * c * hw;
            let x: Vec<f32> = (0..len)
                .map(|i| 1000.0 + ((i * 7919 % 113) as f32 - 56.0) * 0.01)
                .collect();
            let dy: Vec<f32> = (0..len)
                .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.1)
                .collect();
            let (mean, var) = bn_batch_stats(&x, l);
            let (s, sx) = bn_grad_sums(&x, &dy, l, &mean);
            for ci in 0..c {
                let idx: Vec<usize> = (0..n)
                    .flat_map(|ni| (0..hw).map(move |p| (ni * c + ci) * hw + p))
                    .collect();
                let m = idx.len() as f64;
                let mu = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / m;
                let v = idx.iter().map(|&i| (x[i] as f64 - mu).powi(2)).sum::<f64>() / m;
                let ws = idx.iter().map(|&i| dy[i] as f64).sum::<f64>();
                let wsx = idx
                    .iter()
                    .map(|&i| dy[i] as f64 * (x[i] as f64 - mu))
                    .sum::<f64>();
                assert!(
                    (mean[ci] - mu).abs() < 1e-6 * mu.abs(),
                    "mean {} vs {mu}",
                    mean[ci]
                );
                assert!((var[ci] - v).abs() < 1e-3 * v, "var {} vs {v}", var[ci]);
                assert!(
                    (s[ci] - ws).abs() < 1e-4 * (1.0 + ws.abs()),
                    "{} vs {ws}",
                    s[ci]
                );
                assert!(
                    (sx[ci] - wsx).abs() < 1e-3 * (1.0 + wsx.abs()),
                    "{} vs {wsx}",
                    sx[ci]
                );
            }
        }
    }

    /// Same bits whatever the thread count.
    #[test]
    fn sums_are_bit_identical_across_thread_counts() {
        let l = BnLayout { n: 7, c: 5, hw: 50 };
        let x: Vec<f32> = (0..7 * 5 * 50)
            .map(|i| ((i * 13 % 29) as f32) * 0.3 - 4.0)
            .collect();
        let dy: Vec<f32> = (0..x.len())
            .map(|i| ((i * 5 % 11) as f32) * 0.2 - 1.0)
            .collect();
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| {
                    let (m, v) = bn_batch_stats(&x, l);
                    let g = bn_grad_sums(&x, &dy, l, &m);
                    (m, v, g)
                })
        };
        let one = run(1);
        for t in [2, 3] {
            assert_eq!(one, run(t), "{t} threads");
        }
    }
}

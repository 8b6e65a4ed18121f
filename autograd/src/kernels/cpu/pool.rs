//! 2-D pooling on NCHW arrays: max pool (with argmax indices for backward), average pool
//! that excludes padding from the divisor (PyTorch's `count_include_pad=False`), and global
//! average pool. Rayon over the `N x C` planes.
//!
//! Padding must be at most half the window (as in PyTorch), so every window holds at least
//! one real input element.

use crate::dtype::Float;
use crate::kernels::cpu::conv::out_size;
use crate::kernels::cpu::simd::multiversion;
use ndarray::{Array2, Array4, ArrayView2, ArrayView4};
use rayon::prelude::*;

/// Window settings of a 2-D pool, each `(height, width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit padding on both sides (at most half the window).
    pub padding: (usize, usize),
}

impl Pool2dParams {
    /// The output `(Ho, Wo)` for an input of `(h, w)`; panics naming the input shape and
    /// the settings when the window does not fit or the padding exceeds half the window.
    pub fn out_hw(&self, op: &str, shape: &[usize]) -> (usize, usize) {
        assert!(
            shape.len() == 4,
            "{op}: input {shape:?} is not 4-d (N, C, H, W)"
        );
        let (h, w) = (shape[2], shape[3]);
        assert!(
            2 * self.padding.0 <= self.kernel.0 && 2 * self.padding.1 <= self.kernel.1,
            "{op}: padding {:?} exceeds half the window {:?} (input {shape:?})",
            self.padding,
            self.kernel
        );
        let ho = out_size(h, self.kernel.0, self.stride.0, self.padding.0, 1);
        let wo = out_size(w, self.kernel.1, self.stride.1, self.padding.1, 1);
        match (ho, wo) {
            (Some(ho), Some(wo)) => (ho, wo),
            _ => panic!("{op}: window {self:?} does not fit input {shape:?}"),
        }
    }

    /// The valid input rows `ih0..ih1` of output row `oh` and columns `iw0..iw1` of
    /// output column `ow`.
    #[inline]
    fn window(&self, oh: usize, ow: usize, h: usize, w: usize) -> (usize, usize, usize, usize) {
        let r = |o: usize, s: usize, p: usize, k: usize, len: usize| {
            let start = (o * s) as isize - p as isize;
            let lo = start.max(0) as usize;
            let hi = ((start + k as isize).max(0) as usize).min(len);
            (lo, hi)
        };
        let (h0, h1) = r(oh, self.stride.0, self.padding.0, self.kernel.0, h);
        let (w0, w1) = r(ow, self.stride.1, self.padding.1, self.kernel.1, w);
        (h0, h1, w0, w1)
    }
}

/// Scratch rows for the horizontal pass: one padded input row split into `s` phases (each
/// `lp` long: phase `b` holds padded columns `b, b + s, b + 2s, ...`), so that tap `j` of
/// output columns `ow..ow + 16` reads the contiguous run `phase[j % s][ow + j / s..]`.
struct RowPhases {
    s: usize,
    p: usize,
    lp: usize,
}

impl RowPhases {
    fn new(w: usize, wo: usize, k: usize, s: usize, p: usize) -> RowPhases {
        let lp = (wo.next_multiple_of(16) + k).max((w + 2 * p) / s + 2);
        RowPhases { s, p, lp }
    }

    /// Writes `row` (padded with `pad`) into the phases `ph` (`s * lp` long).
    #[inline(always)]
    fn fill<T: Float>(&self, row: &[T], ph: &mut [T], pad: T) {
        let (s, p, lp) = (self.s, self.p, self.lp);
        if s == 1 {
            ph[..p].fill(pad);
            ph[p..p + row.len()].copy_from_slice(row);
            ph[p + row.len()..lp].fill(pad);
            return;
        }
        ph[..s * lp].fill(pad);
        if s == 2 {
            for (iw, &v) in row.iter().enumerate() {
                let c = iw + p;
                ph[(c & 1) * lp + (c >> 1)] = v;
            }
        } else {
            for (iw, &v) in row.iter().enumerate() {
                let c = iw + p;
                ph[(c % s) * lp + c / s] = v;
            }
        }
    }

    /// Tap `j`'s 16 inputs for output columns `ow..ow + 16`.
    #[inline(always)]
    fn tap<'a, T: Float>(&self, ph: &'a [T], ow: usize, j: usize) -> &'a [T; 16] {
        ph[(j % self.s) * self.lp + ow + j / self.s..][..16]
            .try_into()
            .unwrap()
    }
}

multiversion! {
    /// The horizontal pass of one max-pool plane: for every input row `ih` and output
    /// column `ow`, the maximum over the window's columns (`hv`) and the plane index of its
    /// first occurrence (`hi`): the scan starts at the window's first real element and takes
    /// strictly greater values, so ties and `-inf` behave as in a plain scan of the row (a
    /// NaN is kept only where it comes first, as before). Padding holds `-inf` and is
    /// never taken.
    fn max_rows<T: Float>(
        xp: &[T],
        w: usize,
        k: usize,
        wo: usize,
        rp: &RowPhases,
        ph: &mut [T],
        hv: &mut [T],
        hi: &mut [u32],
    ) {
        let (s, p) = (rp.s, rp.p);
        let wo16 = wo.next_multiple_of(16);
        for (ih, row) in xp.chunks_exact(w).enumerate() {
            rp.fill(row, ph, T::neg_infinity());
            let base = (ih * w) as u32;
            for ow in (0..wo).step_by(16) {
                // Start from each window's first real element (as a plain scan would, so a
                // NaN there stays), then take strictly greater values in column order.
                let mut bv = [T::neg_infinity(); 16];
                let mut bi = [0u32; 16];
                for l in 0..16 {
                    let c = ((ow + l) * s).max(p);
                    bv[l] = ph[(c % s) * rp.lp + c / s];
                    bi[l] = (c - p) as u32;
                }
                for j in 0..k {
                    let v = rp.tap(ph, ow, j);
                    let c0 = (ow * s + j) as u32;
                    for l in 0..16 {
                        let take = v[l] > bv[l];
                        let c = (c0 + (l * s) as u32).wrapping_sub(p as u32);
                        bv[l] = if take { v[l] } else { bv[l] };
                        bi[l] = if take { c } else { bi[l] };
                    }
                }
                let o = ih * wo16 + ow;
                hv[o..o + 16].copy_from_slice(&bv);
                for (d, &b) in hi[o..o + 16].iter_mut().zip(&bi) {
                    *d = base.wrapping_add(b);
                }
            }
        }
    }
}

multiversion! {
    /// The vertical pass of one max-pool plane: each output row is the first maximum (strict
    /// `>`, rows in order) over its window's rows of the horizontal pass.
    fn max_cols<T: Float>(
        p: &Pool2dParams,
        h: usize,
        w: usize,
        wo: usize,
        hv: &[T],
        hi: &[u32],
        y: &mut [T],
        ix: &mut [u32],
    ) {
        let ho = y.len() / wo;
        let wo16 = wo.next_multiple_of(16);
        for oh in 0..ho {
            let (h0, h1, _, _) = p.window(oh, 0, h, w);
            for ow in (0..wo).step_by(16) {
                let mut bv: [T; 16] = hv[h0 * wo16 + ow..][..16].try_into().unwrap();
                let mut bi: [u32; 16] = hi[h0 * wo16 + ow..][..16].try_into().unwrap();
                for ih in h0 + 1..h1 {
                    let v: &[T; 16] = hv[ih * wo16 + ow..][..16].try_into().unwrap();
                    let i: &[u32; 16] = hi[ih * wo16 + ow..][..16].try_into().unwrap();
                    for l in 0..16 {
                        let take = v[l] > bv[l];
                        bv[l] = if take { v[l] } else { bv[l] };
                        bi[l] = if take { i[l] } else { bi[l] };
                    }
                }
                let n = 16.min(wo - ow);
                if n == 16 {
                    y[oh * wo + ow..][..16].copy_from_slice(&bv);
                    ix[oh * wo + ow..][..16].copy_from_slice(&bi);
                } else {
                    for l in 0..n {
                        y[oh * wo + ow + l] = bv[l];
                        ix[oh * wo + ow + l] = bi[l];
                    }
                }
            }
        }
    }
}

/// Max pool forward: returns the output `(N, C, Ho, Wo)` and, per output element, the flat
/// index (`ih * W + iw`) inside its input plane of the first maximum (in row-major order:
/// the first row holding the maximum, and its first column there).
///
/// Separable: a vectorised horizontal pass over every input row (the window's columns as
/// `k` shifted runs of a padded row), then a vertical pass over the window's rows.
pub fn max_pool2d_forward<T: Float>(x: ArrayView4<T>, p: &Pool2dParams) -> (Array4<T>, Vec<u32>) {
    let (n, c, h, w) = x.dim();
    let (ho, wo) = p.out_hw("max_pool2d", x.shape());
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap();
    let mut out = Array4::<T>::zeros((n, c, ho, wo));
    let l = ho * wo;
    let mut idx = vec![0u32; n * c * l];
    if l == 0 || n * c == 0 {
        return (out, idx);
    }
    let rp = RowPhases::new(w, wo, p.kernel.1, p.stride.1, p.padding.1);
    out.as_slice_mut()
        .unwrap()
        .par_chunks_mut(l)
        .zip(idx.par_chunks_mut(l))
        .enumerate()
        .for_each_init(
            || {
                (
                    vec![T::zero(); rp.s * rp.lp],
                    vec![T::zero(); h * wo.next_multiple_of(16)],
                    vec![0u32; h * wo.next_multiple_of(16)],
                )
            },
            |(ph, hv, hi), (pi, (y, ix))| {
                let xp = &xs[pi * h * w..][..h * w];
                max_rows(xp, w, p.kernel.1, wo, &rp, ph, hv, hi);
                max_cols(p, h, w, wo, hv, hi, y, ix);
            },
        );
    (out, idx)
}

/// Max pool backward: scatters `dy (N, C, Ho, Wo)` to the saved argmax positions of an
/// input of `(h, w)` planes.
pub fn max_pool2d_backward<T: Float>(
    dy: ArrayView4<T>,
    idx: &[u32],
    h: usize,
    w: usize,
) -> Array4<T> {
    let (n, c, ho, wo) = dy.dim();
    let l = ho * wo;
    assert_eq!(idx.len(), n * c * l, "max_pool2d backward: index count");
    let dy = dy.as_standard_layout();
    let dys = dy.as_slice().unwrap();
    let mut dx = Array4::<T>::zeros((n, c, h, w));
    if h * w == 0 || l == 0 {
        return dx;
    }
    dx.as_slice_mut()
        .unwrap()
        .par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(pi, dxp)| {
            let dyp = &dys[pi * l..][..l];
            for (&i, &g) in idx[pi * l..][..l].iter().zip(dyp) {
                dxp[i as usize] += g;
            }
        });
    dx
}

multiversion! {
    /// One average-pool plane: row sums over the window's columns (zero padding, added in
    /// column order from 0, as a plain loop over the real columns would), then the sum of
    /// those over the window's rows (in order, from 0), divided by the real-element count.
    #[allow(clippy::too_many_arguments)]
    fn avg_plane<T: Float>(
        p: &Pool2dParams,
        xp: &[T],
        h: usize,
        w: usize,
        rp: &RowPhases,
        ph: &mut [T],
        rs: &mut [T],
        ccnt: &[T],
        y: &mut [T],
    ) {
        let wo = ccnt.len();
        let wo16 = wo.next_multiple_of(16);
        let k = p.kernel.1;
        for (ih, row) in xp.chunks_exact(w).enumerate() {
            rp.fill(row, ph, T::zero());
            for ow in (0..wo).step_by(16) {
                let mut acc = [T::zero(); 16];
                for j in 0..k {
                    let v = rp.tap(ph, ow, j);
                    for l in 0..16 {
                        acc[l] += v[l];
                    }
                }
                rs[ih * wo16 + ow..][..16].copy_from_slice(&acc);
            }
        }
        let ho = y.len() / wo;
        for oh in 0..ho {
            let (h0, h1, _, _) = p.window(oh, 0, h, w);
            let rcnt = T::of((h1 - h0) as f64);
            let yrow = &mut y[oh * wo..][..wo];
            yrow.fill(T::zero());
            for ih in h0..h1 {
                for (d, &v) in yrow.iter_mut().zip(&rs[ih * wo16..][..wo]) {
                    *d += v;
                }
            }
            for (d, &cc) in yrow.iter_mut().zip(ccnt) {
                *d /= rcnt * cc;
            }
        }
    }
}

/// The number of real input columns in each output column's window, as `T`.
fn col_counts<T: Float>(p: &Pool2dParams, h: usize, w: usize, wo: usize) -> Vec<T> {
    (0..wo)
        .map(|ow| {
            let (_, _, w0, w1) = p.window(0, ow, h, w);
            T::of((w1 - w0) as f64)
        })
        .collect()
}

/// Average pool forward, dividing each window's sum by the number of real (non-padding)
/// input elements in it. Separable like [`max_pool2d_forward`].
pub fn avg_pool2d_forward<T: Float>(x: ArrayView4<T>, p: &Pool2dParams) -> Array4<T> {
    let (n, c, h, w) = x.dim();
    let (ho, wo) = p.out_hw("avg_pool2d", x.shape());
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap();
    let mut out = Array4::<T>::zeros((n, c, ho, wo));
    let l = ho * wo;
    if l == 0 || n * c == 0 {
        return out;
    }
    let rp = RowPhases::new(w, wo, p.kernel.1, p.stride.1, p.padding.1);
    let ccnt = col_counts::<T>(p, h, w, wo);
    out.as_slice_mut()
        .unwrap()
        .par_chunks_mut(l)
        .enumerate()
        .for_each_init(
            || {
                (
                    vec![T::zero(); rp.s * rp.lp],
                    vec![T::zero(); h * wo.next_multiple_of(16)],
                )
            },
            |(ph, rs), (pi, y)| {
                let xp = &xs[pi * h * w..][..h * w];
                avg_plane(p, xp, h, w, &rp, ph, rs, &ccnt, y);
            },
        );
    out
}

multiversion! {
    /// One average-pool input-gradient plane: `g = dy / count`, summed over the output rows
    /// whose window holds each input row (`t (h, wo)`), then over the output columns whose
    /// window holds each input column (`cols[iw]`: that range of output columns).
    #[allow(clippy::too_many_arguments)]
    fn avg_back_plane<T: Float>(
        p: &Pool2dParams,
        dyp: &[T],
        h: usize,
        w: usize,
        ccnt: &[T],
        cols: &[(usize, usize)],
        t: &mut [T],
        dxp: &mut [T],
    ) {
        let wo = ccnt.len();
        let ho = dyp.len() / wo;
        t.fill(T::zero());
        for oh in 0..ho {
            let (h0, h1, _, _) = p.window(oh, 0, h, w);
            let rcnt = T::of((h1 - h0) as f64);
            let grow = &dyp[oh * wo..][..wo];
            for ih in h0..h1 {
                for ((d, &g), &cc) in t[ih * wo..][..wo].iter_mut().zip(grow).zip(ccnt) {
                    *d += g / (rcnt * cc);
                }
            }
        }
        for ih in 0..h {
            let tr = &t[ih * wo..][..wo];
            for (d, &(o0, o1)) in dxp[ih * w..][..w].iter_mut().zip(cols) {
                let mut s = T::zero();
                for &v in &tr[o0..o1] {
                    s += v;
                }
                *d = s;
            }
        }
    }
}

/// Average pool backward (padding excluded from the divisor) for an input of `(h, w)`
/// planes.
pub fn avg_pool2d_backward<T: Float>(
    dy: ArrayView4<T>,
    p: &Pool2dParams,
    h: usize,
    w: usize,
) -> Array4<T> {
    let (n, c, ho, wo) = dy.dim();
    let l = ho * wo;
    let dy = dy.as_standard_layout();
    let dys = dy.as_slice().unwrap();
    let mut dx = Array4::<T>::zeros((n, c, h, w));
    if h * w == 0 || l == 0 {
        return dx;
    }
    let ccnt = col_counts::<T>(p, h, w, wo);
    // The output columns whose window holds input column `iw`.
    let cols: Vec<(usize, usize)> = (0..w)
        .map(|iw| {
            let (s, pd, k) = (p.stride.1, p.padding.1, p.kernel.1);
            let lo = (iw + pd + 1).saturating_sub(k).div_ceil(s).min(wo);
            let hi = ((iw + pd) / s + 1).min(wo);
            (lo, hi.max(lo))
        })
        .collect();
    dx.as_slice_mut()
        .unwrap()
        .par_chunks_mut(h * w)
        .enumerate()
        .for_each_init(
            || vec![T::zero(); h * wo],
            |t, (pi, dxp)| {
                let dyp = &dys[pi * l..][..l];
                avg_back_plane(p, dyp, h, w, &ccnt, &cols, t, dxp);
            },
        );
    dx
}

/// Global average pool: `(N, C, H, W) -> (N, C)`.
pub fn global_avg_pool_forward<T: Float>(x: ArrayView4<T>) -> Array2<T> {
    let (n, c, h, w) = x.dim();
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap();
    let plane = h * w;
    let inv = T::one() / T::of(plane.max(1) as f64);
    let mut out = Array2::<T>::zeros((n, c));
    if plane == 0 {
        return out;
    }
    out.as_slice_mut()
        .unwrap()
        .par_iter_mut()
        .enumerate()
        .with_min_len(64)
        .for_each(|(pi, o)| *o = xs[pi * plane..][..plane].iter().copied().sum::<T>() * inv);
    out
}

/// Global average pool backward: `dy (N, C)` spread evenly over `(h, w)` planes.
pub fn global_avg_pool_backward<T: Float>(dy: ArrayView2<T>, h: usize, w: usize) -> Array4<T> {
    let (n, c) = dy.dim();
    let plane = h * w;
    let inv = T::one() / T::of(plane.max(1) as f64);
    let dy = dy.as_standard_layout();
    let dys = dy.as_slice().unwrap();
    let mut dx = Array4::<T>::zeros((n, c, h, w));
    if plane == 0 {
        return dx;
    }
    dx.as_slice_mut()
        .unwrap()
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(pi, d)| d.fill(dys[pi] * inv));
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small integers (many ties inside every window), some `-inf`.
    fn ties(shape: (usize, usize, usize, usize), seed: usize) -> Array4<f32> {
        Array4::from_shape_fn(shape, |(a, b, c, d)| {
            let k = (a * 7919 + b * 131 + c * 31 + d * 7 + seed * 17) * 2654435761 % 1000;
            if k < 30 {
                f32::NEG_INFINITY
            } else {
                (k % 5) as f32 - 2.0
            }
        })
    }

    /// Windows `(k, stride, pad)` and plane sizes, including the child CNN's 3x3 at stride
    /// 1 and 2 on 32x32, 16x16 and 8x8 planes.
    /// `(kernel, stride, padding, h, w)`.
    type Case = ((usize, usize), (usize, usize), (usize, usize), usize, usize);

    const CASES: [Case; 9] = [
        ((3, 3), (1, 1), (1, 1), 32, 32),
        ((3, 3), (2, 2), (1, 1), 16, 16),
        ((3, 3), (1, 1), (1, 1), 8, 8),
        ((2, 2), (2, 2), (0, 0), 9, 9),
        ((5, 5), (1, 1), (2, 2), 7, 19),
        ((5, 5), (3, 3), (0, 0), 8, 8),
        ((2, 3), (2, 1), (1, 1), 7, 6),
        ((3, 3), (2, 2), (1, 1), 9, 37),
        ((3, 1), (3, 3), (1, 0), 10, 5),
    ];

    #[test]
    fn max_pool_matches_direct_scan_with_ties() {
        for (ci, &(kernel, stride, padding, h, w)) in CASES.iter().enumerate() {
            let p = Pool2dParams {
                kernel,
                stride,
                padding,
            };
            let x = ties((2, 3, h, w), ci);
            let (y, idx) = max_pool2d_forward(x.view(), &p);
            let (_, _, ho, wo) = y.dim();
            for (pi, (yp, ip)) in y
                .as_slice()
                .unwrap()
                .chunks(ho * wo)
                .zip(idx.chunks(ho * wo))
                .enumerate()
            {
                let xp = &x.as_slice().unwrap()[pi * h * w..][..h * w];
                for oh in 0..ho {
                    for ow in 0..wo {
                        let (h0, h1, w0, w1) = p.window(oh, ow, h, w);
                        let mut best = h0 * w + w0;
                        for ih in h0..h1 {
                            for iw in w0..w1 {
                                if xp[ih * w + iw] > xp[best] {
                                    best = ih * w + iw;
                                }
                            }
                        }
                        let o = oh * wo + ow;
                        assert_eq!(ip[o] as usize, best, "case {ci} plane {pi} ({oh}, {ow})");
                        assert_eq!(yp[o].to_bits(), xp[best].to_bits(), "case {ci}");
                    }
                }
            }
        }
    }

    #[test]
    fn avg_pool_matches_direct_loops() {
        for (ci, &(kernel, stride, padding, h, w)) in CASES.iter().enumerate() {
            let p = Pool2dParams {
                kernel,
                stride,
                padding,
            };
            let x = ties((2, 3, h, w), ci).mapv(|v| if v.is_finite() { v * 0.37 } else { 1.5 });
            let y = avg_pool2d_forward(x.view(), &p);
            let (_, _, ho, wo) = y.dim();
            let dy = ties((2, 3, ho, wo), ci + 9).mapv(|v| if v.is_finite() { v } else { 0.5 });
            let dx = avg_pool2d_backward(dy.view(), &p, h, w);
            let mut rdx = Array4::<f64>::zeros((2, 3, h, w));
            for ((a, b, oh, ow), &yv) in y.indexed_iter() {
                let (h0, h1, w0, w1) = p.window(oh, ow, h, w);
                let cnt = ((h1 - h0) * (w1 - w0)) as f64;
                let mut s = 0.0;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        s += x[[a, b, ih, iw]] as f64;
                        rdx[[a, b, ih, iw]] += dy[[a, b, oh, ow]] as f64 / cnt;
                    }
                }
                assert!((yv as f64 - s / cnt).abs() < 1e-5, "case {ci}: forward");
            }
            for (&g, &r) in dx.iter().zip(rdx.iter()) {
                assert!(
                    (g as f64 - r).abs() < 1e-5,
                    "case {ci}: backward {g} vs {r}"
                );
            }
        }
    }

    #[test]
    fn pools_are_bit_identical_across_thread_counts() {
        let p = Pool2dParams {
            kernel: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
        };
        let x = ties((5, 7, 12, 13), 3).mapv(|v| if v.is_finite() { v * 0.3 } else { 1.0 });
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let (m, i) = max_pool2d_forward(x.view(), &p);
                    let a = avg_pool2d_forward(x.view(), &p);
                    let da = avg_pool2d_backward(a.view(), &p, 12, 13);
                    let dm = max_pool2d_backward(m.view(), &i, 12, 13);
                    let bits = |v: &Array4<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    (bits(&m), i, bits(&a), bits(&da), bits(&dm))
                })
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(one == run(threads), "{threads} threads");
        }
    }
}

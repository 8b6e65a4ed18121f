//! 2-D pooling on NCHW arrays: max pool (with argmax indices for backward), average pool
//! that excludes padding from the divisor (PyTorch's `count_include_pad=False`), and global
//! average pool. Rayon over the `N x C` planes.
//!
//! Padding must be at most half the window (as in PyTorch), so every window holds at least
//! one real input element.

use crate::dtype::Float;
use crate::kernels::cpu::conv::out_size;
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

/// Max pool forward: returns the output `(N, C, Ho, Wo)` and, per output element, the flat
/// index (`ih * W + iw`) inside its input plane of the first maximum.
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
    out.as_slice_mut()
        .unwrap()
        .par_chunks_mut(l)
        .zip(idx.par_chunks_mut(l))
        .enumerate()
        .for_each_init(
            || (vec![T::zero(); h * wo], vec![0u32; h * wo]),
            |(hv, hi), (pi, (y, ix))| {
                // Separable: the max of each row window (value and column), then the max
                // over the row windows. Strict `>` in both passes keeps the first maximum in
                // row-major order, as the direct scan would; the selects compile branch-free.
                let xp = &xs[pi * h * w..][..h * w];
                let cols: Vec<(usize, usize)> = (0..wo)
                    .map(|ow| {
                        let (_, _, w0, w1) = p.window(0, ow, h, w);
                        (w0, w1)
                    })
                    .collect();
                for ih in 0..h {
                    let row = &xp[ih * w..][..w];
                    for (ow, &(w0, w1)) in cols.iter().enumerate() {
                        let mut bv = row[w0];
                        let mut bi = w0;
                        for (iw, &v) in row.iter().enumerate().take(w1).skip(w0 + 1) {
                            let take = v > bv;
                            bv = if take { v } else { bv };
                            bi = if take { iw } else { bi };
                        }
                        hv[ih * wo + ow] = bv;
                        hi[ih * wo + ow] = (ih * w + bi) as u32;
                    }
                }
                for oh in 0..ho {
                    let (h0, h1, _, _) = p.window(oh, 0, h, w);
                    let yrow = &mut y[oh * wo..][..wo];
                    let irow = &mut ix[oh * wo..][..wo];
                    yrow.copy_from_slice(&hv[h0 * wo..][..wo]);
                    irow.copy_from_slice(&hi[h0 * wo..][..wo]);
                    for ih in h0 + 1..h1 {
                        let (vr, ir) = (&hv[ih * wo..][..wo], &hi[ih * wo..][..wo]);
                        for ow in 0..wo {
                            let take = vr[ow] > yrow[ow];
                            yrow[ow] = if take { vr[ow] } else { yrow[ow] };
                            irow[ow] = if take { ir[ow] } else { irow[ow] };
                        }
                    }
                }
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

/// Average pool forward, dividing each window's sum by the number of real (non-padding)
/// input elements in it.
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
    out.as_slice_mut()
        .unwrap()
        .par_chunks_mut(l)
        .enumerate()
        .for_each(|(pi, y)| {
            let xp = &xs[pi * h * w..][..h * w];
            for oh in 0..ho {
                for ow in 0..wo {
                    let (h0, h1, w0, w1) = p.window(oh, ow, h, w);
                    let mut s = T::zero();
                    for ih in h0..h1 {
                        s += xp[ih * w..][w0..w1].iter().copied().sum::<T>();
                    }
                    y[oh * wo + ow] = s / T::of(((h1 - h0) * (w1 - w0)) as f64);
                }
            }
        });
    out
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
    dx.as_slice_mut()
        .unwrap()
        .par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(pi, dxp)| {
            let dyp = &dys[pi * l..][..l];
            for oh in 0..ho {
                for ow in 0..wo {
                    let (h0, h1, w0, w1) = p.window(oh, ow, h, w);
                    let g = dyp[oh * wo + ow] / T::of(((h1 - h0) * (w1 - w0)) as f64);
                    for ih in h0..h1 {
                        dxp[ih * w..][w0..w1].iter_mut().for_each(|d| *d += g);
                    }
                }
            }
        });
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

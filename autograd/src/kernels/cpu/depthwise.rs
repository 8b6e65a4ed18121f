//! Depthwise 2-D convolution (`groups == Cin == Cout`, one `kh x kw` filter per channel) as a
//! direct loop on NCHW arrays.
//!
//! im2col + GEMM is a poor fit here (a GEMM with M = 1 per channel), so every kernel tap is
//! applied as a vectorisable row update: `out_row[ow] += w[i, j] * x_row[ow * s + off]`.
//! Forward and input gradient run in parallel over the `N x C` planes; the weight gradient
//! runs in parallel over channels (each channel loops over the images, so no reduction).
//! Stride, zero padding and dilation follow [`Conv2dParams`]; its `groups` must equal the
//! channel count.

use crate::dtype::Float;
use crate::kernels::cpu::conv::{Conv2dParams, Geom, valid_range};
use ndarray::{Array4, ArrayView1, ArrayView4};
use rayon::prelude::*;

fn geom(
    x: (usize, usize, usize, usize),
    w: (usize, usize, usize, usize),
    p: &Conv2dParams,
) -> Geom {
    let g = Geom::new(x, w, p);
    assert!(
        g.groups == g.cin && g.cin == g.cout && g.cin_g == 1,
        "depthwise conv: input {:?} and weight {:?} are not depthwise (groups {})",
        [x.0, x.1, x.2, x.3],
        [w.0, w.1, w.2, w.3],
        p.groups
    );
    g
}

/// Depthwise conv forward: `x (N, C, H, W)`, `w (C, 1, kh, kw)`, optional `bias (C)` ->
/// `(N, C, Ho, Wo)`.
pub fn depthwise_forward<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    bias: Option<ArrayView1<T>>,
    p: &Conv2dParams,
) -> Array4<T> {
    let g = geom(x.dim(), w.dim(), p);
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap();
    let w = w.as_standard_layout();
    let ws = w.as_slice().unwrap();
    let mut out = Array4::<T>::zeros((g.n, g.cout, g.ho, g.wo));
    if out.is_empty() {
        return out;
    }
    let plane = g.h * g.w;
    let taps = g.kh * g.kw;
    out.as_slice_mut()
        .unwrap()
        .par_chunks_mut(g.l)
        .enumerate()
        .for_each(|(pi, y)| {
            let c = pi % g.cout;
            let xp = &xs[pi * plane..][..plane];
            let wc = &ws[c * taps..][..taps];
            let b = bias.as_ref().map_or(T::zero(), |b| b[c]);
            for oh in 0..g.ho {
                let yr = &mut y[oh * g.wo..][..g.wo];
                yr.fill(b);
                for i in 0..g.kh {
                    let ih = (oh * g.sh + i * g.dh) as isize - g.ph as isize;
                    if ih < 0 || ih as usize >= g.h {
                        continue;
                    }
                    let xr = &xp[ih as usize * g.w..][..g.w];
                    for j in 0..g.kw {
                        let wv = wc[i * g.kw + j];
                        let off = j * g.dw;
                        let (lo, hi) = valid_range(g.wo, g.sw, g.pw, off, g.w);
                        if lo == hi {
                            continue;
                        }
                        if g.sw == 1 {
                            let start = lo + off - g.pw;
                            yr[lo..hi]
                                .iter_mut()
                                .zip(&xr[start..start + hi - lo])
                                .for_each(|(o, &v)| *o += wv * v);
                        } else {
                            for (ow, o) in yr.iter_mut().enumerate().take(hi).skip(lo) {
                                *o += wv * xr[ow * g.sw + off - g.pw];
                            }
                        }
                    }
                }
            }
        });
    out
}

/// Depthwise conv backward: gradients w.r.t. the input (`need_dx`) and the weight
/// (`need_dw`) given `dy (N, C, Ho, Wo)`.
pub fn depthwise_backward<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    dy: ArrayView4<T>,
    p: &Conv2dParams,
    need_dx: bool,
    need_dw: bool,
) -> (Option<Array4<T>>, Option<Array4<T>>) {
    let g = geom(x.dim(), w.dim(), p);
    assert_eq!(
        dy.dim(),
        (g.n, g.cout, g.ho, g.wo),
        "depthwise conv backward: output gradient {:?} does not fit input {:?} and weight {:?}",
        dy.shape(),
        x.shape(),
        w.shape()
    );
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap();
    let wv = w.as_standard_layout();
    let ws = wv.as_slice().unwrap();
    let dy = dy.as_standard_layout();
    let dys = dy.as_slice().unwrap();
    let plane = g.h * g.w;
    let taps = g.kh * g.kw;

    let dx = need_dx.then(|| {
        let mut dx = Array4::<T>::zeros((g.n, g.cin, g.h, g.w));
        if plane > 0 {
            dx.as_slice_mut()
                .unwrap()
                .par_chunks_mut(plane)
                .enumerate()
                .for_each(|(pi, dxp)| {
                    let c = pi % g.cin;
                    let dyp = &dys[pi * g.l..][..g.l];
                    let wc = &ws[c * taps..][..taps];
                    for oh in 0..g.ho {
                        let dyr = &dyp[oh * g.wo..][..g.wo];
                        for i in 0..g.kh {
                            let ih = (oh * g.sh + i * g.dh) as isize - g.ph as isize;
                            if ih < 0 || ih as usize >= g.h {
                                continue;
                            }
                            let dxr = &mut dxp[ih as usize * g.w..][..g.w];
                            for j in 0..g.kw {
                                let wv = wc[i * g.kw + j];
                                let off = j * g.dw;
                                let (lo, hi) = valid_range(g.wo, g.sw, g.pw, off, g.w);
                                if lo == hi {
                                    continue;
                                }
                                if g.sw == 1 {
                                    let start = lo + off - g.pw;
                                    dxr[start..start + hi - lo]
                                        .iter_mut()
                                        .zip(&dyr[lo..hi])
                                        .for_each(|(d, &v)| *d += wv * v);
                                } else {
                                    for (ow, &v) in dyr.iter().enumerate().take(hi).skip(lo) {
                                        dxr[ow * g.sw + off - g.pw] += wv * v;
                                    }
                                }
                            }
                        }
                    }
                });
        }
        dx
    });

    let dw = need_dw.then(|| {
        let mut dw = Array4::<T>::zeros((g.cout, 1, g.kh, g.kw));
        dw.as_slice_mut()
            .unwrap()
            .par_chunks_mut(taps)
            .enumerate()
            .for_each(|(c, dwc)| {
                for ni in 0..g.n {
                    let pi = ni * g.cin + c;
                    let xp = &xs[pi * plane..][..plane];
                    let dyp = &dys[pi * g.l..][..g.l];
                    for oh in 0..g.ho {
                        let dyr = &dyp[oh * g.wo..][..g.wo];
                        for i in 0..g.kh {
                            let ih = (oh * g.sh + i * g.dh) as isize - g.ph as isize;
                            if ih < 0 || ih as usize >= g.h {
                                continue;
                            }
                            let xr = &xp[ih as usize * g.w..][..g.w];
                            for j in 0..g.kw {
                                let off = j * g.dw;
                                let (lo, hi) = valid_range(g.wo, g.sw, g.pw, off, g.w);
                                if lo == hi {
                                    continue;
                                }
                                let s = if g.sw == 1 {
                                    let start = lo + off - g.pw;
                                    dot(&dyr[lo..hi], &xr[start..start + hi - lo])
                                } else {
                                    (lo..hi).fold(T::zero(), |s, ow| {
                                        s + dyr[ow] * xr[ow * g.sw + off - g.pw]
                                    })
                                };
                                dwc[i * g.kw + j] += s;
                            }
                        }
                    }
                }
            });
        dw
    });
    (dx, dw)
}

/// A dot product with 8 independent accumulators so it vectorises.
#[inline]
fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let mut xc = x.chunks_exact(8);
    let mut yc = y.chunks_exact(8);
    for (a, b) in (&mut xc).zip(&mut yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s = acc.iter().fold(T::zero(), |s, &v| s + v);
    for (&a, &b) in xc.remainder().iter().zip(yc.remainder()) {
        s += a * b;
    }
    s
}

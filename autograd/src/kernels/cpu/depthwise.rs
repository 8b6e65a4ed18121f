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
use crate::kernels::cpu::conv::{Conv2dParams, Geom};
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

/// Copies a `(h, w)` plane into the interior of a zero-bordered `(h + 2ph, w + 2pw)`
/// buffer (the border is zero from the buffer's creation and never written).
#[inline]
fn pad_plane<T: Float>(g: &Geom, src: &[T], dst: &mut [T]) {
    let wp = g.w + 2 * g.pw;
    for ih in 0..g.h {
        dst[(ih + g.ph) * wp + g.pw..][..g.w].copy_from_slice(&src[ih * g.w..][..g.w]);
    }
}

/// `out[ow] += wv * row[base + ow * s]` over the whole output row.
#[inline]
fn axpy_strided<T: Float>(out: &mut [T], wv: T, row: &[T], base: usize, s: usize) {
    let n = out.len();
    if s == 1 {
        out.iter_mut()
            .zip(&row[base..base + n])
            .for_each(|(o, &v)| *o += wv * v);
    } else {
        for (ow, o) in out.iter_mut().enumerate() {
            *o += wv * row[base + ow * s];
        }
    }
}

/// Depthwise conv forward: `x (N, C, H, W)`, `w (C, 1, kh, kw)`, optional `bias (C)` ->
/// `(N, C, Ho, Wo)`. Each plane is copied into a zero-padded per-thread scratch buffer, so
/// every tap is a branch-free full-row update.
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
    let wp = g.w + 2 * g.pw;
    let padded = (g.h + 2 * g.ph) * wp;
    // Stride 1: outputs are computed in a padded-width layout `(ho, wp)`, of which the
    // first `flat` elements matter (the last row needs only `wo` columns).
    let unit = g.sh == 1 && g.sw == 1;
    let flat = if unit { (g.ho - 1) * wp + g.wo } else { 0 };
    out.as_slice_mut()
        .unwrap()
        .par_chunks_mut(g.l)
        .enumerate()
        .for_each_init(
            || (vec![T::zero(); padded], vec![T::zero(); flat]),
            |(pad, acc), (pi, y)| {
                let c = pi % g.cout;
                pad_plane(&g, &xs[pi * plane..][..plane], pad);
                let wc = &ws[c * taps..][..taps];
                let b = bias.as_ref().map_or(T::zero(), |b| b[c]);
                if unit {
                    // Stride 1: in padded-width layout every tap is ONE long axpy.
                    acc.fill(b);
                    for i in 0..g.kh {
                        for j in 0..g.kw {
                            let off = i * g.dh * wp + j * g.dw;
                            axpy_strided(acc, wc[i * g.kw + j], pad, off, 1);
                        }
                    }
                    for oh in 0..g.ho {
                        y[oh * g.wo..][..g.wo].copy_from_slice(&acc[oh * wp..][..g.wo]);
                    }
                    return;
                }
                for oh in 0..g.ho {
                    let yr = &mut y[oh * g.wo..][..g.wo];
                    yr.fill(b);
                    for i in 0..g.kh {
                        let prow = &pad[(oh * g.sh + i * g.dh) * wp..][..wp];
                        for j in 0..g.kw {
                            axpy_strided(yr, wc[i * g.kw + j], prow, j * g.dw, g.sw);
                        }
                    }
                }
            },
        );
    out
}

/// Depthwise conv backward: gradients w.r.t. the input (`need_dx`) and the weight
/// (`need_dw`) given `dy (N, C, Ho, Wo)`. Both work on zero-padded per-thread planes.
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
    let wp = g.w + 2 * g.pw;
    let padded = (g.h + 2 * g.ph) * wp;
    let unit = g.sh == 1 && g.sw == 1;
    let flat = if unit && g.l > 0 {
        (g.ho - 1) * wp + g.wo
    } else {
        0
    };
    // Stride 1: `dy` plane copied into a padded-width `(ho, wp)` layout whose extra
    // columns stay zero, so every tap is one long axpy / dot.
    let spread_dy = |pi: usize, dyp: &mut [T]| {
        for oh in 0..g.ho {
            dyp[oh * wp..][..g.wo].copy_from_slice(&dys[pi * g.l + oh * g.wo..][..g.wo]);
        }
    };

    let dx = need_dx.then(|| {
        let mut dx = Array4::<T>::zeros((g.n, g.cin, g.h, g.w));
        if plane > 0 && g.l > 0 {
            dx.as_slice_mut()
                .unwrap()
                .par_chunks_mut(plane)
                .enumerate()
                .for_each_init(
                    || (vec![T::zero(); padded], vec![T::zero(); flat]),
                    |(dpad, dyflat), (pi, dxp)| {
                        dpad.fill(T::zero());
                        let c = pi % g.cin;
                        let dyp = &dys[pi * g.l..][..g.l];
                        let wc = &ws[c * taps..][..taps];
                        if unit {
                            spread_dy(pi, dyflat);
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let wv = wc[i * g.kw + j];
                                    let off = i * g.dh * wp + j * g.dw;
                                    dpad[off..off + flat]
                                        .iter_mut()
                                        .zip(dyflat.iter())
                                        .for_each(|(d, &v)| *d += wv * v);
                                }
                            }
                        }
                        for oh in (0..g.ho).filter(|_| !unit) {
                            let dyr = &dyp[oh * g.wo..][..g.wo];
                            for i in 0..g.kh {
                                let drow = &mut dpad[(oh * g.sh + i * g.dh) * wp..][..wp];
                                for j in 0..g.kw {
                                    let wv = wc[i * g.kw + j];
                                    let base = j * g.dw;
                                    if g.sw == 1 {
                                        drow[base..base + g.wo]
                                            .iter_mut()
                                            .zip(dyr)
                                            .for_each(|(d, &v)| *d += wv * v);
                                    } else {
                                        for (ow, &v) in dyr.iter().enumerate() {
                                            drow[base + ow * g.sw] += wv * v;
                                        }
                                    }
                                }
                            }
                        }
                        for ih in 0..g.h {
                            dxp[ih * g.w..][..g.w]
                                .copy_from_slice(&dpad[(ih + g.ph) * wp + g.pw..][..g.w]);
                        }
                    },
                );
        }
        dx
    });

    let dw = need_dw.then(|| {
        let mut dw = Array4::<T>::zeros((g.cout, 1, g.kh, g.kw));
        dw.as_slice_mut()
            .unwrap()
            .par_chunks_mut(taps)
            .enumerate()
            .for_each_init(
                || (vec![T::zero(); padded], vec![T::zero(); flat]),
                |(pad, dyflat), (c, dwc)| {
                    for ni in 0..g.n {
                        let pi = ni * g.cin + c;
                        pad_plane(&g, &xs[pi * plane..][..plane], pad);
                        let dyp = &dys[pi * g.l..][..g.l];
                        if unit {
                            spread_dy(pi, dyflat);
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let off = i * g.dh * wp + j * g.dw;
                                    dwc[i * g.kw + j] += dot(dyflat, &pad[off..off + flat]);
                                }
                            }
                            continue;
                        }
                        for oh in 0..g.ho {
                            let dyr = &dyp[oh * g.wo..][..g.wo];
                            for i in 0..g.kh {
                                let prow = &pad[(oh * g.sh + i * g.dh) * wp..][..wp];
                                for j in 0..g.kw {
                                    let base = j * g.dw;
                                    dwc[i * g.kw + j] += if g.sw == 1 {
                                        dot(dyr, &prow[base..base + g.wo])
                                    } else {
                                        dyr.iter().enumerate().fold(T::zero(), |s, (ow, &v)| {
                                            s + v * prow[base + ow * g.sw]
                                        })
                                    };
                                }
                            }
                        }
                    }
                },
            );
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

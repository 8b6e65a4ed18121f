//! Depthwise 2-D convolution (`groups == Cin == Cout`, one `kh x kw` filter per channel) as a
//! direct loop on NCHW arrays, optionally on the ReLU of its input (the cell ops' ReLU ->
//! depthwise pair fused: no ReLU output is ever stored).
//!
//! im2col + GEMM is a poor fit here (a GEMM with M = 1 per channel), so every kernel tap is
//! applied as a vectorisable row update: `out_row[ow] += w[i, j] * x_row[ow * s + off]`.
//! Forward and input gradient run in parallel over the `N x C` planes; the weight gradient
//! runs in parallel over channels (each channel loops over the images in order, so no
//! reduction and the same bits whatever the thread count). The per-plane kernels run as
//! AVX2 code where the CPU has it ([`crate::kernels::cpu::simd`]). Stride, zero padding and
//! dilation follow [`Conv2dParams`]; its `groups` must equal the channel count.

use crate::dtype::Float;
use crate::kernels::cpu::conv::{Conv2dParams, Geom};
use crate::kernels::cpu::simd::multiversion;
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

/// `max(v, 0)` as the ReLU op computes it (0 for NaN and -0).
#[inline(always)]
fn relu1<T: Float>(v: T) -> T {
    if v > T::zero() { v } else { T::zero() }
}

/// `d.copy_from_slice(s)` for short rows, inlined as vector moves (a plain
/// `copy_from_slice` of a row of unknown length is a `memcpy` call, whose overhead
/// dominates at 8..32 elements).
#[inline(always)]
fn copy_row<T: Float>(d: &mut [T], s: &[T]) {
    assert_eq!(d.len(), s.len());
    let mut dc = d.chunks_exact_mut(8);
    let mut sc = s.chunks_exact(8);
    for (d, s) in (&mut dc).zip(&mut sc) {
        let v: [T; 8] = s.try_into().unwrap();
        d.copy_from_slice(&v);
    }
    for (d, &s) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *d = s;
    }
}

/// Copies a `(h, w)` plane (its ReLU when `relu`) into the interior of a zero-bordered
/// `(h + 2ph, w + 2pw)` buffer (the border is zero from the buffer's creation and never
/// written).
#[inline(always)]
fn pad_plane<T: Float>(g: &Geom, src: &[T], dst: &mut [T], relu: bool) {
    let wp = g.w + 2 * g.pw;
    for ih in 0..g.h {
        let d = &mut dst[(ih + g.ph) * wp + g.pw..][..g.w];
        let s = &src[ih * g.w..][..g.w];
        if relu {
            d.iter_mut().zip(s).for_each(|(d, &v)| *d = relu1(v));
        } else {
            copy_row(d, s);
        }
    }
}

/// `out[ow] += wv * row[base + ow * s]` over the whole output row.
#[inline(always)]
fn axpy_strided<T: Float>(out: &mut [T], wv: T, row: &[T], base: usize, s: usize) {
    let n = out.len();
    if s == 1 {
        out.iter_mut()
            .zip(&row[base..base + n])
            .for_each(|(o, &v)| *o += wv * v);
    } else {
        out.iter_mut()
            .zip(row[base..].iter().step_by(s))
            .for_each(|(o, &v)| *o += wv * v);
    }
}

/// `row[base + ow * s] += wv * v[ow]` over the whole `v` row.
#[inline(always)]
fn scatter_strided<T: Float>(row: &mut [T], wv: T, v: &[T], base: usize, s: usize) {
    if s == 1 {
        row[base..base + v.len()]
            .iter_mut()
            .zip(v)
            .for_each(|(d, &v)| *d += wv * v);
    } else {
        row[base..]
            .iter_mut()
            .step_by(s)
            .zip(v)
            .for_each(|(d, &v)| *d += wv * v);
    }
}

/// `dy` plane copied into the padded-width `(ho, wp)` layout (stride 1); the extra columns
/// stay zero from the buffer's creation.
#[inline(always)]
fn spread_dy<T: Float>(g: &Geom, dyp: &[T], dst: &mut [T]) {
    let wp = g.w + 2 * g.pw;
    for oh in 0..g.ho {
        copy_row(&mut dst[oh * wp..][..g.wo], &dyp[oh * g.wo..][..g.wo]);
    }
}

multiversion! {
    /// One output plane of the forward pass: `xp (h, w)` (ReLU applied when `relu`) with
    /// filter `wc (kh * kw)` and bias `b` into `y (ho, wo)`; `pad` and `acc` are scratch.
    fn forward_plane<T: Float>(
        g: &Geom,
        xp: &[T],
        wc: &[T],
        b: T,
        relu: bool,
        pad: &mut [T],
        acc: &mut [T],
        y: &mut [T],
    ) {
        let wp = g.w + 2 * g.pw;
        pad_plane(g, xp, pad, relu);
        if g.sh == 1 && g.sw == 1 {
            // Stride 1: in padded-width layout every tap is ONE long axpy.
            acc.fill(b);
            let flat = acc.len();
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let off = i * g.dh * wp + j * g.dw;
                    axpy_strided(acc, wc[i * g.kw + j], &pad[off..off + flat], 0, 1);
                }
            }
            for oh in 0..g.ho {
                copy_row(&mut y[oh * g.wo..][..g.wo], &acc[oh * wp..][..g.wo]);
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
    }
}

multiversion! {
    /// One input-gradient plane: `dyp (ho, wo)` through filter `wc` into `dxp (h, w)`,
    /// masked by `xp > 0` when `relu`; `dpad` and `dyflat` are scratch.
    fn dx_plane<T: Float>(
        g: &Geom,
        xp: &[T],
        dyp: &[T],
        wc: &[T],
        relu: bool,
        dpad: &mut [T],
        dyflat: &mut [T],
        dxp: &mut [T],
    ) {
        let wp = g.w + 2 * g.pw;
        dpad.fill(T::zero());
        if g.sh == 1 && g.sw == 1 {
            spread_dy(g, dyp, dyflat);
            let flat = dyflat.len();
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let off = i * g.dh * wp + j * g.dw;
                    scatter_strided(&mut dpad[off..off + flat], wc[i * g.kw + j], dyflat, 0, 1);
                }
            }
        } else {
            for oh in 0..g.ho {
                let dyr = &dyp[oh * g.wo..][..g.wo];
                for i in 0..g.kh {
                    let drow = &mut dpad[(oh * g.sh + i * g.dh) * wp..][..wp];
                    for j in 0..g.kw {
                        scatter_strided(drow, wc[i * g.kw + j], dyr, j * g.dw, g.sw);
                    }
                }
            }
        }
        for ih in 0..g.h {
            let d = &mut dxp[ih * g.w..][..g.w];
            let s = &dpad[(ih + g.ph) * wp + g.pw..][..g.w];
            if relu {
                let xr = &xp[ih * g.w..][..g.w];
                d.iter_mut()
                    .zip(s.iter().zip(xr))
                    .for_each(|(d, (&v, &x))| *d = if x > T::zero() { v } else { T::zero() });
            } else {
                copy_row(d, s);
            }
        }
    }
}

multiversion! {
    /// Adds one image's contribution to a channel's weight gradient `dwc (kh * kw)`:
    /// `xp (h, w)` (its ReLU when `relu`) against `dyp (ho, wo)`; `pad` and `dyflat` are
    /// scratch.
    fn dw_plane<T: Float>(
        g: &Geom,
        xp: &[T],
        dyp: &[T],
        relu: bool,
        pad: &mut [T],
        dyflat: &mut [T],
        dwc: &mut [T],
    ) {
        let wp = g.w + 2 * g.pw;
        pad_plane(g, xp, pad, relu);
        if g.sh == 1 && g.sw == 1 {
            spread_dy(g, dyp, dyflat);
            let flat = dyflat.len();
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let off = i * g.dh * wp + j * g.dw;
                    dwc[i * g.kw + j] += dot(dyflat, &pad[off..off + flat]);
                }
            }
            return;
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
                        dyr.iter()
                            .zip(prow[base..].iter().step_by(g.sw))
                            .fold(T::zero(), |s, (&v, &x)| s + v * x)
                    };
                }
            }
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
    depthwise_forward_act(x, w, bias, p, false)
}

/// [`depthwise_forward`] of `relu(x)` when `relu` (the ReLU is applied while each plane is
/// copied into its padded scratch buffer).
pub fn depthwise_forward_act<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    bias: Option<ArrayView1<T>>,
    p: &Conv2dParams,
    relu: bool,
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
                let b = bias.as_ref().map_or(T::zero(), |b| b[c]);
                let (xp, wc) = (&xs[pi * plane..][..plane], &ws[c * taps..][..taps]);
                forward_plane(&g, xp, wc, b, relu, pad, acc, y);
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
    depthwise_backward_act(x, w, dy, p, need_dx, need_dw, false)
}

/// [`depthwise_backward`] of the conv of `relu(x)` when `relu`: the input gradient is
/// masked by `x > 0` and the weight gradient correlates `relu(x)` with `dy`.
pub fn depthwise_backward_act<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    dy: ArrayView4<T>,
    p: &Conv2dParams,
    need_dx: bool,
    need_dw: bool,
    relu: bool,
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

    // One pass over the channels (in parallel); each channel walks the images in order,
    // reading each `x` and `dy` plane once for both gradients. The weight gradient is thus
    // summed in image order whatever the thread count.
    let mut dx_buf = vec![T::zero(); if need_dx { g.n * g.cin * plane } else { 0 }];
    let mut dw = Array4::<T>::zeros((g.cout, 1, g.kh, g.kw));
    if g.l > 0 && plane > 0 && (need_dx || need_dw) {
        let dx_ptr = SendPtr(dx_buf.as_mut_ptr());
        dw.as_slice_mut()
            .unwrap()
            .par_chunks_mut(taps)
            .enumerate()
            .for_each_init(
                || {
                    let z = vec![T::zero(); padded];
                    (z.clone(), z, vec![T::zero(); flat])
                },
                |(pad, dpad, dyflat), (c, dwc)| {
                    let wc = &ws[c * taps..][..taps];
                    for ni in 0..g.n {
                        let pi = ni * g.cin + c;
                        let xp = &xs[pi * plane..][..plane];
                        let dyp = &dys[pi * g.l..][..g.l];
                        if ni + 1 < g.n {
                            let next = pi + g.cin;
                            prefetch(&xs[next * plane..][..plane]);
                            prefetch(&dys[next * g.l..][..g.l]);
                        }
                        if need_dw {
                            dw_plane(&g, xp, dyp, relu, pad, dyflat, dwc);
                        }
                        if need_dx {
                            // SAFETY: plane `pi` of the `N * C` planes is written by the one
                            // task that owns channel `c`, and the buffer outlives the loop.
                            let dxp = unsafe {
                                std::slice::from_raw_parts_mut(dx_ptr.get().add(pi * plane), plane)
                            };
                            dx_plane(&g, xp, dyp, wc, relu, dpad, dyflat, dxp);
                        }
                    }
                },
            );
    }
    let dx = need_dx.then(|| Array4::from_shape_vec((g.n, g.cin, g.h, g.w), dx_buf).unwrap());
    let dw = need_dw.then_some(dw);
    (dx, dw)
}

/// A raw pointer that may cross threads (each task writes its own disjoint planes).
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used to hand disjoint sub-slices of one buffer to rayon tasks.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

/// A dot product with 32 independent accumulators (four 8-lane vectors, so the additions
/// of one vector do not wait on each other).
#[inline(always)]
fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    #[cfg(target_arch = "x86_64")]
    if T::DTYPE == crate::dtype::DType::F32 && crate::kernels::cpu::simd::has_avx2() {
        let n = x.len().min(y.len());
        // SAFETY: `T` is f32 (checked above), so the slices reinterpret as f32 slices of the
        // same length; the CPU has AVX2.
        let v = unsafe {
            dot_f32_avx2(
                std::slice::from_raw_parts(x.as_ptr() as *const f32, n),
                std::slice::from_raw_parts(y.as_ptr() as *const f32, n),
            )
        };
        return T::of(v as f64);
    }
    dot_generic(x, y)
}

/// [`dot`] in plain Rust (any `Float`, any CPU).
#[inline(always)]
fn dot_generic<T: Float>(x: &[T], y: &[T]) -> T {
    let mut acc = [[T::zero(); 8]; 4];
    let mut xc = x.chunks_exact(32);
    let mut yc = y.chunks_exact(32);
    for (a, b) in (&mut xc).zip(&mut yc) {
        let a: &[T; 32] = a.try_into().unwrap();
        let b: &[T; 32] = b.try_into().unwrap();
        for l in 0..8 {
            acc[0][l] += a[l] * b[l];
            acc[1][l] += a[l + 8] * b[l + 8];
            acc[2][l] += a[l + 16] * b[l + 16];
            acc[3][l] += a[l + 24] * b[l + 24];
        }
    }
    let (xr, yr) = (xc.remainder(), yc.remainder());
    let mut xc8 = xr.chunks_exact(8);
    let mut yc8 = yr.chunks_exact(8);
    for (a, b) in (&mut xc8).zip(&mut yc8) {
        for l in 0..8 {
            acc[0][l] += a[l] * b[l];
        }
    }
    let mut s = T::zero();
    let [a0, a1, a2, a3] = acc;
    for l in 0..8 {
        s += (a0[l] + a1[l]) + (a2[l] + a3[l]);
    }
    for (&a, &b) in xc8.remainder().iter().zip(yc8.remainder()) {
        s += a * b;
    }
    s
}

/// [`dot`] for f32 with AVX2 intrinsics: the same four 8-lane accumulators and the same
/// final summation order, so the result is bit-identical to the generic code (the
/// compiler vectorised that only 4 lanes wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_f32_avx2(x: &[f32], y: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = x.len().min(y.len());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): `i + 32 <= n` or `i + 8 <= n` bounds every read of 8 lanes.
    while i + 32 <= n {
        for (k, a) in acc.iter_mut().enumerate() {
            let (xp, yp) = (x[i + 8 * k..].as_ptr(), y[i + 8 * k..].as_ptr());
            let p = unsafe { _mm256_mul_ps(_mm256_loadu_ps(xp), _mm256_loadu_ps(yp)) };
            *a = _mm256_add_ps(*a, p);
        }
        i += 32;
    }
    while i + 8 <= n {
        let p = unsafe {
            _mm256_mul_ps(
                _mm256_loadu_ps(x[i..].as_ptr()),
                _mm256_loadu_ps(y[i..].as_ptr()),
            )
        };
        acc[0] = _mm256_add_ps(acc[0], p);
        i += 8;
    }
    let mut lanes = [[0.0f32; 8]; 4];
    for (l, a) in lanes.iter_mut().zip(acc) {
        // SAFETY: `l` holds 8 f32.
        unsafe { _mm256_storeu_ps(l.as_mut_ptr(), a) };
    }
    let mut s = 0.0f32;
    let [l0, l1, l2, l3] = lanes;
    for l in 0..8 {
        s += (l0[l] + l1[l]) + (l2[l] + l3[l]);
    }
    for j in i..n {
        s += x[j] * y[j];
    }
    s
}

/// Hints the CPU to fetch `v` into cache (the backward pass walks planes a channel apart,
/// which the hardware prefetcher does not follow).
#[inline(always)]
fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = v.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(v);
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults; the address lies inside `v`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.add(off))
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_dot_is_bit_identical_to_generic_dot() {
        if !crate::kernels::cpu::simd::has_avx2() {
            return;
        }
        for n in [0, 1, 7, 8, 9, 31, 32, 33, 70, 1000, 1089] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let y: Vec<f32> = (0..n)
                .map(|i| ((i * 53 % 89) as f32 - 44.0) / 3.0)
                .collect();
            // SAFETY: AVX2 checked above.
            let fast = unsafe { dot_f32_avx2(&x, &y) };
            assert_eq!(fast.to_bits(), dot_generic(&x, &y).to_bits(), "n = {n}");
        }
    }

    #[test]
    fn gradients_are_bit_identical_across_thread_counts() {
        let x = Array4::from_shape_fn((7, 3, 9, 8), |(a, b, c, d)| {
            (((a * 131 + b * 31 + c * 7 + d) % 97) as f32 - 48.0) / 13.0
        });
        let w = Array4::from_shape_fn((3, 1, 3, 3), |(a, _, c, d)| {
            ((a * 5 + c * 2 + d) % 7) as f32 / 7.0 - 0.4
        });
        for (s, relu) in [(1, false), (1, true), (2, true)] {
            let p = Conv2dParams::new(s, 1, 1, 3);
            let ho = (9 + 2 - 3) / s + 1;
            let wo = (8 + 2 - 3) / s + 1;
            let dy = Array4::from_shape_fn((7, 3, ho, wo), |(a, b, c, d)| {
                (((a * 17 + b * 13 + c * 5 + d * 3) % 23) as f32 - 11.0) / 5.0
            });
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        depthwise_backward_act(x.view(), w.view(), dy.view(), &p, true, true, relu)
                    })
            };
            let one = run(1);
            for threads in [2, 3] {
                assert_eq!(
                    one,
                    run(threads),
                    "stride {s} relu {relu}, {threads} threads"
                );
            }
        }
    }
}

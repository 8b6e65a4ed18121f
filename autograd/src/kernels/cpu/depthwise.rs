//! Depthwise 2-D convolution (`groups == Cin == Cout`, one `kh x kw` filter per channel) as a
//! direct loop on NCHW arrays, optionally on the ReLU of its input (the cell ops' ReLU ->
//! depthwise pair fused: no ReLU output is ever stored).
//!
//! im2col + GEMM is a poor fit here (a GEMM with M = 1 per channel). Instead each plane is
//! copied once into a zero-padded scratch buffer, split into `sh x sw` *phase planes* (the
//! rows `r = a (mod sh)` and columns `c = b (mod sw)` of the padded plane; one plane at
//! stride 1). In that layout every output row is contiguous and every kernel tap reads the
//! buffer at one fixed offset from the output position, so the outputs of a plane, taken
//! as one flat run of `(ho - 1) * vw + wo` positions with row stride `vw` (the phase-plane
//! width; the positions past `wo` in each row are computed and dropped), are
//! `y[q] = b + sum_t w[t] * buf[q + off[t]]`. The kernel (`taps`) keeps a block of 64
//! outputs in registers while it runs over all taps, and stores each output once.
//!
//! The input gradient is the same gather on a zero-margined copy of `dy`, once per phase
//! of the padded input (the taps with `i * dh = a (mod sh)`, `j * dw = b (mod sw)` feed
//! phase `(a, b)`), then interleaved back into the plane and masked by `x > 0` when the
//! ReLU is fused. The weight gradient correlates the same flat `dy` run with the input
//! buffer at every tap offset (`tap_dots`: one `dy` load feeds every tap's accumulator).
//!
//! Forward and input gradient run in parallel over the `N x C` planes; the weight gradient
//! runs in parallel over channels (each channel loops over the images in order, so no
//! reduction and the same bits whatever the thread count).
//!
//! The two tap kernels (`taps`, `tap_dots`) run AVX-512 or AVX2 + FMA intrinsics for f32
//! where the CPU has them (one macro for both, `x86::tap_kernels!`: 64 outputs in four or
//! eight registers per pass over the taps, up to 13 taps' sums per pass over `dy`);
//! otherwise (and for f64) the same blocking in plain Rust, compiled for AVX2 where
//! available ([`crate::kernels::cpu::simd`]). Results are deterministic for a given CPU,
//! but the paths differ in rounding (FMA, lanes). The data movement around them
//! (the padded and phase-split copies, the interleave back into the plane, the ReLU and
//! its mask) is one generic body per kernel, compiled by `multiversion! { wide .. }` for
//! AVX-512, AVX2 or the baseline: only moves and selects, so every copy gives the same
//! bits. Row copies run over `by_lanes!` blocks (whole vectors even for 8-wide rows);
//! the even/odd split and merge of stride 2 are plain loops over pairs, which LLVM
//! vectorises into shuffles better than the blocked form.
//! Stride, zero padding and dilation follow [`Conv2dParams`]; its `groups` must equal the
//! channel count.

use crate::dtype::{DType, Float};
use crate::kernels::cpu::conv::{Conv2dParams, Geom};
#[cfg(test)]
use crate::kernels::cpu::simd::FORCE_GENERIC;
use crate::kernels::cpu::simd::{by_lanes, force_generic, has_avx2_fma, has_avx512f, multiversion};
use crate::kernels::cpu::uninit::{overwritten, overwritten_array};
use ndarray::{Array4, ArrayView1, ArrayView4};
use rayon::prelude::*;

/// Extra zeroed elements after every scratch buffer: the kernels round their runs up to
/// whole vectors (16 lanes) and may read or write up to 15 elements past the run.
const SLACK: usize = 64;

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

/// The intrinsic tap kernels an f32 call takes: AVX-512, else AVX2 + FMA, else none (f64,
/// other CPUs, and tests that switch them off with [`force_generic`] to compare).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Isa {
    Avx512,
    Avx2,
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn simd_isa<T: Float>() -> Option<Isa> {
    if T::DTYPE != DType::F32 || force_generic() {
        None
    } else if has_avx512f() {
        Some(Isa::Avx512)
    } else if has_avx2_fma() {
        Some(Isa::Avx2)
    } else {
        None
    }
}

/// `max(v, 0)` as the ReLU op computes it (0 for NaN and -0).
#[inline(always)]
fn relu1<T: Float>(v: T) -> T {
    if v > T::zero() { v } else { T::zero() }
}

/// Where the buffers of one plane live (see the module docs); derived once per call.
struct Plan {
    g: Geom,
    /// Rows and columns of one phase plane of the padded input.
    uh: usize,
    vw: usize,
    /// Length of the phase-split padded input buffer (slack included).
    xlen: usize,
    /// Per tap (row-major): its offset in the input buffer.
    xoffs: Offsets,
    /// Output positions in the flat `(ho, vw)` layout: `(ho - 1) * vw + wo`.
    flat: usize,
    /// Top rows and left columns of zeros before `dy` in the input-gradient gather.
    mt: usize,
    ml: usize,
    /// Row stride and length (slack included) of that zero-margined `dy` buffer.
    wz: usize,
    zlen: usize,
    /// The input-gradient gather of each phase `(a, b)`, index `a * sw + b`.
    phases: Vec<DxPhase>,
    /// Length of the input-gradient phase buffer (slack included).
    dxlen: usize,
}

/// The input-gradient gather of one phase: positions `q0..q0 + n` of the phase's
/// `(uh, wz)` flat layout at `base`, from the taps `taps` at offsets `offs` into the
/// zero-margined `dy` buffer.
struct DxPhase {
    base: usize,
    q0: usize,
    n: usize,
    taps: Vec<usize>,
    offs: Offsets,
}

/// Tap offsets into a buffer, with their maximum (for the bounds checks).
struct Offsets {
    offs: Vec<usize>,
    max: usize,
}

impl Offsets {
    fn new(offs: Vec<usize>) -> Offsets {
        let max = offs.iter().copied().max().unwrap_or(0);
        Offsets { offs, max }
    }
}

/// The first and one-past-last `u` with `a + s * u` in `lo..hi`, capped at `len`.
fn phase_range(a: usize, s: usize, lo: usize, hi: usize, len: usize) -> (usize, usize) {
    let u0 = lo.saturating_sub(a).div_ceil(s);
    let u1 = hi.saturating_sub(a).div_ceil(s).min(len);
    (u0, u1.max(u0))
}

impl Plan {
    fn new(g: &Geom) -> Plan {
        let (hp, wp) = (g.h + 2 * g.ph, g.w + 2 * g.pw);
        let (uh, vw) = (hp.div_ceil(g.sh), wp.div_ceil(g.sw));
        let pl = uh * vw;
        let mut xoffs = Vec::with_capacity(g.kh * g.kw);
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (r, c) = (i * g.dh, j * g.dw);
                xoffs.push(((r % g.sh) * g.sw + c % g.sw) * pl + (r / g.sh) * vw + c / g.sw);
            }
        }
        let flat = if g.l == 0 { 0 } else { (g.ho - 1) * vw + g.wo };
        let mt = (g.kh - 1) * g.dh / g.sh;
        let ml = (g.kw - 1) * g.dw / g.sw;
        let wz = vw + ml;
        let zlen = (uh + mt) * wz + SLACK;
        let mut phases = Vec::with_capacity(g.sh * g.sw);
        for a in 0..g.sh {
            for b in 0..g.sw {
                let (mut taps, mut offs) = (Vec::new(), Vec::new());
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        let (r, c) = (i * g.dh, j * g.dw);
                        if r % g.sh == a && c % g.sw == b {
                            taps.push(i * g.kw + j);
                            offs.push((mt - r / g.sh) * wz + ml - c / g.sw);
                        }
                    }
                }
                let (u0, u1) = phase_range(a, g.sh, g.ph, g.ph + g.h, uh);
                let (v0, v1) = phase_range(b, g.sw, g.pw, g.pw + g.w, vw);
                let (q0, n) = if u1 > u0 && v1 > v0 {
                    (u0 * wz + v0, (u1 - 1 - u0) * wz + v1 - v0)
                } else {
                    (0, 0)
                };
                phases.push(DxPhase {
                    base: (a * g.sw + b) * uh * wz,
                    q0,
                    n,
                    taps,
                    offs: Offsets::new(offs),
                });
            }
        }
        Plan {
            g: *g,
            uh,
            vw,
            xlen: g.sh * g.sw * pl + SLACK,
            xoffs: Offsets::new(xoffs),
            flat,
            mt,
            ml,
            wz,
            zlen,
            phases,
            dxlen: g.sh * g.sw * uh * wz + SLACK,
        }
    }
}

multiversion! {
    wide
    /// Copies an input plane `(h, w)` (its ReLU when `relu`) into the phase-split padded
    /// buffer `xb` (whose padding is zero from its creation and never written).
    fn fill_x<T: Float>(plan: &Plan, src: &[T], xb: &mut [T], relu: bool) {
        let g = &plan.g;
        let pl = plan.uh * plan.vw;
        for ih in 0..g.h {
            let r = ih + g.ph;
            let row = (r % g.sh) * g.sw * pl + (r / g.sh) * plan.vw;
            let s = &src[ih * g.w..][..g.w];
            match g.sw {
                1 => copy_relu(&mut xb[row + g.pw..][..g.w], s, relu),
                2 => {
                    let (pe, po) = ((g.pw % 2) * pl, ((g.pw + 1) % 2) * pl);
                    let (ce, co) = (g.pw / 2, g.pw.div_ceil(2));
                    let (ne, no) = (g.w.div_ceil(2), g.w / 2);
                    let (ev, od) = split_pair(xb, row + pe + ce, ne, row + po + co, no);
                    deinterleave(s, ev, od, relu);
                }
                sw => {
                    for (iw, &v) in s.iter().enumerate() {
                        let c = iw + g.pw;
                        xb[row + (c % sw) * pl + c / sw] = if relu { relu1(v) } else { v };
                    }
                }
            }
        }
    }
}

multiversion! {
    wide
    /// Copies `dy (ho, wo)` into `dz` at row stride `stride`, `top` rows and `left` columns
    /// in (the rest stays zero from the buffer's creation).
    fn spread<T: Float>(
        plan: &Plan,
        dy: &[T],
        dz: &mut [T],
        stride: usize,
        top: usize,
        left: usize,
    ) {
        let g = &plan.g;
        for oh in 0..g.ho {
            copy_relu(
                &mut dz[(oh + top) * stride + left..][..g.wo],
                &dy[oh * g.wo..][..g.wo],
                false,
            );
        }
    }
}

multiversion! {
    wide
    /// Copies the forward's output run `acc` (row stride `vw`) into `y (ho, wo)`.
    fn copy_out<T: Float>(plan: &Plan, acc: &[T], y: &mut [T]) {
        let g = &plan.g;
        for oh in 0..g.ho {
            copy_relu(
                &mut y[oh * g.wo..][..g.wo],
                &acc[oh * plan.vw..][..g.wo],
                false,
            );
        }
    }
}

multiversion! {
    wide
    /// Writes the input-gradient plane `dxp (h, w)` from the phase buffer `acc`, masked by
    /// `xp > 0` when `relu`.
    fn gather_dx<T: Float>(plan: &Plan, acc: &[T], xp: &[T], relu: bool, dxp: &mut [T]) {
        let g = &plan.g;
        let ps = plan.uh * plan.wz;
        for ih in 0..g.h {
            let r = ih + g.ph;
            let row = (r % g.sh) * g.sw * ps + (r / g.sh) * plan.wz;
            let d = &mut dxp[ih * g.w..][..g.w];
            let xr = &xp[ih * g.w..][..g.w];
            match g.sw {
                1 => mask_copy(d, &acc[row + g.pw..][..g.w], xr, relu),
                2 => {
                    let (pe, po) = ((g.pw % 2) * ps, ((g.pw + 1) % 2) * ps);
                    let (ce, co) = (g.pw / 2, g.pw.div_ceil(2));
                    let ev = &acc[row + pe + ce..][..g.w.div_ceil(2)];
                    let od = &acc[row + po + co..][..g.w / 2];
                    interleave(d, ev, od, xr, relu);
                }
                sw => {
                    for (iw, d) in d.iter_mut().enumerate() {
                        let c = iw + g.pw;
                        let v = acc[row + (c % sw) * ps + c / sw];
                        *d = if !relu || xr[iw] > T::zero() {
                            v
                        } else {
                            T::zero()
                        };
                    }
                }
            }
        }
    }
}

/// Two disjoint mutable runs `buf[a..a + na]` and `buf[b..b + nb]` (in either order).
fn split_pair<T>(buf: &mut [T], a: usize, na: usize, b: usize, nb: usize) -> (&mut [T], &mut [T]) {
    if a < b {
        let (lo, hi) = buf.split_at_mut(b);
        (&mut lo[a..a + na], &mut hi[..nb])
    } else {
        let (lo, hi) = buf.split_at_mut(a);
        (&mut hi[..na], &mut lo[b..b + nb])
    }
}

/// `d = s` (its ReLU when `relu`).
#[inline(always)]
fn copy_relu<T: Float>(d: &mut [T], s: &[T], relu: bool) {
    assert_eq!(d.len(), s.len());
    by_lanes!(d.len(), |i, L| {
        let (d, s) = (&mut d[i..][..L], &s[i..][..L]);
        for l in 0..L {
            d[l] = if relu { relu1(s[l]) } else { s[l] };
        }
    });
}

/// `d = s` where `x > 0` (everywhere when not `relu`), else 0.
#[inline(always)]
fn mask_copy<T: Float>(d: &mut [T], s: &[T], x: &[T], relu: bool) {
    assert!(s.len() == d.len() && x.len() == d.len());
    by_lanes!(d.len(), |i, L| {
        let (d, s, x) = (&mut d[i..][..L], &s[i..][..L], &x[i..][..L]);
        for l in 0..L {
            // Loaded before the test, so that the select vectorises (no branch per lane).
            let v = s[l];
            d[l] = if !relu || x[l] > T::zero() {
                v
            } else {
                T::zero()
            };
        }
    });
}

/// Splits `s` into its even (`ev`) and odd (`od`) elements (their ReLU when `relu`).
#[inline(always)]
fn deinterleave<T: Float>(s: &[T], ev: &mut [T], od: &mut [T], relu: bool) {
    let n = s.len();
    assert!(ev.len() == n.div_ceil(2) && od.len() == n / 2);
    let f = |v: T| if relu { relu1(v) } else { v };
    // One pass over the pairs (an interleaved access the vectoriser turns into shuffles).
    for ((e, o), p) in ev.iter_mut().zip(od.iter_mut()).zip(s.chunks_exact(2)) {
        *e = f(p[0]);
        *o = f(p[1]);
    }
    if n % 2 == 1 {
        ev[n / 2] = f(s[n - 1]);
    }
}

/// `d[2k] = ev[k]`, `d[2k + 1] = od[k]`, zero where `relu` and not `x > 0`.
#[inline(always)]
fn interleave<T: Float>(d: &mut [T], ev: &[T], od: &[T], x: &[T], relu: bool) {
    let n = d.len();
    assert!(ev.len() == n.div_ceil(2) && od.len() == n / 2 && x.len() == n);
    let m = |v: T, x: T| {
        if !relu || x > T::zero() { v } else { T::zero() }
    };
    for ((p, x), (&e, &o)) in d
        .chunks_exact_mut(2)
        .zip(x.chunks_exact(2))
        .zip(ev.iter().zip(od))
    {
        p[0] = m(e, x[0]);
        p[1] = m(o, x[1]);
    }
    if n % 2 == 1 {
        d[n - 1] = m(ev[n / 2], x[n - 1]);
    }
}

/// `s` as f32 (the caller has checked that `T` is f32).
#[inline(always)]
fn cast<T: Float>(s: &[T]) -> &[f32] {
    assert_eq!(T::DTYPE, DType::F32);
    // SAFETY: `T` is f32 (asserted), so the slice reinterprets as f32 of the same length.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) }
}

/// `s` as mutable f32 (the caller has checked that `T` is f32).
#[inline(always)]
fn cast_mut<T: Float>(s: &mut [T]) -> &mut [f32] {
    assert_eq!(T::DTYPE, DType::F32);
    // SAFETY: as in `cast`.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) }
}

/// Rounds a run of `n` positions up to whole 16-lane vectors.
#[inline(always)]
fn run_len(n: usize) -> usize {
    n.next_multiple_of(16)
}

/// `out[q] = init + sum_t ws[t] * src[q + offs[t]]` for `q` in `q0..q0 + n` (taps added in
/// order). May write `out` and read `src` up to 15 positions past the run (both are
/// checked to have that room).
fn taps<T: Float>(
    out: &mut [T],
    q0: usize,
    n: usize,
    src: &[T],
    offs: &Offsets,
    ws: &[T],
    init: T,
) {
    if n == 0 {
        return;
    }
    let (offs, max_off) = (&offs.offs[..], offs.max);
    assert_eq!(offs.len(), ws.len());
    let end = q0 + run_len(n);
    assert!(out.len() >= end && src.len() >= end + max_off);
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = simd_isa::<T>() {
        let (out, src) = (cast_mut(out).as_mut_ptr(), cast(src).as_ptr());
        let (ws, init) = (cast(ws), cast(std::slice::from_ref(&init))[0]);
        // SAFETY: f32 and the ISA's features checked; every write `out[q0..end]` and read
        // `src[q0 + off..end + off]` is in bounds (asserted above).
        unsafe {
            match isa {
                Isa::Avx512 => x86::avx512::taps(out, q0, end, src, offs, ws, init),
                Isa::Avx2 => x86::avx2::taps(out, q0, end, src, offs, ws, init),
            }
        };
        return;
    }
    taps_generic(out, q0, end, src, offs, ws, init);
}

multiversion! {
    /// [`taps`] in plain Rust over `q0..end` (a multiple of 16 long).
    fn taps_generic<T: Float>(
        out: &mut [T],
        q0: usize,
        end: usize,
        src: &[T],
        offs: &[usize],
        ws: &[T],
        init: T,
    ) {
        let mut q = q0;
        while q < end {
            let mut acc = [init; 16];
            for (&off, &w) in offs.iter().zip(ws) {
                let s: &[T; 16] = src[q + off..][..16].try_into().unwrap();
                for l in 0..16 {
                    acc[l] += w * s[l];
                }
            }
            out[q..q + 16].copy_from_slice(&acc);
            q += 16;
        }
    }
}

/// `dwc[t] += sum_q dy[q] * src[q + offs[t]]` over `q` in `0..n`, each tap's sum formed in
/// a fixed order. Reads up to 15 positions past `n` in `dy` (which must be zero there)
/// and `src`.
fn tap_dots<T: Float>(dy: &[T], n: usize, src: &[T], offs: &Offsets, dwc: &mut [T]) {
    if n == 0 {
        return;
    }
    let (offs, max_off) = (&offs.offs[..], offs.max);
    assert_eq!(offs.len(), dwc.len());
    let end = run_len(n);
    assert!(dy.len() >= end && src.len() >= end + max_off);
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = simd_isa::<T>() {
        let (dy, src) = (cast(&dy[..end]), cast(src));
        for (dw_chunk, off_chunk) in dwc
            .chunks_mut(x86::TAP_CHUNK)
            .zip(offs.chunks(x86::TAP_CHUNK))
        {
            let mut sums = [0.0f32; x86::TAP_CHUNK];
            // SAFETY: f32 and the ISA's features checked; the kernels check their reads.
            unsafe {
                match isa {
                    Isa::Avx512 => x86::avx512::tap_dots(dy, src, off_chunk, &mut sums),
                    Isa::Avx2 => x86::avx2::tap_dots(dy, src, off_chunk, &mut sums),
                }
            };
            for (d, &s) in dw_chunk.iter_mut().zip(&sums) {
                *d += T::of(s as f64);
            }
        }
        return;
    }
    tap_dots_generic(dy, end, src, offs, dwc);
}

multiversion! {
    /// [`tap_dots`] in plain Rust over `0..end` (a multiple of 16), eight lanes per tap.
    fn tap_dots_generic<T: Float>(
        dy: &[T],
        end: usize,
        src: &[T],
        offs: &[usize],
        dwc: &mut [T],
    ) {
        for (d, &off) in dwc.iter_mut().zip(offs) {
            let mut acc = [T::zero(); 16];
            for q in (0..end).step_by(16) {
                let a: &[T; 16] = dy[q..][..16].try_into().unwrap();
                let b: &[T; 16] = src[q + off..][..16].try_into().unwrap();
                for l in 0..16 {
                    acc[l] += a[l] * b[l];
                }
            }
            let mut s = T::zero();
            for l in 0..8 {
                s += acc[l] + acc[l + 8];
            }
            *d += s;
        }
    }
}

/// The f32 tap kernels in intrinsics, one macro instantiated for AVX-512 (16 lanes) and
/// AVX2 + FMA (8 lanes).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::kernels::cpu::simd::hsum256;
    use std::arch::x86_64::*;

    /// Taps per pass of [`avx2::tap_dots`] over `dy`: 13 accumulators, the `dy` vector and
    /// one loaded input fit AVX2's 16 registers (3x3 in one pass, 5x5 in 13 + 12). Each
    /// tap's sum is its own, so the split changes no bit.
    pub(super) const TAP_CHUNK: usize = 13;

    macro_rules! tap_kernels {
        ($feat:literal, $vec:ty, $lanes:expr, $big:expr, $loadu:ident, $storeu:ident,
         $set1:ident, $zero:ident, $fma:ident, $hsum:ident) => {
            /// [`super::taps`]: blocks of 64 outputs (`$big` registers: enough
            /// independent sums to hide the FMA latency) over all taps, then blocks of 16.
            ///
            /// # Safety
            /// The CPU has `$feat`; `out[q0..end]` and `src[q0 + off..end + off]` exist for
            /// every tap offset; `end - q0` is a multiple of 16.
            #[target_feature(enable = $feat)]
            pub(in super::super) unsafe fn taps(
                out: *mut f32,
                q0: usize,
                end: usize,
                src: *const f32,
                offs: &[usize],
                ws: &[f32],
                init: f32,
            ) {
                let mut q = q0;
                // SAFETY (both): the caller's bounds, block by block.
                unsafe {
                    while q + 64 <= end {
                        block::<{ $big }>(out, q, src, offs, ws, init);
                        q += 64;
                    }
                    while q < end {
                        block::<{ 16 / $lanes }>(out, q, src, offs, ws, init);
                        q += 16;
                    }
                }
            }

            /// `V` vectors of outputs at `q` of [`taps`], each `init` plus the taps in order.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn block<const V: usize>(
                out: *mut f32,
                q: usize,
                src: *const f32,
                offs: &[usize],
                ws: &[f32],
                init: f32,
            ) {
                let mut acc = [$set1(init); V];
                // SAFETY: the caller's bounds, `out[q..q + V lanes]` and
                // `src[q + off..q + off + V lanes]`.
                unsafe {
                    for (&off, &w) in offs.iter().zip(ws) {
                        let wv = $set1(w);
                        let p = src.add(q + off);
                        for (v, a) in acc.iter_mut().enumerate() {
                            *a = $fma(wv, $loadu(p.add($lanes * v)), *a);
                        }
                    }
                    for (v, a) in acc.iter().enumerate() {
                        $storeu(out.add(q + $lanes * v), *a);
                    }
                }
            }

            /// [`super::tap_dots`] for up to [`TAP_CHUNK`] taps: `sums[t] = sum_q dy[q] *
            /// src[q + offs[t]]`, one accumulator per tap and one `dy` load per block
            /// feeding all of them (3x3 and a 5x5 pass at full speed; other counts one
            /// tap at a time).
            ///
            /// # Safety
            /// The CPU has `$feat`.
            #[target_feature(enable = $feat)]
            pub(in super::super) unsafe fn tap_dots(
                dy: &[f32],
                src: &[f32],
                offs: &[usize],
                sums: &mut [f32],
            ) {
                // SAFETY (all): the CPU has the features (the caller's promise).
                unsafe {
                    match offs.len() {
                        9 => dots::<9>(dy, src, offs.try_into().unwrap(), sums),
                        12 => dots::<12>(dy, src, offs.try_into().unwrap(), sums),
                        13 => dots::<13>(dy, src, offs.try_into().unwrap(), sums),
                        _ => {
                            for (t, &off) in offs.iter().enumerate() {
                                dots::<1>(dy, &src[off..], &[0], &mut sums[t..]);
                            }
                        }
                    }
                }
            }

            /// [`tap_dots`] with `K` taps.
            #[target_feature(enable = $feat)]
            unsafe fn dots<const K: usize>(
                dy: &[f32],
                src: &[f32],
                offs: &[usize; K],
                sums: &mut [f32],
            ) {
                let end = dy.len();
                assert!(end.is_multiple_of($lanes) && sums.len() >= K);
                assert!(offs.iter().all(|&o| o + end <= src.len()));
                let mut acc = [$zero(); K];
                let (d, s) = (dy.as_ptr(), src.as_ptr());
                for q in (0..end).step_by($lanes) {
                    // SAFETY: `q + lanes <= end <= dy.len()` and `off + q + lanes <=
                    // src.len()` (asserted).
                    unsafe {
                        let dv = $loadu(d.add(q));
                        for t in 0..K {
                            acc[t] = $fma(dv, $loadu(s.add(offs[t] + q)), acc[t]);
                        }
                    }
                }
                for t in 0..K {
                    sums[t] = $hsum(acc[t]);
                }
            }
        };
    }

    pub(super) mod avx512 {
        use super::*;
        tap_kernels!(
            "avx512f",
            __m512,
            16,
            4,
            _mm512_loadu_ps,
            _mm512_storeu_ps,
            _mm512_set1_ps,
            _mm512_setzero_ps,
            _mm512_fmadd_ps,
            _mm512_reduce_add_ps
        );
    }

    pub(super) mod avx2 {
        use super::*;
        tap_kernels!(
            "avx2,fma",
            __m256,
            8,
            8,
            _mm256_loadu_ps,
            _mm256_storeu_ps,
            _mm256_set1_ps,
            _mm256_setzero_ps,
            _mm256_fmadd_ps,
            hsum256
        );
    }
}

/// Scratch buffers of one thread, zeroed once: the padded input and its output run
/// (forward), or the padded input, the two `dy` layouts and the phase buffer (backward).
struct Scratch<T> {
    x: Vec<T>,
    a: Vec<T>,
    b: Vec<T>,
    c: Vec<T>,
}

/// Depthwise conv forward: `x (N, C, H, W)`, `w (C, 1, kh, kw)`, optional `bias (C)` ->
/// `(N, C, Ho, Wo)`.
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
    if g.n * g.cout * g.l == 0 {
        return Array4::zeros((g.n, g.cout, g.ho, g.wo));
    }
    let plan = Plan::new(&g);
    let plane = g.h * g.w;
    let taps_n = g.kh * g.kw;
    let run = |mut out: ndarray::ArrayViewMut4<T>| {
        out.as_slice_mut()
            .unwrap()
            .par_chunks_mut(g.l)
            .enumerate()
            .for_each_init(
                || Scratch {
                    x: vec![T::zero(); plan.xlen],
                    a: vec![T::zero(); plan.flat + SLACK],
                    b: Vec::new(),
                    c: Vec::new(),
                },
                |s, (pi, y)| {
                    let c = pi % g.cout;
                    let b = bias.as_ref().map_or(T::zero(), |b| b[c]);
                    let (xp, wc) = (&xs[pi * plane..][..plane], &ws[c * taps_n..][..taps_n]);
                    fill_x(&plan, xp, &mut s.x, relu);
                    taps(&mut s.a, 0, plan.flat, &s.x, &plan.xoffs, wc, b);
                    copy_out(&plan, &s.a, y);
                },
            );
    };
    // SAFETY: `copy_out` writes every position of every plane; nothing is read before.
    unsafe { overwritten_array((g.n, g.cout, g.ho, g.wo), run) }
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
    let taps_n = g.kh * g.kw;
    let plan = Plan::new(&g);

    // One pass over the channels (in parallel); each channel walks the images in order,
    // reading each `x` and `dy` plane once for both gradients. The weight gradient is thus
    // summed in image order whatever the thread count.
    let mut dw = Array4::<T>::zeros((g.cout, 1, g.kh, g.kw));
    let dx_len = if need_dx { g.n * g.cin * plane } else { 0 };
    let run = |dx_buf: &mut [T]| {
        let dx_ptr = SendPtr(dx_buf.as_mut_ptr());
        let plan = &plan;
        dw.as_slice_mut()
            .unwrap()
            .par_chunks_mut(taps_n)
            .enumerate()
            .for_each_init(
                || Scratch {
                    x: vec![T::zero(); if need_dw { plan.xlen } else { 0 }],
                    a: vec![T::zero(); if need_dw { plan.flat + SLACK } else { 0 }],
                    b: vec![T::zero(); if need_dx { plan.zlen } else { 0 }],
                    c: vec![T::zero(); if need_dx { plan.dxlen } else { 0 }],
                },
                |s, (c, dwc)| {
                    let wc = &ws[c * taps_n..][..taps_n];
                    // Each input-gradient phase's weights, in its tap order.
                    let wph: Vec<Vec<T>> = plan
                        .phases
                        .iter()
                        .map(|ph| ph.taps.iter().map(|&t| wc[t]).collect())
                        .collect();
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
                            fill_x(plan, xp, &mut s.x, relu);
                            spread(plan, dyp, &mut s.a, plan.vw, 0, 0);
                            tap_dots(&s.a, plan.flat, &s.x, &plan.xoffs, dwc);
                        }
                        if need_dx {
                            spread(plan, dyp, &mut s.b, plan.wz, plan.mt, plan.ml);
                            for (ph, wp) in plan.phases.iter().zip(&wph) {
                                let out = &mut s.c[ph.base..];
                                taps(out, ph.q0, ph.n, &s.b, &ph.offs, wp, T::zero());
                            }
                            // SAFETY: plane `pi` of the `N * C` planes is written by the one
                            // task that owns channel `c`, and the buffer outlives the loop.
                            let dxp = unsafe {
                                std::slice::from_raw_parts_mut(dx_ptr.get().add(pi * plane), plane)
                            };
                            gather_dx(plan, &s.c, xp, relu, dxp);
                        }
                    }
                },
            );
    };
    let dx_buf = if g.l > 0 && plane > 0 {
        // SAFETY: `gather_dx` writes every position of every plane of the input gradient
        // (when it is asked for) and nothing reads it before.
        unsafe { overwritten(dx_len, run) }
    } else {
        vec![T::zero(); dx_len]
    };
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

    /// Deterministic values in about `[-2, 2]` (some exactly 0 and negative, so the ReLU
    /// mask matters).
    fn fill(shape: (usize, usize, usize, usize), seed: usize) -> Array4<f32> {
        Array4::from_shape_fn(shape, |(a, b, c, d)| {
            let k = a * 7919 + b * 131 + c * 31 + d * 7 + seed * 17;
            ((k * 2654435761 % 1000) as f32 - 500.0) / 250.0
        })
    }

    /// The forward output, input gradient and weight gradient in f64, by direct loops.
    #[allow(clippy::type_complexity)]
    fn naive(
        x: &Array4<f32>,
        w: &Array4<f32>,
        b: &[f32],
        dy: &Array4<f32>,
        p: &Conv2dParams,
        relu: bool,
    ) -> (Array4<f64>, Array4<f64>, Array4<f64>) {
        let (n, c, h, wd) = x.dim();
        let (_, _, kh, kw) = w.dim();
        let (_, _, ho, wo) = dy.dim();
        let xr = |a, b, r: isize, q: isize| -> f64 {
            if r < 0 || q < 0 || r >= h as isize || q >= wd as isize {
                return 0.0;
            }
            let v = x[[a, b, r as usize, q as usize]] as f64;
            if relu { v.max(0.0) } else { v }
        };
        let mut y = Array4::<f64>::zeros((n, c, ho, wo));
        let mut dx = Array4::<f64>::zeros((n, c, h, wd));
        let mut dw = Array4::<f64>::zeros((c, 1, kh, kw));
        for a in 0..n {
            for ch in 0..c {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut s = b[ch] as f64;
                        let g = dy[[a, ch, oh, ow]] as f64;
                        for i in 0..kh {
                            for j in 0..kw {
                                let r = (oh * p.stride.0 + i * p.dilation.0) as isize
                                    - p.padding.0 as isize;
                                let q = (ow * p.stride.1 + j * p.dilation.1) as isize
                                    - p.padding.1 as isize;
                                let wv = w[[ch, 0, i, j]] as f64;
                                s += wv * xr(a, ch, r, q);
                                dw[[ch, 0, i, j]] += g * xr(a, ch, r, q);
                                if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < wd {
                                    let (r, q) = (r as usize, q as usize);
                                    if !relu || x[[a, ch, r, q]] > 0.0 {
                                        dx[[a, ch, r, q]] += g * wv;
                                    }
                                }
                            }
                        }
                        y[[a, ch, oh, ow]] = s;
                    }
                }
            }
        }
        (y, dx, dw)
    }

    fn assert_near(got: &Array4<f32>, want: &Array4<f64>, what: &str) {
        assert_eq!(got.dim(), want.dim(), "{what}: shapes");
        for (i, (&g, &w)) in got.iter().zip(want.iter()).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{what}: element {i}: {g} vs {w}"
            );
        }
    }

    /// (h, w, k, stride, pad, dilation) cases: the child CNN's shapes (3x3 and 5x5 at
    /// stride 1 and 2, dilation 2) and odd sizes, asymmetric-looking pads, stride 3.
    const CASES: [(usize, usize, usize, usize, usize, usize); 14] = [
        (32, 32, 3, 1, 1, 1),
        (16, 16, 5, 1, 2, 1),
        (8, 8, 3, 1, 1, 1),
        (32, 32, 3, 2, 1, 1),
        (16, 16, 5, 2, 2, 1),
        (9, 7, 3, 2, 1, 1),
        (11, 10, 5, 2, 2, 1),
        (16, 16, 3, 1, 2, 2),
        (9, 12, 5, 2, 4, 2),
        (7, 13, 3, 1, 0, 1),
        (10, 11, 3, 3, 1, 1),
        (5, 6, 1, 2, 0, 1),
        // 49 taps (AVX2: passes of 13, 13, 13 and 10 over dy) and 4 taps.
        (12, 12, 7, 1, 3, 1),
        (9, 9, 2, 1, 0, 1),
    ];

    #[test]
    fn matches_naive_reference_on_both_paths() {
        for generic in [false, true] {
            // A private pool whose threads all take the chosen path.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            pool.broadcast(|_| FORCE_GENERIC.with(|f| f.set(generic)));
            for (ci, &(h, wd, k, s, pad, d)) in CASES.iter().enumerate() {
                for relu in [false, true] {
                    let c = 3;
                    let p = Conv2dParams::new(s, pad, d, c);
                    let x = fill((2, c, h, wd), ci);
                    let w = fill((c, 1, k, k), ci + 50).mapv(|v| v / 2.0);
                    let b = [0.5f32, -0.25, 0.0];
                    let ho = (h + 2 * pad - d * (k - 1) - 1) / s + 1;
                    let wo = (wd + 2 * pad - d * (k - 1) - 1) / s + 1;
                    let dy = fill((2, c, ho, wo), ci + 100);
                    let (ry, rdx, rdw) = naive(&x, &w, &b, &dy, &p, relu);
                    let what = format!("case {ci} relu {relu} generic {generic}");
                    let bv = ndarray::ArrayView1::from(&b[..]);
                    let (y, (dx, dw)) = pool.install(|| {
                        (
                            depthwise_forward_act(x.view(), w.view(), Some(bv), &p, relu),
                            depthwise_backward_act(
                                x.view(),
                                w.view(),
                                dy.view(),
                                &p,
                                true,
                                true,
                                relu,
                            ),
                        )
                    });
                    assert_near(&y, &ry, &format!("{what}: forward"));
                    assert_near(&dx.unwrap(), &rdx, &format!("{what}: dx"));
                    assert_near(&dw.unwrap(), &rdw, &format!("{what}: dw"));
                }
            }
        }
    }

    #[test]
    fn only_dx_or_only_dw_gives_the_same_gradients() {
        let p = Conv2dParams::new(2, 2, 1, 4);
        let x = fill((3, 4, 11, 9), 1);
        let w = fill((4, 1, 5, 5), 2);
        let dy = fill((3, 4, 6, 5), 3);
        let (dx, dw) = depthwise_backward_act(x.view(), w.view(), dy.view(), &p, true, true, true);
        let (dx1, none) =
            depthwise_backward_act(x.view(), w.view(), dy.view(), &p, true, false, true);
        assert!(none.is_none());
        assert_eq!(dx, dx1);
        let (none, dw1) =
            depthwise_backward_act(x.view(), w.view(), dy.view(), &p, false, true, true);
        assert!(none.is_none());
        assert_eq!(dw, dw1);
    }

    #[test]
    fn results_are_bit_identical_across_thread_counts() {
        for (k, s, pad, d) in [(3, 1, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2), (3, 2, 1, 1)] {
            for relu in [false, true] {
                let c = 5;
                let p = Conv2dParams::new(s, pad, d, c);
                let x = fill((7, c, 12, 10), k + s);
                let w = fill((c, 1, k, k), 9);
                let ho = (12 + 2 * pad - d * (k - 1) - 1) / s + 1;
                let wo = (10 + 2 * pad - d * (k - 1) - 1) / s + 1;
                let dy = fill((7, c, ho, wo), 4);
                let run = |threads: usize| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap()
                        .install(|| {
                            let y = depthwise_forward_act(x.view(), w.view(), None, &p, relu);
                            let g = depthwise_backward_act(
                                x.view(),
                                w.view(),
                                dy.view(),
                                &p,
                                true,
                                true,
                                relu,
                            );
                            (y, g)
                        })
                };
                let one = run(1);
                for threads in [2, 3] {
                    let other = run(threads);
                    let bits = |a: &Array4<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    let what = format!("k {k} s {s} d {d} relu {relu}, {threads} threads");
                    assert_eq!(bits(&one.0), bits(&other.0), "{what}: forward");
                    assert_eq!(
                        bits(one.1.0.as_ref().unwrap()),
                        bits(other.1.0.as_ref().unwrap()),
                        "{what}: dx"
                    );
                    assert_eq!(
                        bits(one.1.1.as_ref().unwrap()),
                        bits(other.1.1.as_ref().unwrap()),
                        "{what}: dw"
                    );
                }
            }
        }
    }
}

//! The three products of a convolution, packing no more than one strip of `b`.
//!
//! Per image and group, a convolution is `Y = W C` (forward), `dC = W^T dY` (input
//! gradient) and `dW += dY C^T` (weight gradient), where `C (k x l)` is the image itself
//! (1x1, stride 1) or its im2col matrix, `W (m x k)` is small (a few dozen rows and
//! columns) and `l = Ho * Wo` is long (64..1024). A general GEMM (`matrixmultiply`) packs
//! BOTH operands on every call; with `m` and `k` this small, packing costs as much as the
//! multiply (it was 12% of a child-CNN training step against 7% for the products). Here:
//!
//! * [`matmul_rows`]: `c = a b` by a broadcast-`a` micro-kernel: `MR` rows of `c` by `NR`
//!   columns held in registers (AVX2: 6 x 16, AVX-512: 6 x 64), one vector load of `b` per
//!   `p` and column vector, one broadcast of `a` per row. The `k x NR` strip of `b` a
//!   column block reads is first copied contiguous (through the ReLU, zero-padded at the
//!   ragged edge): `b`'s rows are often 4 KiB apart (`l = 1024`), and read in place they
//!   fall into the same few L1 sets, so each tile of rows re-read them from L2 (this copy
//!   and 6 x 16 tiles instead of 3 x 32, which spilled a register, doubled the AVX2
//!   kernel's speed at `m = k = 20`). Rows are split into tiles as even as possible. `a`
//!   is read through two strides, so `W` and `W^T` need no copy.
//! * [`matmul_nt`]: `c (+)= a b^T` with both operands' rows contiguous along the long
//!   axis: a register block of dot products (ragged edges in blocks of their own size),
//!   unmasked loads but for the last vector, reduced once at the end.
//!
//! Each element of `c` is a sum over the inner index in a fixed order (whatever the tile
//! it falls in), so results do not depend on how callers split the work. The f32 kernels
//! use AVX-512 or AVX2 + FMA intrinsics (picked at run time; masked loads for the ragged
//! edges); f64 and other CPUs take portable loops (separate multiply and add).

use crate::dtype::Float;

/// `c (m x n) = a (m x k) b (k x n)`: `a[i, p] = a[i * ars + p * acs]`, `b` row-major with
/// row stride `ldb`, `c` row-major with row stride `ldc` (overwritten). With `relu_b`, `b`
/// is read through a ReLU (`max(b, 0)`, NaN -> 0): a fused ReLU -> conv.
///
/// Panics when a slice is too short for the shapes.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows<T: Float>(
    a: &[T],
    ars: usize,
    acs: usize,
    m: usize,
    k: usize,
    b: &[T],
    ldb: usize,
    n: usize,
    c: &mut [T],
    ldc: usize,
    relu_b: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldb >= n
            && ldc >= n
            && (k == 0 || a.len() > (m - 1) * ars + (k - 1) * acs)
            && (k == 0 || b.len() >= (k - 1) * ldb + n)
            && c.len() >= (m - 1) * ldc + n,
        "matmul_rows: a ({m} x {k}, strides {ars}/{acs}, {} elements), b ({k} x {n}, stride \
         {ldb}, {} elements) or c (stride {ldc}, {} elements) does not fit",
        a.len(),
        b.len(),
        c.len()
    );
    if k == 0 {
        (0..m).for_each(|i| c[i * ldc..i * ldc + n].fill(T::zero()));
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let (Some(a32), Some(b32), Some(c32)) = (as_f32(a), as_f32(b), as_f32_mut(c)) {
        if x86::has_avx512() {
            // SAFETY: the CPU supports AVX-512F; the slice lengths were checked above.
            unsafe { x86::rows_avx512(a32, ars, acs, m, k, b32, ldb, n, c32, ldc, relu_b) };
            return;
        }
        if x86::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA; the slice lengths were checked above.
            unsafe { x86::rows_avx2(a32, ars, acs, m, k, b32, ldb, n, c32, ldc, relu_b) };
            return;
        }
    }
    for i in 0..m {
        let crow = &mut c[i * ldc..i * ldc + n];
        crow.fill(T::zero());
        for p in 0..k {
            let av = a[i * ars + p * acs];
            let brow = &b[p * ldb..p * ldb + n];
            if relu_b {
                crow.iter_mut()
                    .zip(brow)
                    .for_each(|(cv, &bv)| *cv += av * relu(bv));
            } else {
                crow.iter_mut()
                    .zip(brow)
                    .for_each(|(cv, &bv)| *cv += av * bv);
            }
        }
    }
}

/// `c (m x n) = a (m x l) b (n x l)^T` (`accumulate == false`) or `c += a b^T`: rows of
/// `a` and `b` contiguous with row strides `lda` and `ldb`, `c` row-major with stride `ldc`.
/// With `relu_b`, `b` is read through a ReLU as in [`matmul_rows`].
///
/// Panics when a slice is too short for the shapes.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt<T: Float>(
    a: &[T],
    lda: usize,
    m: usize,
    b: &[T],
    ldb: usize,
    n: usize,
    l: usize,
    accumulate: bool,
    c: &mut [T],
    ldc: usize,
    relu_b: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        lda >= l
            && ldb >= l
            && ldc >= n
            && a.len() >= (m - 1) * lda + l
            && b.len() >= (n - 1) * ldb + l
            && c.len() >= (m - 1) * ldc + n,
        "matmul_nt: a ({m} x {l}, stride {lda}, {} elements), b ({n} x {l}, stride {ldb}, {} \
         elements) or c (stride {ldc}, {} elements) does not fit",
        a.len(),
        b.len(),
        c.len()
    );
    #[cfg(target_arch = "x86_64")]
    if let (Some(a32), Some(b32), Some(c32)) = (as_f32(a), as_f32(b), as_f32_mut(c)) {
        if x86::has_avx512() {
            // SAFETY: the CPU supports AVX-512F; the slice lengths were checked above.
            unsafe { x86::nt_avx512(a32, lda, m, b32, ldb, n, l, accumulate, c32, ldc, relu_b) };
            return;
        }
        if x86::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA; the slice lengths were checked above.
            unsafe { x86::nt_avx2(a32, lda, m, b32, ldb, n, l, accumulate, c32, ldc, relu_b) };
            return;
        }
    }
    for i in 0..m {
        let arow = &a[i * lda..i * lda + l];
        for j in 0..n {
            let brow = &b[j * ldb..j * ldb + l];
            let s = arow.iter().zip(brow).fold(T::zero(), |s, (&x, &y)| {
                s + x * if relu_b { relu(y) } else { y }
            });
            let cv = &mut c[i * ldc + j];
            *cv = if accumulate { *cv + s } else { s };
        }
    }
}

/// `max(v, 0)`, 0 for NaN (as the ReLU op).
#[inline(always)]
fn relu<T: Float>(v: T) -> T {
    if v > T::zero() { v } else { T::zero() }
}

#[cfg(target_arch = "x86_64")]
fn as_f32<T: Float>(s: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32, so the cast only renames the element type.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

#[cfg(target_arch = "x86_64")]
fn as_f32_mut<T: Float>(s: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32, so the cast only renames the element type.
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
}

/// Explicit f32 micro-kernels, one macro instantiated for AVX-512 (16 lanes, masks in `k`
/// registers) and AVX2 (8 lanes, masks as integer vectors).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::kernels::cpu::simd::hsum256;
    pub(super) use crate::kernels::cpu::simd::{has_avx2_fma, has_avx512f as has_avx512};
    use std::arch::x86_64::*;

    /// AVX-512 lane mask for the first `n` (clamped to 0..=16) lanes.
    #[inline(always)]
    fn mask512(n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load512(p: *const f32, mask: __mmask16) -> __m512 {
        // SAFETY: masked-off lanes are not read; the caller bounds the others.
        unsafe { _mm512_maskz_loadu_ps(mask, p) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store512(p: *mut f32, mask: __mmask16, v: __m512) {
        // SAFETY: masked-off lanes are not written; the caller bounds the others.
        unsafe { _mm512_mask_storeu_ps(p, mask, v) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn hsum512(v: __m512) -> f32 {
        _mm512_reduce_add_ps(v)
    }

    /// AVX2 lane mask for the first `n` (clamped to 0..=8) lanes.
    #[inline(always)]
    fn mask256(n: usize) -> __m256i {
        let n = n.min(8) as i32;
        // SAFETY: plain register arithmetic (AVX is implied by the callers' AVX2).
        unsafe {
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(n),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load256(p: *const f32, mask: __m256i) -> __m256 {
        // SAFETY: masked-off lanes are not read; the caller bounds the others.
        unsafe { _mm256_maskload_ps(p, mask) }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn store256(p: *mut f32, mask: __m256i, v: __m256) {
        // SAFETY: masked-off lanes are not written; the caller bounds the others.
        unsafe { _mm256_maskstore_ps(p, mask, v) }
    }

    /// `$call` with the const `$r` set to the run-time size `$n`, one of the listed sizes
    /// (a micro-kernel's row or column count, a const generic).
    macro_rules! by_size {
        ($n:expr, [$($size:literal)*], |$r:ident| $call:expr) => {
            match $n {
                $($size => {
                    const $r: usize = $size;
                    $call
                })*
                other => unreachable!("no micro-kernel of size {other}"),
            }
        };
    }

    macro_rules! kernels {
        ($rows:ident, $nt:ident, $feat:literal, $vec:ty, $mask:ty, $lanes:expr, $mr:expr,
         $v:expr, $ra:expr, $rb:expr, $maskf:ident, $load:ident, $store:ident, $loadu:ident,
         $storeu:ident, $hsum:ident, $zero:ident, $set1:ident, $fma:ident, $max:ident) => {
            /// Vectors per column strip of `c` in the broadcast kernel.
            const V: usize = $v;

            /// `b` through a ReLU when `RELU` (`max` returns its second operand, 0, for NaN).
            #[target_feature(enable = $feat)]
            #[inline]
            fn act<const RELU: bool>(v: $vec) -> $vec {
                if RELU { $max(v, $zero()) } else { v }
            }

            /// `c = a b` (`b` through a ReLU when `relu_b`), f32; see `matmul_rows`.
            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            pub(in super::super) unsafe fn $rows(
                a: &[f32],
                ars: usize,
                acs: usize,
                m: usize,
                k: usize,
                b: &[f32],
                ldb: usize,
                n: usize,
                c: &mut [f32],
                ldc: usize,
                relu_b: bool,
            ) {
                // SAFETY (both): the caller's contract, passed on.
                if relu_b {
                    unsafe { rows_impl::<true>(a, ars, acs, m, k, b, ldb, n, c, ldc) }
                } else {
                    unsafe { rows_impl::<false>(a, ars, acs, m, k, b, ldb, n, c, ldc) }
                }
            }

            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn rows_impl<const RELU: bool>(
                a: &[f32],
                ars: usize,
                acs: usize,
                m: usize,
                k: usize,
                b: &[f32],
                ldb: usize,
                n: usize,
                c: &mut [f32],
                ldc: usize,
            ) {
                const NR: usize = V * $lanes;
                // The strip `b[.., j0..j0 + NR]`, copied contiguous (zero-padded past `n`,
                // through the ReLU): the rows of `b` are often 4 KiB apart, so read in
                // place they share a few L1 sets and every tile of rows re-read them from
                // L2. Copying changes no value, so no bit either.
                let mut strip = vec![0.0f32; k * NR];
                let mut j0 = 0;
                while j0 < n {
                    let nc = (n - j0).min(NR);
                    let masks: [$mask; V] =
                        std::array::from_fn(|v| $maskf(nc.saturating_sub(v * $lanes)));
                    let full = nc == NR;
                    for p in 0..k {
                        for v in 0..V {
                            // SAFETY: row p < k of b, columns j0.. below n (all of them
                            // when `full`, else masked); the strip holds k * NR values.
                            unsafe {
                                let src = b.as_ptr().add(p * ldb + j0 + v * $lanes);
                                let x = if full {
                                    $loadu(src)
                                } else {
                                    $load(src, masks[v])
                                };
                                $storeu(
                                    strip.as_mut_ptr().add(p * NR + v * $lanes),
                                    act::<RELU>(x),
                                );
                            }
                        }
                    }
                    // ceil(m / MR) tiles of rows, as even as can be (m = 20 with MR = 6:
                    // 5, 5, 5, 5, not 6, 6, 6, 2): a thin last tile wastes the registers.
                    let tiles = m.div_ceil($mr);
                    let mut i = 0;
                    for t in 0..tiles {
                        let r = m / tiles + usize::from(t < m % tiles);
                        // SAFETY (all calls): rows i..i + r of a and c and columns
                        // j0..j0 + nc exist (the caller checked the slice lengths).
                        by_size!(r, [1 2 3 4 5 6], |R| unsafe {
                            rows_micro::<R>(a, ars, acs, i, k, &strip, j0, full, &masks, c, ldc)
                        });
                        i += r;
                    }
                    j0 += NR;
                }
            }

            /// Rows `i..i + R`, columns `j0..` (masked unless `full`) of `c = a b`, `b`'s
            /// columns `j0..j0 + NR` packed in `strip` (`k x NR`, row-major).
            #[target_feature(enable = $feat)]
            #[inline]
            #[allow(clippy::too_many_arguments)]
            unsafe fn rows_micro<const R: usize>(
                a: &[f32],
                ars: usize,
                acs: usize,
                i: usize,
                k: usize,
                strip: &[f32],
                j0: usize,
                full: bool,
                masks: &[$mask; V],
                c: &mut [f32],
                ldc: usize,
            ) {
                const NR: usize = V * $lanes;
                let mut acc: [[$vec; V]; R] = [[$zero(); V]; R];
                let ap = a.as_ptr();
                let bp = strip.as_ptr();
                for p in 0..k {
                    // SAFETY: p < k (the strip's rows), rows i..i+R < m.
                    unsafe {
                        let bv: [$vec; V] =
                            std::array::from_fn(|v| $loadu(bp.add(p * NR + v * $lanes)));
                        for r in 0..R {
                            let av = $set1(*ap.add((i + r) * ars + p * acs));
                            for v in 0..V {
                                acc[r][v] = $fma(av, bv[v], acc[r][v]);
                            }
                        }
                    }
                }
                let cp = c.as_mut_ptr();
                for (r, accr) in acc.iter().enumerate() {
                    for v in 0..V {
                        // SAFETY: as above; the masks keep columns below n.
                        unsafe {
                            let q = cp.add((i + r) * ldc + j0 + v * $lanes);
                            if full {
                                $storeu(q, accr[v])
                            } else {
                                $store(q, masks[v], accr[v])
                            }
                        };
                    }
                }
            }

            /// `c (+)= a b^T` (`b` through a ReLU when `relu_b`), f32; see `matmul_nt`.
            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            pub(in super::super) unsafe fn $nt(
                a: &[f32],
                lda: usize,
                m: usize,
                b: &[f32],
                ldb: usize,
                n: usize,
                l: usize,
                accumulate: bool,
                c: &mut [f32],
                ldc: usize,
                relu_b: bool,
            ) {
                // SAFETY (both): the caller's contract, passed on.
                if relu_b {
                    unsafe { nt_impl::<true>(a, lda, m, b, ldb, n, l, accumulate, c, ldc) }
                } else {
                    unsafe { nt_impl::<false>(a, lda, m, b, ldb, n, l, accumulate, c, ldc) }
                }
            }

            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nt_impl<const RELU: bool>(
                a: &[f32],
                lda: usize,
                m: usize,
                b: &[f32],
                ldb: usize,
                n: usize,
                l: usize,
                accumulate: bool,
                c: &mut [f32],
                ldc: usize,
            ) {
                let mut i = 0;
                // SAFETY (all calls): the caller checked the slice lengths against m, n, l.
                while i < m {
                    let ri = (m - i).min($ra);
                    let mut j = 0;
                    while j < n {
                        let rj = (n - j).min($rb);
                        // Full blocks and the ragged edges alike in one block of their
                        // own size (blocks larger than $ra x $rb never occur).
                        by_size!(ri, [1 2 3 4], |RA| by_size!(rj, [1 2 3 4], |RB| unsafe {
                            nt_micro::<RA, RB, RELU>(a, lda, i, b, ldb, j, l, accumulate, c, ldc)
                        }));
                        j += rj;
                    }
                    i += ri;
                }
            }

            /// The `RA x RB` block of `c` at `(i, j)`.
            #[target_feature(enable = $feat)]
            #[inline]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nt_micro<const RA: usize, const RB: usize, const RELU: bool>(
                a: &[f32],
                lda: usize,
                i: usize,
                b: &[f32],
                ldb: usize,
                j: usize,
                l: usize,
                accumulate: bool,
                c: &mut [f32],
                ldc: usize,
            ) {
                let mut acc: [[$vec; RB]; RA] = [[$zero(); RB]; RA];
                let ap = a.as_ptr();
                let bp = b.as_ptr();
                let mut q = 0;
                // Whole vectors unmasked, then the ragged end masked (masked-off lanes
                // read as 0, so every lane's sum is the same as with masks throughout).
                while q < l {
                    let rest = l - q;
                    // SAFETY: rows i..i+RA of a, j..j+RB of b exist; q + lanes <= l, or
                    // the mask keeps the lanes below l.
                    unsafe {
                        let bv: [$vec; RB];
                        if rest >= $lanes {
                            bv = std::array::from_fn(|s| {
                                act::<RELU>($loadu(bp.add((j + s) * ldb + q)))
                            });
                            for r in 0..RA {
                                let av = $loadu(ap.add((i + r) * lda + q));
                                for s in 0..RB {
                                    acc[r][s] = $fma(av, bv[s], acc[r][s]);
                                }
                            }
                        } else {
                            let mask = $maskf(rest);
                            bv = std::array::from_fn(|s| {
                                act::<RELU>($load(bp.add((j + s) * ldb + q), mask))
                            });
                            for r in 0..RA {
                                let av = $load(ap.add((i + r) * lda + q), mask);
                                for s in 0..RB {
                                    acc[r][s] = $fma(av, bv[s], acc[r][s]);
                                }
                            }
                        }
                    }
                    q += $lanes;
                }
                for r in 0..RA {
                    for s in 0..RB {
                        // SAFETY: (i + r, j + s) lies inside c.
                        unsafe {
                            let v = $hsum(acc[r][s]);
                            let cv = c.as_mut_ptr().add((i + r) * ldc + j + s);
                            *cv = if accumulate { *cv + v } else { v };
                        }
                    }
                }
            }
        };
    }

    mod avx512 {
        use super::*;
        kernels!(
            rows_avx512,
            nt_avx512,
            "avx512f",
            __m512,
            __mmask16,
            16,
            6,
            4,
            4,
            4,
            mask512,
            load512,
            store512,
            _mm512_loadu_ps,
            _mm512_storeu_ps,
            hsum512,
            _mm512_setzero_ps,
            _mm512_set1_ps,
            _mm512_fmadd_ps,
            _mm512_max_ps
        );
    }

    mod avx2 {
        use super::*;
        const MR_AVX2: usize = 6;
        const V_AVX2: usize = 2;
        kernels!(
            rows_avx2,
            nt_avx2,
            "avx2,fma",
            __m256,
            __m256i,
            8,
            MR_AVX2,
            V_AVX2,
            3,
            3,
            mask256,
            load256,
            store256,
            _mm256_loadu_ps,
            _mm256_storeu_ps,
            hsum256,
            _mm256_setzero_ps,
            _mm256_set1_ps,
            _mm256_fmadd_ps,
            _mm256_max_ps
        );
    }

    pub(super) use avx2::{nt_avx2, rows_avx2};
    pub(super) use avx512::{nt_avx512, rows_avx512};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 37 + seed * 11) % 101) as f32 - 50.0) / 17.0)
            .collect()
    }

    /// `matmul_rows` (f32, SIMD where the CPU has it) against an f64 loop, over ragged
    /// sizes, strided `a` (plain and transposed) and padded row strides.
    #[test]
    fn rows_match_f64_reference() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (6, 3, 64),
            (7, 5, 70),
            (13, 17, 130),
            (32, 48, 1024),
            (20, 20, 1024),
            (40, 9, 37),
            (5, 0, 9),
        ] {
            for (transposed, relu_b) in [(false, false), (true, false), (false, true)] {
                let (ars, acs) = if transposed { (1, m) } else { (k, 1) };
                let a = fill(m * k, 1);
                let (ldb, ldc) = (n + 3, n + 1);
                let b = fill(k * ldb, 2);
                let mut c = vec![f32::NAN; m * ldc];
                matmul_rows(&a, ars, acs, m, k, &b, ldb, n, &mut c, ldc, relu_b);
                let act = |v: f32| if relu_b { v.max(0.0) } else { v } as f64;
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|p| a[i * ars + p * acs] as f64 * act(b[p * ldb + j]))
                            .sum();
                        let got = c[i * ldc + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{m}x{k}x{n} ({i},{j}): {got} vs {want}"
                        );
                    }
                    // The padding between rows is never written.
                    if i + 1 < m {
                        assert!(c[i * ldc + n].is_nan());
                    }
                }
            }
        }
    }

    /// `matmul_nt` (f32) against an f64 loop, overwrite and accumulate, ragged sizes.
    #[test]
    fn nt_matches_f64_reference() {
        for &(m, n, l) in &[
            (1, 1, 1),
            (4, 4, 16),
            (5, 7, 33),
            (16, 48, 1024),
            (9, 3, 7),
            (20, 20, 1024),
            (8, 14, 5),
        ] {
            for (accumulate, relu_b) in [(false, false), (true, false), (true, true)] {
                let (lda, ldb, ldc) = (l + 2, l + 5, n + 1);
                let a = fill(m * lda, 3);
                let b = fill(n * ldb, 4);
                let c0 = fill(m * ldc, 5);
                let mut c = c0.clone();
                matmul_nt(&a, lda, m, &b, ldb, n, l, accumulate, &mut c, ldc, relu_b);
                let act = |v: f32| if relu_b { v.max(0.0) } else { v } as f64;
                for i in 0..m {
                    for j in 0..n {
                        let mut want: f64 = (0..l)
                            .map(|q| a[i * lda + q] as f64 * act(b[j * ldb + q]))
                            .sum();
                        if accumulate {
                            want += c0[i * ldc + j] as f64;
                        }
                        let got = c[i * ldc + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{m}x{n}x{l} ({i},{j}): {got} vs {want}"
                        );
                    }
                    if i + 1 < m {
                        assert_eq!(c[i * ldc + n], c0[i * ldc + n]);
                    }
                }
            }
        }
    }

    /// The AVX2 kernels (the run-time choice on CPUs without AVX-512) agree with the
    /// AVX-512 / dispatched ones to rounding.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernels_match_dispatched_ones() {
        if !x86::has_avx2_fma() {
            println!("skipped: no AVX2 + FMA on this CPU");
            return;
        }
        let (m, k, n, l) = (11, 19, 75, 45);
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        let (mut c1, mut c2) = (vec![0.0; m * n], vec![0.0; m * n]);
        matmul_rows(&a, k, 1, m, k, &b, n, n, &mut c1, n, true);
        // SAFETY: AVX2 and FMA are present (checked above); the sizes fit the slices.
        unsafe { x86::rows_avx2(&a, k, 1, m, k, &b, n, n, &mut c2, n, true) };
        for (x, y) in c1.iter().zip(&c2) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
        }
        let a = fill(m * l, 3);
        let b = fill(n * l, 4);
        let (mut c1, mut c2) = (fill(m * n, 5), fill(m * n, 5));
        matmul_nt(&a, l, m, &b, l, n, l, true, &mut c1, n, true);
        // SAFETY: as above.
        unsafe { x86::nt_avx2(&a, l, m, &b, l, n, l, true, &mut c2, n, true) };
        for (x, y) in c1.iter().zip(&c2) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
        }
    }

    /// `part` (the block `r0..r1 x c0..c1` computed alone) has the bits of that block of
    /// `whole` (row stride `n`).
    fn assert_block_bits(
        what: &str,
        part: &[f32],
        whole: &[f32],
        n: usize,
        (r0, r1, c0, c1): (usize, usize, usize, usize),
    ) {
        for i in r0..r1 {
            for j in c0..c1 {
                assert_eq!(
                    part[(i - r0) * (c1 - c0) + j - c0].to_bits(),
                    whole[i * n + j].to_bits(),
                    "{what}: ({i},{j}) of the block {r0}..{r1} x {c0}..{c1}"
                );
            }
        }
    }

    /// Every element of `c` is the same sum in the same order whatever tile it falls in:
    /// rows and columns computed alone (other tile shapes, other ragged edges) give the
    /// same bits as the whole product.
    #[test]
    fn bits_do_not_depend_on_tiling() {
        let (m, k, n) = (20, 23, 70);
        let a = fill(m * k, 6);
        let b = fill(k * n, 7);
        let mut whole = vec![0.0f32; m * n];
        matmul_rows(&a, k, 1, m, k, &b, n, n, &mut whole, n, true);
        for (r0, r1, c0, c1) in [(0, 1, 0, n), (3, 20, 0, n), (7, 9, 5, 69), (0, m, 17, 18)] {
            let mut part = vec![0.0f32; (r1 - r0) * (c1 - c0)];
            matmul_rows(
                &a[r0 * k..],
                k,
                1,
                r1 - r0,
                k,
                &b[c0..],
                n,
                c1 - c0,
                &mut part,
                c1 - c0,
                true,
            );
            assert_block_bits("rows", &part, &whole, n, (r0, r1, c0, c1));
        }
        let l = 45;
        let a = fill(m * l, 8);
        let b = fill(n * l, 9);
        let mut whole = vec![0.0f32; m * n];
        matmul_nt(&a, l, m, &b, l, n, l, false, &mut whole, n, false);
        for (r0, r1, c0, c1) in [(0, 1, 0, n), (3, 20, 0, n), (7, 9, 5, 69), (0, m, 17, 18)] {
            let mut part = vec![0.0f32; (r1 - r0) * (c1 - c0)];
            matmul_nt(
                &a[r0 * l..],
                l,
                r1 - r0,
                &b[c0 * l..],
                l,
                c1 - c0,
                l,
                false,
                &mut part,
                c1 - c0,
                false,
            );
            assert_block_bits("nt", &part, &whole, n, (r0, r1, c0, c1));
        }
    }

    /// The f64 (portable) paths against the same reference.
    #[test]
    fn f64_paths_match_reference() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f64> = (0..m * k).map(|i| i as f64 * 0.5 - 2.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i % 7) as f64 - 3.0).collect();
        let mut c = vec![0.0; m * n];
        matmul_rows(&a, k, 1, m, k, &b, n, n, &mut c, n, false);
        let mut ct = vec![0.0; n * n];
        // b^T b through matmul_nt: rows of b^T are columns of b, so use bt explicitly.
        let bt: Vec<f64> = (0..n * k).map(|x| b[(x % k) * n + x / k]).collect();
        matmul_nt(&bt, k, n, &bt, k, n, k, false, &mut ct, n, false);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert_eq!(c[i * n + j], want);
            }
        }
        for i in 0..n {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| b[p * n + i] * b[p * n + j]).sum();
                assert_eq!(ct[i * n + j], want);
            }
        }
    }
}

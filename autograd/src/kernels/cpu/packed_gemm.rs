//! A small-matrix GEMM whose right-hand matrix is packed once and reused: `C = A B` or
//! `C = C + A B` with `A (m x k)` and `C (m x n)` row-major slices and `B (k x n)` a
//! [`PackedB`].
//!
//! Recurrent layers multiply a fresh `(batch x hidden)` state by the SAME weight matrix at
//! every time step. `matrixmultiply` re-packs that weight on every call (16% of a NAO
//! controller training step) and pays its blocking overhead on a product that fits in L2;
//! here the weight is packed once per sequence into column panels of [`NR`] columns, and a
//! register-blocked micro-kernel (`MR x NR` accumulators) streams each panel.
//!
//! Each element of `C` is the sum over `p = 0..k` in order, whatever the row blocking, so
//! results do not depend on how a caller splits the rows (e.g. across threads). The
//! f32 micro-kernel is written with AVX-512 and with AVX2+FMA intrinsics (picked at run
//! time; fused multiply-adds); f64 and other CPUs take a portable loop (separate multiply
//! and add).

use crate::dtype::Float;
use ndarray::ArrayView2;

/// Columns per packed panel (and per micro-kernel tile).
pub const NR: usize = 32;
/// Rows per micro-kernel tile.
const MR: usize = 4;

/// `B (k x n)` packed into `ceil(n / NR)` panels of `k x NR` (row-major, zero-padded).
#[derive(Clone, Debug)]
pub struct PackedB<T> {
    k: usize,
    n: usize,
    panels: Vec<T>,
}

impl<T: Float> PackedB<T> {
    /// Packs `b (k x n)` (any strides; pass `w.t()` to multiply by a transpose).
    pub fn new(b: ArrayView2<T>) -> PackedB<T> {
        let (k, n) = b.dim();
        let np = n.div_ceil(NR);
        let (rs, cs) = (b.strides()[0], b.strides()[1]);
        if cs == 1 || n == 1 {
            // Rows of b are contiguous: each panel row is one slice copy plus its zero
            // padding, appended in order (no zero-fill of the whole buffer first).
            let mut panels = Vec::with_capacity(np * k * NR);
            for jp in 0..np {
                let j0 = jp * NR;
                let nc = (n - j0).min(NR);
                for p in 0..k {
                    let row = b.row(p);
                    let src = row.as_slice().expect("contiguous rows");
                    panels.extend_from_slice(&src[j0..j0 + nc]);
                    panels.resize(panels.len() + NR - nc, T::zero());
                }
            }
            return PackedB { k, n, panels };
        }
        let mut panels = vec![T::zero(); np * k * NR];
        for (jp, panel) in panels.chunks_exact_mut(k * NR.max(1)).enumerate() {
            let j0 = jp * NR;
            let nc = (n - j0).min(NR);
            if rs == 1 {
                // columns of b are contiguous (a transposed view): read them in order
                for q in 0..nc {
                    let col = b.column(j0 + q);
                    let src = col.as_slice().expect("contiguous columns");
                    for (p, &v) in src.iter().enumerate() {
                        panel[p * NR + q] = v;
                    }
                }
            } else {
                for p in 0..k {
                    for q in 0..nc {
                        panel[p * NR + q] = b[[p, j0 + q]];
                    }
                }
            }
        }
        PackedB { k, n, panels }
    }

    /// Rows of `B` (the inner dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of `B`.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// `c = a b` (`accumulate == false`) or `c += a b`, for `a (m x k)` with row stride `lda`
/// and `c (m x n)` with row stride `ldc`.
///
/// Panics when a slice is too short for the shapes.
pub fn gemm_packed<T: Float>(
    a: &[T],
    lda: usize,
    m: usize,
    b: &PackedB<T>,
    accumulate: bool,
    c: &mut [T],
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        lda >= k && ldc >= n && a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n,
        "gemm_packed: A ({m} x {k}, stride {lda}, {} elements) or C ({m} x {n}, stride {ldc}, \
         {} elements) does not fit",
        a.len(),
        c.len()
    );
    dispatch::<T, false>(a, lda, m, b, accumulate, c, ldc);
}

/// `c = a^T b` (`accumulate == false`) or `c += a^T b`, for `a (k x m)` with row stride
/// `lda` (so `A^T` is read in place, column by column) and `c (m x n)` with row stride
/// `ldc`. Same per-element arithmetic as [`gemm_packed`] on a transposed copy of `a`.
///
/// Panics when a slice is too short for the shapes.
pub fn gemm_packed_at<T: Float>(
    a: &[T],
    lda: usize,
    m: usize,
    b: &PackedB<T>,
    accumulate: bool,
    c: &mut [T],
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        lda >= m
            && ldc >= n
            && a.len() >= k.saturating_sub(1) * lda + m
            && c.len() >= (m - 1) * ldc + n,
        "gemm_packed_at: A^T ({m} x {k}, A stride {lda}, {} elements) or C ({m} x {n}, \
         stride {ldc}, {} elements) does not fit",
        a.len(),
        c.len()
    );
    dispatch::<T, true>(a, lda, m, b, accumulate, c, ldc);
}

/// Rows of `K` per block in [`gemm_at_b`]: a packed block of `B` (`KC x 32` per panel)
/// stays in L1/L2 while every row block of `C` streams it.
const KC: usize = 512;

/// Products with at least this many multiply-adds split the rows of `C` across the pool.
const PAR_FLOPS: usize = super::par::GEMM_MIN_FLOPS;

/// Rows of `C` per task when a product of `m x n x k` is split across the rayon pool (a
/// multiple of 8), or `m` when it runs on this thread: only outside the pool, with more
/// than one thread and a large enough product.
pub fn par_rows(m: usize, n: usize, k: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads > 1
        && rayon::current_thread_index().is_none()
        && m >= super::par::PACKED_GEMM_MIN_ROWS
        && m * n * k >= PAR_FLOPS
    {
        m.div_ceil(threads).next_multiple_of(8)
    } else {
        m.max(1)
    }
}

/// `c = a^T b` (a weight gradient: `a (k x m)`, `b (k x n)`, `k` the long axis) without
/// transposing `a`: `k` runs in blocks of `KC` rows, each block of `b` packed once and
/// multiplied by the columns of `a` read in place ([`gemm_packed_at`]); the blocks'
/// products are added to `c` in order. Rows of `c` are split across the rayon pool for
/// large products; each element's arithmetic does not depend on the split, so the result
/// is the same bits for any thread count.
///
/// Panics naming the shapes when they do not fit.
pub fn gemm_at_b<T: Float>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ndarray::ArrayViewMut2<T>) {
    use rayon::prelude::*;
    let (k, m) = a.dim();
    let n = b.dim().1;
    assert!(
        b.dim().0 == k && c.dim() == (m, n),
        "gemm_at_b: A^T {:?} x B {:?} does not fit C {:?}",
        (m, k),
        b.dim(),
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(T::zero());
        return;
    }
    if !c.is_standard_layout() {
        let mut tmp = ndarray::Array2::<T>::zeros((m, n));
        gemm_at_b(a, b, tmp.view_mut());
        c.assign(&tmp);
        return;
    }
    let a_std = a.as_standard_layout();
    let a_s = a_std.as_slice().expect("standard layout");
    let kc = KC;
    let packs: Vec<PackedB<T>> = (0..k)
        .step_by(kc)
        .map(|k0| PackedB::new(b.slice(ndarray::s![k0..(k0 + kc).min(k), ..])))
        .collect();
    let c_s = c.as_slice_mut().expect("standard layout");
    let rows = par_rows(m, n, k);
    let work = |(blk, c_rows): (usize, &mut [T])| {
        let i0 = blk * rows;
        let mr = c_rows.len() / n;
        for (bi, pk) in packs.iter().enumerate() {
            gemm_packed_at(&a_s[bi * kc * m + i0..], m, mr, pk, bi > 0, c_rows, n);
        }
    };
    if rows < m {
        c_s.par_chunks_mut(rows * n).enumerate().for_each(work);
    } else {
        work((0, c_s));
    }
}

/// `c = op(a) op(b)` with `op(b)` packed once ([`PackedB`]) and `op(a)` read in place
/// when it is row-major (else copied): for products with a short inner dimension, where
/// packing `b` is cheap and matrixmultiply's blocking overhead is not. Rows of `c` are
/// split across the rayon pool for large products (same bits for any split).
pub fn gemm_small_k<T: Float>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut c: ndarray::ArrayViewMut2<T>,
) {
    use rayon::prelude::*;
    let (m, k) = a.dim();
    let n = b.dim().1;
    assert!(
        b.dim().0 == k && c.dim() == (m, n),
        "gemm_small_k: A {:?} x B {:?} does not fit C {:?}",
        a.dim(),
        b.dim(),
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(T::zero());
        return;
    }
    if !c.is_standard_layout() {
        let mut tmp = ndarray::Array2::<T>::zeros((m, n));
        gemm_small_k(a, b, tmp.view_mut());
        c.assign(&tmp);
        return;
    }
    let packed = PackedB::new(b);
    let a_std = a.as_standard_layout();
    let a_s = a_std.as_slice().expect("standard layout");
    let lda = k.max(1);
    let c_s = c.as_slice_mut().expect("standard layout");
    let rows = par_rows(m, n, k);
    let work = |(blk, c_rows): (usize, &mut [T])| {
        let mr = c_rows.len() / n;
        gemm_packed(&a_s[blk * rows * lda..], lda, mr, &packed, false, c_rows, n);
    };
    if rows < m {
        c_s.par_chunks_mut(rows * n).enumerate().for_each(work);
    } else {
        work((0, c_s));
    }
}

/// Picks the micro-kernel: AVX-512 or AVX2 for f32 when the CPU has them, else portable.
fn dispatch<T: Float, const TA: bool>(
    a: &[T],
    lda: usize,
    m: usize,
    b: &PackedB<T>,
    accumulate: bool,
    c: &mut [T],
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32 (checked above), so the casts only rename the element type.
        let (a32, p32, c32) = unsafe {
            (
                std::slice::from_raw_parts(a.as_ptr() as *const f32, a.len()),
                std::slice::from_raw_parts(b.panels.as_ptr() as *const f32, b.panels.len()),
                std::slice::from_raw_parts_mut(c.as_mut_ptr() as *mut f32, c.len()),
            )
        };
        if crate::kernels::cpu::simd::has_avx512f() {
            // SAFETY: the CPU supports AVX-512F; the slice lengths were checked by the caller.
            unsafe { x86::run_avx512::<TA>(a32, lda, m, k, n, p32, accumulate, c32, ldc) };
            return;
        }
        if crate::kernels::cpu::simd::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA; the slice lengths were checked by the
            // caller.
            unsafe { x86::run_avx2::<TA>(a32, lda, m, k, n, p32, accumulate, c32, ldc) };
            return;
        }
    }
    run::<T, TA>(a, lda, m, b, accumulate, c, ldc);
}

/// The portable path (f64, or CPUs without AVX2): separate multiply and add.
fn run<T: Float, const TA: bool>(
    a: &[T],
    lda: usize,
    m: usize,
    b: &PackedB<T>,
    accumulate: bool,
    c: &mut [T],
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * ldc..i * ldc + n].fill(T::zero());
            }
        }
        return;
    }
    for (jp, panel) in b.panels.chunks_exact(k * NR).enumerate() {
        let j0 = jp * NR;
        let nc = (n - j0).min(NR);
        let mut i = 0;
        // where row i of op(A) starts
        let at = |i: usize| if TA { i } else { i * lda };
        while i + MR <= m {
            micro::<T, MR, TA>(
                &a[at(i)..],
                lda,
                panel,
                k,
                accumulate,
                &mut c[i * ldc + j0..],
                ldc,
                nc,
            );
            i += MR;
        }
        while i < m {
            micro::<T, 1, TA>(
                &a[at(i)..],
                lda,
                panel,
                k,
                accumulate,
                &mut c[i * ldc + j0..],
                ldc,
                nc,
            );
            i += 1;
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn micro<T: Float, const R: usize, const TA: bool>(
    a: &[T],
    lda: usize,
    panel: &[T],
    k: usize,
    accumulate: bool,
    c: &mut [T],
    ldc: usize,
    nc: usize,
) {
    let mut acc = [[T::zero(); NR]; R];
    for (p, bp) in panel.chunks_exact(NR).enumerate().take(k) {
        let bp: &[T; NR] = bp.try_into().unwrap();
        for r in 0..R {
            let ar = if TA { a[p * lda + r] } else { a[r * lda + p] };
            let accr = &mut acc[r];
            for q in 0..NR {
                accr[q] += ar * bp[q];
            }
        }
    }
    for (r, accr) in acc.iter().enumerate() {
        let crow = &mut c[r * ldc..r * ldc + nc];
        if accumulate {
            crow.iter_mut().zip(accr).for_each(|(cv, &s)| *cv += s);
        } else {
            crow.copy_from_slice(&accr[..nc]);
        }
    }
}

/// Explicit f32 micro-kernels (the compiler does not vectorise the portable one across
/// the accumulator tile).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::NR;
    use std::arch::x86_64::*;

    macro_rules! kernel {
        ($run:ident, $micro:ident, $feat:literal, $vec:ty, $lanes:expr, $mr:expr,
         $zero:ident, $load:ident, $store:ident, $set1:ident, $fma:ident) => {
            /// `c (=|+=) a * panels`, f32; see [`super::gemm_packed`].
            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $run<const TA: bool>(
                a: &[f32],
                lda: usize,
                m: usize,
                k: usize,
                n: usize,
                panels: &[f32],
                accumulate: bool,
                c: &mut [f32],
                ldc: usize,
            ) {
                if k == 0 {
                    if !accumulate {
                        for i in 0..m {
                            c[i * ldc..i * ldc + n].fill(0.0);
                        }
                    }
                    return;
                }
                for (jp, panel) in panels.chunks_exact(k * NR).enumerate() {
                    let j0 = jp * NR;
                    let nc = (n - j0).min(NR);
                    let mut i = 0;
                    // where row i of op(A) starts
                    let at = |i: usize| if TA { i } else { i * lda };
                    while i + $mr <= m {
                        // SAFETY: rows i..i+MR of a and c exist (lengths checked by the caller).
                        unsafe {
                            $micro::<{ $mr }, TA>(
                                &a[at(i)..],
                                lda,
                                panel,
                                k,
                                accumulate,
                                &mut c[i * ldc + j0..],
                                ldc,
                                nc,
                            )
                        };
                        i += $mr;
                    }
                    // The last rows in tiles of 4, 2 and 1 (same per-row arithmetic).
                    while i < m {
                        let rows = m - i;
                        let (ai, ci) = (&a[at(i)..], &mut c[i * ldc + j0..]);
                        // SAFETY: as above, `r` rows.
                        let r = unsafe {
                            if rows >= 4 && $mr > 4 {
                                $micro::<4, TA>(ai, lda, panel, k, accumulate, ci, ldc, nc);
                                4
                            } else if rows >= 2 {
                                $micro::<2, TA>(ai, lda, panel, k, accumulate, ci, ldc, nc);
                                2
                            } else {
                                $micro::<1, TA>(ai, lda, panel, k, accumulate, ci, ldc, nc);
                                1
                            }
                        };
                        i += r;
                    }
                }
            }

            #[target_feature(enable = $feat)]
            #[inline]
            #[allow(clippy::too_many_arguments)]
            unsafe fn $micro<const R: usize, const TA: bool>(
                a: &[f32],
                lda: usize,
                panel: &[f32],
                k: usize,
                accumulate: bool,
                c: &mut [f32],
                ldc: usize,
                nc: usize,
            ) {
                const V: usize = NR / $lanes;
                if TA {
                    assert!(a.len() >= (k - 1) * lda + R && panel.len() >= k * NR);
                } else {
                    assert!(a.len() >= (R - 1) * lda + k && panel.len() >= k * NR);
                }
                assert!(c.len() >= (R - 1) * ldc + nc && nc <= NR);
                let mut acc: [[$vec; V]; R] = [[$zero(); V]; R];
                let ap = a.as_ptr();
                let bp = panel.as_ptr();
                for p in 0..k {
                    // SAFETY: p < k and the asserts above bound every pointer.
                    unsafe {
                        let b: [$vec; V] =
                            std::array::from_fn(|v| $load(bp.add(p * NR + v * $lanes)));
                        for r in 0..R {
                            let ar = $set1(*ap.add(if TA { p * lda + r } else { r * lda + p }));
                            for v in 0..V {
                                acc[r][v] = $fma(ar, b[v], acc[r][v]);
                            }
                        }
                    }
                }
                for (r, accr) in acc.iter().enumerate() {
                    let mut tile = [0f32; NR];
                    for v in 0..V {
                        // SAFETY: tile holds NR = V * lanes floats.
                        unsafe { $store(tile.as_mut_ptr().add(v * $lanes), accr[v]) };
                    }
                    let crow = &mut c[r * ldc..r * ldc + nc];
                    if accumulate {
                        crow.iter_mut().zip(&tile).for_each(|(cv, &s)| *cv += s);
                    } else {
                        crow.copy_from_slice(&tile[..nc]);
                    }
                }
            }
        };
    }

    kernel!(
        run_avx512,
        micro_avx512,
        "avx512f",
        __m512,
        16,
        8,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps
    );
    kernel!(
        run_avx2,
        micro_avx2,
        "avx2,fma",
        __m256,
        8,
        3,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn arr(m: usize, n: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_fn((m, n), |(i, j)| {
            (((i * 31 + j * 17 + seed as usize * 7) % 23) as f64 - 11.0) / 7.0
        })
    }

    #[test]
    fn packed_gemm_matches_gemm_for_odd_shapes_and_transposed_b() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (5, 7, 33),
            (100, 96, 384),
            (9, 384, 96),
            (4, 3, 64),
        ] {
            let a = arr(m, k, 1);
            let b = arr(k, n, 2);
            let mut want = Array2::zeros((m, n));
            crate::kernels::cpu::gemm(1.0, a.view(), false, b.view(), false, 0.0, want.view_mut());
            let bt = b.t().to_owned();
            for packed in [PackedB::new(b.view()), PackedB::new(bt.t())] {
                let mut c = Array2::from_elem((m, n), 7.0);
                gemm_packed(
                    a.as_slice().unwrap(),
                    k,
                    m,
                    &packed,
                    false,
                    c.as_slice_mut().unwrap(),
                    n,
                );
                for (x, y) in c.iter().zip(want.iter()) {
                    assert!((x - y).abs() < 1e-9, "({m},{k},{n}): {x} vs {y}");
                }
                gemm_packed(
                    a.as_slice().unwrap(),
                    k,
                    m,
                    &packed,
                    true,
                    c.as_slice_mut().unwrap(),
                    n,
                );
                for (x, y) in c.iter().zip(want.iter()) {
                    assert!(
                        (x - 2.0 * y).abs() < 1e-9,
                        "({m},{k},{n}) accumulate: {x} vs {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn rows_give_the_same_bits_whatever_the_blocking() {
        let (m, k, n) = (19, 50, 40);
        let a = arr(m, k, 3).mapv(|v| (v * 1.37) as f32);
        let b = arr(k, n, 4).mapv(|v| (v * 0.71) as f32);
        let packed = PackedB::new(b.view());
        let mut whole = vec![0f32; m * n];
        gemm_packed(a.as_slice().unwrap(), k, m, &packed, false, &mut whole, n);
        for i in 0..m {
            let mut row = vec![0f32; n];
            gemm_packed(
                &a.as_slice().unwrap()[i * k..],
                k,
                1,
                &packed,
                false,
                &mut row,
                n,
            );
            assert_eq!(row, whole[i * n..(i + 1) * n]);
        }
    }

    #[test]
    fn f32_kernel_matches_f64_reference() {
        let (m, k, n) = (21, 96, 70);
        let a = arr(m, k, 5);
        let b = arr(k, n, 6);
        let mut want = Array2::zeros((m, n));
        crate::kernels::cpu::gemm(1.0, a.view(), false, b.view(), false, 0.0, want.view_mut());
        let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
        let packed = PackedB::new(b32.t().to_owned().t());
        let mut c = vec![1f32; m * n];
        gemm_packed(a32.as_slice().unwrap(), k, m, &packed, true, &mut c, n);
        for (x, y) in c.iter().zip(want.iter()) {
            assert!((*x as f64 - 1.0 - y).abs() < 1e-3, "{x} vs {y}");
        }
    }

    /// `A^T B` read in place matches `gemm` on the transposed view, f64 and f32, for shapes
    /// with tails (rows not a multiple of the tile, several K blocks, a partial panel).
    #[test]
    fn at_b_and_small_k_match_gemm() {
        for &(m, k, n) in &[
            (3, 5, 7),
            (19, 1100, 40),
            (96, 700, 96),
            (1, 9, 33),
            (13, 0, 5),
        ] {
            let a = arr(k, m, 7);
            let b = arr(k, n, 8);
            let mut want = Array2::zeros((m, n));
            crate::kernels::cpu::gemm(1.0, a.view(), true, b.view(), false, 0.0, want.view_mut());
            let mut got = Array2::from_elem((m, n), 3.0);
            gemm_at_b(a.view(), b.view(), got.view_mut());
            for (x, y) in got.iter().zip(want.iter()) {
                assert!((x - y).abs() < 1e-9, "at_b ({m},{k},{n}): {x} vs {y}");
            }
            // f32: within rounding of the f64 result
            let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
            let mut got32 = Array2::<f32>::zeros((m, n));
            gemm_at_b(a32.view(), b32.view(), got32.view_mut());
            for (x, y) in got32.iter().zip(want.iter()) {
                assert!((*x as f64 - y).abs() < 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
            }
            // the short-K kernel on A^T (copied) and on B^T (a transposed view)
            let at = a.t().to_owned();
            let bt = b.t().to_owned();
            let mut got = Array2::from_elem((m, n), 3.0);
            gemm_small_k(at.view(), bt.t(), got.view_mut());
            for (x, y) in got.iter().zip(want.iter()) {
                assert!((x - y).abs() < 1e-9, "small_k ({m},{k},{n}): {x} vs {y}");
            }
            // a non-contiguous output
            let mut wide = Array2::from_elem((m, 2 * n), 3.0);
            gemm_at_b(a.view(), b.view(), wide.slice_mut(ndarray::s![.., ..;2]));
            for (x, y) in wide.slice(ndarray::s![.., ..;2]).iter().zip(want.iter()) {
                assert!((x - y).abs() < 1e-9, "strided C ({m},{k},{n}): {x} vs {y}");
            }
        }
    }

    /// Split across threads (outside the pool) or not (inside it): the same bits.
    #[test]
    fn at_b_and_small_k_give_the_same_bits_for_any_split() {
        let a = arr(2000, 96, 9).mapv(|v| (v * 0.37) as f32);
        let b = arr(2000, 96, 10).mapv(|v| (v * 1.1) as f32);
        let w = arr(96, 96, 11).mapv(|v| v as f32);
        let run = || {
            let mut c1 = Array2::<f32>::zeros((96, 96));
            gemm_at_b(a.view(), b.view(), c1.view_mut());
            let mut c2 = Array2::<f32>::zeros((2000, 96));
            gemm_small_k(a.view(), w.t(), c2.view_mut());
            (c1, c2)
        };
        let outside = run();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_eq!(pool.install(run), outside);
    }

    #[test]
    #[should_panic(expected = "gemm_packed")]
    fn short_slices_panic() {
        let b = PackedB::new(arr(3, 4, 1).view());
        let mut c = vec![0.0; 3];
        gemm_packed(&[1.0; 3], 3, 1, &b, false, &mut c, 4);
    }
}

//! Runtime SIMD dispatch for the plain-Rust kernels, and the lane blocks they are written in.
//!
//! The workspace builds for the baseline x86-64 target (SSE2), so generic loops vectorise
//! four f32 lanes wide. `multiversion!` compiles a kernel body a second time with AVX2
//! enabled (eight lanes), or with `wide` also with AVX-512 (sixteen lanes), and picks the
//! widest copy the CPU has at run time. The body is the same code, so all copies give
//! bit-identical results: no FMA contraction happens (Rust never fuses `a * b + c` on its
//! own) and the summation order is fixed by the code, not by the vector width.
//!
//! Kernels are written so that every copy vectorises without intrinsics. Register-blocked
//! kernels loop `for l in 0..16` over `[T; 16]` blocks: one AVX-512 register for f32 (two
//! AVX2, four SSE2 ones) in each copy. `by_lanes!` is the row form of that: it walks
//! `0..n` in blocks of 16 lanes, then at most one block of 8 and one of 4, then single
//! lanes, with the block width a constant in the body, so short rows (the 8- to 32-wide
//! planes of a CNN) still run whole vectors instead of a scalar remainder. Loops that LLVM
//! already vectorises well (long runs, even/odd pairs) stay plain loops.

use std::sync::OnceLock;

/// True when the CPU supports AVX2 (checked once).
pub fn has_avx2() -> bool {
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// True when the CPU supports AVX-512F (checked once).
pub fn has_avx512f() -> bool {
    static AVX512: OnceLock<bool> = OnceLock::new();
    *AVX512.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// True when the CPU supports AVX2 and FMA (checked once).
pub fn has_avx2_fma() -> bool {
    static AVX2_FMA: OnceLock<bool> = OnceLock::new();
    *AVX2_FMA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The sum of an AVX register's 8 f32 lanes (halves added, then pairs, then the last two),
/// for the intrinsic kernels' dot products.
///
/// # Safety
/// Called from code compiled for AVX2 and FMA (which needs no `unsafe`) or where the CPU
/// is known to have them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) fn hsum256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
}

#[cfg(test)]
thread_local! {
    /// Set by tests to run the plain copy of every [`multiversion!`] kernel (and the
    /// depthwise kernels' plain tap loops) on this thread, to compare it with the wide ones.
    pub static FORCE_GENERIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread runs the plain kernels only (see `FORCE_GENERIC`; never outside
/// tests).
#[cfg(test)]
pub fn force_generic() -> bool {
    FORCE_GENERIC.with(|f| f.get())
}

/// Whether this thread runs the plain kernels only (never outside tests).
#[cfg(not(test))]
#[inline(always)]
pub fn force_generic() -> bool {
    false
}

/// Keeps LLVM's loop vectoriser off the loop this is called in: it would widen a loop over
/// 16-lane blocks once more, into gathers across blocks, far slower than the blocks
/// themselves (which the SLP vectoriser turns into whole-register operations). An empty
/// `asm!` is a call the loop vectoriser cannot widen; it emits no instruction.
#[inline(always)]
pub fn keep_blocks() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an empty asm statement; it touches no memory, stack or flags.
    unsafe {
        std::arch::asm!("", options(nomem, nostack, preserves_flags))
    };
}

/// `by_lanes!(n, |i, L| body)` runs `body` for blocks `i..i + L` covering `0..n`: `L` is 16
/// while 16 lanes remain, then 8 and 4 at most once each, then 1 (see the module docs).
/// `L` is a `const` in `body`, so `[T; L]` and `&s[i..][..L]` have a fixed length.
macro_rules! by_lanes {
    ($n:expr, |$i:ident, $l:ident| $body:block) => {{
        let n: usize = $n;
        let mut $i = 0usize;
        while $i + 16 <= n {
            $crate::kernels::cpu::simd::keep_blocks();
            {
                const $l: usize = 16;
                $body
            }
            $i += 16;
        }
        if $i + 8 <= n {
            const $l: usize = 8;
            $body
            $i += 8;
        }
        if $i + 4 <= n {
            const $l: usize = 4;
            $body
            $i += 4;
        }
        while $i < n {
            {
                const $l: usize = 1;
                $body
            }
            $i += 1;
        }
    }};
}
pub(crate) use by_lanes;

/// Defines `fn NAME<T: Float>(args)` whose body runs as AVX2 code when the CPU has it (see
/// the module docs). The body must be safe code; arguments are passed through unchanged.
/// In tests, `FORCE_GENERIC` makes it run the plain copy.
///
/// `multiversion! { wide ... }` compiles two more copies instead: AVX-512 (with AVX2 and
/// FMA) and AVX2 + FMA, picked in that order. Enabling FMA does not fuse anything on its
/// own (Rust never contracts `a * b + c`), so all copies still give the same bits.
macro_rules! multiversion {
    (wide $(#[$m:meta])* $vis:vis fn $name:ident<T: Float>($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<T: Float>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<T: Float>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512<T: Float>($($arg: $ty),*) {
                body::<T>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2<T: Float>($($arg: $ty),*) {
                body::<T>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::cpu::simd::has_avx512f()
                && !$crate::kernels::cpu::simd::force_generic()
            {
                // SAFETY: the CPU supports the features `avx512` is compiled for.
                unsafe { avx512::<T>($($arg),*) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::cpu::simd::has_avx2_fma()
                && !$crate::kernels::cpu::simd::force_generic()
            {
                // SAFETY: the CPU supports the features `avx2` is compiled for.
                unsafe { avx2::<T>($($arg),*) };
                return;
            }
            body::<T>($($arg),*)
        }
    };
    ($(#[$m:meta])* $vis:vis fn $name:ident<T: Float>($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<T: Float>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<T: Float>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2<T: Float>($($arg: $ty),*) {
                body::<T>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::cpu::simd::has_avx2() && !$crate::kernels::cpu::simd::force_generic() {
                // SAFETY: the CPU supports AVX2, the only feature `avx2` is compiled for.
                unsafe { avx2::<T>($($arg),*) };
                return;
            }
            body::<T>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

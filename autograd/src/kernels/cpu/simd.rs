//! Runtime SIMD dispatch for the plain-Rust kernels.
//!
//! The workspace builds for the baseline x86-64 target (SSE2), so generic loops vectorise
//! four f32 lanes wide. [`multiversion!`] compiles a kernel body a second time with AVX2
//! enabled (eight lanes) and picks that copy at run time when the CPU has it. The body is
//! the same code, so both copies give bit-identical results: no FMA contraction happens
//! (Rust never fuses `a * b + c` on its own) and the summation order is fixed by the code,
//! not by the vector width.

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

/// Defines `fn NAME<T: Float>(args)` whose body runs as AVX2 code when the CPU has it (see
/// the module docs). The body must be safe code; arguments are passed through unchanged.
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
            if $crate::kernels::cpu::simd::has_avx512f() {
                // SAFETY: the CPU supports the features `avx512` is compiled for.
                unsafe { avx512::<T>($($arg),*) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::cpu::simd::has_avx2_fma() {
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
            if $crate::kernels::cpu::simd::has_avx2() {
                // SAFETY: the CPU supports AVX2, the only feature `avx2` is compiled for.
                unsafe { avx2::<T>($($arg),*) };
                return;
            }
            body::<T>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

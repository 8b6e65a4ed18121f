//! Vectorisable f32 `exp`, `tanh` and `sigmoid` over slices.
//!
//! libm's scalar `expf`/`tanhf` dominated the controller's profile (a third of a training
//! step: LSTM gates, attention softmax). These versions are branch-free polynomial forms
//! the compiler vectorises: 8 lanes with AVX2+FMA when the CPU has them (checked at run
//! time), 4 lanes with baseline SSE2 otherwise.
//!
//! Accuracy (tested against f64 over [-20, 20] and near 0): `exp` within 2 ulp (Cephes
//! `expf` polynomial after `x = n ln2 + r` range reduction); `sigmoid` and `tanh` within a
//! few ulp (tanh uses a Taylor polynomial for |x| < 0.25 to avoid cancellation). f64
//! kernels keep using libm, so gradient checks are unaffected.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
const ROUND: f32 = 12_582_912.0;

#[inline(always)]
fn exp1(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from the integer bits of `t` (its low mantissa bits hold n).
    let bits = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let scale = f32::from_bits(((bits + 127) << 23) as u32);
    y * scale
}

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp1(-x))
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    let a = x.abs();
    let e = exp1(2.0 * a);
    let big = 1.0 - 2.0 / (e + 1.0);
    let x2 = a * a;
    let small = a
        * (1.0
            + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    let t = if a < 0.25 { small } else { big };
    t.copysign(x)
}

#[cfg(target_arch = "x86_64")]
use crate::kernels::cpu::simd::{has_avx2_fma, has_avx512f};

// Three copies of each slice function (AVX-512, AVX2+FMA, baseline) from the same scalar
// code: no operation is fused or reordered, so all three give the same bits.
macro_rules! slice_fn {
    ($name:ident, $avx:ident, $avx512:ident, $f:ident, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(x: &mut [f32]) {
            #[cfg(target_arch = "x86_64")]
            {
                if has_avx512f() {
                    // SAFETY: the CPU supports the features this function is compiled for.
                    unsafe { $avx512(x) };
                    return;
                }
                if has_avx2_fma() {
                    // SAFETY: the CPU supports the features this function is compiled for.
                    unsafe { $avx(x) };
                    return;
                }
            }
            x.iter_mut().for_each(|v| *v = $f(*v));
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx(x: &mut [f32]) {
            x.iter_mut().for_each(|v| *v = $f(*v));
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn $avx512(x: &mut [f32]) {
            x.iter_mut().for_each(|v| *v = $f(*v));
        }
    };
}

slice_fn!(
    exp_slice,
    exp_avx2,
    exp_avx512,
    exp1,
    "`x <- e^x` elementwise."
);
slice_fn!(
    tanh_slice,
    tanh_avx2,
    tanh_avx512,
    tanh1,
    "`x <- tanh(x)` elementwise."
);
slice_fn!(
    sigmoid_slice,
    sigmoid_avx2,
    sigmoid_avx512,
    sigmoid1,
    "`x <- 1 / (1 + e^-x)` elementwise."
);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&mut [f32]), g: fn(f64) -> f64, ulps: f64) {
        let xs: Vec<f32> = (-40000..=40000)
            .map(|i| i as f32 * 5e-4)
            .chain([1e-7, -3e-6, 0.0, 87.5, -86.0])
            .collect();
        let mut y = xs.clone();
        f(&mut y);
        for (x, y) in xs.iter().zip(&y) {
            let want = g(*x as f64);
            let tol = ulps * f32::EPSILON as f64 * want.abs().max(f32::MIN_POSITIVE as f64);
            assert!(((*y as f64) - want).abs() <= tol, "x = {x}: {y} vs {want}");
        }
    }

    /// The AVX-512, AVX2 and baseline copies give the same bits.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn all_copies_agree_bit_for_bit() {
        let xs: Vec<f32> = (-20000..=20000)
            .map(|i| i as f32 * 1.3e-3)
            .chain([1e-7, -3e-6, 0.0, 87.5, -86.0, 0.2499, -0.25])
            .collect();
        type F = unsafe fn(&mut [f32]);
        type Copies = (F, F, fn(f32) -> f32);
        let sets: [Copies; 3] = [
            (exp_avx512, exp_avx2, exp1),
            (tanh_avx512, tanh_avx2, tanh1),
            (sigmoid_avx512, sigmoid_avx2, sigmoid1),
        ];
        for (wide, avx2, scalar) in sets {
            let want: Vec<f32> = xs.iter().map(|&x| scalar(x)).collect();
            if has_avx2_fma() {
                let mut y = xs.clone();
                // SAFETY: checked above.
                unsafe { avx2(&mut y) };
                assert_eq!(y, want);
            }
            if has_avx512f() {
                let mut y = xs.clone();
                // SAFETY: checked above.
                unsafe { wide(&mut y) };
                assert_eq!(y, want);
            }
        }
    }

    #[test]
    fn exp_within_2_ulp() {
        check(exp_slice, f64::exp, 2.0);
    }

    #[test]
    fn tanh_within_4_ulp() {
        check(tanh_slice, f64::tanh, 4.0);
    }

    #[test]
    fn sigmoid_within_4_ulp() {
        check(sigmoid_slice, |x| 1.0 / (1.0 + (-x).exp()), 4.0);
    }
}

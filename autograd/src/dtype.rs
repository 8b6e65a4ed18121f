//! Element types. A tensor's dtype is a runtime value: `f32` (the default, for training)
//! or `f64` (for gradient checks, where central differences in f32 are too noisy).

use serde::{Deserialize, Serialize};

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum DType {
    /// 32-bit float (default).
    #[default]
    F32,
    /// 64-bit float (gradient checks).
    F64,
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        })
    }
}

/// A float element type that a CPU kernel can be written once for.
///
/// Kernels are generic over `T: Float`; the [`crate::dispatch`] macros pick `f32` or `f64`
/// at run time from the tensor's [`crate::Storage`].
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + num_traits::ToPrimitive
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + std::fmt::Debug
    + std::fmt::Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// The runtime tag of this type.
    const DTYPE: DType;
    /// Converts from f64 (for constants and scalars).
    fn of(v: f64) -> Self;
    /// `x <- e^x` over a slice (f32: the vectorised [`crate::kernels::cpu::fastmath`]).
    fn exp_inplace(x: &mut [Self]) {
        x.iter_mut().for_each(|v| *v = v.exp());
    }
    /// `x <- tanh(x)` over a slice (f32: vectorised).
    fn tanh_inplace(x: &mut [Self]) {
        x.iter_mut().for_each(|v| *v = v.tanh());
    }
    /// `x <- 1 / (1 + e^-x)` over a slice (f32: vectorised; f64: stable libm form).
    fn sigmoid_inplace(x: &mut [Self]) {
        x.iter_mut().for_each(|v| {
            *v = if *v >= Self::zero() {
                Self::one() / (Self::one() + (-*v).exp())
            } else {
                let e = v.exp();
                e / (Self::one() + e)
            }
        });
    }
}

impl Float for f32 {
    const DTYPE: DType = DType::F32;
    fn of(v: f64) -> Self {
        v as f32
    }
    fn exp_inplace(x: &mut [Self]) {
        crate::kernels::cpu::fastmath::exp_slice(x);
    }
    fn tanh_inplace(x: &mut [Self]) {
        crate::kernels::cpu::fastmath::tanh_slice(x);
    }
    fn sigmoid_inplace(x: &mut [Self]) {
        crate::kernels::cpu::fastmath::sigmoid_slice(x);
    }
}

impl Float for f64 {
    const DTYPE: DType = DType::F64;
    fn of(v: f64) -> Self {
        v
    }
}

/// Traits that kernel bodies need in scope (`T::one()`, `x.exp()`, `T::of(0.5)`); the
/// `dispatch!` macros import it in every arm.
pub mod prelude {
    pub use crate::dtype::Float as _;
    pub use num_traits::Float as _;
    pub use num_traits::{FromPrimitive as _, One as _, ToPrimitive as _, Zero as _};
}

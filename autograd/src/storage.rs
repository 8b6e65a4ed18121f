//! Where a tensor's numbers live. CPU storage is an `ndarray` array of the tensor's dtype;
//! GPU storage ([`Storage::Cuda`]) is a contiguous row-major f32 buffer of `ops-cuda` plus
//! its shape.
//!
//! The CPU kernels never see GPU storage: every op checks its inputs' device first and takes
//! its GPU path ([`crate::kernels::cuda`]). Should GPU storage reach a CPU kernel anyway (an
//! op without a GPU path), the `dispatch!` macros panic saying so, never read device memory.
//!
//! The `dispatch!` macros turn one generic-looking expression into one arm per dtype, so a
//! kernel is written once: `dispatch!(storage, |a| a.mapv(|v| v.exp()))`.

use crate::dtype::DType;
use ndarray::ArrayD;

/// The numbers of a tensor.
#[derive(Debug, Clone)]
pub enum Storage {
    /// CPU, f32.
    F32(ArrayD<f32>),
    /// CPU, f64.
    F64(ArrayD<f64>),
    /// A CUDA device, f32 (row-major, contiguous).
    Cuda(crate::kernels::cuda::CudaStorage),
}

impl Storage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::Cuda(_) => DType::F32,
        }
    }

    /// Where the numbers live.
    pub fn device(&self) -> crate::Device {
        match self {
            Storage::Cuda(c) => crate::Device::Cuda(c.buf.device().clone()),
            _ => crate::Device::Cpu,
        }
    }

    /// Whether the numbers live on a CUDA device.
    pub fn is_cuda(&self) -> bool {
        matches!(self, Storage::Cuda(_))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Storage::F32(a) => a.shape(),
            Storage::F64(a) => a.shape(),
            Storage::Cuda(c) => &c.shape,
        }
    }
}

/// Applies a generic expression to the array inside a [`Storage`], producing a new
/// `Storage` of the same dtype. The body is expanded once per dtype.
///
/// `dispatch!(s, |a| expr)` where `a: &ArrayD<T>` and `expr: ArrayD<T>`; inside the body the
/// element type is available as the type alias `T` (`T::of(0.5)`, `T::one()`).
#[macro_export]
macro_rules! dispatch {
    ($s:expr, |$a:ident| $body:expr) => {
        match $s {
            $crate::Storage::F32($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $crate::Storage::F32($body)
            }
            $crate::Storage::F64($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $crate::Storage::F64($body)
            }
            $crate::Storage::Cuda(_) => $crate::kernels::cuda::cpu_kernel_got_gpu(module_path!()),
        }
    };
}

/// Like [`dispatch!`] for two storages of the same dtype; panics naming both dtypes
/// (and the op) when they differ.
#[macro_export]
macro_rules! dispatch2 {
    ($op:expr, $s1:expr, $s2:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($s1, $s2) {
            ($crate::Storage::F32($a), $crate::Storage::F32($b)) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $crate::Storage::F32($body)
            }
            ($crate::Storage::F64($a), $crate::Storage::F64($b)) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $crate::Storage::F64($body)
            }
            (x, y) if x.is_cuda() || y.is_cuda() => $crate::kernels::cuda::cpu_kernel_got_gpu($op),
            (x, y) => panic!(
                "{}: dtype mismatch: {} vs {} (convert one side with .to_dtype())",
                $op,
                x.dtype(),
                y.dtype()
            ),
        }
    };
}

/// Like [`dispatch!`] for three storages of the same dtype.
#[macro_export]
macro_rules! dispatch3 {
    ($op:expr, $s1:expr, $s2:expr, $s3:expr, |$a:ident, $b:ident, $c:ident| $body:expr) => {
        match ($s1, $s2, $s3) {
            ($crate::Storage::F32($a), $crate::Storage::F32($b), $crate::Storage::F32($c)) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $crate::Storage::F32($body)
            }
            ($crate::Storage::F64($a), $crate::Storage::F64($b), $crate::Storage::F64($c)) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $crate::Storage::F64($body)
            }
            (x, y, z) if x.is_cuda() || y.is_cuda() || z.is_cuda() => {
                $crate::kernels::cuda::cpu_kernel_got_gpu($op)
            }
            (x, y, z) => panic!(
                "{}: dtype mismatch: {} vs {} vs {}",
                $op,
                x.dtype(),
                y.dtype(),
                z.dtype()
            ),
        }
    };
}

/// Runs a generic expression on the array inside a [`Storage`] and returns its value as is
/// (for results that are not storage: a scalar, a Vec, a bool).
#[macro_export]
macro_rules! with_array {
    ($s:expr, |$a:ident| $body:expr) => {
        match $s {
            $crate::Storage::F32($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $body
            }
            $crate::Storage::F64($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $body
            }
            $crate::Storage::Cuda(_) => $crate::kernels::cuda::cpu_kernel_got_gpu(module_path!()),
        }
    };
}

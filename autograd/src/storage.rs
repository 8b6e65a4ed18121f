//! Where a tensor's numbers live, and the one place that picks a kernel by device and
//! dtype. CPU storage is an `ndarray` array of the tensor's dtype; GPU storage
//! ([`Storage::Cuda`]) is a contiguous row-major f32 buffer of `ops-cuda` plus its shape.
//!
//! Layering: `ops` (graph: inputs, backward rules) -> `Storage` (device + dtype dispatch)
//! -> `kernels::{cpu, cuda}` (plain functions on arrays / [`CudaStorage`]; kernels never see
//! `Tensor`). Each kernel family has its methods here, one file per family under `storage/`
//! (elementwise, reduce, matmul, index, softmax, pool, conv, batchnorm, embedding, lstm,
//! lstm_seq, highway, normalize),
//! used by its op's forward and backward alike (e.g. [`Storage::unary`] and
//! [`Storage::unary_backward`], [`Storage::conv2d`] and [`Storage::conv2d_backward`]); what
//! a backward needs from its forward comes back as a value that holds either device's
//! state ([`CrossEntropySaved`], [`PoolArgmax`], [`BatchNormSaved`], ...). A fused CPU
//! kernel without a GPU twin returns `None` on a GPU (`relu_conv2d`, `batch_norm` in
//! `Eval`, `highway`, `mse`, the LSTM layer `lstm_seq`, `l2_normalize`), and the op composes
//! other ops instead. Storages on two devices panic naming
//! both; two CPU dtypes panic naming both.
//!
//! The `dispatch!` macros turn one generic-looking expression into one arm per dtype, so a
//! CPU kernel is written once: `dispatch!(storage, |a| a.mapv(|v| v.exp()))`. Should GPU
//! storage reach them anyway (an op without a GPU path), they panic saying so, never read
//! device memory.

use crate::dtype::{DType, Float};
use crate::kernels::cuda::{self, CudaStorage};
use ndarray::ArrayD;
use ops_cuda::CudaDevice;

/// Applies a generic expression to the array inside a [`Storage`], producing a new
/// `Storage` of the same dtype. The body is expanded once per dtype.
///
/// `dispatch!(s, |a| expr)` where `a: &ArrayD<T>` and `expr: ArrayD<T>`; inside the body the
/// element type is available as the type alias `T` (`T::of(0.5)`, `T::one()`).
#[macro_export]
macro_rules! dispatch {
    ($s:expr, |$a:ident| $body:expr) => {
        match $s {
            $crate::storage::Storage::F32($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $crate::storage::Storage::F32($body)
            }
            $crate::storage::Storage::F64($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $crate::storage::Storage::F64($body)
            }
            $crate::storage::Storage::Cuda(_) => {
                $crate::kernels::cuda::cpu_kernel_got_gpu(module_path!())
            }
        }
    };
}

/// Like [`dispatch!`] for two storages of the same dtype; panics naming both dtypes
/// (and the op) when they differ.
#[macro_export]
macro_rules! dispatch2 {
    ($op:expr, $s1:expr, $s2:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($s1, $s2) {
            ($crate::storage::Storage::F32($a), $crate::storage::Storage::F32($b)) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $crate::storage::Storage::F32($body)
            }
            ($crate::storage::Storage::F64($a), $crate::storage::Storage::F64($b)) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $crate::storage::Storage::F64($body)
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
            (
                $crate::storage::Storage::F32($a),
                $crate::storage::Storage::F32($b),
                $crate::storage::Storage::F32($c),
            ) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $crate::storage::Storage::F32($body)
            }
            (
                $crate::storage::Storage::F64($a),
                $crate::storage::Storage::F64($b),
                $crate::storage::Storage::F64($c),
            ) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $crate::storage::Storage::F64($body)
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
            $crate::storage::Storage::F32($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f32;
                $body
            }
            $crate::storage::Storage::F64($a) => {
                #[allow(unused_imports)]
                use $crate::dtype::prelude::*;
                #[allow(dead_code)]
                type T = f64;
                $body
            }
            $crate::storage::Storage::Cuda(_) => {
                $crate::kernels::cuda::cpu_kernel_got_gpu(module_path!())
            }
        }
    };
}

mod batchnorm;
mod conv;
mod elementwise;
mod embedding;
mod highway;
mod index;
mod linear_ce;
mod lstm;
mod lstm_seq;
mod matmul;
mod normalize;
mod pool;
mod reduce;
mod scaled_sum;
mod softmax;

pub use batchnorm::{BatchNormForward, BatchNormMode, BatchNormSaved, bn_layout};
pub use conv::ConvGrads;
pub use elementwise::{Binary, Unary};
pub use embedding::EmbeddingIds;
pub use highway::HighwaySaved;
pub use linear_ce::LinearCeGrads;
pub use lstm::LstmGatesSaved;
pub use lstm_seq::{LstmPre, LstmSeqState};
pub use pool::PoolArgmax;
pub use softmax::CrossEntropySaved;

/// The numbers of a tensor.
#[derive(Debug, Clone)]
pub enum Storage {
    /// CPU, f32.
    F32(ArrayD<f32>),
    /// CPU, f64.
    F64(ArrayD<f64>),
    /// A CUDA device, f32 (row-major, contiguous).
    Cuda(CudaStorage),
}

impl Storage {
    /// Wraps a CPU array of either float type.
    pub fn from_array<T: Float>(a: ArrayD<T>) -> Storage {
        // `T` is f32 or f64; the downcast is decided at compile time, per `T`.
        let mut slot = Some(a);
        let any = &mut slot as &mut dyn std::any::Any;
        if let Some(s) = any.downcast_mut::<Option<ArrayD<f32>>>() {
            return Storage::F32(s.take().expect("just filled"));
        }
        if let Some(s) = any.downcast_mut::<Option<ArrayD<f64>>>() {
            return Storage::F64(s.take().expect("just filled"));
        }
        unreachable!("Float is implemented for f32 and f64 only")
    }

    /// Borrows the CPU array if it holds `T` (`None` for another dtype or GPU storage).
    pub fn array<T: Float>(&self) -> Option<&ArrayD<T>> {
        let any: &dyn std::any::Any = match self {
            Storage::F32(a) => a,
            Storage::F64(a) => a,
            Storage::Cuda(_) => return None,
        };
        any.downcast_ref::<ArrayD<T>>()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::Cuda(_) => DType::F32,
        }
    }

    /// Where the numbers live.
    pub fn device(&self) -> crate::device::Device {
        match self {
            Storage::Cuda(c) => crate::device::Device::Cuda(c.buf.device().clone()),
            _ => crate::device::Device::Cpu,
        }
    }

    /// Whether the numbers live on a CUDA device.
    pub fn is_cuda(&self) -> bool {
        matches!(self, Storage::Cuda(_))
    }

    /// The GPU storage, if the numbers live on a CUDA device.
    pub fn as_cuda(&self) -> Option<&CudaStorage> {
        match self {
            Storage::Cuda(c) => Some(c),
            _ => None,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Storage::F32(a) => a.shape(),
            Storage::F64(a) => a.shape(),
            Storage::Cuda(c) => &c.shape,
        }
    }

    /// A copy on `dev` (GPU storage is f32 only: f64 is an error).
    pub fn to_cuda(&self, dev: &CudaDevice) -> Result<Storage, crate::error::Error> {
        let host;
        let a = match self {
            Storage::F32(a) => a,
            Storage::F64(_) => return Err(crate::error::Error::GpuDtype(DType::F64)),
            Storage::Cuda(c) => {
                host = c.to_array();
                &host
            }
        };
        let v = crate::kernels::cpu::layout::to_row_major(&a.view());
        Ok(Storage::Cuda(CudaStorage::upload(dev, &v, a.shape())?))
    }

    /// A copy in host memory (GPU storage comes back as f32).
    pub fn to_cpu(&self) -> Storage {
        match self {
            Storage::Cuda(c) => Storage::F32(c.to_array()),
            s => s.clone(),
        }
    }

    /// The sum of the squares of the elements, accumulated in f64 (in row-major order on
    /// the CPU; on the GPU by its reduction, then copied to the host).
    pub fn sum_squares(&self) -> f64 {
        if let Storage::Cuda(c) = self {
            return cuda::sum_squares(c);
        }
        with_array!(self, |a| a
            .iter()
            .map(|v| {
                let x = v.to_f64().unwrap();
                x * x
            })
            .sum::<f64>())
    }
}

/// The GPU storages of an op's inputs when all of them are on one GPU, `None` when all are
/// on the CPU; panics naming `op` and both devices when they are mixed.
#[track_caller]
pub(crate) fn all_cuda<'a, const N: usize>(
    op: &str,
    s: [&'a Storage; N],
) -> Option<[&'a CudaStorage; N]> {
    all_cuda_slice(op, &s).map(|v| v.try_into().expect("one per input"))
}

/// The GPU storages of `parts` when all are on one GPU, `None` when all are on the CPU;
/// panics naming `op` and both devices when they are mixed.
#[track_caller]
pub(crate) fn all_cuda_slice<'a>(op: &str, parts: &[&'a Storage]) -> Option<Vec<&'a CudaStorage>> {
    let first = parts[0];
    for t in &parts[1..] {
        let same = match (first, t) {
            (Storage::Cuda(a), Storage::Cuda(b)) => a.device() == b.device(),
            (Storage::Cuda(_), _) | (_, Storage::Cuda(_)) => false,
            _ => true,
        };
        if !same {
            cuda::mixed_devices(op, &first.device(), &t.device());
        }
    }
    first.is_cuda().then(|| {
        parts
            .iter()
            .map(|t| t.as_cuda().expect("checked above"))
            .collect()
    })
}

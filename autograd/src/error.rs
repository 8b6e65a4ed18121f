//! The crate's error type (bad devices, parameter files, optimiser state).

use thiserror::Error;

/// Errors returned by `autograd` (shape and dtype mismatches panic instead: they are bugs).
#[derive(Debug, Error)]
pub enum Error {
    /// A device string that is not `cpu`, `cuda` or `cuda:N`.
    #[error("unknown device '{0}': use cpu, cuda or cuda:N")]
    BadDevice(String),
    /// CUDA is unavailable or failed.
    #[error(transparent)]
    Cuda(#[from] ops_cuda::CudaError),
    /// GPU tensors hold f32 only.
    #[error("GPU tensors are f32 only, got {0}: convert with .to_dtype(DType::F32) first")]
    GpuDtype(crate::dtype::DType),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A parameter or optimiser file does not match what is being loaded.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

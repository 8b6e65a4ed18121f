use thiserror::Error;

/// A CUDA driver error code, as returned by a `cu*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError {
    /// The `CUresult` value (e.g. 100 for `CUDA_ERROR_NO_DEVICE`).
    pub code: u32,
    /// The error's name in `cuda.h` (e.g. `CUDA_ERROR_NO_DEVICE`).
    pub name: String,
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (CUresult {})", self.name, self.code)
    }
}

impl std::error::Error for DriverError {}

/// Errors from the CUDA layer; each names the call or the operation that failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CudaError {
    /// The crate was built without the `cuda` feature.
    #[error(
        "CUDA support not compiled in: rebuild with `--features cuda` (cargo build --release --features cuda) on a machine with an NVIDIA driver"
    )]
    NotCompiled,
    /// The NVIDIA driver library (`libcuda.so.1`) could not be loaded, or it lacks an entry
    /// point this crate needs. Only asking for a device loads it: the rest of a program built
    /// with `--features cuda` runs without it.
    #[error(
        "no NVIDIA driver: {reason}. Install the NVIDIA driver (it provides libcuda.so.1; `nvidia-smi` should list the GPU), or run with --device cpu"
    )]
    NoDriver {
        /// What failed, e.g. `libcuda.so.1: cannot open shared object file: ...`.
        reason: String,
    },
    /// No usable device: the driver failed to initialise (no GPU, or a GPU it cannot use),
    /// or the ordinal is out of range.
    #[error(
        "no CUDA device found ({reason}); `nvidia-smi` lists the GPUs the driver sees, or run with --device cpu"
    )]
    NoDevice {
        /// What failed, e.g. `cuInit failed: CUDA_ERROR_NO_DEVICE (CUresult 100)`.
        reason: String,
    },
    /// A driver call failed.
    #[error("CUDA driver call {call} failed: {source}")]
    Driver {
        /// The failing call, e.g. `cuMemAlloc` or `cuLaunchKernel(sgemm_128x128)`.
        call: &'static str,
        /// The driver's error code.
        source: DriverError,
    },
    /// A kernel wrapper was given inconsistent shapes or lengths.
    #[error("{op}: {detail}")]
    Shape {
        /// The wrapper, e.g. `sgemm`.
        op: &'static str,
        /// What does not fit.
        detail: String,
    },
    /// Buffers from two different devices were mixed in one call.
    #[error("{op}: buffers live on different devices ({a} and {b})")]
    DeviceMismatch {
        /// The wrapper.
        op: &'static str,
        /// Ordinal of the first device.
        a: usize,
        /// Ordinal of the second device.
        b: usize,
    },
}

impl CudaError {
    pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        CudaError::Shape {
            op,
            detail: detail.into(),
        }
    }
}

use thiserror::Error;

/// A CUDA driver error code, as returned by a `cu*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError {
    /// The `CUresult` value (e.g. 100 for `CUDA_ERROR_NO_DEVICE`).
    pub code: u32,
    /// The name of the error (from cust's enum; no driver call is made to describe it).
    pub name: String,
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (CUresult {})", self.name, self.code)
    }
}

impl std::error::Error for DriverError {}

#[cfg(feature = "cuda")]
impl From<cust::error::CudaError> for DriverError {
    fn from(e: cust::error::CudaError) -> Self {
        // Debug, not Display: cust's Display calls cuGetErrorString, which fails (and would
        // panic inside `to_string`) when the stub libcuda is loaded.
        DriverError {
            code: e as u32,
            name: format!("{e:?}"),
        }
    }
}

/// Errors from the CUDA layer; each names the call or the operation that failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CudaError {
    /// The crate was built without the `cuda` feature.
    #[error(
        "CUDA support not compiled in: rebuild with `--features cuda` (cargo build --release --features cuda) on a machine with an NVIDIA driver"
    )]
    NotCompiled,
    /// No usable device: the driver is missing or failed to initialise, or the ordinal is
    /// out of range.
    #[error("no CUDA device found ({reason})")]
    NoDevice {
        /// What failed, e.g. `cuInit failed: NoDevice (CUresult 100)`.
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

#[cfg(feature = "cuda")]
pub(crate) trait DriverResultExt<T> {
    /// Names the failing call.
    fn call(self, call: &'static str) -> Result<T, CudaError>;
}

#[cfg(feature = "cuda")]
impl<T> DriverResultExt<T> for Result<T, cust::error::CudaError> {
    fn call(self, call: &'static str) -> Result<T, CudaError> {
        self.map_err(|e| CudaError::Driver {
            call,
            source: e.into(),
        })
    }
}

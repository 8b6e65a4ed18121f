//! `ops-cuda`: a library of CUDA kernels for `autograd` (no graph, no autodiff).
//!
//! The crate always builds. Without the `cuda` feature it carries no CUDA dependency and
//! [`CudaDevice::new`] returns [`CudaError::NotCompiled`], so `autograd` can name the CUDA
//! device type without any `cfg`.

use thiserror::Error;

/// Errors from the CUDA layer; each names the call that failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CudaError {
    /// The crate was built without the `cuda` feature.
    #[error(
        "CUDA support not compiled in: rebuild with `--features cuda` (cargo build --release --features cuda) on a machine with an NVIDIA driver"
    )]
    NotCompiled,
}

/// A handle to one CUDA device (context, stream, loaded modules, buffer pool).
///
/// Without the `cuda` feature this type cannot be constructed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaDevice {
    ordinal: usize,
}

impl CudaDevice {
    /// Opens device `ordinal`.
    ///
    /// ```
    /// let err = ops_cuda::CudaDevice::new(0).unwrap_err();
    /// assert!(err.to_string().contains("not compiled in"));
    /// ```
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        let _ = ordinal;
        Err(CudaError::NotCompiled)
    }

    /// The device's ordinal (0 for the first GPU).
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_feature_new_reports_not_compiled() {
        assert_eq!(CudaDevice::new(0), Err(CudaError::NotCompiled));
    }
}

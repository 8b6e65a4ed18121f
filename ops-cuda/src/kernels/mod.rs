//! Launch wrappers, grouped by kernel family. Each takes a [`CudaDevice`]
//! and buffers plus shapes, checks that lengths match the shapes, allocates outputs from the
//! device's pool and enqueues the kernels on the device's stream (no host synchronisation).
//!
//! Layouts: every tensor is a contiguous row-major `f32` buffer unless a wrapper says
//! otherwise; images are NCHW; indices and labels are `i32` buffers.

pub mod conv;
pub mod elementwise;
pub mod embedding;
pub mod gemm;
pub mod lstm;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod softmax;

use crate::buffer::same_device;
use crate::{CudaBuffer, CudaDevice, CudaError, DeviceScalar};

/// Checks that `buf` holds `expected` elements and lives on `dev`.
pub(crate) fn check_buf<T: DeviceScalar>(
    op: &'static str,
    what: &str,
    dev: &CudaDevice,
    buf: &CudaBuffer<T>,
    expected: usize,
) -> Result<(), CudaError> {
    same_device(op, dev, buf.device())?;
    if buf.len() != expected {
        return Err(CudaError::shape(
            op,
            format!("{what} has {} elements, expected {expected}", buf.len()),
        ));
    }
    Ok(())
}

/// Product of a shape, with overflow reported.
pub(crate) fn numel(op: &'static str, shape: &[usize]) -> Result<usize, CudaError> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| CudaError::shape(op, format!("shape {shape:?} overflows usize")))
}

/// Null device pointer for optional kernel arguments.
pub(crate) const NULL: crate::buffer::DevPtr = crate::buffer::DevPtr(0);

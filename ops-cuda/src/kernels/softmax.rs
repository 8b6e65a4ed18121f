//! Row-wise softmax, log-softmax and fused cross-entropy (`kernels/softmax.cu`) over a
//! contiguous `(rows, cols)` matrix (the last axis).

use super::check_buf;
use crate::device::{LaunchCfg, reduction_threads};
use crate::ptx::PtxModule;
use crate::shape::to_i32;
use crate::{CudaBuffer, CudaDevice, CudaError};

fn cfg(rows: usize, cols: usize) -> LaunchCfg {
    LaunchCfg::rows(rows, reduction_threads(cols, 256), 0)
}

/// `softmax` (or `log_softmax` when `log`) of each row.
pub fn softmax_forward(
    dev: &CudaDevice,
    x: &CudaBuffer,
    rows: usize,
    cols: usize,
    log: bool,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "softmax_forward";
    check_buf(OP, "x", dev, x, rows * cols)?;
    let y = CudaBuffer::uninit(dev, rows * cols)?;
    if rows * cols > 0 {
        let (r, c, l) = (
            to_i32(OP, "rows", rows)?,
            to_i32(OP, "cols", cols)?,
            i32::from(log),
        );
        unsafe {
            dev.launch(
                PtxModule::Softmax,
                "softmax_forward",
                cfg(rows, cols),
                &[&y.arg(), &x.arg(), &r, &c, &l],
            )?;
        }
    }
    Ok(y)
}

/// Backward of [`softmax_forward`] from `dy` and the forward output `y` (same `log` flag).
pub fn softmax_backward(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    y: &CudaBuffer,
    rows: usize,
    cols: usize,
    log: bool,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "softmax_backward";
    check_buf(OP, "dy", dev, dy, rows * cols)?;
    check_buf(OP, "y", dev, y, rows * cols)?;
    let dx = CudaBuffer::uninit(dev, rows * cols)?;
    if rows * cols > 0 {
        let (r, c, l) = (
            to_i32(OP, "rows", rows)?,
            to_i32(OP, "cols", cols)?,
            i32::from(log),
        );
        unsafe {
            dev.launch(
                PtxModule::Softmax,
                "softmax_backward",
                cfg(rows, cols),
                &[&dx.arg(), &dy.arg(), &y.arg(), &r, &c, &l],
            )?;
        }
    }
    Ok(dx)
}

/// Per-row cross-entropy `logsumexp(x[r]) - x[r, labels[r]]` of logits `x (rows, cols)`
/// with `i32` labels (`rows`); a negative label marks an ignored row (loss 0). The caller
/// reduces (mean or sum).
pub fn cross_entropy_forward(
    dev: &CudaDevice,
    logits: &CudaBuffer,
    labels: &CudaBuffer<i32>,
    rows: usize,
    cols: usize,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "cross_entropy_forward";
    check_buf(OP, "logits", dev, logits, rows * cols)?;
    check_buf(OP, "labels", dev, labels, rows)?;
    let loss = CudaBuffer::uninit(dev, rows)?;
    if rows > 0 {
        let (r, c) = (to_i32(OP, "rows", rows)?, to_i32(OP, "cols", cols)?);
        unsafe {
            dev.launch(
                PtxModule::Softmax,
                "cross_entropy_forward",
                cfg(rows, cols),
                &[&loss.arg(), &logits.arg(), &labels.arg(), &r, &c],
            )?;
        }
    }
    Ok(loss)
}

/// Gradient of the per-row losses with respect to the logits:
/// `(softmax(x[r]) - onehot(labels[r])) * dloss[r]` (ignored rows: 0).
pub fn cross_entropy_backward(
    dev: &CudaDevice,
    logits: &CudaBuffer,
    labels: &CudaBuffer<i32>,
    dloss: &CudaBuffer,
    rows: usize,
    cols: usize,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "cross_entropy_backward";
    check_buf(OP, "logits", dev, logits, rows * cols)?;
    check_buf(OP, "labels", dev, labels, rows)?;
    check_buf(OP, "dloss", dev, dloss, rows)?;
    let dx = CudaBuffer::uninit(dev, rows * cols)?;
    if rows * cols > 0 {
        let (r, c) = (to_i32(OP, "rows", rows)?, to_i32(OP, "cols", cols)?);
        unsafe {
            dev.launch(
                PtxModule::Softmax,
                "cross_entropy_backward",
                cfg(rows, cols),
                &[
                    &dx.arg(),
                    &logits.arg(),
                    &labels.arg(),
                    &dloss.arg(),
                    &r,
                    &c,
                ],
            )?;
        }
    }
    Ok(dx)
}

//! Embedding gather and scatter-add (`kernels/embedding.cu`). Table `(vocab, dim)`,
//! `i32` indices; an index outside `[0, vocab)` reads a zero row and receives no gradient.

use super::check_buf;
use crate::device::LaunchCfg;
use crate::ptx::PtxModule;
use crate::shape::to_i32;
use crate::{CudaBuffer, CudaDevice, CudaError};

/// `out[i, :] = table[idx[i], :]`; returns `(idx.len(), dim)`.
pub fn embedding_forward(
    dev: &CudaDevice,
    table: &CudaBuffer,
    idx: &CudaBuffer<i32>,
    vocab: usize,
    dim: usize,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "embedding_forward";
    check_buf(OP, "table", dev, table, vocab * dim)?;
    check_buf(OP, "idx", dev, idx, idx.len())?;
    let n = idx.len();
    let out = CudaBuffer::uninit(dev, n * dim)?;
    if n * dim > 0 {
        let (ni, v, d) = (
            to_i32(OP, "n", n)?,
            to_i32(OP, "vocab", vocab)?,
            to_i32(OP, "dim", dim)?,
        );
        unsafe {
            dev.launch(
                PtxModule::Embedding,
                "embedding_forward",
                LaunchCfg::linear(n * dim),
                &[&out.arg(), &table.arg(), &idx.arg(), &ni, &v, &d],
            )?;
        }
    }
    Ok(out)
}

/// `dtable[idx[i], :] += dout[i, :]` (atomicAdd; accumulates into `dtable`).
pub fn embedding_backward(
    dev: &CudaDevice,
    dtable: &mut CudaBuffer,
    dout: &CudaBuffer,
    idx: &CudaBuffer<i32>,
    vocab: usize,
    dim: usize,
) -> Result<(), CudaError> {
    const OP: &str = "embedding_backward";
    let n = idx.len();
    check_buf(OP, "dtable", dev, dtable, vocab * dim)?;
    check_buf(OP, "dout", dev, dout, n * dim)?;
    check_buf(OP, "idx", dev, idx, n)?;
    if n * dim > 0 {
        let (ni, v, d) = (
            to_i32(OP, "n", n)?,
            to_i32(OP, "vocab", vocab)?,
            to_i32(OP, "dim", dim)?,
        );
        unsafe {
            dev.launch(
                PtxModule::Embedding,
                "embedding_backward",
                LaunchCfg::linear(n * dim),
                &[&dtable.arg(), &dout.arg(), &idx.arg(), &ni, &v, &d],
            )?;
        }
    }
    Ok(())
}

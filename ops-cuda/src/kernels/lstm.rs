//! LSTM cell gate math (`kernels/lstm.cu`). The matmuls (`x W_ih^T + h W_hh^T + b`) are
//! SGEMMs done by the caller; these kernels take the pre-activations `gates (batch, 4*hidden)`
//! in the order i, f, g, o.

use super::{NULL, check_buf};
use crate::device::LaunchCfg;
use crate::ptx::PtxModule;
use crate::shape::to_i32;
use crate::{CudaBuffer, CudaDevice, CudaError};

/// Outputs of [`lstm_cell_forward`].
#[derive(Debug)]
pub struct LstmCellOut {
    /// New hidden state `(batch, hidden)`.
    pub h: CudaBuffer,
    /// New cell state `(batch, hidden)`.
    pub c: CudaBuffer,
    /// Activated gates `(batch, 4*hidden)` (i, f, g, o), saved for the backward pass.
    pub act: CudaBuffer,
}

/// `c = f*c_prev + i*g`, `h = o*tanh(c)` from the pre-activations.
pub fn lstm_cell_forward(
    dev: &CudaDevice,
    gates: &CudaBuffer,
    c_prev: &CudaBuffer,
    batch: usize,
    hidden: usize,
) -> Result<LstmCellOut, CudaError> {
    const OP: &str = "lstm_cell_forward";
    check_buf(OP, "gates", dev, gates, batch * 4 * hidden)?;
    check_buf(OP, "c_prev", dev, c_prev, batch * hidden)?;
    let h = CudaBuffer::uninit(dev, batch * hidden)?;
    let c = CudaBuffer::uninit(dev, batch * hidden)?;
    let act = CudaBuffer::uninit(dev, batch * 4 * hidden)?;
    if batch * hidden > 0 {
        let (b, hd) = (
            to_i32(OP, "batch", batch)?,
            to_i32(OP, "hidden", 4 * hidden)? / 4,
        );
        unsafe {
            dev.launch(
                PtxModule::Lstm,
                "lstm_cell_forward",
                LaunchCfg::linear(batch * hidden),
                &[
                    &h.arg(),
                    &c.arg(),
                    &act.arg(),
                    &gates.arg(),
                    &c_prev.arg(),
                    &b,
                    &hd,
                ],
            )?;
        }
    }
    Ok(LstmCellOut { h, c, act })
}

/// Backward of one cell: from `dh` (and `dc_next`, the gradient reaching `c` from the next
/// step, if any) returns `(dgates (batch, 4*hidden), dc_prev (batch, hidden))`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_backward(
    dev: &CudaDevice,
    dh: &CudaBuffer,
    dc_next: Option<&CudaBuffer>,
    act: &CudaBuffer,
    c: &CudaBuffer,
    c_prev: &CudaBuffer,
    batch: usize,
    hidden: usize,
) -> Result<(CudaBuffer, CudaBuffer), CudaError> {
    const OP: &str = "lstm_cell_backward";
    let bh = batch * hidden;
    check_buf(OP, "dh", dev, dh, bh)?;
    if let Some(d) = dc_next {
        check_buf(OP, "dc_next", dev, d, bh)?;
    }
    check_buf(OP, "act", dev, act, 4 * bh)?;
    check_buf(OP, "c", dev, c, bh)?;
    check_buf(OP, "c_prev", dev, c_prev, bh)?;
    let dgates = CudaBuffer::uninit(dev, 4 * bh)?;
    let dc_prev = CudaBuffer::uninit(dev, bh)?;
    if bh > 0 {
        let (b, hd) = (
            to_i32(OP, "batch", batch)?,
            to_i32(OP, "hidden", 4 * hidden)? / 4,
        );
        let dcn = dc_next.map_or(NULL, |d| d.arg());
        unsafe {
            dev.launch(
                PtxModule::Lstm,
                "lstm_cell_backward",
                LaunchCfg::linear(bh),
                &[
                    &dgates.arg(),
                    &dc_prev.arg(),
                    &dh.arg(),
                    &dcn,
                    &act.arg(),
                    &c.arg(),
                    &c_prev.arg(),
                    &b,
                    &hd,
                ],
            )?;
        }
    }
    Ok((dgates, dc_prev))
}

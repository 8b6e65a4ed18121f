//! The LSTM cell's gate math on the GPU (`ops-cuda`'s fused cell kernels). The op
//! (`ops::lstm`) composes these with GEMMs.

use super::{CudaStorage, check, wrap};
use ops_cuda::CudaBuffer;
use ops_cuda::kernels::lstm as k;

/// `(h', c', saved activations)` from `pre (B, 4H)` (gates i, f, g, o) and `c (B, H)`.
pub fn lstm_cell_forward(
    pre: &CudaStorage,
    c: &CudaStorage,
) -> (CudaStorage, CudaStorage, CudaBuffer) {
    const OP: &str = "lstm_gates";
    let (bs, hs) = (c.shape[0], c.shape[1]);
    let k::LstmCellOut { h, c: c_new, act } = check(
        OP,
        k::lstm_cell_forward(pre.device(), &pre.buf, &c.buf, bs, hs),
    );
    (wrap(h, &[bs, hs]), wrap(c_new, &[bs, hs]), act)
}

/// `(dpre (B, 4H), dc_prev (B, H))` from the gradients of `h'` and `c'`, the saved
/// activations, `c'` and `c`.
pub fn lstm_cell_backward(
    dh: &CudaStorage,
    dc: &CudaStorage,
    act: &CudaBuffer,
    c_new: &CudaStorage,
    c_prev: &CudaStorage,
) -> (CudaStorage, CudaStorage) {
    const OP: &str = "lstm_gates backward";
    let (bs, hs) = (c_prev.shape[0], c_prev.shape[1]);
    let (dpre, dcp) = check(
        OP,
        k::lstm_cell_backward(
            dh.device(),
            &dh.buf,
            Some(&dc.buf),
            act,
            &c_new.buf,
            &c_prev.buf,
            bs,
            hs,
        ),
    );
    (wrap(dpre, &[bs, 4 * hs]), wrap(dcp, &[bs, hs]))
}

//! The LSTM gate math on the GPU (`ops-cuda`'s fused cell kernels). The whole-sequence
//! layer is composed of these steps and GEMMs by the op itself.

use super::{buf, check, wrap};
use crate::tensor::Tensor;
use ops_cuda::CudaDevice;
use ops_cuda::kernels::lstm as k;
use std::sync::Arc;

/// `[h' | c']` as one `(B, 2H)` tensor from `pre (B, 4H)` (gates i, f, g, o) and `c (B, H)`,
/// with the fused backward (the caller splits it, as on the CPU).
pub fn lstm_gates_packed(dev: &CudaDevice, pre: &Tensor, c: &Tensor) -> Tensor {
    const OP: &str = "lstm_gates";
    let (bs, hs) = (c.shape()[0], c.shape()[1]);
    let k::LstmCellOut { h, c: c_new, act } = check(
        OP,
        k::lstm_cell_forward(dev, buf(OP, pre), buf(OP, c), bs, hs),
    );
    let h = Tensor::from_storage(wrap(h, &[bs, hs]));
    let c_new = Tensor::from_storage(wrap(c_new, &[bs, hs]));
    let packed = super::index::concat(dev, &[&h, &c_new], 1);
    let saved = Arc::new((act, c_new));
    let d = dev.clone();
    Tensor::from_op(
        packed,
        &[pre, c],
        "lstm_gates",
        move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            const OP: &str = "lstm_gates backward";
            let dh = Tensor::from_storage(super::index::narrow(&d, g, 1, 0, hs));
            let dc = Tensor::from_storage(super::index::narrow(&d, g, 1, hs, hs));
            let (dpre, dcp) = check(
                OP,
                k::lstm_cell_backward(
                    &d,
                    buf(OP, &dh),
                    Some(buf(OP, &dc)),
                    &saved.0,
                    buf(OP, &saved.1),
                    buf(OP, &inp[1]),
                    bs,
                    hs,
                ),
            );
            vec![
                Some(Tensor::from_storage(wrap(dpre, &[bs, 4 * hs]))),
                Some(Tensor::from_storage(wrap(dcp, &[bs, hs]))),
            ]
        },
    )
}

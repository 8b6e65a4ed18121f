//! The LSTM cell's gate math, dispatched by device and dtype: from pre-activations
//! `(B, 4H)` (gate order `i, f, g, o`) and the previous cell `(B, H)`, the packed
//! `[h' | c']` `(B, 2H)` in one pass, and its backward in one pass. The CPU kernel is
//! `kernels::cpu::lstm_gates`, the GPU one `kernels::cuda::lstm`.

use super::{Storage, all_cuda};
use crate::kernels::cpu::layout::standard;
use crate::kernels::cpu::lstm_gates as kernel;
use crate::kernels::cuda::{CudaStorage, index as gpu_index, lstm as gpu};
use ndarray::{ArrayD, IxDyn};
use ops_cuda::CudaBuffer;

/// What the backward of [`Storage::lstm_gates`] needs from its forward.
#[derive(Debug)]
pub enum LstmGatesSaved {
    /// CPU: the gate activations `(B, 4H)` and `tanh(c')` `(B, H)`.
    Cpu {
        /// The gate activations.
        acts: Storage,
        /// `tanh(c')`.
        tanh_c: Storage,
    },
    /// GPU: the kernel's saved activations and the new cell `c'`.
    Cuda {
        /// The saved activations.
        act: CudaBuffer,
        /// The new cell.
        c_new: CudaStorage,
    },
}

impl Storage {
    /// The fused LSTM gate math of pre-activations `self (B, 4H)` and the previous cell
    /// `c (B, H)` (shapes checked by the caller): `[h' | c']` packed as `(B, 2H)`, and what
    /// the backward needs.
    pub fn lstm_gates(&self, c: &Storage) -> (Storage, LstmGatesSaved) {
        const OP: &str = "lstm_gates";
        if let Some([pre, c]) = all_cuda(OP, [self, c]) {
            let (h, c_new, act) = gpu::lstm_cell_forward(pre, c);
            let packed = gpu_index::concat(&[&h, &c_new], 1);
            return (Storage::Cuda(packed), LstmGatesSaved::Cuda { act, c_new });
        }
        let (bs, hs) = (c.shape()[0], c.shape()[1]);
        let saved;
        let out = dispatch2!(OP, self, c, |p, cc| {
            let ps = standard(p);
            let cs = standard(cc);
            let mut h_out = vec![T::zero(); bs * hs];
            let mut c_out = vec![T::zero(); bs * hs];
            let mut acts = vec![T::zero(); bs * 4 * hs];
            let mut tanh_c = vec![T::zero(); bs * hs];
            kernel::lstm_gates_forward(
                &ps,
                &cs,
                hs,
                &mut h_out,
                &mut c_out,
                &mut acts,
                &mut tanh_c,
            );
            saved = Some(LstmGatesSaved::Cpu {
                acts: Storage::from_array(
                    ArrayD::from_shape_vec(IxDyn(&[bs, 4 * hs]), acts).unwrap(),
                ),
                tanh_c: Storage::from_array(
                    ArrayD::from_shape_vec(IxDyn(&[bs, hs]), tanh_c).unwrap(),
                ),
            });
            let mut packed = Vec::with_capacity(2 * bs * hs);
            for (hr, cr) in h_out.chunks(hs.max(1)).zip(c_out.chunks(hs.max(1))) {
                packed.extend_from_slice(hr);
                packed.extend_from_slice(cr);
            }
            ArrayD::from_shape_vec(IxDyn(&[bs, 2 * hs]), packed).unwrap()
        });
        (out, saved.expect("set by the forward"))
    }

    /// The gradients `(dpre (B, 4H), dc (B, H))` of [`Storage::lstm_gates`] from the
    /// gradient `self` of the packed `[h' | c']` output and the previous cell `c_prev`.
    pub fn lstm_gates_backward(
        &self,
        c_prev: &Storage,
        saved: &LstmGatesSaved,
    ) -> (Storage, Storage) {
        const OP: &str = "lstm_gates backward";
        let (bs, hs) = (c_prev.shape()[0], c_prev.shape()[1]);
        match saved {
            LstmGatesSaved::Cuda { act, c_new } => {
                let [g, cp] = all_cuda(OP, [self, c_prev])
                    .unwrap_or_else(|| panic!("{OP}: the gradient is not on the GPU"));
                let dh = gpu_index::narrow(g, 1, 0, hs);
                let dc = gpu_index::narrow(g, 1, hs, hs);
                let (dpre, dcp) = gpu::lstm_cell_backward(&dh, &dc, act, c_new, cp);
                (Storage::Cuda(dpre), Storage::Cuda(dcp))
            }
            LstmGatesSaved::Cpu { acts, tanh_c } => {
                let dc_prev;
                let dpre = dispatch3!("lstm_gates_backward", acts, tanh_c, self, |a, tc, gg| {
                    let cprev = c_prev.array::<T>().unwrap();
                    let cs = standard(cprev);
                    let gs = standard(gg);
                    let mut dh = Vec::with_capacity(bs * hs);
                    let mut dc = Vec::with_capacity(bs * hs);
                    for row in gs.chunks(2 * hs.max(1)) {
                        dh.extend_from_slice(&row[..hs]);
                        dc.extend_from_slice(&row[hs..]);
                    }
                    let mut dpre = vec![T::zero(); bs * 4 * hs];
                    let mut dcp = vec![T::zero(); bs * hs];
                    kernel::lstm_gates_backward(
                        &standard(a),
                        &cs,
                        &standard(tc),
                        &dh,
                        &dc,
                        hs,
                        &mut dpre,
                        &mut dcp,
                    );
                    dc_prev = Some(Storage::from_array(
                        ArrayD::from_shape_vec(IxDyn(&[bs, hs]), dcp).unwrap(),
                    ));
                    ArrayD::from_shape_vec(IxDyn(&[bs, 4 * hs]), dpre).unwrap()
                });
                (dpre, dc_prev.expect("set by the backward"))
            }
        }
    }
}

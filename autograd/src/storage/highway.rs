//! The fused highway update of the recurrent cell, `s = s_p + σ(c) (act(z) - s_p)` with
//! `[c | z] = pre`, and its backward: a CPU kernel (`kernels::cpu::highway`) without a GPU
//! twin, so on a GPU [`Storage::highway`] returns `None` and the op composes other ops.

use super::Storage;
use crate::kernels::cpu::highway::{self as kernel, HighwayAct};
use crate::kernels::cpu::layout::standard;
use ndarray::{ArrayD, IxDyn};

/// What the backward of [`Storage::highway`] needs: the gate `σ(c)` and `act(z)`, `(B, H)`.
#[derive(Debug)]
pub struct HighwaySaved {
    gate: Storage,
    act: Storage,
}

impl Storage {
    /// The highway update of the state `self (B, H)` by the pre-activations `pre (B, 2H)`
    /// (shapes checked by the caller), and what its backward needs; `None` on a GPU (no
    /// fused kernel there).
    pub fn highway(&self, pre: &Storage, act: HighwayAct) -> Option<(Storage, HighwaySaved)> {
        if self.is_cuda() || pre.is_cuda() {
            return None;
        }
        let (bs, h) = (self.shape()[0], self.shape()[1]);
        let saved;
        let out = dispatch2!("highway", self, pre, |s, p| {
            let ss = standard(s);
            let ps = standard(p);
            let mut out = vec![T::zero(); bs * h];
            let mut g = vec![T::zero(); bs * h];
            let mut a = vec![T::zero(); bs * h];
            kernel::highway_forward(&ss, &ps, h, act, &mut out, &mut g, &mut a);
            let wrap = |v| Storage::from_array(ArrayD::from_shape_vec(IxDyn(&[bs, h]), v).unwrap());
            saved = Some(HighwaySaved {
                gate: wrap(g),
                act: wrap(a),
            });
            ArrayD::from_shape_vec(IxDyn(&[bs, h]), out).unwrap()
        });
        Some((out, saved.expect("set by the forward")))
    }

    /// The gradients `(d state (B, H), d pre (B, 2H))` of [`Storage::highway`] from the
    /// output gradient `self` and the forward's state `sp`.
    pub fn highway_backward(
        &self,
        sp: &Storage,
        saved: &HighwaySaved,
        act: HighwayAct,
    ) -> (Storage, Storage) {
        let (bs, h) = (sp.shape()[0], sp.shape()[1]);
        let dsp_out;
        let dpre = dispatch3!(
            "highway_backward",
            self,
            &saved.gate,
            &saved.act,
            |gg, ga, aa| {
                let spv = sp.array::<T>().unwrap();
                let mut dsp = vec![T::zero(); bs * h];
                let mut dpre = vec![T::zero(); bs * 2 * h];
                kernel::highway_backward(
                    &standard(gg),
                    &standard(spv),
                    &standard(ga),
                    &standard(aa),
                    h,
                    act,
                    &mut dsp,
                    &mut dpre,
                );
                dsp_out = Some(Storage::from_array(
                    ArrayD::from_shape_vec(IxDyn(&[bs, h]), dsp).unwrap(),
                ));
                ArrayD::from_shape_vec(IxDyn(&[bs, 2 * h]), dpre).unwrap()
            }
        );
        (dpre, dsp_out.expect("set by the backward"))
    }
}

//! The highway update of the DARTS/ENAS/NAO recurrent cell as one op:
//! `s = s_p + σ(c) (act(z) - s_p)` with `[c | z] = pre`.
//!
//! [`highway`] runs the fused kernel ([`crate::kernels::cpu::highway`]) with a
//! hand-written backward; [`highway_composed`] builds the same function from primitives
//! and is the reference that the fused op is checked against.

pub use crate::kernels::cpu::highway::HighwayAct;

use crate::tensor::Tensor;

fn check_shapes(sp: &Tensor, pre: &Tensor) {
    assert!(
        sp.ndim() == 2
            && pre.ndim() == 2
            && sp.shape()[0] == pre.shape()[0]
            && pre.shape()[1] == 2 * sp.shape()[1],
        "highway: state {:?} does not fit pre-activations {:?} (need (B, H) and (B, 2H))",
        sp.shape(),
        pre.shape()
    );
}

/// Applies `act` (differentiable, from primitives).
pub fn apply_act(z: &Tensor, act: HighwayAct) -> Tensor {
    match act {
        HighwayAct::Tanh => z.tanh(),
        HighwayAct::Relu => z.relu(),
        HighwayAct::Sigmoid => z.sigmoid(),
        HighwayAct::Identity => z.clone(),
    }
}

/// The highway update built from primitive ops (the reference for [`highway`]).
/// `sp: (B, H)`, `pre: (B, 2H)` -> `(B, H)`.
pub fn highway_composed(sp: &Tensor, pre: &Tensor, act: HighwayAct) -> Tensor {
    check_shapes(sp, pre);
    let h = sp.shape()[1];
    let g = pre.narrow(1, 0, h).sigmoid();
    let a = apply_act(&pre.narrow(1, h, h), act);
    sp + &g.mul(&(&a - sp))
}

/// The fused highway update `s = s_p + σ(c) (act(z) - s_p)`, `[c | z] = pre`:
/// `sp: (B, H)`, `pre: (B, 2H)` -> `(B, H)`. One pass forward (saving `σ(c)` and
/// `act(z)`), one pass backward. Panics naming both shapes when they do not fit.
///
/// ```
/// use autograd::Tensor;
/// use autograd::ops::highway::{HighwayAct, highway};
/// let sp = Tensor::from_vec(vec![1.0f32, -1.0], &[1, 2]);
/// // c = 0 gives the gate 1/2; identity activation of z = 3, 5.
/// let pre = Tensor::from_vec(vec![0.0f32, 0.0, 3.0, 5.0], &[1, 4]);
/// assert_eq!(highway(&sp, &pre, HighwayAct::Identity).to_vec::<f32>(), vec![2.0, 2.0]);
/// ```
pub fn highway(sp: &Tensor, pre: &Tensor, act: HighwayAct) -> Tensor {
    check_shapes(sp, pre);
    let Some((out, saved)) = sp.storage().highway(pre.storage(), act) else {
        return highway_composed(sp, pre, act);
    };
    Tensor::from_op(
        out,
        &[sp, pre],
        "highway",
        move |inp: &[Tensor], _: &Tensor, grad: &Tensor| {
            let (dpre, dsp) = grad
                .storage()
                .highway_backward(inp[0].storage(), &saved, act);
            vec![
                Some(Tensor::from_storage(dsp)),
                Some(Tensor::from_storage(dpre)),
            ]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    const ACTS: [HighwayAct; 4] = [
        HighwayAct::Tanh,
        HighwayAct::Relu,
        HighwayAct::Sigmoid,
        HighwayAct::Identity,
    ];

    /// Pre-activations whose `z` half stays at least 0.05 away from relu's kink.
    fn pre_away_from_zero(b: usize, h: usize, seed: u64) -> Tensor {
        let v: Vec<f64> = rand_f64(&[b, 2 * h], seed)
            .to_vec::<f64>()
            .into_iter()
            .map(|x| if x.abs() < 0.05 { x + 0.1 } else { x })
            .collect();
        Tensor::from_vec(v, &[b, 2 * h])
    }

    #[test]
    fn gradcheck_fused_highway_every_activation() {
        for act in ACTS {
            let r = gradcheck(
                |x| highway(&x[0], &x[1], act),
                &[rand_f64(&[3, 4], 1), pre_away_from_zero(3, 4, 2)],
            );
            assert!(r.is_ok(), "{act:?}: {r:?}");
        }
    }

    #[test]
    fn fused_matches_composed_forward_and_backward() {
        // Large enough (B*H >= 2^14) to take the parallel path too.
        for (b, h) in [(3, 5), (96, 200)] {
            for act in ACTS {
                let sp = rand_f64(&[b, h], 3).requires_grad();
                let pre = pre_away_from_zero(b, h, 4).requires_grad();
                let w = rand_f64(&[b, h], 5);
                let y1 = highway(&sp, &pre, act);
                let y2 = highway_composed(&sp, &pre, act);
                assert_close(&y1, &y2, 1e-12, 1e-12);
                let g1 = y1.mul(&w).sum().backward();
                let g2 = y2.mul(&w).sum().backward();
                for t in [&sp, &pre] {
                    assert_close(g1.get(t).unwrap(), g2.get(t).unwrap(), 1e-12, 1e-12);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn shape_mismatch_names_shapes() {
        let _ = highway(
            &rand_f64(&[2, 3], 1),
            &rand_f64(&[2, 5], 2),
            HighwayAct::Tanh,
        );
    }
}

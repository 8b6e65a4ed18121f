//! Elementwise unary math and activations: `exp`, `log`, `sqrt`, `powf`, `square`, `abs`,
//! `relu`, `tanh`, `sigmoid`, `clamp`.
//!
//! Backward rules use the saved output where that is cheaper (`exp`, `tanh`, `sigmoid`,
//! `sqrt`). Kinks (`relu` at 0, `abs` at 0, `clamp` at its bounds) take the one-sided
//! derivative: 0 for relu at 0, 0 for abs at 0, 1 inside `[lo, hi]` for clamp.

use crate::graph::Backward;
use crate::storage::Unary;
use crate::tensor::Tensor;

impl Tensor {
    /// `op(self)` elementwise, recorded with `backward`.
    fn unary(&self, op: Unary, backward: impl Backward + 'static) -> Tensor {
        Tensor::from_op(self.storage().unary(op), &[self], op.name(), backward)
    }

    /// `e^x`.
    pub fn exp(&self) -> Tensor {
        self.unary(Unary::Exp, |_: &[Tensor], out: &Tensor, g: &Tensor| {
            vec![Some(g.mul(out))]
        })
    }

    /// Natural logarithm.
    pub fn log(&self) -> Tensor {
        self.unary(Unary::Log, |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            vec![Some(g.div(&inp[0]))]
        })
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        self.unary(Unary::Sqrt, |_: &[Tensor], out: &Tensor, g: &Tensor| {
            vec![Some(g.div(&out.mul_scalar(2.0)))]
        })
    }

    /// `x^p` for a constant exponent `p`.
    pub fn powf(&self, p: f64) -> Tensor {
        self.unary(
            Unary::Powf(p),
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                vec![Some(g.mul(&inp[0].powf(p - 1.0).mul_scalar(p)))]
            },
        )
    }

    /// `x^2`.
    pub fn square(&self) -> Tensor {
        self.unary(Unary::Square, |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            vec![Some(g.mul(&inp[0]).mul_scalar(2.0))]
        })
    }

    /// `|x|` (gradient 0 at 0).
    pub fn abs(&self) -> Tensor {
        self.unary(Unary::Abs, fused_backward(Unary::Abs))
    }

    /// `max(x, 0)` (gradient 0 at 0).
    pub fn relu(&self) -> Tensor {
        self.unary(Unary::Relu, fused_backward(Unary::Relu))
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor {
        self.unary(Unary::Tanh, fused_backward(Unary::Tanh))
    }

    /// Logistic sigmoid `1 / (1 + e^-x)` (computed stably for large |x|).
    pub fn sigmoid(&self) -> Tensor {
        self.unary(Unary::Sigmoid, fused_backward(Unary::Sigmoid))
    }

    /// Clamps into `[lo, hi]`; the gradient passes where `lo <= x <= hi`.
    pub fn clamp(&self, lo: f64, hi: f64) -> Tensor {
        assert!(lo <= hi, "clamp: lo {lo} > hi {hi}");
        let op = Unary::Clamp { lo, hi };
        self.unary(op, fused_backward(op))
    }
}

/// The backward rule of the ops whose derivative is one kernel
/// ([`crate::Storage::unary_backward`]): `dx = op'(x, y) * g`.
fn fused_backward(op: Unary) -> impl Backward + 'static {
    move |inp: &[Tensor], out: &Tensor, g: &Tensor| {
        let dx = g
            .storage()
            .unary_backward(op, inp[0].storage(), out.storage());
        vec![Some(Tensor::from_storage(dx))]
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn gradcheck_smooth_unary_ops() {
        let x = rand_f64(&[3, 4], 10);
        let pos = x.abs().add_scalar(0.5); // log, sqrt, powf need x > 0
        gradcheck(|t| t[0].exp(), &[x.clone()]).unwrap();
        gradcheck(|t| t[0].tanh(), &[x.clone()]).unwrap();
        gradcheck(|t| t[0].sigmoid(), &[x.mul_scalar(4.0)]).unwrap();
        gradcheck(|t| t[0].square(), &[x.clone()]).unwrap();
        gradcheck(|t| t[0].log(), &[pos.clone()]).unwrap();
        gradcheck(|t| t[0].sqrt(), &[pos.clone()]).unwrap();
        gradcheck(|t| t[0].powf(-1.5), &[pos]).unwrap();
    }

    /// Kinked ops are checked at points at least 0.05 away from their kinks, where central
    /// differences with step 1e-6 never straddle a kink; the tolerance stays 1e-6.
    #[test]
    fn gradcheck_kinked_unary_ops_away_from_kinks() {
        let x = Tensor::from_vec(vec![-1.3, -0.4, 0.2, 0.7, 1.9, -0.05, 0.05, 2.5], &[2, 4]);
        gradcheck(|t| t[0].relu(), &[x.clone()]).unwrap();
        gradcheck(|t| t[0].abs(), &[x.clone()]).unwrap();
        gradcheck(|t| t[0].clamp(-0.5, 1.0), &[x]).unwrap();
    }

    #[test]
    fn sigmoid_is_stable_for_large_inputs() {
        let x = Tensor::from_vec(vec![-1000.0f32, 0.0, 1000.0], &[3]);
        let y = x.sigmoid().to_vec::<f32>();
        assert!((0.0..1e-37).contains(&y[0]), "{y:?}");
        assert_eq!(&y[1..], &[0.5, 1.0]);
        let x = Tensor::from_vec(vec![-1000.0f64, 0.0, 1000.0], &[3]);
        assert_eq!(x.sigmoid().to_vec::<f64>(), vec![0.0, 0.5, 1.0]);
    }
}

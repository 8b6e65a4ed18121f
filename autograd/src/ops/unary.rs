//! Elementwise unary math and activations: `exp`, `log`, `sqrt`, `powf`, `square`, `abs`,
//! `relu`, `tanh`, `sigmoid`, `clamp`.
//!
//! Backward rules use the saved output where that is cheaper (`exp`, `tanh`, `sigmoid`,
//! `sqrt`). Kinks (`relu` at 0, `abs` at 0, `clamp` at its bounds) take the one-sided
//! derivative: 0 for relu at 0, 0 for abs at 0, 1 inside `[lo, hi]` for clamp.

use crate::dispatch;
use crate::kernels::cuda::{self, elementwise as gpu, elementwise::UnaryOp};
use crate::ops::elementwise::{map, map_slices};
use crate::tensor::Tensor;

impl Tensor {
    /// `e^x`.
    pub fn exp(&self) -> Tensor {
        let gpu_out =
            cuda::device_of("exp", &[self]).map(|d| gpu::unary(&d, "exp", UnaryOp::Exp, self));
        let out =
            gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map_slices(a, T::exp_inplace)));
        Tensor::from_op(
            out,
            &[self],
            "exp",
            |_: &[Tensor], out: &Tensor, g: &Tensor| vec![Some(g.mul(out))],
        )
    }

    /// Natural logarithm.
    pub fn log(&self) -> Tensor {
        let gpu_out =
            cuda::device_of("log", &[self]).map(|d| gpu::unary(&d, "log", UnaryOp::Log, self));
        let out = gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| x.ln())));
        Tensor::from_op(
            out,
            &[self],
            "log",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.div(&inp[0]))],
        )
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        let gpu_out =
            cuda::device_of("sqrt", &[self]).map(|d| gpu::unary(&d, "sqrt", UnaryOp::Sqrt, self));
        let out = gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| x.sqrt())));
        Tensor::from_op(
            out,
            &[self],
            "sqrt",
            |_: &[Tensor], out: &Tensor, g: &Tensor| vec![Some(g.div(&out.mul_scalar(2.0)))],
        )
    }

    /// `x^p` for a constant exponent `p`.
    pub fn powf(&self, p: f64) -> Tensor {
        let gpu_out = cuda::device_of("powf", &[self])
            .map(|d| gpu::unary(&d, "powf", UnaryOp::Powf(p as f32), self));
        let out =
            gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| x.powf(T::of(p)))));
        Tensor::from_op(
            out,
            &[self],
            "powf",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                vec![Some(g.mul(&inp[0].powf(p - 1.0).mul_scalar(p)))]
            },
        )
    }

    /// `x^2`.
    pub fn square(&self) -> Tensor {
        let gpu_out = cuda::device_of("square", &[self])
            .map(|d| gpu::unary(&d, "square", UnaryOp::Square, self));
        let out = gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| x * x)));
        Tensor::from_op(
            out,
            &[self],
            "square",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.mul(&inp[0]).mul_scalar(2.0))],
        )
    }

    /// `|x|` (gradient 0 at 0).
    pub fn abs(&self) -> Tensor {
        let gpu_out =
            cuda::device_of("abs", &[self]).map(|d| gpu::unary(&d, "abs", UnaryOp::Abs, self));
        let out = gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| x.abs())));
        Tensor::from_op(
            out,
            &[self],
            "abs",
            |inp: &[Tensor], out: &Tensor, g: &Tensor| {
                if let Some(d) = cuda::device_of("abs backward", &[g, &inp[0]]) {
                    return vec![Some(gpu::unary_backward(
                        &d,
                        "abs backward",
                        UnaryOp::Abs,
                        g,
                        &inp[0],
                        out,
                    ))];
                }
                let sign = Tensor::from_storage(dispatch!(inp[0].storage(), |a| map(a, |x| {
                    if x > T::zero() {
                        T::one()
                    } else if x < T::zero() {
                        -T::one()
                    } else {
                        T::zero()
                    }
                })));
                vec![Some(g.mul(&sign))]
            },
        )
    }

    /// `max(x, 0)` (gradient 0 at 0).
    pub fn relu(&self) -> Tensor {
        let gpu_out =
            cuda::device_of("relu", &[self]).map(|d| gpu::unary(&d, "relu", UnaryOp::Relu, self));
        let out = gpu_out.unwrap_or_else(|| {
            dispatch!(self.storage(), |a| map(a, |x| if x > T::zero() {
                x
            } else {
                T::zero()
            }))
        });
        Tensor::from_op(
            out,
            &[self],
            "relu",
            |inp: &[Tensor], out: &Tensor, g: &Tensor| {
                if let Some(d) = cuda::device_of("relu backward", &[g, out]) {
                    return vec![Some(gpu::unary_backward(
                        &d,
                        "relu backward",
                        UnaryOp::Relu,
                        g,
                        &inp[0],
                        out,
                    ))];
                }
                let out_g =
                    crate::dispatch2!("relu_backward", out.storage(), g.storage(), |o, gg| {
                        crate::ops::elementwise::zip_broadcast("relu_backward", o, gg, |o, gg| {
                            if o > T::zero() { gg } else { T::zero() }
                        })
                    });
                vec![Some(Tensor::from_storage(out_g))]
            },
        )
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor {
        let gpu_out =
            cuda::device_of("tanh", &[self]).map(|d| gpu::unary(&d, "tanh", UnaryOp::Tanh, self));
        let out = gpu_out
            .unwrap_or_else(|| dispatch!(self.storage(), |a| map_slices(a, T::tanh_inplace)));
        Tensor::from_op(
            out,
            &[self],
            "tanh",
            |inp: &[Tensor], out: &Tensor, g: &Tensor| {
                if let Some(d) = cuda::device_of("tanh backward", &[g, out]) {
                    return vec![Some(gpu::unary_backward(
                        &d,
                        "tanh backward",
                        UnaryOp::Tanh,
                        g,
                        &inp[0],
                        out,
                    ))];
                }
                let d = crate::dispatch2!("tanh_backward", out.storage(), g.storage(), |o, gg| {
                    crate::ops::elementwise::zip_broadcast("tanh_backward", o, gg, |o, gg| {
                        gg * (T::one() - o * o)
                    })
                });
                vec![Some(Tensor::from_storage(d))]
            },
        )
    }

    /// Logistic sigmoid `1 / (1 + e^-x)` (computed stably for large |x|).
    pub fn sigmoid(&self) -> Tensor {
        let gpu_out = cuda::device_of("sigmoid", &[self])
            .map(|d| gpu::unary(&d, "sigmoid", UnaryOp::Sigmoid, self));
        let out = gpu_out
            .unwrap_or_else(|| dispatch!(self.storage(), |a| map_slices(a, T::sigmoid_inplace)));
        Tensor::from_op(
            out,
            &[self],
            "sigmoid",
            |inp: &[Tensor], out: &Tensor, g: &Tensor| {
                if let Some(d) = cuda::device_of("sigmoid backward", &[g, out]) {
                    return vec![Some(gpu::unary_backward(
                        &d,
                        "sigmoid backward",
                        UnaryOp::Sigmoid,
                        g,
                        &inp[0],
                        out,
                    ))];
                }
                let d =
                    crate::dispatch2!("sigmoid_backward", out.storage(), g.storage(), |o, gg| {
                        crate::ops::elementwise::zip_broadcast(
                            "sigmoid_backward",
                            o,
                            gg,
                            |o, gg| gg * o * (T::one() - o),
                        )
                    });
                vec![Some(Tensor::from_storage(d))]
            },
        )
    }

    /// Clamps into `[lo, hi]`; the gradient passes where `lo <= x <= hi`.
    pub fn clamp(&self, lo: f64, hi: f64) -> Tensor {
        assert!(lo <= hi, "clamp: lo {lo} > hi {hi}");
        let clamp_op = UnaryOp::Clamp {
            min: lo as f32,
            max: hi as f32,
        };
        let gpu_out =
            cuda::device_of("clamp", &[self]).map(|d| gpu::unary(&d, "clamp", clamp_op, self));
        let out = gpu_out.unwrap_or_else(|| {
            dispatch!(self.storage(), |a| map(a, |x| x
                .max(T::of(lo))
                .min(T::of(hi))))
        });
        Tensor::from_op(
            out,
            &[self],
            "clamp",
            move |inp: &[Tensor], out: &Tensor, g: &Tensor| {
                if let Some(d) = cuda::device_of("clamp backward", &[g, out]) {
                    return vec![Some(gpu::unary_backward(
                        &d,
                        "clamp backward",
                        clamp_op,
                        g,
                        &inp[0],
                        out,
                    ))];
                }
                let d =
                    crate::dispatch2!("clamp_backward", inp[0].storage(), g.storage(), |x, gg| {
                        crate::ops::elementwise::zip_broadcast("clamp_backward", x, gg, |x, gg| {
                            if x >= T::of(lo) && x <= T::of(hi) {
                                gg
                            } else {
                                T::zero()
                            }
                        })
                    });
                vec![Some(Tensor::from_storage(d))]
            },
        )
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

//! Binary elementwise arithmetic with numpy-style broadcasting: `add`, `sub`, `mul`, `div`,
//! `maximum`, `minimum`, and their scalar forms.
//!
//! **This file is the model for adding an op**: the public function computes the output
//! storage with a CPU kernel, then `Tensor::from_op` records the inputs and the backward
//! rule; the gradient check sits in the tests right below.
//!
//! Broadcasting follows numpy: shapes are aligned on the right, and each dimension must be
//! equal or 1. Anything else panics with both shapes. The backward rule sums the output
//! gradient back down to each input's shape ([`Tensor::sum_to_shape`]).

use crate::dtype::Float;
use crate::kernels::cuda::{self, elementwise as gpu};
use crate::tensor::Tensor;
use crate::{dispatch, dispatch2};
use ndarray::{ArrayD, Axis, IxDyn, Zip};

/// The broadcast shape of `a` and `b` ([`ops_cuda::shape::broadcast_shape`], shared with
/// the GPU kernels); panics naming both shapes (and `op`) when they are incompatible.
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    ops_cuda::shape::broadcast_shape(a, b)
        .unwrap_or_else(|| panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"))
}

/// Elementwise `f(a, b)` with broadcasting (CPU kernel). Large outputs run in parallel.
pub fn zip_broadcast<T: Float>(
    op: &str,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> ArrayD<T> {
    let shape = broadcast_shape(op, a.shape(), b.shape());
    let av = a.broadcast(IxDyn(&shape)).unwrap();
    let bv = b.broadcast(IxDyn(&shape)).unwrap();
    if shape.iter().product::<usize>() >= PAR_THRESHOLD {
        Zip::from(&av).and(&bv).par_map_collect(|&x, &y| f(x, y))
    } else {
        Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y))
    }
}

/// Elementwise `f(a)` (CPU kernel). Large arrays run in parallel.
pub fn map<T: Float>(a: &ArrayD<T>, f: impl Fn(T) -> T + Sync + Send) -> ArrayD<T> {
    if a.len() >= PAR_THRESHOLD {
        Zip::from(a).par_map_collect(|&x| f(x))
    } else {
        a.mapv(f)
    }
}

/// A row-major copy of `a` transformed in place by a slice function (the vectorised
/// `T::exp_inplace` and friends); large arrays are split across rayon.
pub fn map_slices<T: Float>(a: &ArrayD<T>, f: impl Fn(&mut [T]) + Sync + Send) -> ArrayD<T> {
    use rayon::prelude::*;
    let mut v = crate::kernels::cpu::layout::to_row_major(&a.view());
    if v.len() >= PAR_THRESHOLD {
        v.par_chunks_mut(crate::kernels::cpu::par::ELEMENTWISE_CHUNK)
            .for_each(&f);
    } else {
        f(&mut v);
    }
    ArrayD::from_shape_vec(a.raw_dim(), v).unwrap()
}

/// Arrays with at least this many elements are processed with rayon
/// ([`crate::kernels::cpu::par::ELEMENTWISE_MIN`]).
const PAR_THRESHOLD: usize = crate::kernels::cpu::par::ELEMENTWISE_MIN;

/// Sums `a` down to `shape` (the adjoint of broadcasting `shape` up to `a.shape()`).
pub fn sum_to_shape<T: Float>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    if a.shape() == shape {
        return a.clone();
    }
    let lead = a.ndim() - shape.len();
    let mut r = a.clone();
    for _ in 0..lead {
        r = r.sum_axis(Axis(0));
    }
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && r.shape()[i] != 1 {
            r = r.sum_axis(Axis(i)).insert_axis(Axis(i));
        }
    }
    assert_eq!(
        r.shape(),
        shape,
        "sum_to_shape: cannot reduce {:?} to {:?}",
        a.shape(),
        shape
    );
    r
}

impl Tensor {
    /// Sums this tensor down to `shape` (undoes broadcasting). Differentiable.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let target = shape.to_vec();
        let out = match cuda::device_of("sum_to_shape", &[self]) {
            Some(d) => gpu::sum_to_shape(&d, self, &target),
            None => dispatch!(self.storage(), |a| sum_to_shape(a, &target)),
        };
        Tensor::from_op(
            out,
            &[self],
            "sum_to_shape",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.broadcast_to(inp[0].shape()))],
        )
    }

    /// Broadcasts this tensor up to `shape` (materialised). Differentiable.
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let s = broadcast_shape("broadcast_to", self.shape(), shape);
        assert_eq!(
            s,
            shape,
            "broadcast_to: cannot broadcast {:?} to {:?}",
            self.shape(),
            shape
        );
        let out = match cuda::device_of("broadcast_to", &[self]) {
            Some(d) => gpu::broadcast_to(&d, self, shape),
            None => dispatch!(self.storage(), |a| a
                .broadcast(IxDyn(shape))
                .unwrap()
                .to_owned()),
        };
        Tensor::from_op(
            out,
            &[self],
            "broadcast_to",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.sum_to_shape(inp[0].shape()))],
        )
    }

    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Tensor) -> Tensor {
        let gpu_out = cuda::device_of("add", &[self, other])
            .map(|d| gpu::binary(&d, "add", gpu::BinaryOp::Add, self, other));
        let out = gpu_out.unwrap_or_else(|| {
            dispatch2!(
                "add",
                self.storage(),
                other.storage(),
                |a, b| zip_broadcast("add", a, b, |x, y| x + y)
            )
        });
        Tensor::from_op(
            out,
            &[self, other],
            "add",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                vec![
                    Some(g.sum_to_shape(inp[0].shape())),
                    Some(g.sum_to_shape(inp[1].shape())),
                ]
            },
        )
    }

    /// `self - other`, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        let gpu_out = cuda::device_of("sub", &[self, other])
            .map(|d| gpu::binary(&d, "sub", gpu::BinaryOp::Sub, self, other));
        let out = gpu_out.unwrap_or_else(|| {
            dispatch2!(
                "sub",
                self.storage(),
                other.storage(),
                |a, b| zip_broadcast("sub", a, b, |x, y| x - y)
            )
        });
        Tensor::from_op(
            out,
            &[self, other],
            "sub",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                vec![
                    Some(g.sum_to_shape(inp[0].shape())),
                    Some(g.neg().sum_to_shape(inp[1].shape())),
                ]
            },
        )
    }

    /// `self * other` (elementwise), broadcasting.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        let gpu_out = cuda::device_of("mul", &[self, other])
            .map(|d| gpu::binary(&d, "mul", gpu::BinaryOp::Mul, self, other));
        let out = gpu_out.unwrap_or_else(|| {
            dispatch2!(
                "mul",
                self.storage(),
                other.storage(),
                |a, b| zip_broadcast("mul", a, b, |x, y| x * y)
            )
        });
        Tensor::from_op(
            out,
            &[self, other],
            "mul",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                vec![
                    inp[0]
                        .is_tracked()
                        .then(|| g.mul(&inp[1]).sum_to_shape(inp[0].shape())),
                    inp[1]
                        .is_tracked()
                        .then(|| g.mul(&inp[0]).sum_to_shape(inp[1].shape())),
                ]
            },
        )
    }

    /// `self / other` (elementwise), broadcasting.
    pub fn div(&self, other: &Tensor) -> Tensor {
        let gpu_out = cuda::device_of("div", &[self, other])
            .map(|d| gpu::binary(&d, "div", gpu::BinaryOp::Div, self, other));
        let out = gpu_out.unwrap_or_else(|| {
            dispatch2!(
                "div",
                self.storage(),
                other.storage(),
                |a, b| zip_broadcast("div", a, b, |x, y| x / y)
            )
        });
        Tensor::from_op(
            out,
            &[self, other],
            "div",
            |inp: &[Tensor], out: &Tensor, g: &Tensor| {
                let gb = g.div(&inp[1]);
                vec![
                    inp[0].is_tracked().then(|| gb.sum_to_shape(inp[0].shape())),
                    inp[1]
                        .is_tracked()
                        .then(|| gb.mul(out).neg().sum_to_shape(inp[1].shape())),
                ]
            },
        )
    }

    /// Elementwise maximum, broadcasting. At ties the gradient goes to `self`.
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        let gpu_out = cuda::device_of("maximum", &[self, other])
            .map(|d| gpu::binary(&d, "maximum", gpu::BinaryOp::Maximum, self, other));
        let out = gpu_out.unwrap_or_else(|| {
            dispatch2!("maximum", self.storage(), other.storage(), |a, b| {
                zip_broadcast("maximum", a, b, |x, y| if x >= y { x } else { y })
            })
        });
        Tensor::from_op(
            out,
            &[self, other],
            "maximum",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let pick = inp[0].ge_mask(&inp[1]);
                vec![
                    Some(g.mul(&pick).sum_to_shape(inp[0].shape())),
                    Some(g.mul(&pick.one_minus()).sum_to_shape(inp[1].shape())),
                ]
            },
        )
    }

    /// Elementwise minimum, broadcasting. At ties the gradient goes to `self`.
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.neg().maximum(&other.neg()).neg()
    }

    /// 1.0 where `self >= other`, else 0.0 (a constant; broadcasting).
    pub fn ge_mask(&self, other: &Tensor) -> Tensor {
        if let Some(d) = cuda::device_of("ge_mask", &[self, other]) {
            return Tensor::from_storage(gpu::binary(
                &d,
                "ge_mask",
                gpu::BinaryOp::Ge,
                self,
                other,
            ));
        }
        let out = dispatch2!("ge_mask", self.storage(), other.storage(), |a, b| {
            zip_broadcast(
                "ge_mask",
                a,
                b,
                |x, y| if x >= y { T::one() } else { T::zero() },
            )
        });
        Tensor::from_storage(out)
    }

    /// `1 - self` for masks (a constant).
    fn one_minus(&self) -> Tensor {
        if let Some(d) = cuda::device_of("one_minus", &[self]) {
            let neg = Tensor::from_storage(gpu::unary(&d, "one_minus", gpu::UnaryOp::Neg, self));
            return Tensor::from_storage(gpu::unary(
                &d,
                "one_minus",
                gpu::UnaryOp::AddScalar(1.0),
                &neg,
            ));
        }
        Tensor::from_storage(dispatch!(self.storage(), |a| a.mapv(|v| T::one() - v)))
    }

    /// `self + c`.
    pub fn add_scalar(&self, c: f64) -> Tensor {
        let gpu_out = cuda::device_of("add_scalar", &[self])
            .map(|d| gpu::unary(&d, "add_scalar", gpu::UnaryOp::AddScalar(c as f32), self));
        let out =
            gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| x + T::of(c))));
        Tensor::from_op(
            out,
            &[self],
            "add_scalar",
            |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.clone())],
        )
    }

    /// `self * c`.
    pub fn mul_scalar(&self, c: f64) -> Tensor {
        let gpu_out = cuda::device_of("mul_scalar", &[self])
            .map(|d| gpu::unary(&d, "mul_scalar", gpu::UnaryOp::MulScalar(c as f32), self));
        let out =
            gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| x * T::of(c))));
        Tensor::from_op(
            out,
            &[self],
            "mul_scalar",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.mul_scalar(c))],
        )
    }

    /// `-self`.
    pub fn neg(&self) -> Tensor {
        let gpu_out =
            cuda::device_of("neg", &[self]).map(|d| gpu::unary(&d, "neg", gpu::UnaryOp::Neg, self));
        let out = gpu_out.unwrap_or_else(|| dispatch!(self.storage(), |a| map(a, |x| -x)));
        Tensor::from_op(
            out,
            &[self],
            "neg",
            |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.neg())],
        )
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $fn:ident) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.$fn(rhs)
            }
        }
        impl std::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                (&self).$fn(&rhs)
            }
        }
        impl std::ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                (&self).$fn(rhs)
            }
        }
        impl std::ops::$trait<Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                self.$fn(&rhs)
            }
        }
    };
}

binary_operator!(Add, add, add);
binary_operator!(Sub, sub, sub);
binary_operator!(Mul, mul, mul);
binary_operator!(Div, div, div);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl std::ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn broadcasting_forward_matches_by_hand() {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3]);
        assert_eq!(
            (&a + &b).to_vec::<f32>(),
            vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
        );
        let c = Tensor::from_vec(vec![2.0f32, 3.0], &[2, 1]);
        assert_eq!(
            (&a * &c).to_vec::<f32>(),
            vec![2.0, 4.0, 6.0, 12.0, 15.0, 18.0]
        );
    }

    #[test]
    #[should_panic(expected = "shapes [2, 3] and [2] cannot be broadcast")]
    fn incompatible_shapes_panic_with_both() {
        let a = Tensor::zeros(&[2, 3], crate::DType::F32);
        let b = Tensor::zeros(&[2], crate::DType::F32);
        let _ = &a + &b;
    }

    #[test]
    #[should_panic(expected = "dtype mismatch: f32 vs f64")]
    fn dtype_mismatch_panics_with_both() {
        let a = Tensor::zeros(&[2], crate::DType::F32);
        let b = Tensor::zeros(&[2], crate::DType::F64);
        let _ = &a + &b;
    }

    #[test]
    fn gradcheck_add_sub_mul_div_broadcasting() {
        let a = rand_f64(&[2, 3, 4], 1);
        let b = rand_f64(&[3, 1], 2).add_scalar(2.0); // away from 0 for div
        let c = rand_f64(&[4], 3);
        gradcheck(
            |x| &(&x[0] + &x[1]) * &x[2],
            &[a.clone(), b.clone(), c.clone()],
        )
        .unwrap();
        gradcheck(|x| &(&x[0] - &x[1]) / &x[1], &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| x[2].div(&x[1]).mul(&x[0]), &[a, b, c]).unwrap();
    }

    #[test]
    fn gradcheck_scalar_ops_and_neg() {
        let a = rand_f64(&[5], 4);
        gradcheck(|x| x[0].mul_scalar(-2.5).add_scalar(1.0).neg(), &[a]).unwrap();
    }

    #[test]
    fn gradcheck_maximum_minimum_away_from_ties() {
        let a = Tensor::from_vec(vec![0.1, 0.9, -0.5, 2.0, 0.3, -1.2], &[2, 3]);
        let b = Tensor::from_vec(vec![0.5, 0.2, -0.1], &[3]);
        gradcheck(|x| x[0].maximum(&x[1]), &[a.clone(), b.clone()]).unwrap();
        gradcheck(|x| x[0].minimum(&x[1]), &[a, b]).unwrap();
    }

    #[test]
    fn gradcheck_broadcast_to_and_sum_to_shape() {
        let a = rand_f64(&[3, 1], 5);
        gradcheck(|x| x[0].broadcast_to(&[2, 3, 4]), &[a]).unwrap();
        let b = rand_f64(&[2, 3, 4], 6);
        gradcheck(|x| x[0].sum_to_shape(&[3, 1]), &[b]).unwrap();
    }

    #[test]
    fn fan_out_accumulates() {
        let x = Tensor::from_vec(vec![3.0f64], &[1]).requires_grad();
        let y = (&(&x * &x) + &x).sum(); // d/dx = 2x + 1 = 7
        assert_eq!(y.backward().get(&x).unwrap().to_vec::<f64>(), vec![7.0]);
    }
}

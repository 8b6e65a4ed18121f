//! Binary elementwise arithmetic with numpy-style broadcasting: `add`, `sub`, `mul`, `div`,
//! `maximum`, `minimum`, and their scalar forms.
//!
//! **This file is the model for adding an op**: the public function computes the output
//! storage with one [`Storage`] method (which picks the device and dtype, and the CPU or GPU
//! kernel), then `Tensor::from_op` records the inputs and the one backward rule; the
//! gradient check sits in the tests right below.
//!
//! Broadcasting follows numpy: shapes are aligned on the right, and each dimension must be
//! equal or 1. Anything else panics with both shapes. The backward rule sums the output
//! gradient back down to each input's shape ([`Tensor::sum_to_shape`]).

use crate::storage::{Binary, Storage, Unary};
use crate::tensor::Tensor;

pub use crate::kernels::cpu::elementwise::{
    broadcast_shape, map, map_slices, sum_to_shape, zip_broadcast,
};

impl Tensor {
    /// Sums this tensor down to `shape` (undoes broadcasting). Differentiable.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        Tensor::from_op(
            self.storage().sum_to_shape(shape),
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
        Tensor::from_op(
            self.storage().broadcast_to(shape),
            &[self],
            "broadcast_to",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.sum_to_shape(inp[0].shape()))],
        )
    }

    /// `op(self, other)` on the storages (device and dtype dispatch happen there).
    fn binary(&self, op: Binary, other: &Tensor) -> Storage {
        self.storage().binary(op, other.storage())
    }

    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Tensor) -> Tensor {
        Tensor::from_op(
            self.binary(Binary::Add, other),
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
        Tensor::from_op(
            self.binary(Binary::Sub, other),
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
        Tensor::from_op(
            self.binary(Binary::Mul, other),
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
        Tensor::from_op(
            self.binary(Binary::Div, other),
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
        Tensor::from_op(
            self.binary(Binary::Maximum, other),
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
        Tensor::from_storage(self.binary(Binary::Ge, other))
    }

    /// `1 - self` for masks (a constant).
    fn one_minus(&self) -> Tensor {
        Tensor::from_storage(self.storage().unary(Unary::OneMinus))
    }

    /// `self + c`.
    pub fn add_scalar(&self, c: f64) -> Tensor {
        Tensor::from_op(
            self.storage().unary(Unary::AddScalar(c)),
            &[self],
            "add_scalar",
            |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.clone())],
        )
    }

    /// `self * c`.
    pub fn mul_scalar(&self, c: f64) -> Tensor {
        Tensor::from_op(
            self.storage().unary(Unary::MulScalar(c)),
            &[self],
            "mul_scalar",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.mul_scalar(c))],
        )
    }

    /// `-self`.
    pub fn neg(&self) -> Tensor {
        Tensor::from_op(
            self.storage().unary(Unary::Neg),
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

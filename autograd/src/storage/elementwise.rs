//! The elementwise kernel families, dispatched by device and dtype: unary math (and its
//! backward), broadcasting binary arithmetic, broadcasting up and summing down. The CPU
//! kernels are `kernels::cpu::elementwise`, the GPU ones `kernels::cuda::elementwise`.

use super::{Storage, all_cuda};
use crate::dtype::Float;
use crate::kernels::cpu::elementwise::{
    broadcast_shape, map, map_slices, sum_to_shape, zip_broadcast,
};
use crate::kernels::cuda::elementwise::{self as gpu, BinaryOp, UnaryOp};
use ndarray::{ArrayD, IxDyn};

/// A unary elementwise function (constants in f64; GPU storage computes in f32).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// `e^x` (f32: the vectorised `fastmath` form).
    Exp,
    /// `ln x`.
    Log,
    /// `sqrt x`.
    Sqrt,
    /// `x^p`.
    Powf(f64),
    /// `x * x`.
    Square,
    /// `|x|` (gradient 0 at 0).
    Abs,
    /// `max(x, 0)` (gradient 0 at 0).
    Relu,
    /// `tanh x` (f32: vectorised).
    Tanh,
    /// `1 / (1 + e^-x)` (f32: vectorised; f64: the stable libm form).
    Sigmoid,
    /// `min(max(x, lo), hi)` (the gradient passes where `lo <= x <= hi`).
    Clamp {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// `-x`.
    Neg,
    /// `x + c`.
    AddScalar(f64),
    /// `x * c`.
    MulScalar(f64),
    /// `1 - x` (for masks).
    OneMinus,
}

impl Unary {
    /// The op's name (for errors).
    pub fn name(self) -> &'static str {
        match self {
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Powf(_) => "powf",
            Unary::Square => "square",
            Unary::Abs => "abs",
            Unary::Relu => "relu",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Clamp { .. } => "clamp",
            Unary::Neg => "neg",
            Unary::AddScalar(_) => "add_scalar",
            Unary::MulScalar(_) => "mul_scalar",
            Unary::OneMinus => "one_minus",
        }
    }

    /// The `ops-cuda` kernel (`None` for `OneMinus`, composed of two).
    fn gpu(self) -> Option<UnaryOp> {
        Some(match self {
            Unary::Exp => UnaryOp::Exp,
            Unary::Log => UnaryOp::Log,
            Unary::Sqrt => UnaryOp::Sqrt,
            Unary::Powf(p) => UnaryOp::Powf(p as f32),
            Unary::Square => UnaryOp::Square,
            Unary::Abs => UnaryOp::Abs,
            Unary::Relu => UnaryOp::Relu,
            Unary::Tanh => UnaryOp::Tanh,
            Unary::Sigmoid => UnaryOp::Sigmoid,
            Unary::Clamp { lo, hi } => UnaryOp::Clamp {
                min: lo as f32,
                max: hi as f32,
            },
            Unary::Neg => UnaryOp::Neg,
            Unary::AddScalar(c) => UnaryOp::AddScalar(c as f32),
            Unary::MulScalar(c) => UnaryOp::MulScalar(c as f32),
            Unary::OneMinus => return None,
        })
    }
}

/// A broadcasting binary elementwise function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `max(a, b)` (`a` at ties).
    Maximum,
    /// 1 where `a >= b`, else 0.
    Ge,
}

impl Binary {
    /// The op's name (for errors).
    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Maximum => "maximum",
            Binary::Ge => "ge_mask",
        }
    }

    fn gpu(self) -> BinaryOp {
        match self {
            Binary::Add => BinaryOp::Add,
            Binary::Sub => BinaryOp::Sub,
            Binary::Mul => BinaryOp::Mul,
            Binary::Div => BinaryOp::Div,
            Binary::Maximum => BinaryOp::Maximum,
            Binary::Ge => BinaryOp::Ge,
        }
    }
}

/// The CPU forward of `op` (one closure per op, so each loop is compiled on its own).
fn unary_cpu<T: Float>(a: &ArrayD<T>, op: Unary) -> ArrayD<T> {
    match op {
        Unary::Exp => map_slices(a, T::exp_inplace),
        Unary::Log => map(a, |x| x.ln()),
        Unary::Sqrt => map(a, |x| x.sqrt()),
        Unary::Powf(p) => map(a, |x| x.powf(T::of(p))),
        Unary::Square => map(a, |x| x * x),
        Unary::Abs => map(a, |x| x.abs()),
        Unary::Relu => map(a, |x| if x > T::zero() { x } else { T::zero() }),
        Unary::Tanh => map_slices(a, T::tanh_inplace),
        Unary::Sigmoid => map_slices(a, T::sigmoid_inplace),
        Unary::Clamp { lo, hi } => map(a, |x| x.max(T::of(lo)).min(T::of(hi))),
        Unary::Neg => map(a, |x| -x),
        Unary::AddScalar(c) => map(a, |x| x + T::of(c)),
        Unary::MulScalar(c) => map(a, |x| x * T::of(c)),
        Unary::OneMinus => a.mapv(|v| T::one() - v),
    }
}

/// `op(a, b)` on the CPU with broadcasting.
fn binary_cpu<T: Float>(op: Binary, a: &ArrayD<T>, b: &ArrayD<T>) -> ArrayD<T> {
    let name = op.name();
    match op {
        Binary::Add => zip_broadcast(name, a, b, |x, y| x + y),
        Binary::Sub => zip_broadcast(name, a, b, |x, y| x - y),
        Binary::Mul => zip_broadcast(name, a, b, |x, y| x * y),
        Binary::Div => zip_broadcast(name, a, b, |x, y| x / y),
        Binary::Maximum => zip_broadcast(name, a, b, |x, y| if x >= y { x } else { y }),
        Binary::Ge => zip_broadcast(name, a, b, |x, y| if x >= y { T::one() } else { T::zero() }),
    }
}

impl Storage {
    /// `op` applied to every element.
    pub fn unary(&self, op: Unary) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(match op.gpu() {
                Some(k) => gpu::unary(op.name(), k, x),
                None => {
                    let neg = gpu::unary(op.name(), UnaryOp::Neg, x);
                    gpu::unary(op.name(), UnaryOp::AddScalar(1.0), &neg)
                }
            });
        }
        dispatch!(self, |a| unary_cpu(a, op))
    }

    /// The input gradient of `y = op(x)` from the output gradient `self` (`x` and `y` are
    /// the forward's input and output), for the ops whose derivative is not written with
    /// other ops: `Abs`, `Relu`, `Tanh`, `Sigmoid`, `Clamp` (panics for the others).
    pub fn unary_backward(&self, op: Unary, x: &Storage, y: &Storage) -> Storage {
        const OPS: &str = "unary_backward";
        let name = match op {
            Unary::Abs => "abs backward",
            Unary::Relu => "relu backward",
            Unary::Tanh => "tanh backward",
            Unary::Sigmoid => "sigmoid backward",
            Unary::Clamp { .. } => "clamp backward",
            _ => panic!("{OPS}: {} has no fused backward", op.name()),
        };
        if let Some([g, x, y]) = all_cuda(name, [self, x, y]) {
            let k = op.gpu().expect("the fused backward ops have a GPU kernel");
            return Storage::Cuda(gpu::unary_backward(name, k, g, x, y));
        }
        let g = self;
        match op {
            Unary::Abs => {
                let sign = dispatch!(x, |a| map(a, |x| {
                    if x > T::zero() {
                        T::one()
                    } else if x < T::zero() {
                        -T::one()
                    } else {
                        T::zero()
                    }
                }));
                g.binary(Binary::Mul, &sign)
            }
            Unary::Relu => dispatch2!("relu_backward", y, g, |o, gg| {
                zip_broadcast("relu_backward", o, gg, |o, gg| {
                    if o > T::zero() { gg } else { T::zero() }
                })
            }),
            Unary::Tanh => dispatch2!("tanh_backward", y, g, |o, gg| {
                zip_broadcast("tanh_backward", o, gg, |o, gg| gg * (T::one() - o * o))
            }),
            Unary::Sigmoid => dispatch2!("sigmoid_backward", y, g, |o, gg| {
                zip_broadcast("sigmoid_backward", o, gg, |o, gg| gg * o * (T::one() - o))
            }),
            Unary::Clamp { lo, hi } => dispatch2!("clamp_backward", x, g, |x, gg| {
                zip_broadcast("clamp_backward", x, gg, |x, gg| {
                    if x >= T::of(lo) && x <= T::of(hi) {
                        gg
                    } else {
                        T::zero()
                    }
                })
            }),
            _ => unreachable!("checked above"),
        }
    }

    /// `op(self, other)` with NumPy broadcasting; panics naming both shapes when they do not
    /// broadcast, both dtypes when they differ, both devices when they differ.
    pub fn binary(&self, op: Binary, other: &Storage) -> Storage {
        let name = op.name();
        if let Some([a, b]) = all_cuda(name, [self, other]) {
            let shape = broadcast_shape(name, &a.shape, &b.shape);
            return Storage::Cuda(gpu::binary(name, op.gpu(), a, b, &shape));
        }
        dispatch2!(name, self, other, |a, b| binary_cpu(op, a, b))
    }

    /// Summed down to `shape` (the adjoint of broadcasting `shape` up to this one).
    pub fn sum_to_shape(&self, shape: &[usize]) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu::sum_to_shape(x, shape));
        }
        dispatch!(self, |a| sum_to_shape(a, shape))
    }

    /// Broadcast (materialised) up to `shape`, which the caller checked.
    pub fn broadcast_to(&self, shape: &[usize]) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu::broadcast_to(x, shape));
        }
        dispatch!(self, |a| a.broadcast(IxDyn(shape)).unwrap().to_owned())
    }
}

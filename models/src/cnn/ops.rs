//! The cell ops (spec 6.2), every one in ReLU-conv-BN order, built for `c` channels in and
//! out (cell inputs are calibrated to `c` first) at stride 1 or 2.
//!
//! | op | layers |
//! |---|---|
//! | `sep_conv_kxk` | ([ReLU, depthwise kxk, pointwise 1x1, BN]) twice; only the first strided |
//! | `conv_1x1`, `conv_3x3` | ReLU, conv, BN ([`ReluConvBn`]) |
//! | `conv_1xk_kx1` | ReLU, conv 1xk (strided), BN, ReLU, conv kx1, BN |
//! | `max/avg_pool_3x3`, `_5x5` | symmetric padding 1 / 2; average excludes padding |
//! | `max/avg_pool_2x2` | zero-pad right/bottom by 1, then kernel 2 |
//! | `identity` | nothing; [`FactorizedReduce`] at stride 2 |

use autograd::Tensor;
use autograd::nn::{BatchNorm2d, Conv2d, Module, Param, join};
use rand_pcg::Pcg64Mcg;

use super::Mode;
use super::reduce::FactorizedReduce;
pub use super::relu_conv_bn::ReluConvBn;
use super::relu_conv_bn::{conv, relu_conv};
use crate::space::cnn::CnnOp;

/// Separable conv applied twice: [ReLU, depthwise kxk (stride s), pointwise 1x1, BN], then
/// [ReLU, depthwise kxk, pointwise 1x1, BN] (the peer's `SepConv`).
#[derive(Debug, Clone)]
pub struct SepConv {
    /// First depthwise conv (strided).
    pub dw1: Conv2d,
    /// First pointwise conv.
    pub pw1: Conv2d,
    /// First batch norm.
    pub bn1: BatchNorm2d,
    /// Second depthwise conv.
    pub dw2: Conv2d,
    /// Second pointwise conv.
    pub pw2: Conv2d,
    /// Second batch norm.
    pub bn2: BatchNorm2d,
}

impl SepConv {
    /// `c -> c` with a `k x k` window at `stride` (padding `k / 2`).
    pub fn new(name: &str, c: usize, k: usize, stride: usize, rng: &mut Pcg64Mcg) -> SepConv {
        let p = (k / 2, k / 2);
        SepConv {
            dw1: conv(&join(name, "dw1"), c, c, (k, k), stride, p, c, rng),
            pw1: conv(&join(name, "pw1"), c, c, (1, 1), 1, (0, 0), 1, rng),
            bn1: BatchNorm2d::new(&join(name, "bn1"), c),
            dw2: conv(&join(name, "dw2"), c, c, (k, k), 1, p, c, rng),
            pw2: conv(&join(name, "pw2"), c, c, (1, 1), 1, (0, 0), 1, rng),
            bn2: BatchNorm2d::new(&join(name, "bn2"), c),
        }
    }

    /// The two separable stages (each ReLU fused into its depthwise conv).
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let y = self
            .bn1
            .forward(&self.pw1.forward(&relu_conv(&self.dw1, x)), mode.bn);
        self.bn2
            .forward(&self.pw2.forward(&relu_conv(&self.dw2, &y)), mode.bn)
    }
}

impl Module for SepConv {
    fn params(&self) -> Vec<Param> {
        let mut v = self.dw1.params();
        v.extend(self.pw1.params());
        v.extend(self.bn1.params());
        v.extend(self.dw2.params());
        v.extend(self.pw2.params());
        v.extend(self.bn2.params());
        v
    }
}

/// A factorised `k x k` conv: ReLU, conv 1xk (strided), BN, ReLU, conv kx1, BN.
#[derive(Debug, Clone)]
pub struct ConvPair {
    /// ReLU, conv 1xk, BN.
    pub first: ReluConvBn,
    /// ReLU, conv kx1, BN.
    pub second: ReluConvBn,
}

impl ConvPair {
    /// `c -> c` with `k` (3 or 7) at `stride`.
    pub fn new(name: &str, c: usize, k: usize, stride: usize, rng: &mut Pcg64Mcg) -> ConvPair {
        ConvPair {
            first: ReluConvBn::new(&join(name, "1xk"), c, c, (1, k), stride, (0, k / 2), rng),
            second: ReluConvBn::new(&join(name, "kx1"), c, c, (k, 1), 1, (k / 2, 0), rng),
        }
    }

    /// Both stages.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let y = self.first.forward(x, mode);
        self.second.forward(&y, mode)
    }
}

impl Module for ConvPair {
    fn params(&self) -> Vec<Param> {
        let mut v = self.first.params();
        v.extend(self.second.params());
        v
    }
}

/// One built op of a branch.
#[derive(Debug, Clone)]
pub enum BranchOp {
    /// Separable conv (3x3 or 5x5), applied twice.
    Sep(Box<SepConv>),
    /// ReLU-conv-BN (1x1 or 3x3).
    Conv(Box<ReluConvBn>),
    /// Conv 1xk then kx1.
    Pair(Box<ConvPair>),
    /// Max pool (`k` = 2, 3 or 5).
    MaxPool {
        /// Window side.
        k: usize,
        /// Stride.
        stride: usize,
    },
    /// Average pool, padding excluded from the average (`k` = 2, 3 or 5).
    AvgPool {
        /// Window side.
        k: usize,
        /// Stride.
        stride: usize,
    },
    /// Identity at stride 1.
    Identity,
    /// Identity at stride 2: factorized reduce.
    Reduce(Box<FactorizedReduce>),
}

impl BranchOp {
    /// Builds `op` for `c` channels in and out at `stride` (1 or 2), naming its parameters
    /// under `name`.
    pub fn new(name: &str, op: CnnOp, c: usize, stride: usize, rng: &mut Pcg64Mcg) -> BranchOp {
        assert!(
            stride == 1 || stride == 2,
            "op {op}: stride must be 1 or 2, got {stride}"
        );
        match op {
            CnnOp::SepConv3x3 => BranchOp::Sep(Box::new(SepConv::new(name, c, 3, stride, rng))),
            CnnOp::SepConv5x5 => BranchOp::Sep(Box::new(SepConv::new(name, c, 5, stride, rng))),
            CnnOp::Conv1x1 => BranchOp::Conv(Box::new(ReluConvBn::new(
                name,
                c,
                c,
                (1, 1),
                stride,
                (0, 0),
                rng,
            ))),
            CnnOp::Conv3x3 => BranchOp::Conv(Box::new(ReluConvBn::new(
                name,
                c,
                c,
                (3, 3),
                stride,
                (1, 1),
                rng,
            ))),
            CnnOp::Conv1x3_3x1 => BranchOp::Pair(Box::new(ConvPair::new(name, c, 3, stride, rng))),
            CnnOp::Conv1x7_7x1 => BranchOp::Pair(Box::new(ConvPair::new(name, c, 7, stride, rng))),
            CnnOp::MaxPool2x2 => BranchOp::MaxPool { k: 2, stride },
            CnnOp::MaxPool3x3 => BranchOp::MaxPool { k: 3, stride },
            CnnOp::MaxPool5x5 => BranchOp::MaxPool { k: 5, stride },
            CnnOp::AvgPool2x2 => BranchOp::AvgPool { k: 2, stride },
            CnnOp::AvgPool3x3 => BranchOp::AvgPool { k: 3, stride },
            CnnOp::AvgPool5x5 => BranchOp::AvgPool { k: 5, stride },
            CnnOp::Identity if stride == 1 => BranchOp::Identity,
            CnnOp::Identity => BranchOp::Reduce(Box::new(FactorizedReduce::new(name, c, c, rng))),
        }
    }

    /// Applies the op.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        match self {
            BranchOp::Sep(m) => m.forward(x, mode),
            BranchOp::Conv(m) => m.forward(x, mode),
            BranchOp::Pair(m) => m.forward(x, mode),
            BranchOp::MaxPool { k: 2, stride } => {
                pad_rb(x).max_pool2d((2, 2), (*stride, *stride), (0, 0))
            }
            BranchOp::AvgPool { k: 2, stride } => {
                pad_rb(x).avg_pool2d((2, 2), (*stride, *stride), (0, 0))
            }
            BranchOp::MaxPool { k, stride } => {
                x.max_pool2d((*k, *k), (*stride, *stride), (k / 2, k / 2))
            }
            BranchOp::AvgPool { k, stride } => {
                x.avg_pool2d((*k, *k), (*stride, *stride), (k / 2, k / 2))
            }
            BranchOp::Identity => x.clone(),
            BranchOp::Reduce(m) => m.forward(x, mode),
        }
    }

    /// True for the identity (at either stride): drop-path skips these branches.
    pub fn is_identity(&self) -> bool {
        matches!(self, BranchOp::Identity | BranchOp::Reduce(_))
    }
}

/// Zero-pads right and bottom by one pixel (the 2x2 pools' padding).
fn pad_rb(x: &Tensor) -> Tensor {
    x.pad(&[(0, 0), (0, 0), (0, 1), (0, 1)])
}

impl Module for BranchOp {
    fn params(&self) -> Vec<Param> {
        match self {
            BranchOp::Sep(m) => m.params(),
            BranchOp::Conv(m) => m.params(),
            BranchOp::Pair(m) => m.params(),
            BranchOp::Reduce(m) => m.params(),
            _ => vec![],
        }
    }
}

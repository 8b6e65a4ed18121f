//! The layer most CNN ops are built from: ReLU, convolution (no bias), batch
//! norm ([`ReluConvBn`]), with the fused `conv(relu(x))` (`relu_conv`) it runs. The cell
//! ops ([`super::ops`]) and the factorized reduce and input calibration ([`super::reduce`])
//! both build on it.

use autograd::Tensor;
use autograd::nn::{BatchNorm2d, Conv2d, Module, Param, join};
use autograd::ops::conv::Conv2dParams;
use rand_pcg::Pcg64Mcg;

use super::Mode;

/// A convolution without bias: `cin -> cout`, window `k`, `stride`, padding `pad` (per
/// axis), `groups`.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv(
    name: &str,
    cin: usize,
    cout: usize,
    k: (usize, usize),
    stride: usize,
    pad: (usize, usize),
    groups: usize,
    rng: &mut Pcg64Mcg,
) -> Conv2d {
    let p = Conv2dParams {
        stride: (stride, stride),
        padding: pad,
        dilation: (1, 1),
        groups,
    };
    Conv2d::new(name, cin, cout, k, p, false, rng)
}

/// `conv(relu(x))` as one fused op ([`Tensor::relu_conv2d`]).
pub(super) fn relu_conv(conv: &Conv2d, x: &Tensor) -> Tensor {
    let b = conv.bias.as_ref().map(|b| b.get());
    x.relu_conv2d(&conv.weight.get(), b.as_ref(), conv.params)
}

/// ReLU, conv (no bias), BN.
#[derive(Debug, Clone)]
pub struct ReluConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// The batch norm.
    pub bn: BatchNorm2d,
}

impl ReluConvBn {
    /// `cin -> cout` with a `k` window, `stride` and `pad` (per axis).
    pub fn new(
        name: &str,
        cin: usize,
        cout: usize,
        k: (usize, usize),
        stride: usize,
        pad: (usize, usize),
        rng: &mut Pcg64Mcg,
    ) -> ReluConvBn {
        ReluConvBn {
            conv: conv(&join(name, "conv"), cin, cout, k, stride, pad, 1, rng),
            bn: BatchNorm2d::new(&join(name, "bn"), cout),
        }
    }

    /// `BN(conv(relu(x)))`.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        self.bn.forward(&relu_conv(&self.conv, x), mode.bn)
    }
}

impl Module for ReluConvBn {
    fn params(&self) -> Vec<Param> {
        let mut v = self.conv.params();
        v.extend(self.bn.params());
        v
    }
}

//! Factorized reduce ([`FactorizedReduce`]) and the calibration of a cell's two inputs
//! ([`Calibrate`]), as in the peer's `FactorizedReduce` and `MaybeCalibrateSize`.

use autograd::Tensor;
use autograd::nn::{BatchNorm2d, Conv2d, Module, Param, join};
use autograd::ops::conv::Conv2dParams;
use rand_pcg::Pcg64Mcg;

use super::Mode;
use super::relu_conv_bn::{ReluConvBn, relu_conv};

/// Halves the resolution without losing every other pixel: two 1x1 convs (`cout / 2`
/// channels each, no bias), the first on the input subsampled by 2, the second on the input
/// shifted by one pixel (pad right/bottom by 1, drop the first row and column, subsample
/// by 2); the two are concatenated along channels and batch-normalised. No ReLU inside.
#[derive(Debug, Clone)]
pub struct FactorizedReduce {
    /// The conv on the unshifted input.
    pub conv1: Conv2d,
    /// The conv on the shifted input (stride 2, one pixel of padding; outputs `1..` kept).
    pub conv2: Conv2d,
    /// The batch norm over the concatenation.
    pub bn: BatchNorm2d,
}

impl FactorizedReduce {
    /// `cin -> cout` (even) channels at half resolution.
    pub fn new(name: &str, cin: usize, cout: usize, rng: &mut Pcg64Mcg) -> FactorizedReduce {
        assert!(
            cout.is_multiple_of(2),
            "FactorizedReduce '{name}': output channels {cout} must be even"
        );
        // conv2 pads by one pixel: see `forward_act` for why that is the shifted branch.
        let (p1, p2) = (Conv2dParams::new(2, 0, 1, 1), Conv2dParams::new(2, 1, 1, 1));
        FactorizedReduce {
            conv1: Conv2d::new(&join(name, "conv1"), cin, cout / 2, (1, 1), p1, false, rng),
            conv2: Conv2d::new(&join(name, "conv2"), cin, cout / 2, (1, 1), p2, false, rng),
            bn: BatchNorm2d::new(&join(name, "bn"), cout),
        }
    }

    /// `(N, cin, H, W) -> (N, cout, ceil(H / 2), ceil(W / 2))`.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        self.forward_act(x, false, mode)
    }

    /// [`FactorizedReduce::forward`] of `relu(x)` when `relu`, the ReLU fused into both
    /// convs (no ReLU output is stored).
    ///
    /// The shifted branch never builds the shifted input: a 1x1 stride-2 conv with one
    /// pixel of zero padding reads input pixel `2o - 1` at output `o`, so its outputs
    /// `1..=ceil(H / 2)` are exactly the conv of the shifted (and, for odd sizes,
    /// right/bottom-padded) input; output row and column 0 are dropped.
    pub fn forward_act(&self, x: &Tensor, relu: bool, mode: &mut Mode) -> Tensor {
        let (h, w) = (x.shape()[2], x.shape()[3]);
        let conv = |c: &Conv2d| if relu { relu_conv(c, x) } else { c.forward(x) };
        let a = conv(&self.conv1);
        let b = conv(&self.conv2)
            .narrow(2, 1, h.div_ceil(2))
            .narrow(3, 1, w.div_ceil(2));
        self.bn.forward(&Tensor::concat(&[&a, &b], 1), mode.bn)
    }
}

impl Module for FactorizedReduce {
    fn params(&self) -> Vec<Param> {
        let mut v = self.conv1.params();
        v.extend(self.conv2.params());
        v.extend(self.bn.params());
        v
    }
}

/// A feature map's size as the builders track it: `(resolution, channels)` (square maps).
pub type MapSize = (usize, usize);

/// How the previous-previous input (`s0`) is brought to the cell's size.
#[derive(Debug, Clone)]
pub enum Calib0 {
    /// Already right.
    None,
    /// Higher resolution: ReLU, then factorized reduce.
    Reduce(FactorizedReduce),
    /// Same resolution, other width: ReLU-conv 1x1-BN.
    Conv(ReluConvBn),
}

/// Calibration of a cell's inputs `(s0, s1)` to `c` channels at `s1`'s resolution (spec
/// 6.1, [PT-V1] variant, as the peer's `MaybeCalibrateSize`): `s0` gets ReLU + factorized
/// reduce when its resolution is higher, else ReLU-conv 1x1-BN when its width differs;
/// `s1` gets ReLU-conv 1x1-BN only when its width differs.
#[derive(Debug, Clone)]
pub struct Calibrate {
    /// For `s0`.
    pub pre_x: Calib0,
    /// For `s1`.
    pub pre_y: Option<ReluConvBn>,
}

impl Calibrate {
    /// Built for inputs of sizes `s0`, `s1` and `c` output channels.
    pub fn new(name: &str, s0: MapSize, s1: MapSize, c: usize, rng: &mut Pcg64Mcg) -> Calibrate {
        let pre_x = if s0.0 != s1.0 {
            assert!(
                s0.0 == 2 * s1.0,
                "Calibrate '{name}': input resolutions {} and {} are not 2:1",
                s0.0,
                s1.0
            );
            Calib0::Reduce(FactorizedReduce::new(&join(name, "pre_x"), s0.1, c, rng))
        } else if s0.1 != c {
            Calib0::Conv(ReluConvBn::new(
                &join(name, "pre_x"),
                s0.1,
                c,
                (1, 1),
                1,
                (0, 0),
                rng,
            ))
        } else {
            Calib0::None
        };
        let pre_y = (s1.1 != c)
            .then(|| ReluConvBn::new(&join(name, "pre_y"), s1.1, c, (1, 1), 1, (0, 0), rng));
        Calibrate { pre_x, pre_y }
    }

    /// The calibrated `(s0, s1)`.
    pub fn forward(&self, s0: &Tensor, s1: &Tensor, mode: &mut Mode) -> (Tensor, Tensor) {
        let s0 = match &self.pre_x {
            Calib0::None => s0.clone(),
            Calib0::Reduce(m) => m.forward_act(s0, true, mode),
            Calib0::Conv(m) => m.forward(s0, mode),
        };
        let s1 = match &self.pre_y {
            None => s1.clone(),
            Some(m) => m.forward(s1, mode),
        };
        (s0, s1)
    }
}

impl Module for Calibrate {
    fn params(&self) -> Vec<Param> {
        let mut v = match &self.pre_x {
            Calib0::None => vec![],
            Calib0::Reduce(m) => m.params(),
            Calib0::Conv(m) => m.params(),
        };
        if let Some(m) = &self.pre_y {
            v.extend(m.params());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::DType;
    use autograd::ops::batchnorm::BatchNormMode;
    use autograd::testing::{assert_close, gradcheck, rand_f64};
    use rand::SeedableRng;

    /// The padded-conv form of the shifted branch equals the definition (shift by one
    /// pixel, pad right/bottom for odd sizes, 1x1 stride-2 conv), with and without the
    /// fused ReLU, for even and odd sizes; and the input gradient checks out.
    #[test]
    fn factorized_reduce_matches_its_definition() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let fr = FactorizedReduce::new("fr", 3, 4, &mut rng);
        fr.to_dtype(DType::F64);
        let (w1, w2) = (fr.conv1.weight.get(), fr.conv2.weight.get());
        let p = Conv2dParams::new(2, 0, 1, 1);
        for (h, w) in [(6, 6), (7, 5)] {
            for relu in [false, true] {
                let x = rand_f64(&[2, 3, h, w], 40 + h as u64);
                let xr = if relu { x.relu() } else { x.clone() };
                let a = xr.conv2d(&w1, None, p);
                let shifted = xr.narrow(2, 1, h - 1).narrow(3, 1, w - 1).pad(&[
                    (0, 0),
                    (0, 0),
                    (0, h % 2),
                    (0, w % 2),
                ]);
                let b = shifted.conv2d(&w2, None, p);
                let want = fr
                    .bn
                    .forward(&Tensor::concat(&[&a, &b], 1), BatchNormMode::Train);
                let got = fr.forward_act(&x, relu, &mut Mode::train_deterministic());
                assert_close(&got, &want, 1e-12, 1e-12);
            }
        }
        let x = rand_f64(&[2, 3, 5, 7], 44);
        gradcheck(
            |t| fr.forward_act(&t[0], true, &mut Mode::train_deterministic()),
            &[x],
        )
        .unwrap();
    }
}

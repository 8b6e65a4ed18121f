//! [`CnnNetwork`]: the whole child CNN.

use autograd::nn::init::{self, FanMode, Nonlinearity};
use autograd::nn::{BatchNorm2d, Conv2d, Linear, Module, Param, join};
use autograd::ops::conv::Conv2dParams;
use autograd::{DType, Tensor};
use rand_pcg::Pcg64Mcg;

use super::Mode;
use super::cell::Cell;
use super::config::CnnConfig;
use super::reduce::MapSize;
use crate::space::cnn::CnnArch;
use crate::space::{ArchError, SearchSpace};

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct CnnOutput {
    /// Classifier logits `(N, classes)`.
    pub logits: Tensor,
    /// Auxiliary-head logits `(N, classes)`: only in training mode with an auxiliary head.
    pub aux_logits: Option<Tensor>,
}

/// The auxiliary head (spec 6.1, [PT-V1] placement after the second reduction cell): ReLU,
/// average pool 5x5 stride 3 (valid: 8x8 -> 2x2), 1x1 conv to 128 + BN + ReLU, 2x2 conv to
/// 768 + BN + ReLU, linear classifier. It expects 8x8 maps (32x32 inputs).
#[derive(Debug, Clone)]
pub struct AuxHead {
    /// 1x1 conv to 128 channels.
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: BatchNorm2d,
    /// 2x2 conv to 768 channels.
    pub conv2: Conv2d,
    /// Its batch norm.
    pub bn2: BatchNorm2d,
    /// The classifier.
    pub classifier: Linear,
}

impl AuxHead {
    /// For `c` input channels and `classes` outputs.
    pub fn new(name: &str, c: usize, classes: usize, rng: &mut Pcg64Mcg) -> AuxHead {
        let one = Conv2dParams::default();
        let conv1 = Conv2d::new(&join(name, "conv1"), c, 128, (1, 1), one, false, rng);
        let conv2 = Conv2d::new(&join(name, "conv2"), 128, 768, (2, 2), one, false, rng);
        let classifier = kaiming_linear(&join(name, "classifier"), 768, classes, rng);
        AuxHead {
            conv1,
            bn1: BatchNorm2d::new(&join(name, "bn1"), 128),
            conv2,
            bn2: BatchNorm2d::new(&join(name, "bn2"), 768),
            classifier,
        }
    }

    /// Logits `(N, classes)` from an `(N, c, 8, 8)` map.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Tensor {
        let y = x.relu().avg_pool2d((5, 5), (3, 3), (0, 0));
        let y = self.bn1.forward(&self.conv1.forward(&y), mode.bn).relu();
        let y = self.bn2.forward(&self.conv2.forward(&y), mode.bn).relu();
        let n = y.shape()[0];
        let feat = y.numel() / n;
        self.classifier.forward(&y.reshape(&[n, feat]))
    }
}

impl Module for AuxHead {
    fn params(&self) -> Vec<Param> {
        let mut v = self.conv1.params();
        v.extend(self.bn1.params());
        v.extend(self.conv2.params());
        v.extend(self.bn2.params());
        v.extend(self.classifier.params());
        v
    }
}

/// A linear layer with the peer's initialisation: Kaiming-normal weight (every parameter of
/// 2+ dimensions), PyTorch's default uniform bias.
pub(crate) fn kaiming_linear(name: &str, fin: usize, fout: usize, rng: &mut Pcg64Mcg) -> Linear {
    let l = Linear::new(name, fin, fout, true, rng);
    l.weight.set(init::kaiming_normal(
        &[fout, fin],
        FanMode::FanIn,
        Nonlinearity::Relu.gain(),
        DType::F32,
        rng,
    ));
    l
}

/// The child CNN (spec 6.1), laid out as the peer's `NASNetworkCIFAR`: a stem (3x3 conv to
/// `3F` channels + BN), `3N + 2` cells with reduction cells at indices `N` and `2N + 1`
/// (each doubling the per-node channels `F -> 2F -> 4F`), then global average pool,
/// dropout and a linear classifier; optionally an auxiliary head after the second
/// reduction cell. Parameters are named `stem.conv.weight`, `cells.{i}.calib.pre_x...`,
/// `cells.{i}.node{n}.{a|b}...`, `aux...`, `classifier...`.
#[derive(Debug, Clone)]
pub struct CnnNetwork {
    /// The configuration it was built from.
    pub config: CnnConfig,
    /// The architecture it was built from.
    pub arch: CnnArch,
    /// Stem conv (3 -> 3F, 3x3, padding 1, no bias).
    pub stem_conv: Conv2d,
    /// Stem batch norm.
    pub stem_bn: BatchNorm2d,
    /// The cells in order.
    pub cells: Vec<Cell>,
    /// The auxiliary head, if configured.
    pub aux: Option<AuxHead>,
    /// The classifier.
    pub classifier: Linear,
}

impl CnnNetwork {
    /// Builds the network for `arch` (whose ops must belong to `config.space`), drawing
    /// every initial weight from `rng`. Panics naming the field if `config` is invalid.
    pub fn new(arch: &CnnArch, config: &CnnConfig, rng: &mut Pcg64Mcg) -> CnnNetwork {
        if let Err(e) = config.validate() {
            panic!("CnnNetwork: invalid config: {e}");
        }
        if let Err(e) = config.cnn_space().encode(arch) {
            panic!(
                "CnnNetwork: the architecture does not fit {}: {e}",
                config.space
            );
        }
        let f = config.channels;
        let stem_c = 3 * f;
        let stem_conv = Conv2d::new(
            "stem.conv",
            3,
            stem_c,
            (3, 3),
            Conv2dParams::new(1, 1, 1, 1),
            false,
            rng,
        );
        let stem_bn = BatchNorm2d::new("stem.bn", stem_c);
        let total = config.total_cells();
        let reductions = config.reduction_cells();
        let mut outs: [MapSize; 2] = [(32, stem_c), (32, stem_c)];
        let mut c = f;
        let mut cells = Vec::with_capacity(total);
        let mut aux = None;
        for i in 0..total {
            let red = reductions.contains(&i);
            if red {
                c *= 2;
            }
            let cell_arch = if red { &arch.reduction } else { &arch.normal };
            let cell = Cell::new(
                &format!("cells.{i}"),
                cell_arch,
                outs[0],
                outs[1],
                c,
                red,
                i,
                total,
                config.drop_path_keep,
                rng,
            );
            outs = [outs[1], cell.out_size()];
            cells.push(cell);
            if config.aux_head && i == reductions[1] {
                aux = Some(AuxHead::new("aux", outs[1].1, config.classes, rng));
            }
        }
        let classifier = kaiming_linear("classifier", outs[1].1, config.classes, rng);
        CnnNetwork {
            config: config.clone(),
            arch: *arch,
            stem_conv,
            stem_bn,
            cells,
            aux,
            classifier,
        }
    }

    /// Builds from a token sequence of `config.space` (validated).
    pub fn from_tokens(
        tokens: &[usize],
        config: &CnnConfig,
        rng: &mut Pcg64Mcg,
    ) -> Result<CnnNetwork, ArchError> {
        let arch = config.cnn_space().decode(tokens)?;
        Ok(CnnNetwork::new(&arch, config, rng))
    }

    /// Builds from the text or flat integer form of `config.space` (e.g. the 40 integers
    /// `in1 op1 in2 op2` per node, normal cell first).
    pub fn from_flat(
        text: &str,
        config: &CnnConfig,
        rng: &mut Pcg64Mcg,
    ) -> Result<CnnNetwork, ArchError> {
        let tokens = config.cnn_space().from_text(text)?;
        CnnNetwork::from_tokens(&tokens, config, rng)
    }

    /// Logits for `x: (N, 3, H, W)` (CIFAR: 32x32), plus auxiliary logits when training
    /// with an auxiliary head.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> CnnOutput {
        let stem = self.stem_bn.forward(&self.stem_conv.forward(x), mode.bn);
        let (mut s0, mut s1) = (stem.clone(), stem);
        let mut aux_logits = None;
        let aux_at = self.config.reduction_cells()[1];
        for (i, cell) in self.cells.iter().enumerate() {
            let out = cell.forward(&s0, &s1, mode);
            s0 = std::mem::replace(&mut s1, out);
            if i == aux_at
                && mode.is_training()
                && let Some(aux) = &self.aux
            {
                aux_logits = Some(aux.forward(&s1, mode));
            }
        }
        let mut feat = s1.global_avg_pool();
        if let Some(rng) = mode.rng.as_deref_mut() {
            feat = feat.dropout(self.config.dropout_keep, rng);
        }
        CnnOutput {
            logits: self.classifier.forward(&feat),
            aux_logits,
        }
    }
}

impl Module for CnnNetwork {
    fn params(&self) -> Vec<Param> {
        let mut v = self.stem_conv.params();
        v.extend(self.stem_bn.params());
        for c in &self.cells {
            v.extend(c.params());
        }
        if let Some(a) = &self.aux {
            v.extend(a.params());
        }
        v.extend(self.classifier.params());
        v
    }
}

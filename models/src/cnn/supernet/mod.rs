//! [`Supernet`]: the weight-sharing network of NAO-WS (spec section 7), the ENAS micro space
//! of `cnn-ws` (5 ops).
//!
//! # Where the weights live
//!
//! For every cell slot `i`, node `n` (hidden state `n + 2`) and branch `a`/`b` there is one
//! [`WsBranch`]: a table `ops[input][op]` of built [`BranchOp`]s, one per possible input
//! state (`0..=n+1`) and per op of [`WS_OPS`]. So every (slot, node, branch, op) has its own
//! weight set, and the separable-conv weights (both depthwise, both pointwise and both batch
//! norms' scale/offset) are additionally indexed by the chosen input (ENAS-style). Pools
//! hold no weights; the identity holds none at stride 1 and a [`FactorizedReduce`] per input
//! (`0`, `1`) at stride 2. Parameters are named
//! `cells.{i}.node{n}.{a|b}.in{j}.{op}...`, e.g. `cells.4.node2.b.in3.sep_conv_5x5.pw1.weight`.
//!
//! # How a path is selected
//!
//! [`Supernet::forward`] takes a [`CnnArch`]; each branch looks up `ops[input][op]` of the
//! architecture and runs only that op. Nothing else is touched: the graph, the forward and
//! the backward cost what the child's own ops cost (plus the fixed per-cell parts below), and
//! weights off the path get no gradient, so an optimiser that skips parameters without a
//! gradient (as [`autograd::optim::Sgd`] does) leaves them, and their momentum, unchanged.
//!
//! # Layout (the [PT-V1] supernet, as the bench peer `nao_ws_cnn.py`)
//!
//! * Stem: 3x3 conv to `3F` + BN; both inputs of the first cell are the stem output.
//! * `3N + 2` cells, reductions at `N` and `2N + 1` (channels `F -> 2F -> 4F`). Every cell
//!   outputs exactly `C` channels, so a cell's inputs have fixed sizes whatever the
//!   architecture; they are calibrated to `C` by [`Calibrate`].
//! * Reduction slots, [PT-V1] style: the reduction cell runs the architecture's reduction
//!   cell with stride 2 on the branches that read states 0 and 1, exactly as the fixed child
//!   ([`super::CnnNetwork`]) does. Chosen over the [TF-WS] style (factorized reduce of the
//!   previous output, then a stride-1 cell) so that the reduction cell scored in the supernet
//!   is the same computation as the one the found architecture is finally trained with.
//! * Cell output ([PT-V1]/[TF-WS] supernet): the loose ends (states never used as an input;
//!   in a reduction cell loose ends 0/1 pass a [`FactorizedReduce`] first) are concatenated,
//!   ReLU, a 1x1 conv whose weight is the concatenation of one `(C, C, 1, 1)` slice per loose
//!   state, and BN back to `C` channels.
//! * Batch norm always uses batch statistics, in training and in evaluation (spec 7); the
//!   running-statistics buffers of the reused layers are never read nor written.
//! * Drop-path (scheduled as [`super::drop_path_keep`]) on every non-identity branch when a
//!   generator is given; dropout before the classifier with `dropout_keep`; no auxiliary head
//!   ([PT-V1] default).

use autograd::Tensor;
use autograd::nn::init;
use autograd::nn::{BatchNorm2d, Conv2d, Linear, Module, Param, join};
use autograd::ops::batchnorm::BatchNormMode;
use autograd::ops::conv::Conv2dParams;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::drop_path::drop_path_factors;
use super::network::kaiming_linear;
use super::ops::BranchOp;
use super::reduce::{Calibrate, FactorizedReduce, MapSize};
use super::{Mode, drop_path_keep};
use crate::space::cnn::{Branch, CnnArch, CnnCell, NODES, WS_OPS};
use autograd::ops::scaled_sum::scaled_sum;

/// The size and regularisation of a [`Supernet`].
///
/// ```
/// use models::cnn::supernet::SupernetConfig;
/// let c = SupernetConfig::peer();
/// assert_eq!((c.n_cells, c.channels), (3, 20));
/// assert!(c.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupernetConfig {
    /// N: normal cells per stage (`3N + 2` cells in all).
    pub n_cells: usize,
    /// F: channels of the first stage (stem `3F`, stages `F, 2F, 4F`). Must be even
    /// (factorized reduces split the channels in two).
    pub channels: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Drop-path keep probability `p` of the last cell (1 = off).
    pub drop_path_keep: f64,
    /// Keep probability of the dropout before the classifier (1 = off).
    pub dropout_keep: f64,
}

impl SupernetConfig {
    /// The [PT-V1] search supernet and the bench peer's shape: N = 3, F = 20, 10 classes,
    /// drop-path keep 0.9, no dropout.
    pub fn peer() -> SupernetConfig {
        SupernetConfig {
            n_cells: 3,
            channels: 20,
            classes: 10,
            drop_path_keep: 0.9,
            dropout_keep: 1.0,
        }
    }

    /// Total number of cells, `3N + 2`.
    pub fn total_cells(&self) -> usize {
        3 * self.n_cells + 2
    }

    /// Indices of the two reduction cells, `N` and `2N + 1`.
    pub fn reduction_cells(&self) -> [usize; 2] {
        [self.n_cells, 2 * self.n_cells + 1]
    }

    /// Checks the sizes and probabilities; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.n_cells == 0 || self.classes == 0 {
            return Err(format!(
                "n_cells ({}) and classes ({}) must be positive",
                self.n_cells, self.classes
            ));
        }
        if self.channels == 0 || !self.channels.is_multiple_of(2) {
            return Err(format!(
                "channels must be positive and even, got {}",
                self.channels
            ));
        }
        for (what, p) in [
            ("dropout_keep", self.dropout_keep),
            ("drop_path_keep", self.drop_path_keep),
        ] {
            if !(p > 0.0 && p <= 1.0) {
                return Err(format!("{what} must be in (0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

/// The shared weights of one branch position: `ops[input][op]`, one built op per possible
/// input state and per op of [`WS_OPS`] (in that order).
#[derive(Debug, Clone)]
pub struct WsBranch {
    /// `ops[input][op index]`.
    pub ops: Vec<Vec<BranchOp>>,
}

impl WsBranch {
    fn new(name: &str, inputs: usize, c: usize, reduction: bool, rng: &mut Pcg64Mcg) -> WsBranch {
        let ops = (0..inputs)
            .map(|j| {
                let stride = if reduction && j < 2 { 2 } else { 1 };
                WS_OPS
                    .iter()
                    .map(|&op| {
                        BranchOp::new(&join(name, &format!("in{j}.{op}")), op, c, stride, rng)
                    })
                    .collect()
            })
            .collect();
        WsBranch { ops }
    }

    /// The op the branch `b` selects; panics naming it when it is outside this position's
    /// table (input too high, or an op outside `cnn-ws`).
    pub fn select(&self, b: Branch) -> &BranchOp {
        let op = WS_OPS
            .iter()
            .position(|&o| o == b.op)
            .unwrap_or_else(|| panic!("Supernet: op {} is not in the cnn-ws space", b.op));
        assert!(
            b.input < self.ops.len(),
            "Supernet: input {} out of range (this node reads states 0..{})",
            b.input,
            self.ops.len()
        );
        &self.ops[b.input][op]
    }
}

impl Module for WsBranch {
    fn params(&self) -> Vec<Param> {
        self.ops.iter().flatten().flat_map(|o| o.params()).collect()
    }
}

/// One cell slot of the supernet: input calibration, the shared branch weights of its five
/// nodes, factorized reduces for loose ends 0/1 (reduction slots only), and the output
/// combination (per-state 1x1 conv slices and a BN).
#[derive(Debug, Clone)]
pub struct WsCell {
    /// Input calibration to `C` channels.
    pub calib: Calibrate,
    /// Per node, branches `[a, b]`.
    pub nodes: Vec<[WsBranch; 2]>,
    /// Factorized reduces of loose ends 0 and 1 (reduction slots; empty otherwise).
    pub fac: Vec<FactorizedReduce>,
    /// The output conv's `(C, C, 1, 1)` slice of each hidden state `0..=6`.
    pub comb: Vec<Param>,
    /// The output batch norm.
    pub comb_bn: BatchNorm2d,
    /// True for a reduction slot.
    pub reduction: bool,
    /// This slot's index (drop-path schedule).
    pub index: usize,
    /// Cells in the network (drop-path schedule).
    pub total: usize,
}

impl WsCell {
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &str,
        s0: MapSize,
        s1: MapSize,
        c: usize,
        reduction: bool,
        index: usize,
        total: usize,
        rng: &mut Pcg64Mcg,
    ) -> WsCell {
        let calib = Calibrate::new(&join(name, "calib"), s0, s1, c, rng);
        let nodes = (0..NODES)
            .map(|n| {
                let node = |side: &str, rng: &mut Pcg64Mcg| {
                    WsBranch::new(
                        &join(name, &format!("node{n}.{side}")),
                        n + 2,
                        c,
                        reduction,
                        rng,
                    )
                };
                let a = node("a", rng);
                [a, node("b", rng)]
            })
            .collect();
        let fac = if reduction {
            (0..2)
                .map(|i| FactorizedReduce::new(&join(name, &format!("fac{i}")), c, c, rng))
                .collect()
        } else {
            vec![]
        };
        let comb = (0..NODES + 2)
            .map(|s| {
                let w = init::kaiming_normal(
                    &[c, c, 1, 1],
                    init::FanMode::FanIn,
                    init::Nonlinearity::Relu.gain(),
                    autograd::DType::F32,
                    rng,
                );
                Param::new(join(name, &format!("comb.{s}.weight")), w)
            })
            .collect();
        WsCell {
            calib,
            nodes,
            fac,
            comb,
            comb_bn: BatchNorm2d::new(&join(name, "comb_bn"), c),
            reduction,
            index,
            total,
        }
    }

    /// The cell's `(N, C, H, W)` output for the architecture cell `arch`.
    fn forward(&self, arch: &CnnCell, s0: &Tensor, s1: &Tensor, p: f64, mode: &mut Mode) -> Tensor {
        let (s0, s1) = self.calib.forward(s0, s1, mode);
        let mut states = vec![s0, s1];
        let keep = drop_path_keep(p, self.index, self.total, mode.progress);
        let n = states[0].shape()[0];
        for (node, [a, b]) in arch.nodes.iter().zip(&self.nodes) {
            let (oa, ob) = (a.select(node.a), b.select(node.b));
            let ya = oa.forward(&states[node.a.input], mode);
            let yb = ob.forward(&states[node.b.input], mode);
            let mut factors = |op: &BranchOp| match mode.rng.as_deref_mut() {
                Some(rng) if keep < 1.0 && !op.is_identity() => drop_path_factors(n, keep, rng),
                _ => None,
            };
            let (ka, kb) = (factors(oa), factors(ob));
            states.push(scaled_sum(&ya, ka, &yb, kb));
        }
        let loose = arch.loose_ends();
        if self.reduction {
            for &i in loose.iter().filter(|&&i| i < 2) {
                states[i] = self.fac[i].forward(&states[i], mode);
            }
        }
        let parts: Vec<&Tensor> = loose.iter().map(|&i| &states[i]).collect();
        let slices: Vec<Tensor> = loose.iter().map(|&i| self.comb[i].get()).collect();
        let (x, w) = if parts.len() == 1 {
            (parts[0].clone(), slices[0].clone())
        } else {
            let refs: Vec<&Tensor> = slices.iter().collect();
            (Tensor::concat(&parts, 1), Tensor::concat(&refs, 1))
        };
        let y = x.relu_conv2d(&w, None, Conv2dParams::default());
        self.comb_bn.forward(&y, mode.bn)
    }

    /// The parameters the architecture cell `arch` reads in this slot.
    fn path_params(&self, arch: &CnnCell) -> Vec<Param> {
        let mut v = self.calib.params();
        for (node, [a, b]) in arch.nodes.iter().zip(&self.nodes) {
            v.extend(a.select(node.a).params());
            v.extend(b.select(node.b).params());
        }
        for i in arch.loose_ends() {
            if self.reduction && i < 2 {
                v.extend(self.fac[i].params());
            }
            v.push(self.comb[i].clone());
        }
        v.extend(self.comb_bn.params());
        v
    }
}

impl Module for WsCell {
    fn params(&self) -> Vec<Param> {
        let mut v = self.calib.params();
        for [a, b] in &self.nodes {
            v.extend(a.params());
            v.extend(b.params());
        }
        for f in &self.fac {
            v.extend(f.params());
        }
        v.extend(self.comb.iter().cloned());
        v.extend(self.comb_bn.params());
        v
    }
}

/// The NAO-WS supernet (see the module docs): one network holding the weights of every
/// architecture of `cnn-ws`, run along one architecture's path at a time.
///
/// ```
/// use autograd::{DType, Tensor};
/// use models::cnn::Mode;
/// use models::cnn::supernet::{Supernet, SupernetConfig};
/// use models::space::cnn::{CnnArch, CnnSpace};
/// use rand::SeedableRng;
/// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
/// let cfg = SupernetConfig { n_cells: 1, channels: 4, ..SupernetConfig::peer() };
/// let net = Supernet::new(&cfg, &mut rng);
/// let flat: Vec<usize> = "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4"
///     .split(' ').map(|t| t.parse().unwrap()).collect();
/// let arch = CnnArch::from_flat(&CnnSpace::WS, &flat).unwrap();
/// let x = Tensor::zeros(&[2, 3, 32, 32], DType::F32);
/// let logits = net.forward(&x, &arch, &mut Mode::train(&mut rng, 0.5));
/// assert_eq!(logits.shape(), &[2, 10]);
/// ```
#[derive(Debug, Clone)]
pub struct Supernet {
    /// The configuration it was built from.
    pub config: SupernetConfig,
    /// Stem conv (3 -> 3F, 3x3, padding 1, no bias).
    pub stem_conv: Conv2d,
    /// Stem batch norm.
    pub stem_bn: BatchNorm2d,
    /// The cell slots in order.
    pub cells: Vec<WsCell>,
    /// The classifier.
    pub classifier: Linear,
}

impl Supernet {
    /// Builds the supernet, every initial weight drawn from `rng`. Panics naming the field
    /// when `config` is invalid.
    pub fn new(config: &SupernetConfig, rng: &mut Pcg64Mcg) -> Supernet {
        if let Err(e) = config.validate() {
            panic!("Supernet: invalid config: {e}");
        }
        let f = config.channels;
        let stem_conv = Conv2d::new(
            "stem.conv",
            3,
            3 * f,
            (3, 3),
            Conv2dParams::new(1, 1, 1, 1),
            false,
            rng,
        );
        let stem_bn = BatchNorm2d::new("stem.bn", 3 * f);
        let total = config.total_cells();
        let reductions = config.reduction_cells();
        let mut outs: [MapSize; 2] = [(32, 3 * f), (32, 3 * f)];
        let (mut c, mut res) = (f, 32);
        let mut cells = Vec::with_capacity(total);
        for i in 0..total {
            let red = reductions.contains(&i);
            if red {
                c *= 2;
                res /= 2;
            }
            let cell = WsCell::new(
                &format!("cells.{i}"),
                outs[0],
                outs[1],
                c,
                red,
                i,
                total,
                rng,
            );
            cells.push(cell);
            outs = [outs[1], (res, c)];
        }
        let classifier = kaiming_linear("classifier", c, config.classes, rng);
        Supernet {
            config: config.clone(),
            stem_conv,
            stem_bn,
            cells,
            classifier,
        }
    }

    /// Logits `(N, classes)` of the path of `arch` for `x: (N, 3, 32, 32)`. Batch norm uses
    /// batch statistics whatever `mode.bn` says (spec 7); `mode.rng` turns drop-path and
    /// dropout on, `mode.progress` schedules drop-path. Panics naming the op when `arch` has
    /// an op outside `cnn-ws`.
    pub fn forward(&self, x: &Tensor, arch: &CnnArch, mode: &mut Mode) -> Tensor {
        let mut mode = Mode {
            bn: BatchNormMode::BatchStatsAlways,
            rng: mode.rng.as_deref_mut(),
            progress: mode.progress,
        };
        let stem = self.stem_bn.forward(&self.stem_conv.forward(x), mode.bn);
        let (mut s0, mut s1) = (stem.clone(), stem);
        let p = self.config.drop_path_keep;
        for cell in &self.cells {
            let a = if cell.reduction {
                &arch.reduction
            } else {
                &arch.normal
            };
            let out = cell.forward(a, &s0, &s1, p, &mut mode);
            s0 = std::mem::replace(&mut s1, out);
        }
        let mut feat = s1.global_avg_pool();
        if let Some(rng) = mode.rng.as_deref_mut()
            && self.config.dropout_keep < 1.0
        {
            feat = feat.dropout(self.config.dropout_keep, rng);
        }
        self.classifier.forward(&feat)
    }

    /// The parameters the path of `arch` reads (trainable ones and the unused BN buffers of
    /// the layers on it), in a stable order.
    pub fn path_params(&self, arch: &CnnArch) -> Vec<Param> {
        let mut v = self.stem_conv.params();
        v.extend(self.stem_bn.params());
        for cell in &self.cells {
            let a = if cell.reduction {
                &arch.reduction
            } else {
                &arch.normal
            };
            v.extend(cell.path_params(a));
        }
        v.extend(self.classifier.params());
        v
    }
}

impl Module for Supernet {
    fn params(&self) -> Vec<Param> {
        let mut v = self.stem_conv.params();
        v.extend(self.stem_bn.params());
        for c in &self.cells {
            v.extend(c.params());
        }
        v.extend(self.classifier.params());
        v
    }
}

#[cfg(test)]
mod tests;

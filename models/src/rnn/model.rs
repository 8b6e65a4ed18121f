//! [`RnnLanguageModel`]: the child RNN language model of spec 8.1: a word embedding tied
//! to the softmax weights (plus a decoder bias), one [`HighwayCell`], and the AWD-LSTM
//! regularisers.
//!
//! One training forward pass over a window `ids: (T, B)`:
//!
//! ```text
//! E' = E · m_e                      word-level embedding dropout (dropoute), rows of E
//! x  = E'[ids] · m_i                locked dropout on the embeddings (dropouti)
//! hs = cell(x, h0; m_x, m_h)        variational dropouts inside the cell (dropoutx, dropouth)
//! logits = (hs · m_o) E^T + b       locked dropout on the outputs (dropout); tied weights
//!                                   (folded into the decoder's loss op, which multiplies
//!                                   only the columns m_o keeps: a quarter at dropout 0.75)
//! loss = CE(logits, targets) + β mean((hs[t] - hs[t-1])²)    temporal activation reg.
//! ```
//!
//! Every mask is drawn once per forward pass from the caller's generator
//! ([`RnnLanguageModel::sample_masks`]), in a fixed order, so a run is reproducible from
//! its seed; [`RnnLanguageModel::forward_with_masks`] takes them explicitly (gradient
//! checks use fixed masks). The returned hidden state is detached, ready to be carried
//! into the next BPTT window.
//!
//! Devices: the model computes on the device of its parameters (move them with
//! [`Module::to_device`]). Masks are drawn on the host from the caller's generator and
//! copied there, so a GPU run draws the same masks as a CPU run with the same seed; the
//! hidden state and constants are made there too.

use autograd::nn::{Module, Param, init};
use autograd::ops::dropout::dropout_mask;
use autograd::{DType, Device, Tensor};
use ndarray::ArrayView2;
use rand_pcg::Pcg64Mcg;

use super::cell::{CellMasks, HighwayCell, INIT_RANGE};
use super::config::RnnConfig;
use crate::space::rnn::RnnCell;
use autograd::ops::linear_ce::{linear_cross_entropy, linear_cross_entropy_masked};

/// The dropout masks of one forward pass; `None` means no dropout there.
#[derive(Debug, Clone, Default)]
pub struct DropoutMasks {
    /// `(V, 1)`: whole embedding rows (dropoute).
    pub emb_rows: Option<Tensor>,
    /// `(B, emb)`: locked dropout on the embeddings (dropouti).
    pub input: Option<Tensor>,
    /// `(B, emb)`: `x[t]` where it enters the cell (dropoutx).
    pub x: Option<Tensor>,
    /// `(B, hid)`: `h[t-1]` and the states fed to node weights (dropouth).
    pub h: Option<Tensor>,
    /// `(B, hid)`: locked dropout on the cell outputs (dropout).
    pub output: Option<Tensor>,
}

/// The result of one forward pass with a loss.
#[derive(Debug, Clone)]
pub struct LmStep {
    /// The training objective: `nll + β · TAR` (TAR only in training passes).
    pub loss: Tensor,
    /// Mean next-word negative log-likelihood over the window (nats per token).
    pub nll: Tensor,
    /// The last hidden state `(B, hid)`, detached.
    pub hidden: Tensor,
}

/// The child RNN language model (spec 8.1).
#[derive(Debug, Clone)]
pub struct RnnLanguageModel {
    config: RnnConfig,
    encoder: Param,
    bias: Param,
    cell: HighwayCell,
}

fn mask(p: f64, shape: &[usize], dtype: DType, rng: &mut Pcg64Mcg) -> Option<Tensor> {
    (p > 0.0).then(|| dropout_mask(shape, 1.0 - p, dtype, rng))
}

fn mul_opt(x: &Tensor, m: &Option<Tensor>) -> Tensor {
    match m {
        Some(m) => x.mul(m),
        None => x.clone(),
    }
}

impl RnnLanguageModel {
    /// A model for `arch` with parameters `encoder.weight` (`(V, emb)`, tied to the
    /// softmax), `decoder.bias` (`(V)`, zeros) and `rnn.w0` .. `rnn.w11`; weights uniform
    /// ±0.04 drawn from `rng`, f32.
    ///
    /// Panics with the reason when `config` is invalid ([`RnnConfig::validate`]).
    ///
    /// ```
    /// use models::rnn::{RnnConfig, RnnLanguageModel};
    /// use models::space::{RnnSpace, SearchSpace};
    /// use rand::SeedableRng;
    /// let s = RnnSpace;
    /// let cell = s.decode(&s.from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2").unwrap()).unwrap();
    /// let cfg = RnnConfig { emb: 8, hidden: 8, vocab: 20, ..RnnConfig::smoke(20) };
    /// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
    /// let lm = RnnLanguageModel::new(&cell, &cfg, &mut rng);
    /// let ids = ndarray::Array2::from_shape_fn((5, 3), |(t, b)| ((t + b) % 20) as u32);
    /// let tgt = ndarray::Array2::from_shape_fn((5, 3), |(t, b)| ((t + b + 1) % 20) as u32);
    /// let out = lm.forward(ids.view(), tgt.view(), &lm.init_hidden(3), Some(&mut rng));
    /// assert!((out.nll.item() - 20f64.ln()).abs() < 0.1); // near-uniform at init
    /// assert_eq!(out.hidden.shape(), &[3, 8]);
    /// ```
    pub fn new(arch: &RnnCell, config: &RnnConfig, rng: &mut Pcg64Mcg) -> RnnLanguageModel {
        if let Err(e) = config.validate() {
            panic!("RnnLanguageModel: invalid config: {e}");
        }
        let encoder = Param::new(
            "encoder.weight",
            init::uniform(&[config.vocab, config.emb], INIT_RANGE, DType::F32, rng),
        );
        let bias = Param::new("decoder.bias", init::zeros(&[config.vocab], DType::F32));
        let cell = HighwayCell::new("rnn", arch, config.emb, config.hidden, rng);
        RnnLanguageModel {
            config: *config,
            encoder,
            bias,
            cell,
        }
    }

    /// A model from existing parts: `encoder` (`(V, emb)`, tied to the softmax), `bias`
    /// (`(V)`) and a `cell`; the handles share their values with the caller's (a
    /// weight-sharing supernet's child view, [`crate::rnn::supernet::RnnSupernet::child`]).
    ///
    /// Panics when `config` is invalid or a part does not fit it (naming the shapes).
    pub fn from_parts(
        config: &RnnConfig,
        encoder: Param,
        bias: Param,
        cell: HighwayCell,
    ) -> RnnLanguageModel {
        if let Err(e) = config.validate() {
            panic!("RnnLanguageModel: invalid config: {e}");
        }
        assert!(
            encoder.shape() == [config.vocab, config.emb]
                && bias.shape() == [config.vocab]
                && cell.emb() == config.emb
                && cell.hidden() == config.hidden,
            "RnnLanguageModel: encoder {:?}, bias {:?} and cell (emb {}, hid {}) do not fit \
             vocab {}, emb {}, hid {}",
            encoder.shape(),
            bias.shape(),
            cell.emb(),
            cell.hidden(),
            config.vocab,
            config.emb,
            config.hidden
        );
        RnnLanguageModel {
            config: *config,
            encoder,
            bias,
            cell,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The recurrent cell.
    pub fn cell(&self) -> &HighwayCell {
        &self.cell
    }

    /// The dtype of the parameters.
    pub fn dtype(&self) -> DType {
        self.encoder.get().dtype()
    }

    /// The device of the parameters (where the model computes).
    pub fn device(&self) -> Device {
        self.encoder.device()
    }

    /// A zero hidden state `(batch, hid)` in the model's dtype, on its device.
    pub fn init_hidden(&self, batch: usize) -> Tensor {
        Tensor::full_on(
            &[batch, self.config.hidden],
            0.0,
            self.dtype(),
            &self.device(),
        )
    }

    /// Draws the masks of one training pass for a batch of `batch` streams, in the order
    /// embedding rows, input, x, h, output (a zero probability draws nothing); drawn on
    /// the host, then copied to the model's device.
    pub fn sample_masks(&self, batch: usize, rng: &mut Pcg64Mcg) -> DropoutMasks {
        let c = &self.config;
        let dt = self.dtype();
        let dev = self.device();
        let mut m = |p: f64, shape: &[usize]| mask(p, shape, dt, rng).map(|t| t.to(&dev));
        DropoutMasks {
            emb_rows: m(c.dropoute, &[c.vocab, 1]),
            input: m(c.dropouti, &[batch, c.emb]),
            x: m(c.dropoutx, &[batch, c.emb]),
            h: m(c.dropouth, &[batch, c.hidden]),
            output: m(c.dropout, &[batch, c.hidden]),
        }
    }

    /// The raw cell outputs `(T, B, hid)` and the last hidden state (in the graph).
    fn run(&self, ids: ArrayView2<u32>, hidden: &Tensor, masks: &DropoutMasks) -> (Tensor, Tensor) {
        let (t_len, b) = ids.dim();
        assert_eq!(
            hidden.shape(),
            &[b, self.config.hidden],
            "RnnLanguageModel: hidden {:?} does not fit a window of {b} streams and hid {}",
            hidden.shape(),
            self.config.hidden
        );
        let ids: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
        let enc = mul_opt(&self.encoder.get(), &masks.emb_rows);
        let emb = enc.embedding(&ids, &[t_len, b]);
        // dropouti and dropoutx both multiply x: apply them as one (B, emb) mask.
        let x_mask = match (&masks.input, &masks.x) {
            (Some(a), Some(c)) => Some(a.mul(c)),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        };
        let cell_masks = CellMasks {
            x: x_mask,
            h: masks.h.clone(),
        };
        self.cell.forward(&emb, hidden, &cell_masks)
    }

    /// The decoder: `(N, hid)` outputs -> `(N, V)` logits `out E^T + b`, with the bias
    /// folded into the product (one GEMM, no broadcast add over `N x V`).
    fn decode(&self, out: &Tensor) -> Tensor {
        let n = out.shape()[0];
        let v = self.config.vocab;
        let ones = Tensor::full_on(&[n, 1], 1.0, out.dtype(), out.device());
        let out_aug = Tensor::concat(&[out, &ones], 1);
        let w_aug = Tensor::concat(&[&self.encoder.get(), &self.bias.get().reshape(&[v, 1])], 1);
        out_aug.matmul_t(&w_aug)
    }

    /// Logits `(T * B, V)` (time-major rows) for the window `ids: (T, B)` from `hidden`
    /// `(B, hid)`, and the new hidden state (detached). `masks: None` is evaluation mode.
    pub fn logits(
        &self,
        ids: ArrayView2<u32>,
        hidden: &Tensor,
        masks: Option<&DropoutMasks>,
    ) -> (Tensor, Tensor) {
        let none = DropoutMasks::default();
        let m = masks.unwrap_or(&none);
        let (hs, last) = self.run(ids, hidden, m);
        let (t_len, b) = ids.dim();
        let out = mul_opt(&hs, &m.output).reshape(&[t_len * b, self.config.hidden]);
        (self.decode(&out), last.detach())
    }

    /// Loss of the window `ids: (T, B)` against next-word `targets: (T, B)` with explicit
    /// masks (`None`: evaluation, no dropout, no TAR).
    pub fn forward_with_masks(
        &self,
        ids: ArrayView2<u32>,
        targets: ArrayView2<u32>,
        hidden: &Tensor,
        masks: Option<&DropoutMasks>,
    ) -> LmStep {
        assert_eq!(
            ids.dim(),
            targets.dim(),
            "RnnLanguageModel: inputs {:?} and targets {:?} differ in shape",
            ids.dim(),
            targets.dim()
        );
        let none = DropoutMasks::default();
        let m = masks.unwrap_or(&none);
        let (hs, last) = self.run(ids, hidden, m);
        let (t_len, b) = ids.dim();
        let out = hs.reshape(&[t_len * b, self.config.hidden]);
        let labels: Vec<usize> = targets.iter().map(|&i| i as usize).collect();
        let (enc, bias) = (self.encoder.get(), self.bias.get());
        // The output dropout is folded into the decoder: only kept columns are multiplied.
        let nll = match &m.output {
            Some(mask) => linear_cross_entropy_masked(&out, mask, &enc, &bias, &labels),
            None => linear_cross_entropy(&out, &enc, &bias, &labels),
        };
        let beta = self.config.tar_beta;
        let loss = if masks.is_some() && beta > 0.0 && t_len > 1 {
            let diff = hs.narrow(0, 1, t_len - 1) - hs.narrow(0, 0, t_len - 1);
            &nll + &diff.square().mean().mul_scalar(beta)
        } else {
            nll.clone()
        };
        LmStep {
            loss,
            nll,
            hidden: last.detach(),
        }
    }

    /// Loss of one window; `rng: Some` is a training pass (masks drawn from it, TAR on),
    /// `None` an evaluation pass.
    pub fn forward(
        &self,
        ids: ArrayView2<u32>,
        targets: ArrayView2<u32>,
        hidden: &Tensor,
        rng: Option<&mut Pcg64Mcg>,
    ) -> LmStep {
        let masks = rng.map(|r| self.sample_masks(ids.ncols(), r));
        self.forward_with_masks(ids, targets, hidden, masks.as_ref())
    }
}

impl Module for RnnLanguageModel {
    fn params(&self) -> Vec<Param> {
        let mut p = vec![self.encoder.clone(), self.bias.clone()];
        p.extend(self.cell.params());
        p
    }
}

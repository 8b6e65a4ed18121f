//! The NAO controller (spec 3 and 4): an [`Encoder`] mapping architectures into a continuous
//! space, a [`Predictor`] of their performance, and a [`Decoder`] mapping points back to
//! architectures; trained jointly with `lambda * MSE + (1 - lambda) * CE`, Adam, gradient
//! clipping, and on-the-fly branch-swap augmentation.
//!
//! Generation ([`Controller::generate`]) takes the gradient of the predicted performance
//! with respect to the normalised encoder outputs of each seed, moves them by `+ eta * grad`,
//! re-normalises, and decodes greedily under the space's masks; `eta` grows 1, 2, 3, ...
//! after each pass over the seeds until enough new architectures (by canonical form) are
//! found or `eta` passes its cap. [`Controller::generate_with`] refines this as a
//! [`Generation`] says: finer step sizes, a sampled instead of greedy decoder, a trust region
//! around each seed (the NAO search's defaults; `--variant paper` keeps the spec's).

pub mod config;
pub mod decoder;
pub mod encoder;
pub mod predictor;
pub mod surrogate;

pub use config::{ControllerConfig, PredictorInput};
pub use decoder::Decoder;
pub use encoder::{Encoded, Encoder};
pub use predictor::Predictor;
pub use surrogate::{ControllerSurrogate, SurrogateOptions};

use crate::search::diagnostics::hamming;
use autograd::nn::{Module, Param};
use autograd::ops::decode::Pick;
use autograd::optim::{Adam, Optimizer};
use autograd::{DType, Device, Tensor, no_grad};
use models::space::{Arch, SearchSpace, SpaceKind, space};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::collections::HashSet;

/// Losses of one training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLoss {
    /// `lambda * mse + (1 - lambda) * ce`.
    pub total: f64,
    /// Prediction loss.
    pub mse: f64,
    /// Reconstruction loss (mean token cross-entropy).
    pub ce: f64,
    /// Pairwise ranking loss (0 when `rank_weight` is 0).
    pub rank: f64,
}

/// Encoder, predictor, decoder and their optimiser.
pub struct Controller {
    /// Sizes and training settings.
    pub cfg: ControllerConfig,
    space: Box<dyn SearchSpace>,
    encoder: Encoder,
    predictor: Predictor,
    decoder: Decoder,
    opt: Adam,
    dtype: DType,
}

impl Controller {
    /// A controller for `space` with weights drawn from `seed`.
    pub fn new(kind: SpaceKind, cfg: ControllerConfig, dtype: DType, seed: u64) -> Controller {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let encoder = Encoder::new(&cfg, &mut rng);
        let predictor = Predictor::new(&cfg, &mut rng);
        let decoder = Decoder::new(&cfg, &mut rng);
        let opt = Adam::new(cfg.lr).with_weight_decay(cfg.weight_decay);
        let c = Controller {
            space: space(kind),
            cfg,
            encoder,
            predictor,
            decoder,
            opt,
            dtype,
        };
        if dtype != DType::F32 {
            c.to_dtype(dtype);
        }
        c
    }

    /// Moves the encoder, predictor and decoder parameters to `device` (GPU: f32
    /// controllers only). Everything the controller builds afterwards (token tables,
    /// targets, zero states, dropout masks) is made on the parameters' device; the Adam
    /// moments are created there on the first step (or, loaded from a file, move there on
    /// first use). Results (losses, predictions, architectures) come back to the host.
    ///
    /// Greedy decoding of an f32 controller ([`Decoder::decode_fast`]) runs on the CPU from
    /// any device: it copies the decoder weights and the encoder outputs to the host once per
    /// call.
    pub fn to_device(&self, device: &Device) -> Result<(), autograd::Error> {
        Module::to_device(self, device)
    }

    /// The device of the controller's parameters.
    pub fn device(&self) -> Device {
        self.encoder.device()
    }

    /// The search space.
    pub fn space(&self) -> &dyn SearchSpace {
        self.space.as_ref()
    }

    /// The optimiser (its state is checkpointed with the run).
    pub fn optimizer(&mut self) -> &mut Adam {
        &mut self.opt
    }

    /// The optimiser, read-only (for saving its state).
    pub fn optimizer_ref(&self) -> &Adam {
        &self.opt
    }

    /// The joint loss on a batch (no parameter update). With `rng`, predictor dropout is on.
    pub fn loss(
        &self,
        archs: &[Arch],
        labels: &[f64],
        rng: Option<&mut Pcg64Mcg>,
    ) -> (Tensor, StepLoss) {
        assert_eq!(
            archs.len(),
            labels.len(),
            "controller loss: {} archs but {} labels",
            archs.len(),
            labels.len()
        );
        let enc = self.encoder.forward(archs);
        let pred = self
            .predictor
            .forward(&self.predictor_input(&enc.outputs, &enc.embedding), rng);
        let target = Tensor::from_vec(labels.to_vec(), &[labels.len()])
            .to_dtype(self.dtype)
            .to(pred.device());
        let mse = pred.mse(&target);
        let ce = self.reconstruction_loss(archs, &enc);
        let lambda = self.cfg.lambda;
        let mut total = mse.mul_scalar(lambda).add(&ce.mul_scalar(1.0 - lambda));
        let mut rank_value = 0.0;
        if self.cfg.rank_weight > 0.0
            && let Some(rank) = rank_loss(&pred, labels)
        {
            rank_value = rank.item();
            total = total.add(&rank.mul_scalar(self.cfg.rank_weight));
        }
        let l = StepLoss {
            total: total.item(),
            mse: mse.item(),
            ce: ce.item(),
            rank: rank_value,
        };
        (total, l)
    }

    /// What the predictor reads ([`ControllerConfig::predictor_input`]) of normalised
    /// encoder outputs `(B, steps, H)` and their `embedding`.
    fn predictor_input(&self, outputs: &Tensor, embedding: &Tensor) -> Tensor {
        match self.cfg.predictor_input {
            PredictorInput::Mean => embedding.clone(),
            PredictorInput::Concat => {
                let s = outputs.shape();
                outputs.reshape(&[s[0], s[1] * s[2]])
            }
        }
    }

    /// The decoder's mean token cross-entropy reconstructing `archs` from their encoding.
    fn reconstruction_loss(&self, archs: &[Arch], enc: &Encoded) -> Tensor {
        let logits = self.decoder.forward(archs, &enc.embedding, &enc.outputs);
        let flat: Vec<usize> = archs.iter().flatten().copied().collect();
        logits
            .reshape(&[flat.len(), self.cfg.vocab])
            .cross_entropy(&flat)
    }

    /// One optimisation step on a batch; returns its losses.
    pub fn train_step(&mut self, archs: &[Arch], labels: &[f64], rng: &mut Pcg64Mcg) -> StepLoss {
        let (loss, l) = self.loss(archs, labels, Some(rng));
        let mut grads = loss.backward();
        grads.clip_by_global_norm(self.cfg.grad_clip);
        let params = self.params();
        self.opt.step(&params, &grads);
        l
    }

    /// `epochs` passes over `(architecture, label)` pairs in shuffled mini-batches, each
    /// example branch-swapped afresh every time it is drawn (spec 2). Returns the mean loss
    /// of each epoch.
    pub fn train(
        &mut self,
        data: &[(Arch, f64)],
        epochs: usize,
        rng: &mut Pcg64Mcg,
        on_epoch: impl FnMut(usize, StepLoss),
    ) -> Vec<StepLoss> {
        self.epochs_of(data, epochs, rng, Self::train_step, on_epoch)
    }

    /// Unsupervised pre-training of the autoencoder (semi-supervised NAS: arch2vec, Yan et
    /// al. NeurIPS 2020; SemiNAS, Luo et al. NeurIPS 2020): `epochs` passes over `archs`
    /// (no labels; they need not have been evaluated) minimising the reconstruction loss
    /// alone, stepping only the encoder and decoder (the predictor and its optimiser state
    /// are untouched). The encoder then places the whole space, not only the few labelled
    /// architectures, and the predictor trained on top of it ranks unseen ones better.
    /// Returns the mean reconstruction loss of each epoch (as [`StepLoss::ce`]).
    pub fn pretrain(
        &mut self,
        archs: &[Arch],
        epochs: usize,
        rng: &mut Pcg64Mcg,
        on_epoch: impl FnMut(usize, StepLoss),
    ) -> Vec<StepLoss> {
        let data: Vec<(Arch, f64)> = archs.iter().map(|a| (a.clone(), 0.0)).collect();
        let step = |c: &mut Self, archs: &[Arch], _: &[f64], _: &mut Pcg64Mcg| {
            let ce = c.reconstruction_loss(archs, &c.encoder.forward(archs));
            let value = ce.item();
            let mut grads = ce.backward();
            grads.clip_by_global_norm(c.cfg.grad_clip);
            let mut params = c.encoder.params();
            params.extend(c.decoder.params());
            c.opt.step(&params, &grads);
            StepLoss {
                total: value,
                mse: 0.0,
                ce: value,
                rank: 0.0,
            }
        };
        self.epochs_of(&data, epochs, rng, step, on_epoch)
    }

    /// `epochs` passes of `step` over `data` in shuffled mini-batches, each example
    /// branch-swapped afresh every time it is drawn; the mean losses of each epoch.
    fn epochs_of(
        &mut self,
        data: &[(Arch, f64)],
        epochs: usize,
        rng: &mut Pcg64Mcg,
        mut step: impl FnMut(&mut Self, &[Arch], &[f64], &mut Pcg64Mcg) -> StepLoss,
        mut on_epoch: impl FnMut(usize, StepLoss),
    ) -> Vec<StepLoss> {
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut history = Vec::with_capacity(epochs);
        for epoch in 0..epochs {
            order.shuffle(rng);
            let mut sum = StepLoss {
                total: 0.0,
                mse: 0.0,
                ce: 0.0,
                rank: 0.0,
            };
            let mut batches = 0;
            for chunk in order.chunks(self.cfg.batch_size) {
                let archs: Vec<Arch> = chunk
                    .iter()
                    .map(|&i| self.space.symmetric_variant(&data[i].0, rng))
                    .collect();
                let labels: Vec<f64> = chunk.iter().map(|&i| data[i].1).collect();
                let l = step(self, &archs, &labels, rng);
                sum.total += l.total;
                sum.mse += l.mse;
                sum.ce += l.ce;
                sum.rank += l.rank;
                batches += 1;
            }
            let n = batches.max(1) as f64;
            let mean = StepLoss {
                total: sum.total / n,
                mse: sum.mse / n,
                ce: sum.ce / n,
                rank: sum.rank / n,
            };
            on_epoch(epoch, mean);
            history.push(mean);
        }
        history
    }

    /// Predicted performance of each architecture (no dropout).
    pub fn predict(&self, archs: &[Arch]) -> Vec<f64> {
        no_grad(|| {
            archs
                .chunks(self.cfg.batch_size.max(1))
                .flat_map(|c| {
                    let enc = self.encoder.forward(c);
                    self.predictor
                        .forward(&self.predictor_input(&enc.outputs, &enc.embedding), None)
                        .to_vec::<f64>()
                })
                .collect()
        })
    }

    /// Encodes and decodes without moving: the autoencoder's reconstruction.
    pub fn reconstruct(&self, archs: &[Arch]) -> Vec<Arch> {
        no_grad(|| {
            archs
                .chunks(self.cfg.batch_size.max(1))
                .flat_map(|c| {
                    let enc = self.encoder.forward(c);
                    self.decoder
                        .greedy(self.space.as_ref(), &enc.embedding, &enc.outputs)
                })
                .collect()
        })
    }

    /// One gradient step of size `eta` from each seed, then greedy decoding (spec 4.1).
    pub fn move_and_decode(&self, seeds: &[Arch], eta: f64) -> Vec<Arch> {
        self.move_and_decode_with(seeds, eta, &Generation::spec(0.0), None)
    }

    /// As [`move_and_decode`](Self::move_and_decode), with `how`'s departures from the spec,
    /// random choices drawn from `rng` (without one, or with `how`'s `noise` and
    /// `temperature` 0, the spec):
    ///
    /// * `noise`: each moved encoder output is perturbed by `noise` times a random
    ///   direction of unit expected length (N(0, I / hidden)) before re-normalising, so the
    ///   decoder reads points around the gradient step, not only on it;
    /// * `temperature`: each token is drawn from the decoder's distribution at the moved
    ///   point (softmax of its logits / `temperature`, within the space's masks) instead of
    ///   taken greedily, so the decoder proposes the architectures it finds likely there, not
    ///   only the most likely one.
    pub fn move_and_decode_with(
        &self,
        seeds: &[Arch],
        eta: f64,
        how: &Generation,
        mut rng: Option<&mut Pcg64Mcg>,
    ) -> Vec<Arch> {
        let enc = no_grad(|| self.encoder.forward(seeds));
        // The normalised outputs become a leaf: d(prediction)/d(outputs) for every step.
        let h = enc.outputs.detach().requires_grad();
        let pred = self
            .predictor
            .forward(&self.predictor_input(&h, &encoder::embed(&h)), None);
        let grads = pred.sum().backward();
        let g = grads
            .get(&h)
            .expect("the prediction depends on the encoder outputs")
            .clone();
        no_grad(|| {
            let mut moved = h.detach().add(&g.mul_scalar(eta));
            if let Some(rng) = rng.as_deref_mut().filter(|_| how.noise > 0.0) {
                let std = how.noise / (self.cfg.hidden as f64).sqrt();
                let xi = autograd::nn::init::normal(h.shape(), std, h.dtype(), rng);
                moved = moved.add(&xi.to(h.device()));
            }
            let moved = moved.l2_normalize(-1, encoder::NORM_EPS);
            let emb = encoder::embed(&moved);
            let pick = match rng.filter(|_| how.temperature > 0.0) {
                Some(rng) => Pick::Sample {
                    temperature: how.temperature,
                    seed: rng.random(),
                },
                None => Pick::Greedy,
            };
            self.decoder.decode(self.space.as_ref(), &emb, &moved, pick)
        })
    }

    /// Generates up to `how_many` architectures whose canonical forms are not in `seen`
    /// (nor repeated), from `seeds`, with the global step size `eta = 1, 2, ...` bumped after
    /// each pass over all seeds until enough are found or `eta > max_eta` (spec 4.2).
    /// Returns the new architectures and the step size each was found with.
    pub fn generate(
        &self,
        seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        max_eta: usize,
    ) -> Vec<(Arch, f64)> {
        self.generate_with(
            seeds,
            how_many,
            seen,
            &Generation::spec(max_eta as f64),
            None,
        )
    }

    /// As [`generate`](Self::generate), with step sizes `eta = eta_step, 2 eta_step, ...`
    /// up to `how.max_eta` (the spec: `eta_step` 1), each pass moved and decoded as
    /// [`move_and_decode_with`](Self::move_and_decode_with) says with `how` and `rng`. A
    /// finer schedule finds the smallest moves that decode to a new architecture, so more of
    /// the generated architectures stay close to their seeds. With `how.radius` > 0, an
    /// architecture that decodes more than `radius` tokens away from its own seed (between
    /// canonical forms) is dropped: a trust region around the seeds.
    pub fn generate_with(
        &self,
        seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        how: &Generation,
        mut rng: Option<&mut Pcg64Mcg>,
    ) -> Vec<(Arch, f64)> {
        assert!(
            how.eta_step > 0.0,
            "generate: eta_step {} must be positive",
            how.eta_step
        );
        let mut found: Vec<(Arch, f64)> = Vec::new();
        let mut taken: HashSet<Arch> = HashSet::new();
        let passes = (how.max_eta / how.eta_step).round() as usize;
        for k in 1..=passes {
            let eta = k as f64 * how.eta_step;
            let decoded = self.move_and_decode_with(seeds, eta, how, rng.as_deref_mut());
            for (arch, seed) in decoded.into_iter().zip(seeds) {
                if found.len() >= how_many {
                    return found;
                }
                if self.space.validate(&arch).is_err() {
                    continue;
                }
                let canon = self.space.canonical(&arch);
                if how.radius > 0 && hamming(&canon, &self.space.canonical(seed)) > how.radius {
                    continue;
                }
                if seen.contains(&canon) || !taken.insert(canon) {
                    continue;
                }
                found.push((arch, eta));
            }
            if found.len() >= how_many {
                break;
            }
        }
        found
    }
}

/// How [`Controller::generate_with`] moves and decodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    /// Largest step size.
    pub max_eta: f64,
    /// Step-size increment (1 = the spec).
    pub eta_step: f64,
    /// Perturbation of each moved point (0 = the spec).
    pub noise: f64,
    /// Sampling temperature of the decoder (0 = greedy, the spec).
    pub temperature: f64,
    /// Trust region: the largest token distance from its seed (canonical forms) at which a
    /// decoded architecture is kept (0 = any distance, the spec).
    pub radius: usize,
}

impl Generation {
    /// The spec's generation up to `max_eta`: eta = 1, 2, ..., no noise, greedy decoding.
    pub fn spec(max_eta: f64) -> Generation {
        Generation {
            max_eta,
            eta_step: 1.0,
            noise: 0.0,
            temperature: 0.0,
            radius: 0,
        }
    }
}

/// The pairwise hinge ranking loss of predictions `pred` `(B,)` against `labels`: the mean,
/// over ordered pairs `(i, j)` with `labels[i] != labels[j]`, of
/// `max(0, RANK_MARGIN - sign(labels[i] - labels[j]) (pred[i] - pred[j]))`. `None` when no
/// pair has distinct labels.
pub fn rank_loss(pred: &Tensor, labels: &[f64]) -> Option<Tensor> {
    let b = labels.len();
    assert_eq!(
        pred.shape(),
        &[b],
        "rank_loss: predictions {:?} for {b} labels",
        pred.shape()
    );
    let mut sign = vec![0.0f64; b * b];
    let mut pairs = 0usize;
    for i in 0..b {
        for j in 0..b {
            let d = labels[i] - labels[j];
            if d != 0.0 {
                sign[i * b + j] = d.signum();
                pairs += 1;
            }
        }
    }
    if pairs == 0 {
        return None;
    }
    let mask: Vec<f64> = sign.iter().map(|s| s.abs()).collect();
    let as_tensor = |v: Vec<f64>| {
        Tensor::from_vec(v, &[b, b])
            .to_dtype(pred.dtype())
            .to(pred.device())
    };
    let (sign, mask) = (as_tensor(sign), as_tensor(mask));
    let diff = pred.reshape(&[b, 1]).sub(&pred.reshape(&[1, b]));
    let hinge = sign.mul(&diff).neg().add_scalar(config::RANK_MARGIN).relu();
    Some(hinge.mul(&mask).sum().mul_scalar(1.0 / pairs as f64))
}

impl Module for Controller {
    fn params(&self) -> Vec<Param> {
        let mut p = self.encoder.params();
        p.extend(self.predictor.params());
        p.extend(self.decoder.params());
        p
    }
}

#[cfg(test)]
mod tests;

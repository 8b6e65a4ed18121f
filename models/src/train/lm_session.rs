//! [`LmSession`]: [`super::rnn_trainer::train_model`]'s loop one epoch at a time, with
//! its whole state saved and restored between epochs, so that a long language-model
//! training survives being killed.
//!
//! What is carried from epoch to epoch, and therefore saved
//! ([`LmSession::save`] / [`LmSession::load`]):
//!
//! * the parameters (`params.bin`) and, once averaged SGD is on, the running average
//!   (`average.bin`);
//! * the dropout-mask generator, the validation history (for the ASGD switch), the
//!   report so far and the averaging count (`state.json`).
//!
//! Everything else starts afresh every epoch (the hidden state is zero, the window lengths
//! come from `seed + epoch`, SGD has no momentum), so a session restored after epoch `k`
//! continues exactly as the uninterrupted one: same masks, same windows, same bits.
//!
//! ```
//! use datasets::Corpus;
//! use models::rnn::{RnnConfig, RnnLanguageModel};
//! use models::space::{RnnSpace, SearchSpace};
//! use models::train::lm_session::LmSession;
//! use models::train::ptb_recipe::PtbRecipe;
//! use rand::SeedableRng;
//! let text = "a b c d e f g h\n".repeat(40);
//! let corpus = Corpus::from_texts(&text, &text, &text).unwrap();
//! let cell = RnnSpace.decode(&RnnSpace.from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2").unwrap()).unwrap();
//! let cfg = RnnConfig { emb: 8, hidden: 8, ..RnnConfig::smoke(corpus.vocab.len()) };
//! let recipe = PtbRecipe { batch: 4, eval_batch: 4, bptt: 5, epochs: 2, ..PtbRecipe::smoke() };
//! let model = RnnLanguageModel::new(&cell, &cfg, &mut rand_pcg::Pcg64Mcg::seed_from_u64(0));
//! let mut s = LmSession::new(model, &recipe, &corpus, 0).unwrap();
//! let first = s.run_epoch(None).unwrap();
//! assert_eq!((first.epoch, s.epochs_done()), (1, 1));
//! assert!(first.valid_ppl.is_finite());
//! ```

use std::path::Path;
use std::time::Instant;

use autograd::nn::serialize::{load_params, save_params};
use autograd::nn::{Module, Param};
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use datasets::{BpttWindows, Corpus, SeqLen, batchify};
use indicatif::ProgressBar;
use ndarray::Array2;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::lm_parts::{Averager, EpochStats, RnnReport, TrainError, asgd_should_switch, evaluate};
use super::ptb_recipe::PtbRecipe;
use crate::rnn::RnnLanguageModel;

/// The seed of the dropout-mask generator for a training seed (the same as
/// [`super::rnn_trainer::train_model`]'s).
pub(crate) fn mask_seed(seed: u64) -> u64 {
    seed ^ 0x9e37_79b9_7f4a_7c15
}

/// The part of a session's state that is not tensors (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionState {
    epochs_done: usize,
    history: Vec<f64>,
    mask_rng: Pcg64Mcg,
    report: RnnReport,
    average_count: Option<usize>,
}

/// A language-model training in progress (see the module docs).
pub struct LmSession {
    model: RnnLanguageModel,
    recipe: PtbRecipe,
    train: Array2<u32>,
    valid: Array2<u32>,
    params: Vec<Param>,
    opt: Sgd,
    seed: u64,
    state: SessionState,
    averager: Option<Averager>,
}

impl LmSession {
    /// Starts training `model` (on its parameters' device) on `corpus` with `recipe`;
    /// `seed` drives the dropout masks and window lengths.
    pub fn new(
        model: RnnLanguageModel,
        recipe: &PtbRecipe,
        corpus: &Corpus,
        seed: u64,
    ) -> Result<LmSession, TrainError> {
        recipe.validate().map_err(|why| TrainError::Invalid {
            what: "recipe",
            why,
        })?;
        let train = batchify(&corpus.train, recipe.batch)?;
        let valid = batchify(&corpus.valid, recipe.eval_batch)?;
        let params = model.trainable_params();
        let report = RnnReport {
            epochs: Vec::new(),
            best_valid_ppl: f64::INFINITY,
            asgd_from_epoch: None,
            num_params: model.num_params(),
        };
        Ok(LmSession {
            opt: Sgd::new(recipe.lr).with_weight_decay(recipe.weight_decay),
            recipe: recipe.clone(),
            train,
            valid,
            params,
            seed,
            state: SessionState {
                epochs_done: 0,
                history: Vec::new(),
                mask_rng: Pcg64Mcg::seed_from_u64(mask_seed(seed)),
                report,
                average_count: None,
            },
            averager: None,
            model,
        })
    }

    /// The model being trained (current weights, not the average).
    pub fn model(&self) -> &RnnLanguageModel {
        &self.model
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.state.epochs_done
    }

    /// The report so far.
    pub fn report(&self) -> &RnnReport {
        &self.state.report
    }

    /// Training windows per epoch (for progress bars).
    pub fn windows_per_epoch(&self) -> usize {
        (self.train.nrows().saturating_sub(1))
            .div_ceil(self.recipe.bptt)
            .min(self.recipe.max_train_windows.unwrap_or(usize::MAX))
    }

    /// Runs `f` with the weights evaluation uses: the running average once averaged SGD
    /// is on, else the current ones.
    pub fn with_eval_weights<R>(&self, f: impl FnOnce(&RnnLanguageModel) -> R) -> R {
        match &self.averager {
            Some(a) => a.with_average(&self.params, || f(&self.model)),
            None => f(&self.model),
        }
    }

    /// Mean NLL per token on `ids` (batchified by the recipe's `eval_batch`, at most
    /// `max_windows` windows) with the evaluation weights.
    pub fn evaluate_ids(&self, ids: &[u32], max_windows: Option<usize>) -> Result<f64, TrainError> {
        let data = batchify(ids, self.recipe.eval_batch)?;
        self.with_eval_weights(|m| evaluate(m, &data, self.recipe.bptt, max_windows))
    }

    /// Trains one more epoch and validates; `pb` (if any) advances by one per window.
    pub fn run_epoch(&mut self, pb: Option<&ProgressBar>) -> Result<EpochStats, TrainError> {
        let epoch = self.state.epochs_done + 1;
        let recipe = &self.recipe;
        let start = Instant::now();
        let policy = if recipe.random_bptt {
            SeqLen::Random { bptt: recipe.bptt }
        } else {
            SeqLen::Fixed(recipe.bptt)
        };
        let mut hidden = self.model.init_hidden(recipe.batch);
        let (mut total, mut count) = (0.0, 0usize);
        let windows = BpttWindows::new(&self.train, policy, self.seed.wrapping_add(epoch as u64))?;
        for (wi, w) in windows
            .take(recipe.max_train_windows.unwrap_or(usize::MAX))
            .enumerate()
        {
            self.opt.set_lr(recipe.lr * w.lr_scale as f64);
            let out =
                self.model
                    .forward(w.input, w.target, &hidden, Some(&mut self.state.mask_rng));
            let loss = out.loss.item();
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    what: "loss",
                    value: loss,
                    epoch,
                    window: wi,
                });
            }
            let mut grads = out.loss.backward();
            let norm = match recipe.clip {
                Some(c) => clip_grad_norm(&mut grads, &self.params, c),
                None => grads.global_norm(),
            };
            if !norm.is_finite() {
                return Err(TrainError::NonFinite {
                    what: "gradient norm",
                    value: norm,
                    epoch,
                    window: wi,
                });
            }
            self.opt.step(&self.params, &grads);
            if let Some(a) = self.averager.as_mut() {
                a.update(&self.params);
            }
            hidden = out.hidden;
            total += out.nll.item() * w.seq_len as f64;
            count += w.seq_len;
            if let Some(pb) = pb {
                pb.inc(1);
                pb.set_message(format!(
                    "epoch {epoch} train ppl {:.1}",
                    (total / count as f64).exp()
                ));
            }
        }
        let valid_loss = self.with_eval_weights(|m| {
            evaluate(m, &self.valid, recipe.bptt, recipe.max_valid_windows)
        })?;
        let train_loss = total / count.max(1) as f64;
        let stats = EpochStats {
            epoch,
            train_loss,
            train_ppl: train_loss.exp(),
            valid_loss,
            valid_ppl: valid_loss.exp(),
            asgd: self.averager.is_some(),
            seconds: start.elapsed().as_secs_f64(),
        };
        let report = &mut self.state.report;
        report.best_valid_ppl = report.best_valid_ppl.min(stats.valid_ppl);
        report.epochs.push(stats.clone());
        if recipe.asgd
            && self.averager.is_none()
            && asgd_should_switch(&self.state.history, valid_loss, recipe.nonmono)
        {
            self.averager = Some(Averager::new(&self.params));
            report.asgd_from_epoch = Some(epoch);
        }
        self.state.history.push(valid_loss);
        self.state.epochs_done = epoch;
        self.state.average_count = self.averager.as_ref().map(|a| a.count);
        Ok(stats)
    }

    /// Ends the training: the model takes the averaged weights if averaging was on.
    pub fn finish(self) -> (RnnLanguageModel, RnnReport) {
        if let Some(a) = self.averager {
            for (p, v) in self.params.iter().zip(a.avg) {
                p.set(v);
            }
        }
        (self.model, self.state.report)
    }

    /// Writes the state after the last finished epoch into `dir` (created if needed):
    /// `params.bin`, `average.bin` (when averaging), `state.json`. Write into a fresh
    /// directory and publish it afterwards if a crash must not leave a half-written one.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let ck = |e: String| TrainError::Checkpoint(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| ck(e.to_string()))?;
        save_params(dir.join("params.bin"), &self.params).map_err(|e| ck(e.to_string()))?;
        if let Some(a) = &self.averager {
            save_params(
                dir.join("average.bin"),
                &average_params(&self.params, &a.avg),
            )
            .map_err(|e| ck(e.to_string()))?;
        }
        let json = serde_json::to_vec_pretty(&self.state).map_err(|e| ck(e.to_string()))?;
        std::fs::write(dir.join("state.json"), json).map_err(|e| ck(e.to_string()))
    }

    /// Restores the state written by [`LmSession::save`] into a session made by
    /// [`LmSession::new`] with the same model shape, recipe, corpus and seed.
    pub fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let ck = |e: String| TrainError::Checkpoint(format!("{}: {e}", dir.display()));
        let bytes = std::fs::read(dir.join("state.json")).map_err(|e| ck(e.to_string()))?;
        let state: SessionState = serde_json::from_slice(&bytes).map_err(|e| ck(e.to_string()))?;
        load_params(dir.join("params.bin"), &self.params).map_err(|e| ck(e.to_string()))?;
        self.averager = match state.average_count {
            Some(count) => {
                let avg = average_params(&self.params, &Averager::new(&self.params).avg);
                load_params(dir.join("average.bin"), &avg).map_err(|e| ck(e.to_string()))?;
                Some(Averager {
                    avg: avg.iter().map(|p| p.get()).collect(),
                    count,
                })
            }
            None => None,
        };
        self.state = state;
        Ok(())
    }
}

/// The running average as named parameters (`avg.<name>`), for saving and loading.
fn average_params(params: &[Param], avg: &[autograd::Tensor]) -> Vec<Param> {
    params
        .iter()
        .zip(avg)
        .map(|(p, a)| Param::new(format!("avg.{}", p.name()), a.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::RnnConfig;
    use crate::space::{RnnSpace, SearchSpace};

    fn setup(epochs: usize) -> (Corpus, RnnLanguageModel, PtbRecipe) {
        let text: String = (0..300)
            .map(|i| format!("w{} w{} w{}\n", i % 7, (i * 3) % 11, i % 5))
            .collect();
        // Validation text unlike the training text: the model overfits, validation gets
        // worse within a few epochs, and averaging switches on.
        let valid: String = (0..100)
            .map(|i| format!("w{} w{} w{}\n", (i * i) % 7, (i * 5 + 1) % 11, (i * 3) % 5))
            .collect();
        let corpus = Corpus::from_texts(&text, &valid, &valid).unwrap();
        let cell = RnnSpace
            .decode(
                &RnnSpace
                    .from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2")
                    .unwrap(),
            )
            .unwrap();
        let cfg = RnnConfig {
            emb: 8,
            hidden: 8,
            ..RnnConfig::smoke(corpus.vocab.len())
        };
        // nonmono 1 and a learning rate high enough to stall: averaging switches on.
        let recipe = PtbRecipe {
            batch: 4,
            eval_batch: 4,
            bptt: 6,
            epochs,
            nonmono: 1,
            max_train_windows: Some(12),
            max_valid_windows: Some(5),
            ..PtbRecipe::smoke()
        };
        let model = RnnLanguageModel::new(&cell, &cfg, &mut Pcg64Mcg::seed_from_u64(3));
        (corpus, model, recipe)
    }

    fn bits(m: &RnnLanguageModel) -> Vec<u32> {
        m.trainable_params()
            .iter()
            .flat_map(|p| p.get().to_vec::<f32>())
            .map(f32::to_bits)
            .collect()
    }

    /// Save after epoch 3, load into a fresh session, go on: the same epochs, the same
    /// weights bit for bit as six epochs in one go (averaging on before the save).
    #[test]
    fn save_and_load_continue_exactly() {
        let (corpus, model, recipe) = setup(6);
        let mut whole = LmSession::new(model, &recipe, &corpus, 9).unwrap();
        for _ in 0..6 {
            whole.run_epoch(None).unwrap();
        }
        let on = whole.report().asgd_from_epoch;
        assert!(
            on.is_some_and(|e| e <= 3),
            "averaging from {on:?}: {:?}",
            whole.report()
        );
        let (m_whole, r_whole) = whole.finish();

        let dir = tempfile::tempdir().unwrap();
        let (corpus, model, recipe) = setup(6);
        let mut first = LmSession::new(model, &recipe, &corpus, 9).unwrap();
        for _ in 0..3 {
            first.run_epoch(None).unwrap();
        }
        first.save(dir.path()).unwrap();
        drop(first);
        let (corpus, model, recipe) = setup(6);
        let mut second = LmSession::new(model, &recipe, &corpus, 9).unwrap();
        second.load(dir.path()).unwrap();
        assert_eq!(second.epochs_done(), 3);
        for _ in 0..3 {
            second.run_epoch(None).unwrap();
        }
        let (m_second, r_second) = second.finish();
        assert_eq!(bits(&m_whole), bits(&m_second));
        let strip = |r: &RnnReport| {
            r.epochs
                .iter()
                .map(|e| (e.train_loss.to_bits(), e.valid_loss.to_bits(), e.asgd))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&r_whole), strip(&r_second));
        assert_eq!(r_whole.asgd_from_epoch, r_second.asgd_from_epoch);
    }
}

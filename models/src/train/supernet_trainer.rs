//! [`SupernetTrainer`]: trains the weight-sharing [`RnnSupernet`] on PTB one minibatch at
//! a time, each minibatch on the path of an architecture the caller chooses, and scores
//! architectures on the validation stream (spec 8.2). The NAO-WS search loop drives it.
//!
//! Training (one [`SupernetTrainer::train_step`]):
//!
//! * The training stream is batchified into `recipe.batch` columns and cut into BPTT
//!   windows as in [`super::lm_session::LmSession`]: with `random_bptt` the window length
//!   is drawn around `bptt` (with probability 0.05 around `bptt / 2`), and the learning
//!   rate of the window is `lr · seq_len / bptt`. Window lengths of epoch `e` come from
//!   `seed + e`.
//! * The hidden state is carried from window to window (detached), whichever path ran
//!   the previous window, and starts at zero every epoch.
//! * Fresh dropout masks, loss `NLL + β·TAR` of the path, backward, clipping of the
//!   path's global gradient norm to `recipe.clip`, SGD with weight decay on the path's
//!   weights. Weights off the path get no gradient and are neither moved nor decayed.
//!
//! Scoring ([`SupernetTrainer::score`]): the validation NLL of the path on one 35-step
//! (`recipe.bptt`) chunk of the validation stream batchified into `recipe.eval_batch`
//! columns, from a zero hidden state, without dropout. The chunk's first row is drawn
//! uniformly from every row that leaves a full chunk with its targets, over the *whole*
//! batchified stream. (The original draws a number in `[0, rows / 35)` and uses it as
//! the start row, so its chunks all come from the first ~1/35 of the stream; spec 8.2.)
//! Lower is better.
//!
//! Checkpoints ([`SupernetTrainer::save`] / [`SupernetTrainer::load`]) hold the weights,
//! the carried hidden state, the optimiser state, the mask generator and the position in
//! the stream, so a trainer restored after step `k` continues bit for bit.

use std::path::Path;

use autograd::nn::serialize::{load_params, save_params};
use autograd::nn::{Module, Param};
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use autograd::{NoGradGuard, Tensor};
use datasets::{BpttWindows, Corpus, SeqLen, batchify};
use ndarray::{Array2, s};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::lm_parts::TrainError;
use super::lm_session::mask_seed;
use super::ptb_recipe::PtbRecipe;
use crate::rnn::RnnSupernet;
use crate::space::rnn::RnnCell;

/// What one training step did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Epoch of the window (1-based).
    pub epoch: usize,
    /// Window within the epoch (0-based).
    pub window: usize,
    /// Time steps in the window.
    pub seq_len: usize,
    /// Mean NLL per token of the window (nats), without the TAR term.
    pub nll: f64,
    /// Global gradient norm of the path before clipping.
    pub grad_norm: f64,
}

/// The part of a trainer's state that is not tensors (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    /// The epoch the next window belongs to (1-based).
    epoch: usize,
    /// Windows of `epoch` already trained.
    window: usize,
    /// Steps trained in all.
    steps: u64,
    mask_rng: Pcg64Mcg,
}

/// Trains and scores a [`RnnSupernet`] (see the module docs).
pub struct SupernetTrainer {
    net: RnnSupernet,
    recipe: PtbRecipe,
    train: Array2<u32>,
    valid: Array2<u32>,
    opt: Sgd,
    seed: u64,
    hidden: Tensor,
    state: TrainerState,
}

impl SupernetTrainer {
    /// Starts training `net` (on its parameters' device) on `corpus` with `recipe`
    /// (`lr`, `clip`, `weight_decay`, `bptt`, `random_bptt`, `batch`, `eval_batch` and
    /// `max_train_windows` are used; epochs are the caller's business); `seed` drives the
    /// dropout masks and window lengths.
    ///
    /// Errors when the recipe is invalid, the supernet's vocabulary is not the corpus's,
    /// or the corpus is too short for the batch sizes.
    pub fn new(
        net: RnnSupernet,
        recipe: &PtbRecipe,
        corpus: &Corpus,
        seed: u64,
    ) -> Result<SupernetTrainer, TrainError> {
        recipe.validate().map_err(|why| TrainError::Invalid {
            what: "recipe",
            why,
        })?;
        if net.config().vocab != corpus.vocab.len() {
            return Err(TrainError::Invalid {
                what: "model config",
                why: format!(
                    "the supernet has a vocabulary of {} words, the corpus {}",
                    net.config().vocab,
                    corpus.vocab.len()
                ),
            });
        }
        let train = batchify(&corpus.train, recipe.batch)?;
        let valid = batchify(&corpus.valid, recipe.eval_batch)?;
        if train.nrows() < 2 || valid.nrows() < 2 {
            return Err(TrainError::Invalid {
                what: "recipe",
                why: format!(
                    "the batchified streams have {} training and {} validation rows; \
                     both need at least 2 (lower batch or eval_batch)",
                    train.nrows(),
                    valid.nrows()
                ),
            });
        }
        let hidden = net.init_hidden(recipe.batch);
        Ok(SupernetTrainer {
            opt: Sgd::new(recipe.lr).with_weight_decay(recipe.weight_decay),
            recipe: recipe.clone(),
            train,
            valid,
            seed,
            hidden,
            state: TrainerState {
                epoch: 1,
                window: 0,
                steps: 0,
                mask_rng: Pcg64Mcg::seed_from_u64(mask_seed(seed)),
            },
            net,
        })
    }

    /// The supernet.
    pub fn net(&self) -> &RnnSupernet {
        &self.net
    }

    /// Training steps done so far.
    pub fn steps(&self) -> u64 {
        self.state.steps
    }

    /// The epoch the next training window belongs to (1-based).
    pub fn epoch(&self) -> usize {
        self.state.epoch
    }

    /// Training windows per epoch (nominal: random lengths make the true count vary a
    /// little), at most `recipe.max_train_windows`.
    pub fn windows_per_epoch(&self) -> usize {
        (self.train.nrows() - 1)
            .div_ceil(self.recipe.bptt)
            .min(self.recipe.max_train_windows.unwrap_or(usize::MAX))
    }

    /// The `window`-th window of `epoch`, if the epoch has one.
    fn window(&self, epoch: usize, window: usize) -> Option<(usize, usize, f64)> {
        if window >= self.recipe.max_train_windows.unwrap_or(usize::MAX) {
            return None;
        }
        let policy = if self.recipe.random_bptt {
            SeqLen::Random {
                bptt: self.recipe.bptt,
            }
        } else {
            SeqLen::Fixed(self.recipe.bptt)
        };
        BpttWindows::new(&self.train, policy, self.seed.wrapping_add(epoch as u64))
            .ok()?
            .nth(window)
            .map(|w| (w.start, w.seq_len, w.lr_scale as f64))
    }

    /// Trains the path of `arch` on the next window of the training stream (see the
    /// module docs); at the end of an epoch the next one starts with a zero hidden state.
    ///
    /// Errors with [`TrainError::NonFinite`] when the loss or the gradient norm is not
    /// finite (the weights are then left as they were).
    pub fn train_step(&mut self, arch: &RnnCell) -> Result<StepStats, TrainError> {
        let (start, seq_len, lr_scale) = match self.window(self.state.epoch, self.state.window) {
            Some(w) => w,
            None => {
                self.state.epoch += 1;
                self.state.window = 0;
                self.hidden = self.net.init_hidden(self.recipe.batch);
                self.window(self.state.epoch, 0)
                    .expect("a batchified stream of at least 2 rows has a window")
            }
        };
        let (epoch, window) = (self.state.epoch, self.state.window);
        let input = self.train.slice(s![start..start + seq_len, ..]);
        let target = self.train.slice(s![start + 1..start + 1 + seq_len, ..]);
        let child = self.net.child(arch);
        let params = self.net.path_params(arch);
        self.opt.set_lr(self.recipe.lr * lr_scale);
        let out = child.forward(input, target, &self.hidden, Some(&mut self.state.mask_rng));
        let nll = out.nll.item();
        let loss = out.loss.item();
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                what: "loss",
                value: loss,
                epoch,
                window,
            });
        }
        let mut grads = out.loss.backward();
        let grad_norm = match self.recipe.clip {
            Some(c) => clip_grad_norm(&mut grads, &params, c),
            None => grads.global_norm(),
        };
        if !grad_norm.is_finite() {
            return Err(TrainError::NonFinite {
                what: "gradient norm",
                value: grad_norm,
                epoch,
                window,
            });
        }
        self.opt.step(&params, &grads);
        self.hidden = out.hidden;
        self.state.window += 1;
        self.state.steps += 1;
        Ok(StepStats {
            epoch,
            window,
            seq_len,
            nll,
            grad_norm,
        })
    }

    /// How many chunk starts [`SupernetTrainer::score`] draws from: every row of the
    /// batchified validation stream that leaves a full chunk with its targets.
    pub fn score_starts(&self) -> usize {
        let rows = self.valid.nrows();
        rows.saturating_sub(self.recipe.bptt).max(1)
    }

    /// The validation NLL (nats per token, lower is better) of the path of `arch` on one
    /// chunk whose start is drawn uniformly from `rng` over the whole batchified
    /// validation stream (module docs; this fixes the original's draw from its first
    /// 1/35). One draw from `rng` per call.
    pub fn score(&self, arch: &RnnCell, rng: &mut Pcg64Mcg) -> f64 {
        let start = rng.random_range(0..self.score_starts());
        self.score_at(arch, start)
    }

    /// The validation NLL of the path of `arch` on the chunk starting at row `start` of
    /// the batchified validation stream (`recipe.bptt` rows, fewer when the stream is
    /// shorter), zero hidden state, no dropout.
    ///
    /// Panics when `start` leaves no row with a target.
    pub fn score_at(&self, arch: &RnnCell, start: usize) -> f64 {
        let rows = self.valid.nrows();
        assert!(
            start + 1 < rows,
            "SupernetTrainer::score_at: start row {start} leaves no target in a \
             validation stream of {rows} rows"
        );
        let len = self.recipe.bptt.min(rows - 1 - start);
        let _guard = NoGradGuard::new();
        let child = self.net.child(arch);
        let input = self.valid.slice(s![start..start + len, ..]);
        let target = self.valid.slice(s![start + 1..start + 1 + len, ..]);
        let hidden = child.init_hidden(self.valid.ncols());
        child.forward(input, target, &hidden, None).nll.item()
    }

    /// The carried hidden state as a named tensor (for checkpoints).
    fn hidden_param(&self) -> Param {
        Param::buffer("trainer.hidden", self.hidden.clone())
    }

    /// Writes the whole state into `dir` (created if needed): `params.bin` (supernet
    /// weights and the carried hidden state), `optimizer.bin`, `state.json`. Write into a
    /// fresh directory and publish it afterwards if a crash must not leave a half-written
    /// one.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let ck = |e: String| TrainError::Checkpoint(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| ck(e.to_string()))?;
        let mut params = self.net.params();
        params.push(self.hidden_param());
        save_params(dir.join("params.bin"), &params).map_err(|e| ck(e.to_string()))?;
        self.opt
            .save_state_file(&dir.join("optimizer.bin"))
            .map_err(|e| ck(e.to_string()))?;
        let json = serde_json::to_vec_pretty(&self.state).map_err(|e| ck(e.to_string()))?;
        std::fs::write(dir.join("state.json"), json).map_err(|e| ck(e.to_string()))
    }

    /// Restores the state written by [`SupernetTrainer::save`] into a trainer made by
    /// [`SupernetTrainer::new`] with the same supernet shape, recipe, corpus and seed.
    pub fn load(&mut self, dir: &Path) -> Result<(), TrainError> {
        let ck = |e: String| TrainError::Checkpoint(format!("{}: {e}", dir.display()));
        let bytes = std::fs::read(dir.join("state.json")).map_err(|e| ck(e.to_string()))?;
        let state: TrainerState = serde_json::from_slice(&bytes).map_err(|e| ck(e.to_string()))?;
        let hidden = self.hidden_param();
        let mut params = self.net.params();
        params.push(hidden.clone());
        load_params(dir.join("params.bin"), &params).map_err(|e| ck(e.to_string()))?;
        self.opt
            .load_state_file(&dir.join("optimizer.bin"), &self.net.params())
            .map_err(|e| ck(e.to_string()))?;
        self.hidden = hidden.get().to(&self.net.device());
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::RnnConfig;
    use crate::space::RnnSpace;

    fn arch(flat: &[usize]) -> RnnCell {
        RnnSpace.decode(&RnnSpace.from_flat(flat).unwrap()).unwrap()
    }

    const A: [usize; 22] = [
        0, 1, 0, 1, 1, 1, 3, 0, 4, 1, 4, 1, 5, 1, 1, 1, 7, 1, 1, 1, 1, 2,
    ];
    const B: [usize; 22] = [
        0, 0, 1, 1, 0, 3, 3, 3, 1, 3, 5, 2, 4, 3, 6, 0, 8, 0, 1, 2, 7, 3,
    ];

    /// A small trainer: supernet weights from `init`, masks and windows from `seed`.
    fn setup(init: u64, seed: u64) -> SupernetTrainer {
        let text: String = (0..400)
            .map(|i| format!("w{} w{} w{}\n", i % 7, (i * 3) % 11, i % 5))
            .collect();
        let valid: String = (0..120)
            .map(|i| format!("w{} w{} w{}\n", (i * i) % 7, (i * 5 + 1) % 11, (i * 3) % 5))
            .collect();
        let corpus = Corpus::from_texts(&text, &valid, &valid).unwrap();
        let cfg = RnnConfig {
            emb: 6,
            hidden: 6,
            ..RnnConfig::smoke(corpus.vocab.len())
        };
        let net = RnnSupernet::new(&cfg, &mut Pcg64Mcg::seed_from_u64(init));
        let recipe = PtbRecipe {
            lr: 1.0,
            clip: Some(0.5),
            weight_decay: 0.1,
            batch: 4,
            eval_batch: 4,
            bptt: 6,
            max_train_windows: Some(7),
            ..PtbRecipe::ptb_search()
        };
        SupernetTrainer::new(net, &recipe, &corpus, seed).unwrap()
    }

    fn bits(params: &[Param]) -> Vec<Vec<u32>> {
        params
            .iter()
            .map(|p| {
                p.get()
                    .to_vec::<f32>()
                    .into_iter()
                    .map(f32::to_bits)
                    .collect()
            })
            .collect()
    }

    /// A step on one path with weight decay on: every weight of the path moves, every
    /// slice off the path keeps its bits.
    #[test]
    fn a_step_moves_the_path_and_leaves_every_other_slice_untouched() {
        let mut t = setup(1, 1);
        let a = arch(&A);
        let on: Vec<String> = t
            .net()
            .path_params(&a)
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        let all = t.net().params();
        let before = bits(&all);
        t.train_step(&a).unwrap();
        let after = bits(&all);
        let mut moved = 0;
        for ((p, b), a) in all.iter().zip(&before).zip(&after) {
            if on.iter().any(|n| n == p.name()) {
                assert_ne!(b, a, "{} is on the path but did not move", p.name());
                moved += 1;
            } else {
                assert_eq!(b, a, "{} is off the path but changed", p.name());
            }
        }
        assert_eq!(moved, 3 + 11);
    }

    #[test]
    fn steps_run_through_epochs_and_training_lowers_the_score() {
        let mut t = setup(2, 2);
        let (a, b) = (arch(&A), arch(&B));
        let before = t.score_at(&a, 0);
        let mut epochs = vec![];
        for i in 0..30usize {
            let st = t
                .train_step(if i.is_multiple_of(2) { &a } else { &b })
                .unwrap();
            assert!(st.nll.is_finite() && st.grad_norm > 0.0);
            epochs.push((st.epoch, st.window));
        }
        // 7 windows an epoch (max_train_windows), then the next epoch
        assert_eq!(epochs[6], (1, 6));
        assert_eq!(epochs[7], (2, 0));
        assert_eq!(t.steps(), 30);
        let after = t.score_at(&a, 0);
        assert!(after < before, "score {before} -> {after}");
    }

    #[test]
    fn score_draws_chunks_from_the_whole_validation_stream() {
        let t = setup(3, 3);
        let rows = t.valid.nrows();
        assert_eq!(t.score_starts(), rows - 6);
        let mut rng = Pcg64Mcg::seed_from_u64(4);
        let a = arch(&A);
        let starts: Vec<usize> = (0..200)
            .map(|_| rng.random_range(0..t.score_starts()))
            .collect();
        // the last third of the stream is reached (the original's chunks stay in the
        // first 1/35)
        assert!(starts.iter().any(|&s| s > 2 * rows / 3), "{starts:?}");
        let mut rng = Pcg64Mcg::seed_from_u64(4);
        let first = starts[0];
        assert_eq!(
            t.score(&a, &mut rng).to_bits(),
            t.score_at(&a, first).to_bits()
        );
        // a chunk at the very end still has its targets
        assert!(t.score_at(&a, t.score_starts() - 1).is_finite());
    }

    /// Save after 5 steps, load into a fresh trainer, go on: the same weights bit for
    /// bit as 11 steps in one go (the save falls inside an epoch, the run crosses one).
    #[test]
    fn save_and_load_continue_exactly() {
        let (a, b) = (arch(&A), arch(&B));
        let path = |i: usize| if i.is_multiple_of(3) { &a } else { &b };
        let mut whole = setup(5, 5);
        let mut nll_whole = vec![];
        for i in 0..11 {
            nll_whole.push(whole.train_step(path(i)).unwrap().nll.to_bits());
        }
        let dir = tempfile::tempdir().unwrap();
        let mut first = setup(5, 5);
        let mut nll = vec![];
        for i in 0..5 {
            nll.push(first.train_step(path(i)).unwrap().nll.to_bits());
        }
        first.save(dir.path()).unwrap();
        drop(first);
        // a trainer with other initial weights, loaded, must forget them
        let mut second = setup(6, 5);
        second.load(dir.path()).unwrap();
        assert_eq!(second.steps(), 5);
        for i in 5..11 {
            nll.push(second.train_step(path(i)).unwrap().nll.to_bits());
        }
        assert_eq!(nll, nll_whole);
        assert_eq!(bits(&whole.net().params()), bits(&second.net().params()));
    }
}

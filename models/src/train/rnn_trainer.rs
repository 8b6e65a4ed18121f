//! [`train_rnn`]: trains a child [`RnnLanguageModel`] on a word-level corpus (PTB) with a
//! [`PtbRecipe`], reporting per-epoch training loss and validation perplexity.
//!
//! * The training stream is batchified into `recipe.batch` columns and cut into BPTT
//!   windows ([`datasets::BpttWindows`], random lengths around `bptt` when
//!   `random_bptt`); the learning rate of each window is `lr · seq_len / bptt`.
//! * The hidden state is carried across windows, detached (truncated BPTT), and starts at
//!   zero every epoch.
//! * Each step: fresh dropout masks, loss `NLL + β·TAR`, backward, global-norm clipping,
//!   SGD with weight decay.
//! * Averaged SGD (AWD-LSTM): with `recipe.asgd`, once the validation loss is worse than
//!   the best of all but the last `nonmono` evaluations, the trainer keeps a running
//!   average of the parameters from then on (updated after every step) and evaluates with
//!   the averaged weights; at the end the model holds the averaged weights.
//! * A non-finite loss or gradient norm stops training with [`TrainError::NonFinite`].
//!
//! Device: [`train_rnn`] trains on the CPU; [`train_rnn_on`] takes the device as an
//! argument (there is no process-wide device), [`train_model`] uses the model's own. The
//! parameters, optimiser state, hidden states, masks and the ASGD average all live there.
//!
//! Randomness: the model's initial weights, the dropout masks and the window lengths all
//! come from generators seeded from `seed`, so a run is reproducible.

use std::io::IsTerminal;

use autograd::Device;
use autograd::nn::Module;
use datasets::Corpus;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

pub use super::lm_parts::{EpochStats, RnnReport, TrainError, asgd_should_switch, evaluate};
use super::lm_session::LmSession;
use super::ptb_recipe::PtbRecipe;
use crate::rnn::{RnnConfig, RnnLanguageModel};
use crate::space::rnn::RnnCell;

/// Builds a model for `arch` (weights seeded from `seed`, vocabulary size taken from the
/// corpus) and trains it on the CPU ([`train_rnn_on`] on another device); see the module
/// docs.
pub fn train_rnn(
    arch: &RnnCell,
    config: &RnnConfig,
    recipe: &PtbRecipe,
    corpus: &Corpus,
    seed: u64,
    progress: bool,
) -> Result<RnnReport, TrainError> {
    train_rnn_on(arch, config, recipe, corpus, seed, progress, &Device::Cpu)
}

/// [`train_rnn`] on `device`: the model is built on the CPU (same initial weights for
/// every device), moved to `device`, and trained there; it errors with
/// [`TrainError::Setup`] when the move fails.
pub fn train_rnn_on(
    arch: &RnnCell,
    config: &RnnConfig,
    recipe: &PtbRecipe,
    corpus: &Corpus,
    seed: u64,
    progress: bool,
    device: &Device,
) -> Result<RnnReport, TrainError> {
    let config = config.with_vocab(corpus.vocab.len());
    config.validate().map_err(|why| TrainError::Invalid {
        what: "model config",
        why,
    })?;
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let model = RnnLanguageModel::new(arch, &config, &mut rng);
    model
        .to_device(device)
        .map_err(|e| TrainError::Setup(format!("cannot move the model to {device}: {e}")))?;
    train_model(&model, recipe, corpus, seed, progress)
}

/// A progress bar on stderr when `show` and stderr is a terminal, else hidden.
pub fn bar(len: u64, show: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if show && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb
}

/// Trains an existing `model` in place on the device of its parameters (see the module
/// docs); `seed` drives the dropout masks and window lengths. The loop is
/// [`LmSession`]'s, epoch after epoch.
pub fn train_model(
    model: &RnnLanguageModel,
    recipe: &PtbRecipe,
    corpus: &Corpus,
    seed: u64,
    progress: bool,
) -> Result<RnnReport, TrainError> {
    let mut session = LmSession::new(model.clone(), recipe, corpus, seed)?;
    let pb = bar(
        (session.windows_per_epoch() * recipe.epochs) as u64,
        progress,
    );
    pb.set_prefix("ptb");
    for _ in 0..recipe.epochs {
        let stats = match session.run_epoch(Some(&pb)) {
            Ok(s) => s,
            Err(e) => {
                pb.abandon();
                return Err(e);
            }
        };
        pb.println(format!(
            "epoch {:4}: train ppl {:9.2}  valid ppl {:9.2}{}  ({:.1}s)",
            stats.epoch,
            stats.train_ppl,
            stats.valid_ppl,
            if stats.asgd { "  [asgd]" } else { "" },
            stats.seconds
        ));
    }
    pb.finish_and_clear();
    Ok(session.finish().1)
}

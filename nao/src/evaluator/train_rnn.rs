//! Evaluating a recurrent cell by training its language model briefly on Penn Treebank
//! and scoring it on the validation set (`nao ptb`; spec 8, without weight sharing).
//!
//! **Score** (maximised by every search): `-ln(valid ppl)`, the negative mean validation
//! NLL per token in nats. Perplexity is lower-is-better and the searches maximise, so the
//! score is its negative logarithm: the same order as perplexity reversed, and on the
//! scale the controller's labels come from (spec 4.4: PTB searches label by NLL,
//! log-perplexity). `valid_ppl` is in each record's metrics.
//!
//! Each cell trains with a seed derived from the run seed and its tokens, so a replayed or
//! resumed run sees the same numbers. Divergence and panics become failed evaluations.

use super::train::arch_seed;
use super::{EvalFailure, Evaluation, Evaluator, FailureKind};
use crate::train_lm::{LmData, LmRecipe};
use datasets::Corpus;
use models::space::{Arch, RnnSpace};
use models::train::rnn_trainer::{TrainError, train_rnn_on};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// The name of the score in records and reports.
pub const SCORE_NAME: &str = "neg_log_valid_ppl";

/// What [`RnnChildTrainer`] trains and on which data; recorded in the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RnnChildSpec {
    /// Where the corpus lives.
    pub data_dir: PathBuf,
    /// The corpus (PTB for `nao ptb`).
    pub data: LmData,
    /// How each child trains (model sizes and optimiser).
    pub recipe: LmRecipe,
    /// Seed of the children's training.
    pub seed: u64,
}

/// Trains each cell's language model and scores `-ln(valid ppl)`.
pub struct RnnChildTrainer {
    spec: RnnChildSpec,
    corpus: Corpus,
    device: autograd::Device,
}

impl RnnChildTrainer {
    /// Loads the corpus named by `spec`; the language models train on `device`.
    pub fn new(
        spec: RnnChildSpec,
        device: &autograd::Device,
    ) -> crate::error::Result<RnnChildTrainer> {
        let corpus = spec.data.load(&spec.data_dir)?;
        Ok(RnnChildTrainer {
            spec,
            corpus,
            device: device.clone(),
        })
    }
}

impl Evaluator for RnnChildTrainer {
    fn evaluate(&mut self, arch: &Arch) -> Result<Evaluation, EvalFailure> {
        let seed = arch_seed(self.spec.seed, arch);
        let cell = RnnSpace
            .decode(arch)
            .map_err(|e| EvalFailure::error(e.to_string()))?;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            train_rnn_on(
                &cell,
                &self.spec.recipe.model,
                &self.spec.recipe.train,
                &self.corpus,
                seed,
                false,
                &self.device,
            )
        }));
        match run {
            Ok(Ok(report)) => {
                let last = report
                    .epochs
                    .last()
                    .ok_or_else(|| EvalFailure::error("the recipe trains no epoch"))?;
                let mut metrics = Map::new();
                metrics.insert("valid_ppl".into(), json!(last.valid_ppl));
                metrics.insert("valid_loss".into(), json!(last.valid_loss));
                metrics.insert("train_ppl".into(), json!(last.train_ppl));
                metrics.insert("params".into(), json!(report.num_params));
                Ok(Evaluation {
                    score: -last.valid_loss,
                    metrics,
                    extras: Some(json!({ "seed": seed })),
                })
            }
            Ok(Err(e @ TrainError::NonFinite { .. })) => Err(EvalFailure {
                kind: FailureKind::Diverged,
                message: e.to_string(),
            }),
            Ok(Err(e)) => Err(EvalFailure::error(e.to_string())),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(EvalFailure::error(format!("training panicked: {what}")))
            }
        }
    }

    fn describe(&self) -> Value {
        json!({ "kind": "train-rnn-child", "spec": self.spec })
    }
}

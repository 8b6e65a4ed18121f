//! Evaluators: what measures an architecture for the search.
//!
//! Every search algorithm (NAO, random search, regularised evolution) queries architectures
//! only through [`Evaluator`], so comparisons between them are fair. Provided here:
//!
//! * [`table::TableEvaluator`]: looks the architecture up in a CSV table (e.g. NAS-Bench-201
//!   style, or one written by [`table::synthetic_nb201_csv`]);
//! * [`command::CommandEvaluator`]: runs an external command per architecture and reads JSON
//!   metrics from its stdout, with a timeout;
//! * [`Delayed`]: adds an artificial delay per query (for tests of interruption);
//! * [`Replay`]: answers from evaluations recorded earlier (used by `--resume`).
//!
//! An evaluator that trains each child from scratch fits the same trait: it may take
//! minutes per call and reports divergence as an [`EvalFailure`] of kind
//! [`FailureKind::Diverged`]. Evaluators should be deterministic functions of the
//! architecture (derive any seed from the architecture's canonical form), but resumption does
//! not rely on it: finished evaluations are replayed from the run directory.

pub mod command;
pub mod table;
pub mod train;
pub mod train_rnn;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use models::space::Arch;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A successful evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The score to maximise (e.g. validation accuracy).
    pub score: f64,
    /// Everything measured, by name (for a table: the whole row, under the CSV's column names).
    pub metrics: Map<String, Value>,
    /// Anything else worth keeping in the log (e.g. a checkpoint path, a learning curve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<Value>,
}

/// Why an evaluation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The evaluator could not produce a score (bad output, missing key, not in table, ...).
    Error,
    /// The evaluation ran past its time limit and was stopped.
    Timeout,
    /// Training diverged (loss became NaN or infinite).
    Diverged,
}

/// A failed evaluation: recorded in the log and counted against the budget, but never ends
/// the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalFailure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// What happened, for people.
    pub message: String,
}

impl EvalFailure {
    /// A failure of kind [`FailureKind::Error`].
    pub fn error(message: impl Into<String>) -> Self {
        EvalFailure {
            kind: FailureKind::Error,
            message: message.into(),
        }
    }
}

impl fmt::Display for EvalFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// The outcome of one query.
pub type EvalResult = Result<Evaluation, EvalFailure>;

/// Measures architectures. `score` is maximised.
pub trait Evaluator {
    /// Evaluates one (valid) architecture. May be slow; failures are values, not panics.
    fn evaluate(&mut self, arch: &Arch) -> EvalResult;

    /// The evaluator's settings as JSON, for `config.json`.
    fn describe(&self) -> Value;

    /// The best score any architecture can reach, if known (a table knows it), for reports.
    fn best_possible(&self) -> Option<f64> {
        None
    }

    /// A fixed sample of up to `n` architectures with their scores, known without querying
    /// (a table's rows; `None` for evaluators that must compute a score). Used only for
    /// diagnostics of the predictor (never by a search's decisions, never counted against
    /// the budget); the same table gives the same sample in every run.
    fn reference_sample(&self, _n: usize) -> Option<Vec<(Arch, f64)>> {
        None
    }

    /// Evaluates a batch: `(record index, architecture)` pairs, and calls `done(position,
    /// outcome, wall seconds)` for each **in batch order** as soon as it and everything
    /// before it are finished (so a killed run keeps every finished prefix). An executor
    /// ([`crate::executor`]) runs the batch in parallel; this default evaluates one after
    /// another. An `Err` (from `done`, or an executor that cannot run at all) ends the
    /// search; failed evaluations are outcomes, not errors.
    fn evaluate_batch(
        &mut self,
        batch: &[(usize, Arch)],
        done: &mut dyn FnMut(usize, EvalResult, f64) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        for (pos, (_, arch)) in batch.iter().enumerate() {
            let start = std::time::Instant::now();
            let outcome = self.evaluate(arch);
            done(pos, outcome, start.elapsed().as_secs_f64())?;
        }
        Ok(())
    }
}

impl<E: Evaluator + ?Sized> Evaluator for &mut E {
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        (**self).evaluate(arch)
    }
    fn describe(&self) -> Value {
        (**self).describe()
    }
    fn best_possible(&self) -> Option<f64> {
        (**self).best_possible()
    }
    fn reference_sample(&self, n: usize) -> Option<Vec<(Arch, f64)>> {
        (**self).reference_sample(n)
    }
    fn evaluate_batch(
        &mut self,
        batch: &[(usize, Arch)],
        done: &mut dyn FnMut(usize, EvalResult, f64) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        (**self).evaluate_batch(batch, done)
    }
}

impl<E: Evaluator + ?Sized> Evaluator for Box<E> {
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        (**self).evaluate(arch)
    }
    fn describe(&self) -> Value {
        (**self).describe()
    }
    fn best_possible(&self) -> Option<f64> {
        (**self).best_possible()
    }
    fn reference_sample(&self, n: usize) -> Option<Vec<(Arch, f64)>> {
        (**self).reference_sample(n)
    }
    fn evaluate_batch(
        &mut self,
        batch: &[(usize, Arch)],
        done: &mut dyn FnMut(usize, EvalResult, f64) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        (**self).evaluate_batch(batch, done)
    }
}

/// Wraps an evaluator and sleeps before each query (hidden `--eval-delay-ms`; lets tests
/// interrupt a run half-way).
#[derive(Debug)]
pub struct Delayed<E> {
    /// The evaluator that answers.
    pub inner: E,
    /// The delay per query.
    pub delay: Duration,
}

impl<E: Evaluator> Evaluator for Delayed<E> {
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        std::thread::sleep(self.delay);
        self.inner.evaluate(arch)
    }
    fn describe(&self) -> Value {
        self.inner.describe()
    }
    fn best_possible(&self) -> Option<f64> {
        self.inner.best_possible()
    }
    fn reference_sample(&self, n: usize) -> Option<Vec<(Arch, f64)>> {
        self.inner.reference_sample(n)
    }
}

/// Answers from recorded outcomes (keyed by exact token sequence) before asking the wrapped
/// evaluator; used on `--resume` so that finished evaluations are not repeated.
pub struct Replay<'a> {
    /// The evaluator for anything not recorded.
    pub inner: &'a mut dyn Evaluator,
    /// Recorded outcomes.
    pub cache: HashMap<Arch, EvalResult>,
    /// How many queries were answered from the cache.
    pub hits: usize,
}

impl Evaluator for Replay<'_> {
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        if let Some(r) = self.cache.remove(arch) {
            self.hits += 1;
            return r;
        }
        self.inner.evaluate(arch)
    }
    fn describe(&self) -> Value {
        self.inner.describe()
    }
    fn best_possible(&self) -> Option<f64> {
        self.inner.best_possible()
    }
    fn reference_sample(&self, n: usize) -> Option<Vec<(Arch, f64)>> {
        self.inner.reference_sample(n)
    }
    /// Recorded outcomes are answered at once; each run of unrecorded architectures
    /// between them goes to the wrapped evaluator as one batch (order kept).
    fn evaluate_batch(
        &mut self,
        batch: &[(usize, Arch)],
        done: &mut dyn FnMut(usize, EvalResult, f64) -> crate::error::Result<()>,
    ) -> crate::error::Result<()> {
        let mut pos = 0;
        while pos < batch.len() {
            if let Some(r) = self.cache.remove(&batch[pos].1) {
                self.hits += 1;
                done(pos, r, 0.0)?;
                pos += 1;
                continue;
            }
            let end = (pos..batch.len())
                .find(|&p| p > pos && self.cache.contains_key(&batch[p].1))
                .unwrap_or(batch.len());
            let offset = pos;
            self.inner
                .evaluate_batch(&batch[pos..end], &mut |p, r, w| done(offset + p, r, w))?;
            pos = end;
        }
        Ok(())
    }
}

/// Which evaluator a run uses, with its settings (the `evaluator` section of `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvaluatorConfig {
    /// A CSV lookup table ([`table::TableLookup`]).
    Table {
        /// The CSV file (absolute, so that `--resume` works from anywhere).
        path: std::path::PathBuf,
        /// The column to maximise.
        metric: String,
    },
    /// An external command ([`command::CommandEvaluator`]).
    Command {
        /// Program and arguments; `{arch}` is replaced by the architecture's text.
        argv: Vec<String>,
        /// The JSON key of the score.
        metric: String,
        /// Time limit per evaluation, seconds.
        timeout_s: f64,
    },
    /// Train each child CNN from scratch on CIFAR-10 ([`train::ChildTrainer`]); the
    /// score is dev accuracy in percent (`dev_acc`).
    TrainChild(Box<train::ChildTrainSpec>),
    /// Train each cell's language model briefly on PTB ([`train_rnn::RnnChildTrainer`]);
    /// the score is `-ln(valid ppl)` ([`train_rnn::SCORE_NAME`]).
    TrainRnn(Box<train_rnn::RnnChildSpec>),
}

impl EvaluatorConfig {
    /// The name of the score.
    pub fn metric(&self) -> &str {
        match self {
            EvaluatorConfig::Table { metric, .. } | EvaluatorConfig::Command { metric, .. } => {
                metric
            }
            EvaluatorConfig::TrainChild(_) => "dev_acc",
            EvaluatorConfig::TrainRnn(_) => train_rnn::SCORE_NAME,
        }
    }

    /// Builds the evaluator for `space` (reads the table); evaluators that train children
    /// train them on `device` (not part of the configuration: a run resumed on another
    /// device is the same run).
    pub fn build(
        &self,
        space: models::space::SpaceKind,
        device: &autograd::Device,
    ) -> crate::error::Result<Box<dyn Evaluator>> {
        let s = models::space::space(space);
        Ok(match self {
            EvaluatorConfig::Table { path, metric } => {
                Box::new(table::TableLookup::open(path, s, metric)?)
            }
            EvaluatorConfig::Command {
                argv,
                metric,
                timeout_s,
            } => Box::new(command::CommandEvaluator {
                argv: argv.clone(),
                metric: metric.clone(),
                timeout: Duration::from_secs_f64(timeout_s.max(0.001)),
                space: s,
            }),
            EvaluatorConfig::TrainChild(spec) => {
                if spec.child.space != space {
                    return Err(crate::error::Error::Config(format!(
                        "the child network is of space {} but the search is over {space}",
                        spec.child.space
                    )));
                }
                Box::new(train::ChildTrainer::new((**spec).clone(), device)?)
            }
            EvaluatorConfig::TrainRnn(spec) => {
                if space != models::space::SpaceKind::Rnn {
                    return Err(crate::error::Error::Config(format!(
                        "language-model children need the rnn space, not {space}"
                    )));
                }
                Box::new(train_rnn::RnnChildTrainer::new((**spec).clone(), device)?)
            }
        })
    }
}

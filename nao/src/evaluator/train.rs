//! Evaluating an architecture by training its child CNN from scratch on CIFAR-10 and
//! scoring it on the held-out dev split (spec 5, [TF-NAO] style: no weight sharing).
//!
//! Each architecture trains with a seed derived from the run seed and its tokens, so a
//! replayed or resumed run sees the same numbers. Divergence (NaN/inf loss) and any panic
//! inside training (for example running out of memory) become failed evaluations: the
//! search records them and goes on.

use super::{EvalFailure, Evaluation, Evaluator, FailureKind};
use datasets::{ChannelStats, Cifar, ImageSet, LoadOptions};
use models::cnn::CnnConfig;
use models::space::Arch;
use models::train::cnn_trainer::{TrainData, TrainError, train_cnn_on};
use models::train::recipe::Recipe;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// What [`ChildTrainer`] trains and on which data; recorded in the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildTrainSpec {
    /// Where CIFAR-10 lives.
    pub data_dir: PathBuf,
    /// The child network's size.
    pub child: CnnConfig,
    /// How each child trains.
    pub recipe: Recipe,
    /// Training images used per child (the first ones of the shuffled 45k train split; 0 = all).
    pub train_images: usize,
    /// Dev images each child is scored on (0 = all 5,000).
    pub eval_images: usize,
    /// Seed of the train/dev split and of the children's training.
    pub seed: u64,
}

/// Loads CIFAR-10 and splits off the seeded 5,000-image dev set: `(train, dev, test)`.
pub fn load_cifar10(
    dir: &std::path::Path,
    seed: u64,
) -> crate::error::Result<(ImageSet, ImageSet, ImageSet)> {
    let cifar = Cifar::cifar10(dir, &LoadOptions::default())
        .map_err(|e| crate::error::Error::Config(e.to_string()))?;
    let (train, dev) = cifar
        .train
        .split_dev(datasets::split::DEFAULT_DEV_SIZE, seed)
        .map_err(|e| crate::error::Error::Config(e.to_string()))?;
    Ok((train, dev, cifar.test))
}

/// CIFAR-10's whole 50,000-image training set (train split and dev split together) and
/// its test set: what a final training "on all the training data" uses.
pub fn load_cifar10_all(dir: &std::path::Path) -> crate::error::Result<(ImageSet, ImageSet)> {
    let cifar = Cifar::cifar10(dir, &LoadOptions::default())
        .map_err(|e| crate::error::Error::Config(e.to_string()))?;
    Ok((cifar.train, cifar.test))
}

/// The first `n` images of a set (`n == 0` or `n >= len`: all).
pub fn head(set: ImageSet, n: usize) -> ImageSet {
    if n == 0 || n >= set.len() {
        return set;
    }
    let idx: Vec<usize> = (0..n).collect();
    set.subset(&idx).expect("indices are in range")
}

/// Trains each architecture's child network and scores dev accuracy (percent).
pub struct ChildTrainer {
    spec: ChildTrainSpec,
    data: TrainData,
    device: autograd::Device,
}

impl ChildTrainer {
    /// Loads the data named by `spec`; the children train on `device`.
    pub fn new(
        spec: ChildTrainSpec,
        device: &autograd::Device,
    ) -> crate::error::Result<ChildTrainer> {
        let (train, dev, _) = load_cifar10(&spec.data_dir, spec.seed)?;
        let data = TrainData {
            train: Arc::new(head(train, spec.train_images)),
            eval: Arc::new(head(dev, spec.eval_images)),
            stats: ChannelStats::CIFAR10,
        };
        Ok(ChildTrainer {
            spec,
            data,
            device: device.clone(),
        })
    }
}

/// A seed for one architecture: the run seed mixed with the tokens (FNV-1a).
pub fn arch_seed(seed: u64, arch: &Arch) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &t in arch {
        h = (h ^ t as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Evaluator for ChildTrainer {
    fn evaluate(&mut self, arch: &Arch) -> Result<Evaluation, EvalFailure> {
        let seed = arch_seed(self.spec.seed, arch);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            train_cnn_on(
                arch,
                &self.spec.child,
                &self.spec.recipe,
                &self.data,
                seed,
                false,
                &self.device,
            )
        }));
        match run {
            Ok(Ok((_, report))) => {
                let mut metrics = Map::new();
                metrics.insert("dev_acc".into(), json!(report.final_eval_acc * 100.0));
                metrics.insert("params".into(), json!(report.params));
                if let Some(last) = report.epochs.last() {
                    metrics.insert("train_loss".into(), json!(last.train_loss));
                    metrics.insert("train_acc".into(), json!(last.train_acc * 100.0));
                }
                Ok(Evaluation {
                    score: report.final_eval_acc * 100.0,
                    metrics,
                    extras: Some(json!({ "seed": seed })),
                })
            }
            Ok(Err(TrainError::Diverged { epoch, step, loss })) => Err(EvalFailure {
                kind: FailureKind::Diverged,
                message: format!("training diverged: loss {loss} at epoch {epoch}, step {step}"),
            }),
            Ok(Err(e)) => Err(EvalFailure {
                kind: FailureKind::Error,
                message: e.to_string(),
            }),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(EvalFailure {
                    kind: FailureKind::Error,
                    message: format!("training panicked: {what}"),
                })
            }
        }
    }

    fn describe(&self) -> Value {
        json!({ "kind": "train-child", "spec": self.spec })
    }
}

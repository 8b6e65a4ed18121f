//! `nao train` (`--task cnn`): one architecture's child CNN trained from scratch on
//! CIFAR-10 or CIFAR-100 ([`train`]), scored on the dev split and on the test set, its
//! training curve growing on disk epoch by epoch; then the report, the cell and the curve
//! written beside `--out` ([`write_outputs`]). The CLI parses the arguments, prepares the
//! dataset and prints the results.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use models::cnn::CnnConfig;
use models::space::{Arch, space};
use models::train::cnn_trainer::{
    TrainData, TrainError, TrainReport, evaluate, train_cnn_observed_on,
};
use models::train::recipe::Recipe;

use crate::data::{Dataset, load_split};
use crate::evaluator::train::head;
use crate::run::atomic::write_atomic;
use crate::run::train_curve::{LiveCurve, beside, write_beside};

/// What to train, and on which images.
#[derive(Debug, Clone)]
pub struct CnnTrainSpec {
    /// CIFAR-10 or CIFAR-100 (its seeded train/dev split, and its test set).
    pub dataset: Dataset,
    /// The architecture's tokens (of `child.space`).
    pub arch: Arch,
    /// The network ([`child_config`]).
    pub child: CnnConfig,
    /// How it trains.
    pub recipe: Recipe,
    /// Training images: the first ones of the train split (0 = all).
    pub train_images: usize,
    /// Dev and test images scored: the first ones of each (0 = all).
    pub eval_images: usize,
    /// Seed of the train/dev split and of the training.
    pub seed: u64,
}

/// What [`train`] measured.
#[derive(Debug, Clone)]
pub struct CnnTrainOutcome {
    /// The training's report (per-epoch numbers; dev accuracy at the end).
    pub report: TrainReport,
    /// Test accuracy of the trained network (a fraction).
    pub test_acc: f64,
    /// Dev images scored.
    pub dev_images: usize,
    /// Test images scored.
    pub test_images: usize,
}

/// Why [`train`] or [`write_outputs`] failed (the cause itself, for the CLI's error chain).
#[derive(Debug, thiserror::Error)]
pub enum CnnTrainError {
    /// The data, the curve or an output file.
    #[error(transparent)]
    Run(#[from] crate::Error),
    /// The training.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The report's JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The network `nao train` builds for `space`: `n` cells per stage, `f` channels in the
/// first, the dataset's classes, dropout, drop-path and the auxiliary head as `recipe`
/// says.
pub fn child_config(
    space: models::space::SpaceKind,
    n: usize,
    f: usize,
    dataset: Dataset,
    recipe: &Recipe,
) -> CnnConfig {
    CnnConfig {
        space,
        n_cells: n,
        channels: f,
        classes: dataset.classes(),
        dropout_keep: recipe.dropout_keep,
        drop_path_keep: recipe.drop_path_keep,
        aux_head: recipe.aux_weight > 0.0,
    }
}

/// Trains `spec` on `device` with the dataset from `data_dir` (on disk already:
/// [`crate::data::prepare`]), with progress bars, then scores the test set. With `out`,
/// the training curve grows beside it epoch by epoch (watchable; a crash keeps it).
pub fn train(
    spec: &CnnTrainSpec,
    data_dir: &Path,
    out: Option<&Path>,
    device: &autograd::Device,
) -> Result<CnnTrainOutcome, CnnTrainError> {
    let dataset = spec.dataset;
    let (train, dev, test) = load_split(dataset, data_dir, spec.seed)?;
    let data = TrainData {
        train: Arc::new(head(train, spec.train_images)),
        eval: Arc::new(head(dev, spec.eval_images)),
        stats: dataset.stats(),
    };
    eprintln!(
        "training {} on {} ({} epochs, N={}, F={})",
        space(spec.child.space).to_text(&spec.arch),
        dataset.title(),
        spec.recipe.epochs,
        spec.child.n_cells,
        spec.child.channels
    );
    let mut live = match out {
        Some(o) => {
            let (dir, stem) = beside(o);
            Some(LiveCurve::start(&dir, &stem)?)
        }
        None => None,
    };
    let (net, report) = train_cnn_observed_on(
        &spec.arch,
        &spec.child,
        &spec.recipe,
        &data,
        spec.seed,
        true,
        device,
        &mut |e| {
            if let Some(l) = live.as_mut() {
                l.epoch(e);
            }
        },
    )?;
    let test = head(test, spec.eval_images);
    let test_images = test.len();
    let test_acc = evaluate(&net, &Arc::new(test), &data.stats, 256);
    Ok(CnnTrainOutcome {
        report,
        test_acc,
        dev_images: data.eval.len(),
        test_images,
    })
}

/// Writes `out` (the dataset, the report, the test accuracy and the image counts, as
/// JSON) and beside it the cell and the training curve as SVG; returns those two paths.
pub fn write_outputs(
    out: &Path,
    spec: &CnnTrainSpec,
    outcome: &CnnTrainOutcome,
) -> Result<(PathBuf, PathBuf), CnnTrainError> {
    let v = serde_json::json!({
        "dataset": spec.dataset,
        "report": outcome.report,
        "test_acc": outcome.test_acc,
        "dev_images": outcome.dev_images,
        "test_images": outcome.test_images,
    });
    write_atomic(out, serde_json::to_string_pretty(&v)?.as_bytes())?;
    let svg = space(spec.child.space).to_svg(&spec.arch);
    Ok(write_beside(out, &svg, &outcome.report)?)
}

//! `nao cifar`: NAO on real CIFAR-10, end to end.
//!
//! 1. **Search** (`OUT/search/`, an ordinary run directory, resumable): NAO over the
//!    `cnn-ws` space; every architecture's child CNN trains from scratch on part of the
//!    45,000-image train split and is scored on the seeded 5,000-image dev split.
//! 2. **Final training** (`OUT/final.json`): the best architecture found, and for
//!    comparison the best architecture of the initial random pool (round 0), each train
//!    with the same (larger) final budget on the whole train split and are scored on the
//!    10,000-image test set. Each result is written as soon as it exists, so a resumed
//!    run does not retrain it. When the random pool's best is also the search's best, it
//!    is trained once and its row in `final.json` and `report.md` says so (`same_as`).
//! 3. **Report** (`OUT/report.md`, `OUT/best.svg`, `OUT/random-best.svg`), with the final
//!    trainings' curves (`OUT/best-curve.jsonl` and `.svg`, `OUT/random-best-curve.*`; for
//!    CIFAR-100 `OUT/best-cifar100-curve.*`, ...).
//!
//! With `final_dataset = cifar100` step 2 is the paper's transfer: the cells found on
//! CIFAR-10 are trained from scratch on CIFAR-100 (fine labels, 100 classes) and scored on
//! its test set ([`CifarPreset::final_for`]).
//!
//! An `OUT` that holds a run already is only ever continued (`resume`), never overwritten.
//!
//! Presets ([`CifarPreset::get`]): `smoke` (minutes; used by tests and CI), `default`
//! (about 20-30 minutes on a 2-core laptop), `paper` (the paper's settings, for a GPU cluster).

use crate::data::{Dataset, load_all, load_split};
use crate::error::{Error, Result};
use crate::evaluator::EvaluatorConfig;
use crate::evaluator::train::{ChildTrainSpec, arch_seed, head};
use crate::executor::ExecutorConfig;
use crate::final_rows::{FinalRow, reuse_or_train};
use crate::run::atomic::write_atomic;
use crate::run::{RunOptions, SearchConfig, run_search};
use crate::search::nao::NaoConfig;
use crate::search::{AlgoConfig, Record, best_of};
use autograd::optim::schedule::{CosineAnnealing, LrSchedule};
use models::cnn::CnnConfig;
use models::space::{SpaceKind, space};
use models::train::cnn_trainer::{TrainData, train_cnn_observed_on};
use models::train::recipe::Recipe;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything `nao cifar` runs with; written to `OUT/cifar.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CifarPreset {
    /// Preset name.
    pub name: String,
    /// What it is for and how long it takes.
    pub about: String,
    /// Architectures evaluated in the search (distinct canonical forms).
    pub budget: usize,
    /// NAO settings (pool sizes, seeds, step-size cap, controller).
    pub nao: NaoConfig,
    /// The child network trained for each evaluation.
    pub search_child: CnnConfig,
    /// How each evaluation trains.
    pub search_recipe: Recipe,
    /// Train-split images per evaluation (0 = all 45,000).
    pub search_train_images: usize,
    /// Dev images per evaluation (0 = all 5,000).
    pub search_eval_images: usize,
    /// The network trained at the end.
    pub final_child: CnnConfig,
    /// How it trains.
    pub final_recipe: Recipe,
    /// Train-split images for the final training (0 = all 45,000).
    pub final_train_images: usize,
    /// Train the final network on all 50,000 training images (the train and dev splits
    /// together, as the paper's final training does) instead of the train split.
    #[serde(default)]
    pub final_train_all: bool,
    /// Test images it is scored on (0 = all 10,000).
    pub final_test_images: usize,
}

fn child(n: usize, f: usize) -> CnnConfig {
    CnnConfig {
        space: SpaceKind::CnnWs,
        n_cells: n,
        channels: f,
        classes: 10,
        dropout_keep: 1.0,
        drop_path_keep: 1.0,
        aux_head: false,
    }
}

/// A short-budget recipe: the "nao-search" optimiser (SGD, momentum 0.9), with the cosine
/// schedule fitted to the few epochs (0.05 -> 0) and no regularisation (no auxiliary head,
/// drop-path or dropout: they only slow down learning in a couple of epochs).
pub(crate) fn recipe(base: &str, epochs: usize, batch: usize) -> Recipe {
    let mut r = Recipe::preset(base).expect("a known preset");
    r.name = format!("{base}-short-{epochs}ep");
    r.source = format!(
        "{} (shortened for a CPU budget: {epochs} epochs, no aux/drop-path/dropout)",
        r.source
    );
    r.epochs = epochs;
    r.batch_size = batch;
    r.lr_schedule = LrSchedule::Cosine(CosineAnnealing {
        lr_max: 0.05,
        lr_min: 0.0,
        total: epochs,
    });
    r.aux_weight = 0.0;
    r.drop_path_keep = 1.0;
    r.dropout_keep = 1.0;
    r.cutout = None;
    r
}

impl CifarPreset {
    /// The preset called `name`: `smoke`, `default` or `paper`.
    pub fn get(name: &str) -> std::result::Result<CifarPreset, String> {
        match name {
            "smoke" => Ok(CifarPreset {
                name: "smoke".into(),
                about: "a few minutes on 2 cores: 8 tiny children (N=1, F=4) trained 1 epoch on 1,000 images, final training on 2,000".into(),
                budget: 8,
                nao: NaoConfig { initial: 4, per_round: 2, top_k: 4, max_eta: 20, recon_sample: 64, surrogate: "nao:30".into(), candidates: 0, fit_canonical: false, ..NaoConfig::paper(0) },
                search_child: child(1, 4),
                search_recipe: recipe("nao-search", 1, 64),
                search_train_images: 1000,
                search_eval_images: 500,
                final_child: child(1, 4),
                final_recipe: recipe("nao-search", 1, 64),
                final_train_images: 2000,
                final_train_all: false,
                final_test_images: 1000,
            }),
            "default" => Ok(CifarPreset {
                name: "default".into(),
                about: "about 20-30 minutes on 2 cores: 40 children (N=1, F=8) trained 2 epochs on 5,000 images and scored on 1,000 dev images; the best and the random pool's best then train 2 epochs (N=1, F=16) on the whole 45,000-image train split and are scored on the 10,000 test images".into(),
                budget: 40,
                nao: NaoConfig { initial: 16, per_round: 8, top_k: 16, max_eta: 30, recon_sample: 256, surrogate: "nao:300".into(), candidates: 0, fit_canonical: false, ..NaoConfig::paper(0) },
                search_child: child(1, 8),
                search_recipe: recipe("nao-search", 2, 64),
                search_train_images: 5000,
                search_eval_images: 1000,
                final_child: child(1, 16),
                final_recipe: recipe("nao-search", 2, 128),
                final_train_images: 0,
                final_train_all: false,
                final_test_images: 0,
            }),
            "paper" => Ok(CifarPreset {
                name: "paper".into(),
                about: "the paper's no-weight-sharing search (spec 1.3, 5, 6.3; days of GPU time): the 11-op `cnn` space, 1,000 children (N=3, F=32, 25 epochs on 45,000 images) in rounds of 200 from a pool of 600, seeds the top 100, Algorithm 1 exactly (`NaoConfig::paper`); final NAONet-style training N=6, F=36 for 600 epochs with cutout and auxiliary head on all 50,000 training images".into(),
                budget: 1000,
                nao: NaoConfig { initial: 600, per_round: 200, ..NaoConfig::paper(1000) },
                search_child: CnnConfig { space: SpaceKind::Cnn, n_cells: 3, channels: 32, classes: 10, dropout_keep: 1.0, drop_path_keep: 0.7, aux_head: true },
                search_recipe: Recipe::preset("nao-search").expect("preset"),
                search_train_images: 0,
                search_eval_images: 0,
                final_child: CnnConfig { space: SpaceKind::Cnn, n_cells: 6, channels: 36, classes: 10, dropout_keep: 0.6, drop_path_keep: 0.8, aux_head: true },
                final_recipe: Recipe::preset("naonet-a-36").expect("preset"),
                final_train_images: 0,
                final_train_all: true,
                final_test_images: 0,
            }),
            other => Err(format!("unknown preset `{other}`; known: smoke, default, paper")),
        }
    }
}

impl CifarPreset {
    /// The network and recipe of the final training on `dataset`. CIFAR-10: the preset's.
    /// CIFAR-100: the same with 100 classes; for `paper`, the paper's CIFAR-100 transfer
    /// (spec 6.3 "[TF-NAO] final CIFAR-100": N = 6, F = 128, recipe `nao-final-c100`:
    /// 600 epochs, drop-path keep 0.6, dropout keep 0.8, cutout, auxiliary head).
    pub fn final_for(&self, dataset: Dataset) -> (CnnConfig, Recipe) {
        let mut child = self.final_child.clone();
        let mut recipe = self.final_recipe.clone();
        if dataset == Dataset::Cifar100 && self.name == "paper" {
            recipe = Recipe::preset("nao-final-c100").expect("a known preset");
            child.n_cells = 6;
            child.channels = 128;
            child.dropout_keep = recipe.dropout_keep;
            child.drop_path_keep = recipe.drop_path_keep;
            child.aux_head = recipe.aux_weight > 0.0;
        }
        child.classes = dataset.classes();
        (child, recipe)
    }
}

/// One finally trained architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalResult {
    /// `best` (the search's best) or `random-best` (the initial random pool's best).
    pub role: String,
    /// Tokens.
    pub arch: Vec<usize>,
    /// Text form.
    pub text: String,
    /// Dev accuracy measured during the search (percent).
    pub search_dev_acc: f64,
    /// The dataset of the final training and of `test_acc` (the search is on CIFAR-10).
    #[serde(default)]
    pub dataset: Dataset,
    /// Test accuracy after the final training (percent).
    pub test_acc: f64,
    /// Trainable parameters.
    pub params: usize,
    /// Wall time of the final training, seconds (0 when reused, see `same_as`).
    pub seconds: f64,
    /// The role whose final training this row reuses: the random pool's best is the
    /// search's best, so that architecture was trained once and the result is reported for
    /// both roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
}

impl FinalRow for FinalResult {
    fn role(&self) -> &str {
        &self.role
    }
    fn arch(&self) -> &[usize] {
        &self.arch
    }
    fn same_as(&self) -> Option<&str> {
        self.same_as.as_deref()
    }
    fn reused_for(&self, role: &str) -> Self {
        FinalResult {
            role: role.into(),
            seconds: 0.0,
            same_as: Some(self.role.clone()),
            ..self.clone()
        }
    }
}

/// `OUT/final.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalReport {
    /// Finished final trainings.
    pub results: Vec<FinalResult>,
}

/// A configuration error naming `path`.
pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {e}", path.display()))
}

/// The file stem of a final training's curves: `best`, `best-cifar100`, ...
pub fn curve_stem(role: &str, dataset: Dataset) -> String {
    match dataset {
        Dataset::Cifar10 => role.to_string(),
        other => format!("{role}-{other}"),
    }
}

/// Refuses an `out` that holds a run already unless `resume` (nothing is ever overwritten),
/// and a `resume` of something that is not a `nao cifar` run.
pub fn check_out_dir(out: &Path, resume: bool) -> Result<()> {
    let ours = out.join("cifar.json").exists() || out.join("search").exists();
    if !resume && ours {
        return Err(Error::Config(format!(
            "{} already holds a `nao cifar` run: pass --resume to continue it, or choose another --out (nothing was changed)",
            out.display()
        )));
    }
    if out.join("config.json").exists() && !ours {
        return Err(Error::Config(format!(
            "{} holds a `nao search` run, not a `nao cifar` one: choose another --out (nothing was changed)",
            out.display()
        )));
    }
    Ok(())
}

/// The datasets a `nao cifar` run into `out` still needs on disk: CIFAR-10 for the search
/// unless it has finished (`search/result.json`), and the final trainings' dataset.
pub fn datasets_needed(out: &Path, final_dataset: Dataset) -> Vec<Dataset> {
    let mut v = Vec::new();
    if !out.join("search").join("result.json").exists() {
        v.push(Dataset::Cifar10);
    }
    if !v.contains(&final_dataset) {
        v.push(final_dataset);
    }
    v
}

/// Runs (or resumes) `nao cifar` into `out`: the search on CIFAR-10, then the final
/// trainings on `final_dataset`. The datasets must be on disk ([`crate::data::prepare`]).
/// `opts`: resume, progress, where the search's children train ([`crate::executor`]) and
/// on which device (the search's and the final trainings').
pub fn run_cifar(
    out: &Path,
    preset: &CifarPreset,
    data_dir: &Path,
    seed: u64,
    opts: &RunOptions,
    final_dataset: Dataset,
) -> Result<FinalReport> {
    let (resume, progress, executor) = (opts.resume, opts.progress, &opts.executor);
    check_out_dir(out, resume)?;
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let cfg_path = out.join("cifar.json");
    if resume && let Ok(b) = std::fs::read(&cfg_path) {
        let stored: CifarPreset = serde_json::from_slice(&b).map_err(|e| io_err(&cfg_path, e))?;
        if &stored != preset {
            return Err(Error::Config(format!(
                "{} was made with --preset {}, not {}: resume it with its own preset, or choose another --out",
                cfg_path.display(),
                stored.name,
                preset.name
            )));
        }
    }
    write_atomic(
        &cfg_path,
        serde_json::to_string_pretty(preset)
            .expect("serialisable")
            .as_bytes(),
    )?;
    let data_dir: PathBuf = std::path::absolute(data_dir).map_err(|e| io_err(data_dir, e))?;

    // 1. Search.
    let search_dir = out.join("search");
    let config = SearchConfig {
        space: preset.search_child.space,
        algo: AlgoConfig::Nao(preset.nao.clone()),
        budget: preset.budget,
        seed,
        evaluator: EvaluatorConfig::TrainChild(Box::new(ChildTrainSpec {
            data_dir: data_dir.clone(),
            child: preset.search_child.clone(),
            recipe: preset.search_recipe.clone(),
            train_images: preset.search_train_images,
            eval_images: preset.search_eval_images,
            seed,
        })),
        eval_delay_ms: 0,
    };
    let finished = search_dir.join("result.json").exists();
    let outcome = if finished {
        None
    } else {
        let opts = RunOptions {
            resume: resume && search_dir.join("config.json").exists(),
            progress,
            executor: executor.clone(),
            device: opts.device.clone(),
        };
        Some(run_search(&search_dir, &config, &opts)?)
    };
    let records = match outcome {
        Some(o) => o.records,
        None => crate::run::read_records(&search_dir)?.0,
    };
    let best = best_of(records.iter())
        .ok_or_else(|| Error::Config("the search evaluated no architecture successfully".into()))?
        .clone();
    let random_best = best_of(records.iter().filter(|r| r.round == 0)).cloned();

    // 2. Final training, one result at a time (kept across resumes).
    let mut report = final_report(out, resume)?;
    let (train, test) = if preset.final_train_all {
        load_all(final_dataset, &data_dir)?
    } else {
        let (train, _, test) = load_split(final_dataset, &data_dir, seed)?;
        (train, test)
    };
    let data = TrainData {
        train: Arc::new(head(train, preset.final_train_images)),
        eval: Arc::new(head(test, preset.final_test_images)),
        stats: final_dataset.stats(),
    };
    let (final_child, final_recipe) = preset.final_for(final_dataset);
    let spec = FinalSpec {
        out,
        child: &final_child,
        recipe: &final_recipe,
        data: &data,
        dataset: final_dataset,
        seed,
        progress,
        device: &opts.device,
        side_by_side: match &opts.executor {
            ExecutorConfig::Local { workers, .. } => *workers,
            _ => 1,
        },
    };
    train_finals(&spec, &mut report, &best, random_best.as_ref())?;

    // 3. Report.
    write_atomic(
        &out.join("report.md"),
        render_report(preset, &report, records.len()).as_bytes(),
    )?;
    Ok(report)
}

/// The final results already in `OUT/final.json` when `resume` (kept across resumes), else
/// none.
pub(crate) fn final_report(out: &Path, resume: bool) -> Result<FinalReport> {
    let final_path = out.join("final.json");
    match std::fs::read(&final_path) {
        Ok(b) if resume => serde_json::from_slice(&b).map_err(|e| io_err(&final_path, e)),
        _ => Ok(FinalReport::default()),
    }
}

/// Where and how `nao cifar` (and `nao cifar --ws`) train the found cells at the end.
pub(crate) struct FinalSpec<'a> {
    /// The command's output directory: `final.json`, the cell SVGs and training curves.
    pub out: &'a Path,
    pub child: &'a CnnConfig,
    pub recipe: &'a Recipe,
    pub data: &'a TrainData,
    /// The dataset of `data` (named in the rows and the curves' file names).
    pub dataset: Dataset,
    /// The run's seed (each cell's training seed is derived from it and the cell).
    pub seed: u64,
    pub progress: bool,
    /// Where the cells train.
    pub device: &'a autograd::Device,
    /// How many cells may train at once, each on its share of the threads (the local
    /// executor's `--workers`; 1: one after another, on all threads).
    pub side_by_side: usize,
}

/// [`final_trainings`] of `best` and `random_best` as `spec` says: each cell trained from
/// scratch with a live training curve; `final.json` and the cell's SVG written after each
/// row.
pub(crate) fn train_finals(
    spec: &FinalSpec,
    report: &mut FinalReport,
    best: &Record,
    random_best: Option<&Record>,
) -> Result<()> {
    let FinalSpec {
        out,
        child,
        recipe,
        data,
        dataset,
        seed,
        progress,
        device,
        side_by_side,
    } = *spec;
    let final_path = out.join("final.json");
    let s = space(child.space);
    final_trainings(
        report,
        best,
        random_best,
        dataset,
        side_by_side,
        |role, rec, show| {
            eprintln!(
                "final training of the {role} architecture on {}: {}",
                dataset.title(),
                rec.text
            );
            let start = std::time::Instant::now();
            let stem = curve_stem(role, dataset);
            let mut live = crate::run::train_curve::LiveCurve::start(out, &stem)?;
            let (_, tr) = train_cnn_observed_on(
                &rec.arch,
                child,
                recipe,
                data,
                arch_seed(seed ^ 0xf1a1, &rec.arch),
                progress && show,
                device,
                &mut |e| live.epoch(e),
            )
            .map_err(|e| Error::Config(format!("final training of {role}: {e}")))?;
            live.finish(
                &tr.epochs,
                &format!("{role}: {} on {}", rec.text, dataset.title()),
                "test",
            )?;
            Ok(FinalResult {
                role: role.into(),
                arch: rec.arch.clone(),
                text: rec.text.clone(),
                search_dev_acc: rec.score.unwrap_or(f64::NAN),
                dataset,
                test_acc: tr.final_eval_acc * 100.0,
                params: tr.params,
                seconds: start.elapsed().as_secs_f64(),
                same_as: None,
            })
        },
        |report, role, rec| {
            write_atomic(
                &final_path,
                serde_json::to_string_pretty(report)
                    .expect("serialisable")
                    .as_bytes(),
            )?;
            write_atomic(
                &out.join(format!("{role}.svg")),
                s.to_svg(&rec.arch).as_bytes(),
            )
        },
    )
}

/// Final training on `dataset` of the search's `best` and of the random pool's best,
/// skipping roles already in `report` for that dataset (a resumed run). When the random pool's best is the search's best
/// (the same evaluation), it is trained once: the `random-best` row copies the `best` row
/// with `same_as = "best"`. `train(role, record, progress)` trains one architecture;
/// `saved` is called after each new row (to write `final.json` and the SVG).
///
/// With `side_by_side` > 1 and two distinct cells due, both train at once, each in its own
/// rayon pool with its share of the threads (the kernels give the same bits on any
/// number of threads, so the rows are those of one after another); only the first shows
/// a progress bar. Each row is saved as soon as it exists, and the rows stand in
/// `report` in the same order as one after another would put them.
pub(crate) fn final_trainings(
    report: &mut FinalReport,
    best: &Record,
    random_best: Option<&Record>,
    dataset: Dataset,
    side_by_side: usize,
    train: impl Fn(&str, &Record, bool) -> Result<FinalResult> + Sync,
    mut saved: impl FnMut(&FinalReport, &str, &Record) -> Result<()>,
) -> Result<()> {
    let mut todo = vec![("best", best)];
    if let Some(r) = random_best {
        todo.push(("random-best", r));
    }
    let done = |report: &FinalReport, role: &str, rec: &Record| {
        report
            .results
            .iter()
            .any(|r| r.role == role && r.arch == rec.arch && r.dataset == dataset)
    };
    todo.retain(|(role, rec)| !done(report, role, rec));
    // The cells that need a training of their own (not in `report`, not an earlier one's).
    let mut due: Vec<(&str, &Record)> = Vec::new();
    for &(role, rec) in &todo {
        let trained = report
            .results
            .iter()
            .any(|r| r.arch == rec.arch && r.same_as.is_none() && r.dataset == dataset);
        if !trained && !due.iter().any(|d| d.1.arch == rec.arch) {
            due.push((role, rec));
        }
    }
    if side_by_side > 1 && due.len() > 1 {
        let threads = (rayon::current_num_threads() / side_by_side.min(due.len())).max(1);
        let base = report.results.len();
        let mut first_error = None;
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel();
            for (k, &(role, rec)) in due.iter().enumerate() {
                let (tx, train) = (tx.clone(), &train);
                scope.spawn(move || {
                    let row = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .start_handler(|_| autograd::inherit_denormal_mode())
                        .build()
                        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))
                        .and_then(|pool| pool.install(|| train(role, rec, k == 0)));
                    let _ = tx.send((k, row));
                });
            }
            drop(tx);
            // Rows as they finish, each put where one after another would have put it.
            let mut finished: Vec<usize> = Vec::new();
            for (k, row) in rx {
                match row {
                    Ok(row) => {
                        let at = base + finished.iter().filter(|&&j| j < k).count();
                        report.results.insert(at, row);
                        finished.push(k);
                        if let Err(e) = saved(report, due[k].0, due[k].1) {
                            first_error.get_or_insert(e);
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        });
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    for (role, rec) in todo {
        if done(report, role, rec) {
            continue;
        }
        let row = reuse_or_train(
            &report.results,
            role,
            &rec.arch,
            |r| r.dataset == dataset,
            || train(role, rec, true),
        )?;
        report.results.push(row);
        saved(report, role, rec)?;
    }
    Ok(())
}

fn render_report(preset: &CifarPreset, report: &FinalReport, evaluated: usize) -> String {
    let mut md = format!(
        "# nao cifar ({})\n\n{}\n\nSearch: {evaluated} architectures evaluated on CIFAR-10 (see `search/report.md` for every round's diagnostics).\n\n| role | architecture | search dev acc (CIFAR-10) | final training on | final test acc | params | final training |\n|---|---|---|---|---|---|---|\n",
        preset.name, preset.about
    );
    for r in &report.results {
        let time = match &r.same_as {
            Some(o) => format!("same architecture as `{o}`: its result, not retrained"),
            None => format!("{:.0} s", r.seconds),
        };
        md += &format!(
            "| {} | `{}` | {:.2}% | {} | {:.2}% | {} | {time} |\n",
            r.role,
            r.text,
            r.search_dev_acc,
            r.dataset.title(),
            r.test_acc,
            r.params
        );
    }
    md += "\nCells: [best](best.svg), [random pool's best](random-best.svg).\n";
    let trained: Vec<&FinalResult> = report
        .results
        .iter()
        .filter(|r| r.same_as.is_none())
        .collect();
    if !trained.is_empty() {
        md += "\n## Final training curves\n\nTraining loss, training accuracy and test accuracy per epoch (numbers in the `.jsonl` next to each picture).\n\n";
        for r in trained {
            let stem = curve_stem(&r.role, r.dataset);
            md += &format!(
                "### {} on {}\n\n![{} training curve]({stem}-curve.svg)\n\n[{stem}-curve.jsonl]({stem}-curve.jsonl)\n\n",
                r.role,
                r.dataset.title(),
                r.role
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{Source, Status};

    fn rec(index: usize, arch: Vec<usize>, score: f64) -> Record {
        Record {
            index,
            round: 0,
            source: Source::Random,
            text: format!("{arch:?}"),
            canonical: arch.clone(),
            arch,
            status: Status::Ok,
            error: None,
            score: Some(score),
            metrics: Default::default(),
            extras: None,
            predicted: None,
            eta: None,
            parent: None,
        }
    }

    /// The CIFAR-100 transfer: 100 classes; for `paper` the paper's CIFAR-100 recipe and
    /// network (N = 6, F = 128, drop-path keep 0.6, dropout keep 0.8); CIFAR-10 unchanged.
    #[test]
    fn cifar100_transfer_recipe() {
        let p = CifarPreset::get("paper").unwrap();
        let (c10, r10) = p.final_for(Dataset::Cifar10);
        assert_eq!(
            (c10.clone(), r10.clone()),
            (p.final_child.clone(), p.final_recipe.clone())
        );
        let (c, r) = p.final_for(Dataset::Cifar100);
        assert_eq!(r.name, "nao-final-c100");
        assert_eq!((c.classes, c.n_cells, c.channels), (100, 6, 128));
        assert_eq!(
            (r.drop_path_keep, r.dropout_keep, r.epochs),
            (0.6, 0.8, 600)
        );
        let s = CifarPreset::get("smoke").unwrap();
        let (c, r) = s.final_for(Dataset::Cifar100);
        assert_eq!(c.classes, 100);
        assert_eq!(
            (c.n_cells, c.channels),
            (s.final_child.n_cells, s.final_child.channels)
        );
        assert_eq!(r, s.final_recipe);
    }

    #[test]
    fn finished_search_needs_only_the_final_dataset() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            datasets_needed(d.path(), Dataset::Cifar100),
            [Dataset::Cifar10, Dataset::Cifar100]
        );
        assert_eq!(
            datasets_needed(d.path(), Dataset::Cifar10),
            [Dataset::Cifar10]
        );
        std::fs::create_dir(d.path().join("search")).unwrap();
        std::fs::write(d.path().join("search/result.json"), "{}").unwrap();
        assert_eq!(
            datasets_needed(d.path(), Dataset::Cifar100),
            [Dataset::Cifar100]
        );
    }

    /// `--preset paper` is the paper's no-weight-sharing search: the 11-op space for search
    /// and final network, Algorithm 1's settings, final training on all 50,000 images.
    #[test]
    fn paper_preset_is_the_no_sharing_search() {
        let p = CifarPreset::get("paper").unwrap();
        assert_eq!(p.search_child.space, SpaceKind::Cnn);
        assert_eq!(p.final_child.space, SpaceKind::Cnn);
        assert!(p.final_train_all);
        assert_eq!(
            p.nao,
            NaoConfig {
                initial: 600,
                per_round: 200,
                ..NaoConfig::paper(1000)
            }
        );
        assert_eq!(p.nao.top_k, 100);
        assert_eq!(p.nao.candidates, 0);
        assert!(!p.nao.fit_canonical);
        assert_eq!(p.nao.surrogate, "nao:1000");
        for name in ["smoke", "default"] {
            assert!(!CifarPreset::get(name).unwrap().final_train_all);
        }
    }

    fn fake_train(
        calls: &std::sync::Mutex<Vec<String>>,
    ) -> impl Fn(&str, &Record, bool) -> Result<FinalResult> + Sync {
        move |role, r, _| {
            let mut calls = calls.lock().unwrap();
            calls.push(role.to_string());
            Ok(FinalResult {
                role: role.into(),
                arch: r.arch.clone(),
                text: r.text.clone(),
                search_dev_acc: r.score.unwrap(),
                dataset: Dataset::Cifar10,
                test_acc: 50.0 + calls.len() as f64,
                params: 7,
                seconds: 3.0,
                same_as: None,
            })
        }
    }

    #[test]
    fn random_best_equal_to_best_is_trained_once() {
        let best = rec(2, vec![1, 2, 3], 60.0);
        let mut report = FinalReport::default();
        let calls = std::sync::Mutex::new(Vec::new());
        let mut saves = 0;
        final_trainings(
            &mut report,
            &best,
            Some(&best.clone()),
            Dataset::Cifar10,
            1,
            fake_train(&calls),
            |_, _, _| {
                saves += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(*calls.lock().unwrap(), ["best"]);
        assert_eq!(saves, 2);
        assert_eq!(report.results.len(), 2);
        let (a, b) = (&report.results[0], &report.results[1]);
        assert_eq!((a.role.as_str(), b.role.as_str()), ("best", "random-best"));
        assert_eq!(b.same_as.as_deref(), Some("best"));
        assert_eq!((a.test_acc, a.params), (b.test_acc, b.params));
        assert_eq!(b.seconds, 0.0);
        let md = render_report(&CifarPreset::get("smoke").unwrap(), &report, 8);
        assert!(md.contains("not retrained"), "{md}");
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"same_as\":\"best\""), "{json}");
        // A resumed run trains nothing more.
        let calls2 = std::sync::Mutex::new(Vec::new());
        final_trainings(
            &mut report,
            &best,
            Some(&best.clone()),
            Dataset::Cifar10,
            1,
            fake_train(&calls2),
            |_, _, _| Ok(()),
        )
        .unwrap();
        assert!(calls2.lock().unwrap().is_empty());
        assert_eq!(report.results.len(), 2);
    }

    #[test]
    fn distinct_random_best_is_trained_too() {
        let best = rec(5, vec![1, 2, 3], 61.0);
        let random_best = rec(1, vec![3, 2, 1], 58.0);
        let mut report = FinalReport::default();
        let calls = std::sync::Mutex::new(Vec::new());
        final_trainings(
            &mut report,
            &best,
            Some(&random_best),
            Dataset::Cifar10,
            1,
            fake_train(&calls),
            |_, _, _| Ok(()),
        )
        .unwrap();
        assert_eq!(*calls.lock().unwrap(), ["best", "random-best"]);
        assert!(report.results.iter().all(|r| r.same_as.is_none()));
        assert!(
            !render_report(&CifarPreset::get("smoke").unwrap(), &report, 8)
                .contains("not retrained")
        );
    }

    /// Side by side (`--executor local --workers 2`): both cells train at once, each on
    /// its share of the threads, and the rows stand in the order one after another gives,
    /// whichever finishes first; the random pool's best equal to the best is still trained
    /// once.
    #[test]
    fn two_cells_train_side_by_side_in_the_sequential_order() {
        let best = rec(5, vec![1, 2, 3], 61.0);
        let random_best = rec(1, vec![3, 2, 1], 58.0);
        let sequential = {
            let calls = std::sync::Mutex::new(Vec::new());
            let mut report = FinalReport::default();
            final_trainings(
                &mut report,
                &best,
                Some(&random_best),
                Dataset::Cifar10,
                1,
                fake_train(&calls),
                |_, _, _| Ok(()),
            )
            .unwrap();
            report
        };
        let pools = std::sync::Mutex::new(Vec::new());
        let saved_rows = std::sync::Mutex::new(Vec::new());
        let mut report = FinalReport::default();
        final_trainings(
            &mut report,
            &best,
            Some(&random_best),
            Dataset::Cifar10,
            2,
            |role, r, show| {
                // `best` finishes last, so the rows arrive out of order.
                if role == "best" {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                pools.lock().unwrap().push((
                    role.to_string(),
                    rayon::current_thread_index().is_some(),
                    rayon::current_num_threads(),
                    show,
                ));
                let test_acc = if role == "best" { 51.0 } else { 52.0 };
                Ok(FinalResult {
                    role: role.into(),
                    arch: r.arch.clone(),
                    text: r.text.clone(),
                    search_dev_acc: r.score.unwrap(),
                    dataset: Dataset::Cifar10,
                    test_acc,
                    params: 7,
                    seconds: 3.0,
                    same_as: None,
                })
            },
            |report, role, _| {
                saved_rows
                    .lock()
                    .unwrap()
                    .push((role.to_string(), report.results.len()));
                Ok(())
            },
        )
        .unwrap();
        let roles: Vec<&str> = report.results.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(roles, ["best", "random-best"]);
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            serde_json::to_string(&sequential).unwrap()
        );
        // Each row saved when it existed: random-best first (alone), then best.
        assert_eq!(
            *saved_rows.lock().unwrap(),
            [("random-best".to_string(), 1), ("best".to_string(), 2)]
        );
        let pools = pools.into_inner().unwrap();
        let threads = (rayon::current_num_threads() / 2).max(1);
        assert!(pools.iter().all(|p| p.1 && p.2 == threads), "{pools:?}");
        // Only the first due cell shows progress.
        assert!(
            pools.iter().any(|p| p.0 == "best" && p.3)
                && pools.iter().any(|p| p.0 == "random-best" && !p.3),
            "{pools:?}"
        );

        // The same cell in both roles: one training, the second row a copy.
        let calls = std::sync::Mutex::new(Vec::new());
        let mut report = FinalReport::default();
        final_trainings(
            &mut report,
            &best,
            Some(&best.clone()),
            Dataset::Cifar10,
            2,
            fake_train(&calls),
            |_, _, _| Ok(()),
        )
        .unwrap();
        assert_eq!(*calls.lock().unwrap(), ["best"]);
        assert_eq!(report.results[1].same_as.as_deref(), Some("best"));
    }
}

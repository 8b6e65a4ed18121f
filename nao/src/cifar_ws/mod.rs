//! `nao cifar --ws`: NAO with weight sharing (NAO-WS, spec section 7) on real CIFAR-10.
//!
//! 1. **Search** (`OUT/search/`, resumable; [`crate::search::ws`]): one supernet
//!    ([`models::cnn::supernet::Supernet`]) is trained continuously on the 45,000-image train
//!    split, each minibatch along one architecture drawn uniformly from the pool; every
//!    `eval_every` epochs the whole pool is scored on dev batches with the shared weights,
//!    the controller is refitted warm, generates new architectures, and they replace the
//!    worst of the pool.
//! 2. **Final training** (`OUT/final.json`), as `nao cifar`: the final pool's best and the
//!    initial random pool's best (as the supernet scored it at the first evaluation) train
//!    from scratch with the same network size and recipe and are scored on the test set.
//! 3. **Does sharing rank well?** (`OUT/ranking.json`, `OUT/ranking.svg`; [`ranking`]):
//!    `ranking_archs` architectures of the final pool, at evenly spaced ranks of its
//!    supernet scores, train stand-alone with a short recipe (`ranking_child`,
//!    `ranking_recipe`, on the first `ranking_train_images` of the train split) and are
//!    scored on the dev split; Kendall tau between their supernet scores and stand-alone dev
//!    accuracies. Each row is written as soon as it exists and kept across resumes.
//! 4. **Report** (`OUT/report.md`, `OUT/best.svg`, `OUT/random-best.svg`, curves, the
//!    ranking table and plot).
//!
//! Presets ([`CifarWsPreset::get`]): `smoke` (about a minute; CI), `default` (about 30-45
//! minutes on 2 cores, plus 5-11 for the ranking study), `paper` (spec 7's [PT-V1]
//! settings, for a GPU).

pub mod ranking;
pub mod shared;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use models::cnn::CnnConfig;
use models::cnn::supernet::SupernetConfig;
use models::space::SpaceKind;
use models::train::cnn_trainer::TrainData;
use models::train::recipe::Recipe;
use serde::{Deserialize, Serialize};

use crate::cifar::{
    FinalReport, FinalSpec, curve_stem, final_report, io_err, recipe, train_finals,
};
use crate::data::{Dataset, load_split};
use crate::error::{Error, Result};
use crate::evaluator::train::head;
use crate::run::atomic::write_atomic;
use crate::run::preset_file::{NamedPreset, claim};
use crate::search::surrogate::build_surrogate;
use crate::search::ws::{
    SharedWeights, WsConfig, WsRunOptions, WsSearchConfig, final_and_random_best, run_ws,
};
use crate::search::{Record, Status};
pub use ranking::{RankingReport, RankingSpec, run_ranking};
pub use shared::{CnnSharedWeights, WsTrainSpec};

/// Everything `nao cifar --ws` runs with; written to `OUT/cifar-ws.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CifarWsPreset {
    /// Preset name.
    pub name: String,
    /// What it is for and how long it takes.
    pub about: String,
    /// The loop: pool, epochs, evaluation period, controller and generation.
    pub ws: WsConfig,
    /// The supernet and how it trains and scores.
    pub train: WsTrainSpec,
    /// The network trained at the end.
    pub final_child: CnnConfig,
    /// How it trains.
    pub final_recipe: Recipe,
    /// Train-split images for the final training (0 = all 45,000).
    pub final_train_images: usize,
    /// Test images it is scored on (0 = all 10,000).
    pub final_test_images: usize,
    /// The ranking study ([`ranking`]): architectures of the final pool trained
    /// stand-alone (evenly spaced ranks by supernet score; 0 = no study).
    pub ranking_archs: usize,
    /// Their network.
    pub ranking_child: CnnConfig,
    /// Their (short) recipe.
    pub ranking_recipe: Recipe,
    /// Train-split images they train on (the first ones, 0 = all 45,000).
    pub ranking_train_images: usize,
    /// Dev images they are scored on (the first ones, 0 = all 5,000).
    pub ranking_dev_images: usize,
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

fn supernet(n: usize, f: usize, drop_path_keep: f64) -> SupernetConfig {
    SupernetConfig {
        n_cells: n,
        channels: f,
        classes: 10,
        drop_path_keep,
        dropout_keep: 1.0,
    }
}

impl NamedPreset for CifarWsPreset {
    fn name(&self) -> &str {
        &self.name
    }
}

impl CifarWsPreset {
    /// The preset called `name`: `smoke`, `default` or `paper`.
    pub fn get(name: &str) -> std::result::Result<CifarWsPreset, String> {
        let spec = |sn: SupernetConfig, batch, lr_max, images, dev, eval_batch| WsTrainSpec {
            supernet: sn,
            batch_size: batch,
            lr_max,
            lr_min: 0.001,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: Some(5.0),
            train_images: images,
            dev_images: dev,
            eval_batch,
            eval_batches: 1,
        };
        match name {
            "smoke" => Ok(CifarWsPreset {
                name: "smoke".into(),
                about: "about a minute on 2 cores: a tiny supernet (N=1, F=4) trained 2 epochs on 1,280 images, a pool of 8 scored twice on 100 dev images, 2 generated; final trainings (N=1, F=4) 1 epoch on 2,000 images; ranking study: 3 cells of the final pool (N=1, F=4) trained 1 epoch on 640 images, scored on 200 dev images".into(),
                ws: WsConfig {
                    nao: WsConfig::preset_nao(8, 2, 4, 20, "nao:30"),
                    epochs: 2,
                    eval_every: 1,
                },
                train: spec(supernet(1, 4, 1.0), 64, 0.05, 1280, 500, 100),
                final_child: child(1, 4),
                final_recipe: recipe("nao-search", 1, 64),
                final_train_images: 2000,
                final_test_images: 1000,
                ranking_archs: 3,
                ranking_child: child(1, 4),
                ranking_recipe: recipe("nao-search", 1, 64),
                ranking_train_images: 640,
                ranking_dev_images: 200,
            }),
            "default" => Ok(CifarWsPreset {
                name: "default".into(),
                about: "about 30-45 minutes on 2 cores: a supernet (N=1, F=8) trained 10 epochs on 10,000 train-split images, a pool of 60 scored every 2 epochs on a random 250-image dev batch, 15 generated per round (5 rounds); the best and the random pool's best then train 2 epochs (N=1, F=16) on the whole 45,000-image train split and are scored on the 10,000 test images; ranking study (about 5-11 more minutes): 8 cells of the final pool at evenly spaced supernet-score ranks train stand-alone at the supernet's size (N=1, F=8) 1 epoch on 5,000 of the supernet's train images and are scored on 1,000 dev images".into(),
                ws: WsConfig {
                    nao: WsConfig::preset_nao(60, 15, 15, 30, "nao:200"),
                    epochs: 10,
                    eval_every: 2,
                },
                train: spec(supernet(1, 8, 1.0), 64, 0.05, 10_000, 0, 250),
                final_child: child(1, 16),
                final_recipe: recipe("nao-search", 2, 128),
                final_train_images: 0,
                final_test_images: 0,
                ranking_archs: 8,
                ranking_child: child(1, 8),
                ranking_recipe: recipe("nao-search", 1, 64),
                ranking_train_images: 5000,
                ranking_dev_images: 1000,
            }),
            "paper" => Ok(CifarWsPreset {
                name: "paper".into(),
                about: "spec 7's [PT-V1] NAO-WS search (a GPU day): supernet N=3, F=20, batch 64, 150 epochs on 45,000 images, SGD 0.9, cosine 0.025 -> 0.001, L2 3e-4, drop-path keep 0.9, clip 5; pool of 600 scored every 30 epochs on one random 500-image dev batch each, up to 300 generated per round from the top 100 (step sizes up to 50, controller 1000 epochs); final training as `nao cifar --preset paper`'s network on the cnn-ws cell (N=6, F=36, 600 epochs); ranking study: 8 cells of the final pool at evenly spaced supernet-score ranks train stand-alone at the supernet's size (N=3, F=20) 25 epochs (short recipe: cosine 0.05 -> 0, no regularisation) on the 45,000 train images and are scored on the 5,000 dev images".into(),
                ws: WsConfig {
                    nao: WsConfig::preset_nao(600, 300, 100, 50, "nao:1000"),
                    epochs: 150,
                    eval_every: 30,
                },
                train: spec(supernet(3, 20, 0.9), 64, 0.025, 0, 0, 500),
                final_child: CnnConfig {
                    space: SpaceKind::CnnWs,
                    n_cells: 6,
                    channels: 36,
                    classes: 10,
                    dropout_keep: 0.6,
                    drop_path_keep: 0.8,
                    aux_head: true,
                },
                final_recipe: Recipe::preset("naonet-a-36").expect("preset"),
                final_train_images: 0,
                final_test_images: 0,
                ranking_archs: 8,
                ranking_child: child(3, 20),
                ranking_recipe: recipe("nao-search", 25, 64),
                ranking_train_images: 0,
                ranking_dev_images: 0,
            }),
            other => Err(format!(
                "unknown --ws preset `{other}`; known: smoke, default, paper"
            )),
        }
    }
}

/// Runs (or resumes) `nao cifar --ws` into `out` on `device`. CIFAR-10 must be on disk in
/// `data_dir` ([`crate::data::prepare`]).
pub fn run_cifar_ws(
    out: &Path,
    preset: &CifarWsPreset,
    data_dir: &Path,
    seed: u64,
    resume: bool,
    progress: bool,
    device: &autograd::Device,
) -> Result<FinalReport> {
    claim(out, "cifar-ws.json", preset, resume)?;
    let data_dir: PathBuf = std::path::absolute(data_dir).map_err(|e| io_err(data_dir, e))?;
    let (train, dev, test) = load_split(Dataset::Cifar10, &data_dir, seed)?;
    let stats = Dataset::Cifar10.stats();
    let ranking_data = (preset.ranking_archs > 0).then(|| TrainData {
        train: Arc::new(head(train.clone(), preset.ranking_train_images)),
        eval: Arc::new(head(dev.clone(), preset.ranking_dev_images)),
        stats,
    });

    // 1. Search.
    let search_dir = out.join("search");
    let records = if search_dir.join("result.json").exists() {
        crate::run::read_records(&search_dir)?.0
    } else {
        let mut shared = CnnSharedWeights::new(
            &preset.train,
            Arc::new(head(train.clone(), preset.train.train_images)),
            Arc::new(head(dev, preset.train.dev_images)),
            stats,
            preset.ws.epochs,
            seed,
            device,
        )
        .map_err(|e| Error::Config(format!("building the supernet: {e}")))?;
        let mut surrogate =
            build_surrogate(&preset.ws.nao, SpaceKind::CnnWs, device).map_err(Error::Config)?;
        let config = WsSearchConfig {
            space: SpaceKind::CnnWs,
            ws: preset.ws.clone(),
            seed,
            shared: serde_json::json!({
                "train": preset.train,
                "params": shared.describe()["params"],
            }),
        };
        let opts = WsRunOptions {
            resume: resume && search_dir.join("config.json").exists(),
            progress,
        };
        run_ws(&search_dir, &config, &mut shared, &mut *surrogate, opts)?.records
    };
    let (best, random_best) = final_and_random_best(&records);
    let (best, random_best) = (
        best.ok_or_else(|| Error::Config("the search scored no architecture".into()))?
            .clone(),
        random_best.cloned(),
    );

    // 2. Final training.
    let mut report = final_report(out, resume)?;
    let data = TrainData {
        train: Arc::new(head(train, preset.final_train_images)),
        eval: Arc::new(head(test, preset.final_test_images)),
        stats,
    };
    let spec = FinalSpec {
        out,
        child: &preset.final_child,
        recipe: &preset.final_recipe,
        data: &data,
        dataset: Dataset::Cifar10,
        seed,
        progress,
        device,
        // The weight-sharing search has no executor: its finals train one after another.
        side_by_side: 1,
    };
    train_finals(&spec, &mut report, &best, random_best.as_ref())?;

    // 3. Does sharing rank well? Cells of the final pool trained stand-alone.
    let mut study = ranking::load(out, resume)?;
    if let Some(data) = &ranking_data {
        let final_ranked: Vec<Record> = crate::search::ranked(&records)
            .into_iter()
            .filter(|r| r.round == best.round && r.status == Status::Ok)
            .cloned()
            .collect();
        let spec = RankingSpec {
            out,
            child: &preset.ranking_child,
            recipe: &preset.ranking_recipe,
            data,
            seed,
            progress,
            device,
        };
        run_ranking(&spec, &mut study, &final_ranked, preset.ranking_archs)?;
    }

    // 4. Report.
    write_atomic(
        &out.join("report.md"),
        render_report(
            preset,
            &report,
            records.len(),
            ranking_data.is_some().then_some(&study),
        )
        .as_bytes(),
    )?;
    Ok(report)
}

fn render_report(
    preset: &CifarWsPreset,
    report: &FinalReport,
    scores: usize,
    study: Option<&RankingReport>,
) -> String {
    let mut md = format!(
        "# nao cifar --ws ({})\n\n{}\n\nSearch: NAO with weight sharing, {scores} supernet scores (see `search/report.md` for every round). `search score` is the supernet's dev accuracy (shared weights, batch statistics) of the final pool's best, and of the initial random pool's best at the first evaluation.\n\n| role | architecture | search score | final test acc | params | final training |\n|---|---|---|---|---|---|\n",
        preset.name, preset.about
    );
    for r in &report.results {
        let time = match &r.same_as {
            Some(o) => format!("same architecture as `{o}`: its result, not retrained"),
            None => format!("{:.0} s", r.seconds),
        };
        md += &format!(
            "| {} | `{}` | {:.2}% | {:.2}% | {} | {time} |\n",
            r.role, r.text, r.search_dev_acc, r.test_acc, r.params
        );
    }
    md += "\nCells: [best](best.svg), [random pool's best](random-best.svg).\n";
    for r in report.results.iter().filter(|r| r.same_as.is_none()) {
        let stem = curve_stem(&r.role, r.dataset);
        md += &format!(
            "\n### {} training curve\n\n![{stem}]({stem}-curve.svg)\n",
            r.role
        );
    }
    if let Some(study) = study {
        let about = format!(
            "The supernet's scores of the final pool against the dev accuracy of the same cells trained stand-alone: N={}, F={}, recipe `{}` ({} epoch{}, batch {}), on {} train-split images, scored on {} dev images.",
            preset.ranking_child.n_cells,
            preset.ranking_child.channels,
            preset.ranking_recipe.name,
            preset.ranking_recipe.epochs,
            if preset.ranking_recipe.epochs == 1 {
                ""
            } else {
                "s"
            },
            preset.ranking_recipe.batch_size,
            images(preset.ranking_train_images, 45_000),
            images(preset.ranking_dev_images, 5_000),
        );
        md += &ranking::section(study, &about);
    }
    md
}

/// `n` images, 0 meaning all `all` of them.
fn images(n: usize, all: usize) -> String {
    if n == 0 || n >= all {
        format!("all {all}")
    } else {
        n.to_string()
    }
}

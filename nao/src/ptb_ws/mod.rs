//! `nao ptb --ws`: NAO with weight sharing (NAO-WS, spec 8.1/8.2) over recurrent cells on
//! Penn Treebank.
//!
//! 1. **Search** (`OUT/search/`, resumable; [`crate::search::ws`]): one RNN supernet
//!    ([`models::rnn::RnnSupernet`]: a separate `hid x 2hid` slice per (predecessor,
//!    activation) pair of every node) is trained continuously on PTB's training stream,
//!    each BPTT window along one cell drawn uniformly from the pool
//!    ([`PtbSharedWeights`]); every `eval_every` epochs every pool cell is scored by the
//!    negative NLL of its path on one random 35-step chunk of the validation stream (the
//!    score is maximised: higher = lower perplexity). The chunk start is drawn over the
//!    whole stream, not only its first 1/35 as in spec 8.2's quirk. Then the controller is
//!    refitted warm, generates new cells, and they replace the worst of the pool.
//! 2. **Final training** (`OUT/final/<role>/`, each a resumable language-model run), as
//!    `nao ptb`: the final pool's best, the initial random pool's best (as the supernet
//!    scored it at the first evaluation) and the preset's reference cells train from
//!    scratch with the same recipe and are scored by test perplexity.
//! 3. **Report** (`OUT/final.json`, `OUT/report.md` with the supernet and controller
//!    diagnostics per round, `OUT/<role>.svg`).
//!
//! Presets ([`PtbWsPreset::get`]): `smoke` (about a minute; CI), `default` (about 20-45
//! minutes on 2 cores), `paper` (spec 8.2's settings, for a GPU).

mod shared;

use std::path::{Path, PathBuf};

use models::rnn::RnnConfig;
use models::space::SpaceKind;
use models::train::ptb_recipe::PtbRecipe;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};
use crate::ptb::{PtbFinalReport, PtbFinalSpec, final_cells, final_table, finish, num};
use crate::run::preset_file::{NamedPreset, claim};
use crate::search::surrogate::build_surrogate;
use crate::search::ws::{
    SharedWeights, WsConfig, WsRunOptions, WsSearchConfig, final_and_random_best, run_ws,
};
use crate::train_lm::{LmData, LmRecipe};
pub use shared::{ChunkScoring, PtbSharedWeights};

/// Everything `nao ptb --ws` runs with; written to `OUT/ptb-ws.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtbWsPreset {
    /// Preset name.
    pub name: String,
    /// What it is for and how long it takes.
    pub about: String,
    /// The loop: pool, epochs, evaluation period, controller and generation.
    pub ws: WsConfig,
    /// The supernet's sizes and dropouts (the vocabulary is the corpus's).
    pub supernet: RnnConfig,
    /// How the supernet trains (optimiser, batch, BPTT, windows per epoch) and the
    /// validation batch it scores with.
    pub train: PtbRecipe,
    /// How the chosen cells train at the end.
    pub final_recipe: LmRecipe,
    /// Named cells ([`crate::train_lm::NAMED_CELLS`]) trained with the final recipe too.
    pub references: Vec<String>,
    /// How each pool cell is scored (chunks per score; shared by the pool or drawn per cell).
    #[serde(default)]
    pub scoring: ChunkScoring,
}

fn lm(name: &str) -> LmRecipe {
    LmRecipe::preset(name).expect("a known recipe")
}

impl NamedPreset for PtbWsPreset {
    fn name(&self) -> &str {
        &self.name
    }
}

impl PtbWsPreset {
    /// The preset called `name`: `smoke`, `default` or `paper`.
    pub fn get(name: &str) -> std::result::Result<PtbWsPreset, String> {
        let references = vec!["darts-v2".to_string(), "enas".to_string()];
        match name {
            "smoke" => {
                // The smoke language model's sizes and optimiser, 20 windows an epoch.
                let small = lm("smoke");
                Ok(PtbWsPreset {
                    name: "smoke".into(),
                    about: "about a minute on 2 cores: a tiny supernet (emb = hid = 16) trained 2 epochs of 20 windows (batch 32, bptt 20), a pool of 6 cells scored twice on the same 2 validation chunks, 2 generated; the best, the random pool's best, DARTS V2 and ENAS then train with the `smoke` language-model recipe".into(),
                    ws: WsConfig {
                        nao: WsConfig::preset_nao(6, 2, 4, 20, "nao:30"),
                        epochs: 2,
                        eval_every: 1,
                    },
                    supernet: small.model,
                    train: PtbRecipe {
                        asgd: false,
                        ..small.train.clone()
                    },
                    final_recipe: small,
                    references,
                    scoring: ChunkScoring {
                        chunks: 2,
                        shared: true,
                    },
                })
            }
            "default" => {
                // nao ptb's search children (emb = hid = 64, lr 20, clip 0.25, batch 64,
                // bptt 35), trained as one supernet over whole passes of the stream.
                let child = lm("ptb-child");
                Ok(PtbWsPreset {
                    name: "default".into(),
                    about: "about 20-45 minutes on 2 cores (18 measured at load 2-4, 45 at load 6-10): a supernet (emb = hid = 64, the `ptb-child` sizes and optimiser: SGD lr 20, clip 0.25, batch 64, bptt 35) trained 5 epochs over PTB's whole training stream (415 windows each), a pool of 60 cells scored after every epoch on the same 4 random 35-step validation chunks (spec 8.2 draws one chunk per cell; shared chunks compare the cells on equal text), 15 generated per round from the top 15 (5 evaluations, 4 generations); the best and the random pool's best then train 2 epochs at emb = hid = 96 (`ptb-short`, as `nao ptb`'s default, whose DARTS V2 and ENAS rows are the references) and are scored on the whole validation and test sets".into(),
                    ws: WsConfig {
                        nao: WsConfig::preset_nao(60, 15, 15, 30, "nao:200"),
                        epochs: 5,
                        eval_every: 1,
                    },
                    supernet: child.model,
                    train: PtbRecipe {
                        max_train_windows: None,
                        ..child.train
                    },
                    final_recipe: lm("ptb-short"),
                    references: Vec::new(),
                    scoring: ChunkScoring {
                        chunks: 4,
                        shared: true,
                    },
                })
            }
            "paper" => Ok(PtbWsPreset {
                name: "paper".into(),
                about: "spec 8.2's [TF-WS rnn] search (GPU hours): supernet emb = hid = 300, batch 256, bptt 35, SGD lr 0.25, clip 10, dropouts 0.75 / 0.25 / 0.75 / 0.2 / 0, 1000 epochs, a pool of 1000 scored every 200 epochs on one random validation chunk each (eval batch 256), up to 300 generated per round from the top 100 (controller 1000 epochs; [TF-WS rnn]'s 50 fresh random cells per round are not added); the chosen cells then train with `ptb-final` (spec 8.3)".into(),
                ws: WsConfig {
                    nao: WsConfig::preset_nao(1000, 300, 100, 50, "nao:1000"),
                    epochs: 1000,
                    eval_every: 200,
                },
                supernet: RnnConfig::ptb_search(),
                train: PtbRecipe::ptb_search(),
                final_recipe: lm("ptb-final"),
                references,
                scoring: ChunkScoring::default(),
            }),
            other => Err(format!(
                "unknown --ws preset `{other}`; known: smoke, default, paper"
            )),
        }
    }
}

/// Runs (or resumes) `nao ptb --ws` into `out`. PTB must be on disk in `data_dir`
/// ([`crate::data::prepare_ptb`]). The controller and the final trainings run on
/// `device`; the supernet stays on the CPU.
pub fn run_ptb_ws(
    out: &Path,
    preset: &PtbWsPreset,
    data_dir: &Path,
    seed: u64,
    resume: bool,
    progress: bool,
    device: &autograd::Device,
) -> Result<PtbFinalReport> {
    claim(out, "ptb-ws.json", preset, resume)?;
    let data_dir: PathBuf =
        std::path::absolute(data_dir).map_err(io_err("cannot resolve", data_dir))?;

    // 1. Search.
    let search_dir = out.join("search");
    let records = if search_dir.join("result.json").exists() {
        crate::run::read_records(&search_dir)?.0
    } else {
        let corpus = LmData::Ptb.load(&data_dir)?;
        let mut shared = PtbSharedWeights::new(&preset.supernet, &preset.train, &corpus, seed)
            .map_err(|e| Error::Config(format!("building the supernet: {e}")))?
            .with_scoring(preset.scoring);
        let mut surrogate =
            build_surrogate(&preset.ws.nao, SpaceKind::Rnn, device).map_err(Error::Config)?;
        let config = WsSearchConfig {
            space: SpaceKind::Rnn,
            ws: preset.ws.clone(),
            seed,
            shared: shared.describe(),
        };
        let opts = WsRunOptions {
            resume: resume && search_dir.join("config.json").exists(),
            progress,
        };
        run_ws(&search_dir, &config, &mut shared, &mut *surrogate, opts)?.records
    };
    let (best, random_best) = final_and_random_best(&records);
    let best = best.ok_or_else(|| Error::Config("the search scored no cell".into()))?;

    // 2. Final training.
    let cells = final_cells(best, random_best, &preset.references)?;
    let spec = PtbFinalSpec {
        out,
        recipe: &preset.final_recipe,
        references: &preset.references,
        data_dir: &data_dir,
        seed,
        resume,
        progress,
        device,
    };
    finish(&spec, cells, &search_dir, |report, rounds| {
        render_report(preset, report, records.len(), rounds)
    })
}

fn render_report(
    preset: &PtbWsPreset,
    report: &PtbFinalReport,
    scores: usize,
    rounds: &[serde_json::Value],
) -> String {
    let mut md = format!(
        "# nao ptb --ws ({})\n\n{}\n\nSearch: NAO with weight sharing, {scores} supernet scores (see `search/report.md` for every round). `supernet chunk ppl` is `exp(-score)`: the perplexity of the cell's path through the shared weights on one random 35-step validation chunk, for the final pool's best and for the initial random pool's best at the first evaluation. Final recipe: `{}` ({}).\n\n{}",
        preset.name,
        preset.about,
        preset.final_recipe.name,
        preset.final_recipe.about,
        final_table(report, "supernet chunk ppl")
    );
    md += "\n## The supernet and the controller per round\n\nEach round the whole pool is scored with the shared weights (score = -NLL on one chunk). `stability tau`: Kendall tau between the scores of the cells kept from the previous round, then and now (how much the shared weights reorder the pool); `held-out pairwise acc`: the controller's prediction for the cells it generated, against their first supernet score.\n\n| round | epochs done | train loss | pool mean ppl | pool best ppl | stability tau | held-out pairwise acc |\n|---|---|---|---|---|---|---|\n";
    let ppl = |v: &serde_json::Value| {
        v.as_f64()
            .map_or("-".into(), |s| format!("{:.1}", (-s).exp()))
    };
    for r in rounds {
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r["round"],
            r["epochs_done"],
            num(&r["train_loss"]),
            ppl(&r["pool_mean"]),
            ppl(&r["best"]),
            num(&r["stability_kendall_tau"]),
            num(&r["heldout_pairwise_acc"]),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train_lm::parse_rnn_arch;

    #[test]
    fn presets_are_consistent() {
        for name in ["smoke", "default", "paper"] {
            let p = PtbWsPreset::get(name).unwrap();
            assert_eq!(p.name, name);
            p.ws.validate().unwrap();
            p.train.validate().unwrap();
            p.supernet.with_vocab(10_000).validate().unwrap();
            for r in &p.references {
                parse_rnn_arch(r).unwrap();
            }
        }
        let paper = PtbWsPreset::get("paper").unwrap();
        assert_eq!(paper.train, PtbRecipe::ptb_search());
        assert_eq!(paper.supernet, RnnConfig::ptb_search());
        assert_eq!(paper.ws.rounds(), 5);
        assert_eq!(paper.final_recipe, LmRecipe::preset("ptb-final").unwrap());
        assert!(PtbWsPreset::get("huge").is_err());
    }
}

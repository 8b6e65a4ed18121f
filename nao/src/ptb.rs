//! `nao ptb`: NAO over recurrent cells on Penn Treebank, end to end (spec 8, Algorithm 1
//! without weight sharing).
//!
//! 1. **Search** (`OUT/search/`, an ordinary run directory, resumable): NAO over the `rnn`
//!    space; every cell's language model trains briefly from scratch on PTB's training
//!    stream ([`crate::evaluator::train_rnn`]) and is scored on the validation stream.
//!    The searches maximise, so the score is `-ln(valid ppl)` (lower perplexity = higher
//!    score); `valid_ppl` is in each record.
//! 2. **Final training** (`OUT/final/<role>/`, each a resumable language-model run of
//!    [`crate::train_lm`]): the best cell found, the best cell of the initial random pool
//!    (round 0) and the preset's reference cells (DARTS V2 and ENAS in our encoding) train
//!    with the same final recipe and are scored by test perplexity. A cell met twice (the
//!    random pool's best is the search's best) trains once; its second row says `same_as`.
//! 3. **Report** (`OUT/final.json`, `OUT/report.md` with the predictor's held-out ranking
//!    per round, `OUT/<role>.svg`).
//!
//! Presets ([`PtbPreset::get`]): `smoke` (about a minute on 2 cores; CI), `default` (about
//! 40 minutes on 2 quiet cores), `paper` (spec 8's settings; GPU days).

use crate::error::{Error, Result, io_err};
use crate::evaluator::EvaluatorConfig;
use crate::evaluator::train::arch_seed;
use crate::evaluator::train_rnn::RnnChildSpec;
use crate::final_rows::{FinalRow, reuse_or_train};
use crate::run::atomic::{read_lines, write_atomic, write_json_atomic};
use crate::run::{RunOptions, SearchConfig, run_search};
use crate::search::nao::NaoConfig;
use crate::search::{AlgoConfig, Record, best_of};
use crate::train_lm::{LmData, LmRecipe, LmRunConfig, parse_rnn_arch, run_lm};
use models::space::{RnnSpace, SearchSpace, SpaceKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `nao ptb --help`'s examples and notes.
pub const PTB_HELP: &str = "\
Examples:
  nao ptb --preset smoke --out runs/ptb-smoke     # about a minute: the whole pipeline, tiny
  nao ptb --out runs/ptb                          # the default: about 40 minutes on 2 quiet cores
  nao ptb --resume --out runs/ptb                 # continue an interrupted run (even after kill -9)
  nao ptb --ws --preset smoke --out runs/ptb-ws-smoke   # NAO-WS (weight sharing): about a minute
  nao ptb --ws --out runs/ptb-ws                  # NAO-WS default: about 20-45 minutes on 2 cores

Score: the searches maximise, so each cell is scored by -ln(valid perplexity) (its negative
mean validation NLL per token); report.md shows perplexities.
Data comes from --data-dir, else $NAO_DATA_DIR, else ./data: ptb/ptb.{train,valid,test}.txt.
Writes OUT/ptb.json (the preset), OUT/search/ (a search run directory), OUT/final/<role>/
(one language-model run per finally trained cell: best, random-best, darts-v2, enas),
OUT/final.json, OUT/<role>.svg and OUT/report.md (final perplexities and the predictor's
held-out ranking per round). The same seed gives the same archs.jsonl and epochs.jsonl.

With --ws (NAO with weight sharing, spec 8.2): one RNN supernet holds a weight slice per
(predecessor, activation) pair of every node; each training window runs one pool cell, and
every pool cell is scored by -NLL of its path on one random 35-step validation chunk (drawn
over the whole validation stream: spec 8.2's quirk of drawing only from its first 1/35 is
fixed). Presets smoke, default, paper (spec 8.2, a GPU). Writes OUT/ptb-ws.json,
OUT/search/ (a NAO-WS run directory), then the same final trainings and files as above.";

/// Everything `nao ptb` runs with; written to `OUT/ptb.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtbPreset {
    /// Preset name.
    pub name: String,
    /// What it is for and how long it takes.
    pub about: String,
    /// Cells evaluated in the search.
    pub budget: usize,
    /// NAO settings.
    pub nao: NaoConfig,
    /// How each search child trains and is scored.
    pub search: LmRecipe,
    /// How the chosen cells train at the end.
    pub final_recipe: LmRecipe,
    /// Named cells ([`crate::train_lm::NAMED_CELLS`]) trained with the final recipe too,
    /// for comparison.
    pub references: Vec<String>,
}

fn recipe(name: &str) -> LmRecipe {
    LmRecipe::preset(name).expect("a known recipe")
}

impl PtbPreset {
    /// The preset called `name`: `smoke`, `default` or `paper`.
    pub fn get(name: &str) -> std::result::Result<PtbPreset, String> {
        let references = vec!["darts-v2".to_string(), "enas".to_string()];
        match name {
            "smoke" => Ok(PtbPreset {
                name: "smoke".into(),
                about: "about a minute on 2 cores: 8 tiny cells (emb = hid = 16; 4 random, then rounds of 2; 300 controller epochs a round) trained on 20 windows and scored on 10 validation windows; the best, the random pool's best, DARTS V2 and ENAS then train with the same tiny recipe".into(),
                budget: 8,
                nao: NaoConfig {
                    initial: 4,
                    per_round: 2,
                    top_k: 4,
                    recon_sample: 64,
                    surrogate: "nao:300".into(),
                    ..NaoConfig::paper(8)
                },
                search: recipe("smoke"),
                final_recipe: recipe("smoke"),
                references,
            }),
            "default" => Ok(PtbPreset {
                name: "default".into(),
                about: "about 40 minutes on 2 quiet cores (78 measured on 2 cores shared with other jobs, load 7-10): 30 cells (emb = hid = 64) each trained on the first 120 windows of 35 x 64 tokens and scored on the whole validation set (`ptb-child`; 30-45 s each on quiet cores, 57-91 s under that load), the paper's Algorithm 1 (`NaoConfig::paper`: 1000 controller epochs a round, greedy decoding, eta = 1, 2, ... 50) scaled to 10 random cells, then rounds of 5 from the top 10 (this project's trust-region defaults, tuned on NAS-Bench-201, decode almost nothing new from so small a pool of 22-token cells); the best, the random pool's best, DARTS V2 and ENAS then train 2 epochs at emb = hid = 96 (`ptb-short`; 8-13 minutes each under that load) and are scored on the whole validation and test sets".into(),
                budget: 30,
                nao: NaoConfig {
                    initial: 10,
                    per_round: 5,
                    top_k: 10,
                    ..NaoConfig::paper(30)
                },
                search: recipe("ptb-child"),
                final_recipe: recipe("ptb-short"),
                references,
            }),
            "paper" => Ok(PtbPreset {
                name: "paper".into(),
                about: "spec 8 without weight sharing (GPU days): Algorithm 1 exactly (NaoConfig::paper), 1,000 cells in rounds of 200 from a pool of 600, each child trained with the final script for 600 epochs ([TF-NAO]'s search setting, spec 8.3 note) at emb = hid = 850; the chosen cells then train with ptb-final (spec 8.3: 4000 epochs, ASGD)".into(),
                budget: 1000,
                nao: NaoConfig {
                    initial: 600,
                    per_round: 200,
                    ..NaoConfig::paper(1000)
                },
                search: {
                    let mut r = recipe("ptb-final");
                    r.name = "ptb-final-600".into();
                    r.train.epochs = 600;
                    r
                },
                final_recipe: recipe("ptb-final"),
                references,
            }),
            other => Err(format!("unknown preset `{other}`; known: smoke, default, paper")),
        }
    }
}

/// One finally trained cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtbFinalResult {
    /// `best`, `random-best`, or a reference cell's name.
    pub role: String,
    /// Tokens.
    pub arch: Vec<usize>,
    /// Text form.
    pub text: String,
    /// Validation perplexity measured in the search (`None` for reference cells).
    pub search_valid_ppl: Option<f64>,
    /// Validation perplexity after the final training.
    pub valid_ppl: f64,
    /// Test perplexity after the final training.
    pub test_ppl: f64,
    /// Trainable parameters.
    pub params: usize,
    /// Wall time of the final training, seconds (0 when reused, see `same_as`).
    pub seconds: f64,
    /// The role whose final training this row reuses (the same cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
}

impl FinalRow for PtbFinalResult {
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
        PtbFinalResult {
            role: role.into(),
            seconds: 0.0,
            same_as: Some(self.role.clone()),
            ..self.clone()
        }
    }
}

/// `OUT/final.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PtbFinalReport {
    /// Finished final trainings, in the order best, random-best, references.
    pub results: Vec<PtbFinalResult>,
}

/// A cell to train at the end: its role, tokens and validation perplexity in the search.
pub(crate) type FinalCell = (String, Vec<usize>, Option<f64>);

/// The cells to train at the end, in report order: `best`, the random pool's best
/// (`random_best`, when the search had one) and the `references` by name. A record's
/// validation perplexity is `exp(-score)`.
pub(crate) fn final_cells(
    best: &Record,
    random_best: Option<&Record>,
    references: &[String],
) -> Result<Vec<FinalCell>> {
    let ppl = |r: &Record| r.score.map(|s| (-s).exp());
    let mut cells = vec![("best".to_string(), best.arch.clone(), ppl(best))];
    if let Some(r) = random_best {
        cells.push(("random-best".into(), r.arch.clone(), ppl(r)));
    }
    for name in references {
        let (arch, _) = parse_rnn_arch(name)?;
        cells.push((name.clone(), arch, None));
    }
    Ok(cells)
}

/// How the final cells train: where, with what, from which seed.
pub(crate) struct PtbFinalSpec<'a> {
    /// The run directory: `final/<role>/`, `final.json` and `<role>.svg` go there.
    pub out: &'a Path,
    /// The final recipe.
    pub recipe: &'a LmRecipe,
    /// Roles that are named reference cells (their runs record the name).
    pub references: &'a [String],
    /// Where `ptb/` is.
    pub data_dir: &'a Path,
    /// The run's seed (each cell's seed derives from it and the cell).
    pub seed: u64,
    /// Continue interrupted final trainings.
    pub resume: bool,
    /// Progress bars.
    pub progress: bool,
    /// Where the cells train.
    pub device: &'a autograd::Device,
}

/// Trains `cells` one at a time with the same final recipe (each a resumable run
/// directory `final/<role>/`; a cell met twice trains once) and scores them by test
/// perplexity; `final.json` and the cell drawings are written after each.
pub(crate) fn train_final_cells(
    spec: &PtbFinalSpec<'_>,
    cells: Vec<FinalCell>,
) -> Result<PtbFinalReport> {
    let out = spec.out;
    let final_path = out.join("final.json");
    let mut report = PtbFinalReport::default();
    for (role, arch, search_ppl) in cells {
        let text = RnnSpace.to_text(&arch);
        let mut row = reuse_or_train(
            &report.results,
            &role,
            &arch,
            |_| true,
            || {
                let dir = out.join("final").join(&role);
                let lm = LmRunConfig {
                    text: text.clone(),
                    arch_name: spec.references.contains(&role).then(|| role.clone()),
                    arch: arch.clone(),
                    data: LmData::Ptb,
                    recipe: spec.recipe.clone(),
                    seed: arch_seed(spec.seed ^ 0xf1a1, &arch),
                };
                eprintln!("final training of {role}: {text}");
                let again = spec.resume && dir.join("lm.json").exists();
                let r = run_lm(&dir, &lm, spec.data_dir, again, spec.progress, spec.device)?;
                Ok(PtbFinalResult {
                    role: role.clone(),
                    arch: arch.clone(),
                    text: text.clone(),
                    search_valid_ppl: search_ppl,
                    valid_ppl: r.valid_ppl,
                    test_ppl: r.test_ppl,
                    params: r.params,
                    seconds: r.train_seconds,
                    same_as: None,
                })
            },
        )?;
        // A reused row keeps this role's own search perplexity (none for a reference cell).
        row.search_valid_ppl = search_ppl;
        report.results.push(row);
        write_json_atomic(&final_path, &report)?;
        write_atomic(
            &out.join(format!("{role}.svg")),
            RnnSpace.to_svg(&arch).as_bytes(),
        )?;
    }
    Ok(report)
}

/// Steps 2 and 3 of `nao ptb` and `nao ptb --ws`: trains `cells`
/// ([`train_final_cells`]), then writes `OUT/report.md` as `render(final report, the lines
/// of search_dir/rounds.jsonl)` says.
pub(crate) fn finish(
    spec: &PtbFinalSpec<'_>,
    cells: Vec<FinalCell>,
    search_dir: &Path,
    render: impl FnOnce(&PtbFinalReport, &[serde_json::Value]) -> String,
) -> Result<PtbFinalReport> {
    let report = train_final_cells(spec, cells)?;
    let rounds = read_lines(&search_dir.join("rounds.jsonl"))?
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect::<Vec<serde_json::Value>>();
    write_atomic(
        &spec.out.join("report.md"),
        render(&report, &rounds).as_bytes(),
    )?;
    Ok(report)
}

/// The final-results table of `report.md` (header included), with `search` naming the
/// search-perplexity column, and the links to the cell drawings.
pub(crate) fn final_table(report: &PtbFinalReport, search: &str) -> String {
    let mut md = format!(
        "| role | cell | {search} | final valid ppl | final test ppl | params | final training |\n|---|---|---|---|---|---|---|\n"
    );
    for r in &report.results {
        let time = match &r.same_as {
            Some(o) => format!("same cell as `{o}`: its result, not retrained"),
            None => format!("{:.0} s", r.seconds),
        };
        md += &format!(
            "| {} | `{}` | {} | {:.2} | {:.2} | {} | {time} |\n",
            r.role,
            r.text,
            r.search_valid_ppl.map_or("-".into(), |p| format!("{p:.2}")),
            r.valid_ppl,
            r.test_ppl,
            r.params
        );
    }
    md += "\nCells: ";
    md += &report
        .results
        .iter()
        .map(|r| format!("[{0}]({0}.svg)", r.role))
        .collect::<Vec<_>>()
        .join(", ");
    md += ".\n";
    md
}

/// Runs (or resumes) `nao ptb` into `out`. `opts`: resume, progress, where the search's
/// children train ([`crate::executor`]) and on which device (the search's and the final
/// trainings').
pub fn run_ptb(
    out: &Path,
    preset: &PtbPreset,
    data_dir: &Path,
    seed: u64,
    opts: &RunOptions,
) -> Result<PtbFinalReport> {
    let (resume, progress, executor) = (opts.resume, opts.progress, &opts.executor);
    std::fs::create_dir_all(out).map_err(io_err("cannot create", out))?;
    write_json_atomic(&out.join("ptb.json"), preset)?;
    let data_dir: PathBuf =
        std::path::absolute(data_dir).map_err(io_err("cannot resolve", data_dir))?;

    // 1. Search.
    let search_dir = out.join("search");
    let config = SearchConfig {
        space: SpaceKind::Rnn,
        algo: AlgoConfig::Nao(preset.nao.clone()),
        budget: preset.budget,
        seed,
        evaluator: EvaluatorConfig::TrainRnn(Box::new(RnnChildSpec {
            data_dir: data_dir.clone(),
            data: LmData::Ptb,
            recipe: preset.search.clone(),
            seed,
        })),
        eval_delay_ms: 0,
    };
    let records = if search_dir.join("result.json").exists() {
        crate::run::read_records(&search_dir)?.0
    } else {
        let opts = RunOptions {
            resume: resume && search_dir.join("config.json").exists(),
            progress,
            executor: executor.clone(),
            device: opts.device.clone(),
        };
        run_search(&search_dir, &config, &opts)?.records
    };

    // 2. Final training, one cell at a time (each a resumable run directory).
    let best = best_of(records.iter())
        .ok_or_else(|| Error::Config("the search evaluated no cell successfully".into()))?;
    let random_best = best_of(records.iter().filter(|r| r.round == 0));
    let cells = final_cells(best, random_best, &preset.references)?;
    let spec = PtbFinalSpec {
        out,
        recipe: &preset.final_recipe,
        references: &preset.references,
        data_dir: &data_dir,
        seed,
        resume,
        progress,
        device: &opts.device,
    };
    finish(&spec, cells, &search_dir, |report, rounds| {
        render_report(preset, report, records.len(), rounds)
    })
}

/// A number of a JSON line with three decimals, `-` when absent.
pub(crate) fn num(v: &serde_json::Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.3}"))
}

fn render_report(
    preset: &PtbPreset,
    report: &PtbFinalReport,
    evaluated: usize,
    rounds: &[serde_json::Value],
) -> String {
    let mut md = format!(
        "# nao ptb ({})\n\n{}\n\nSearch: {evaluated} cells evaluated, each scored by `-ln(valid ppl)` (maximised; see `search/report.md` for every round's diagnostics). Final recipe: `{}` ({}).\n\n{}",
        preset.name,
        preset.about,
        preset.final_recipe.name,
        preset.final_recipe.about,
        final_table(report, "search valid ppl")
    );
    md += "\n## The predictor's held-out ranking per round\n\nBefore each round's cells are trained, the controller predicts their scores; after training, the prediction is compared with the measured `-ln(valid ppl)` (pairwise accuracy: the fraction of pairs ordered alike; Kendall tau).\n\n| round | new cells | held-out pairwise acc | held-out Kendall tau | batch mean predicted | batch mean measured | best so far |\n|---|---|---|---|---|---|---|\n";
    for r in rounds {
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r["round"],
            r["new"],
            num(&r["heldout_pairwise_acc"]),
            num(&r["heldout_kendall_tau"]),
            num(&r["batch_mean_predicted"]),
            num(&r["batch_mean_measured"]),
            num(&r["best"])
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_consistent() {
        for name in ["smoke", "default", "paper"] {
            let p = PtbPreset::get(name).unwrap();
            assert_eq!(p.name, name);
            assert!(p.nao.initial <= p.budget);
            for r in &p.references {
                parse_rnn_arch(r).unwrap();
            }
        }
        let paper = PtbPreset::get("paper").unwrap();
        assert_eq!(paper.final_recipe, LmRecipe::preset("ptb-final").unwrap());
        assert_eq!(paper.nao.top_k, 100);
        assert_eq!(paper.search.train.epochs, 600);
        assert!(PtbPreset::get("huge").is_err());
    }
}

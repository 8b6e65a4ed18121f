//! Language-model training runs: `nao train --task lm`, and the final trainings of
//! `nao ptb`.
//!
//! One run trains one recurrent cell (the `rnn` space, spec 1.6 / 8.1) as a word-level
//! language model on Penn Treebank or WikiText-2 with a named [`LmRecipe`], and scores it
//! by validation and test perplexity after every epoch. Its directory holds:
//!
//! | file | what |
//! |---|---|
//! | `lm.json` | every setting ([`LmRunConfig`]) |
//! | `epochs.jsonl` | one [`EpochRow`] per finished epoch (train / valid / test perplexity, ASGD on or not); no timings, so the same seed gives the same bytes |
//! | `timings.jsonl` | wall seconds per epoch |
//! | `checkpoint/epoch-K/` | the training state after epoch K ([`LmSession::save`]) and the rows so far; `checkpoint/latest` names the newest |
//! | `result.json` | the final numbers ([`LmResult`]) |
//! | `cell.svg` | the cell |
//!
//! A checkpoint is written after every epoch (into a temporary directory, published by
//! renaming it and then rewriting `latest`), so a run killed at any moment resumes from the
//! last finished epoch and then makes exactly the steps of an uninterrupted run.
//!
//! Perplexities: validation and test are evaluated with the weights evaluation uses (the
//! ASGD average once it is on), fixed windows of `bptt`, batch `eval_batch`, the hidden
//! state carried from zero; the recipe's `max_valid_windows` caps both (smoke recipes only).

use std::path::{Path, PathBuf};
use std::time::Instant;

use datasets::Corpus;
use models::rnn::{RnnConfig, RnnLanguageModel};
use models::space::{Arch, RnnSpace, SearchSpace};
use models::train::lm_session::LmSession;
use models::train::ptb_recipe::PtbRecipe;
use models::train::rnn_trainer::bar;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};
use crate::run::atomic::{JsonlAppender, read_lines, write_atomic, write_json_atomic};

/// Which corpus a language model trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LmData {
    /// Penn Treebank (Mikolov's split): `DATA/ptb/ptb.{train,valid,test}.txt`.
    Ptb,
    /// WikiText-2: `DATA/wikitext-2/wiki.{train,valid,test}.tokens`.
    Wikitext2,
}

impl LmData {
    /// `ptb` or `wikitext2`.
    pub fn parse(name: &str) -> std::result::Result<LmData, String> {
        match name {
            "ptb" => Ok(LmData::Ptb),
            "wikitext2" | "wikitext-2" | "wt2" => Ok(LmData::Wikitext2),
            other => Err(format!(
                "unknown language-model data `{other}`; known: ptb, wikitext2"
            )),
        }
    }

    /// The name (`ptb`, `wikitext2`).
    pub fn name(self) -> &'static str {
        match self {
            LmData::Ptb => "ptb",
            LmData::Wikitext2 => "wikitext2",
        }
    }

    /// Loads the corpus from `data_dir`; a missing file gives an error that names the
    /// directory and the three files to put there.
    pub fn load(self, data_dir: &Path) -> Result<Corpus> {
        let (loaded, sub, files) = match self {
            LmData::Ptb => (
                Corpus::ptb(data_dir),
                "ptb",
                "ptb.train.txt, ptb.valid.txt and ptb.test.txt (Mikolov's simple-examples/data)",
            ),
            LmData::Wikitext2 => (
                Corpus::wikitext2(data_dir),
                "wikitext-2",
                "wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens (the word-level WikiText-2 release, wikitext-2-v1.zip)",
            ),
        };
        loaded.map_err(|e| match e {
            datasets::DatasetError::MissingFile { path, .. } => Error::Config(format!(
                "{} is missing: put {files} in {} (the data directory is --data-dir, else $NAO_DATA_DIR, else ./data)",
                path.display(),
                data_dir.join(sub).display()
            )),
            other => Error::Config(other.to_string()),
        })
    }
}

/// A named way to train a language model: the model's sizes and regularisation, and the
/// optimiser recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmRecipe {
    /// Preset name.
    pub name: String,
    /// Where it comes from and what it costs.
    pub about: String,
    /// Sizes and dropouts (the vocabulary is the corpus's).
    pub model: RnnConfig,
    /// Optimiser, batches, epochs, ASGD.
    pub train: PtbRecipe,
}

impl LmRecipe {
    /// The preset names.
    pub const PRESETS: [&'static str; 6] = [
        "ptb-final",
        "wt2-final",
        "ptb-search",
        "ptb-short",
        "ptb-child",
        "smoke",
    ];

    /// The preset called `name`:
    ///
    /// * `ptb-final`: spec 8.3 (DARTS recipe): emb = hid = 850, SGD lr 20, clip 0.25, batch
    ///   64, dropouts 0.75 / 0.25 / 0.75 / 0.2 / 0, wd 8e-7, ASGD (nonmono 5), 4000 epochs
    ///   (days on a GPU);
    /// * `wt2-final`: spec 8.3's WikiText-2 row: hid 700, dropouth 0.15, wd 5e-7, 2000
    ///   epochs, the rest as `ptb-final`;
    /// * `ptb-search`: spec 8.2's child settings (emb = hid = 300, SGD lr 0.25, batch 256);
    /// * `ptb-short`: the final training of `nao ptb --preset default` (a CPU budget);
    /// * `ptb-child`: the search children of `nao ptb --preset default`;
    /// * `smoke`: seconds; tests and CI.
    pub fn preset(name: &str) -> std::result::Result<LmRecipe, String> {
        let base = |name: &str, about: &str, model: RnnConfig, train: PtbRecipe| LmRecipe {
            name: name.into(),
            about: about.into(),
            model,
            train,
        };
        match name {
            "ptb-final" => Ok(base(
                name,
                "spec 8.3 (DARTS recipe): emb = hid = 850, SGD lr 20, clip 0.25, batch 64, bptt 35, ASGD (nonmono 5), 4000 epochs: days of GPU time",
                RnnConfig::ptb_final(),
                PtbRecipe::ptb_final(),
            )),
            "wt2-final" => Ok(base(
                name,
                "spec 8.3, WikiText-2 row: emb = hid = 700, dropouth 0.15, wd 5e-7, 2000 epochs, otherwise ptb-final",
                RnnConfig {
                    emb: 700,
                    hidden: 700,
                    dropouth: 0.15,
                    ..RnnConfig::ptb_final()
                },
                PtbRecipe {
                    weight_decay: 5e-7,
                    epochs: 2000,
                    ..PtbRecipe::ptb_final()
                },
            )),
            "ptb-search" => Ok(base(
                name,
                "spec 8.2's child settings: emb = hid = 300, SGD lr 0.25 (constant), clip 10, batch 256, 1000 epochs",
                RnnConfig::ptb_search(),
                PtbRecipe::ptb_search(),
            )),
            "ptb-short" => Ok(base(
                name,
                "a CPU budget (nao ptb's default final training): emb = hid = 96, the ptb-final optimiser (SGD lr 20, clip 0.25, ASGD with nonmono 5) with batch 64, bptt 35, 2 epochs over the whole training stream, lighter dropouts (0.4 / 0.1 / 0.1 / 0.1), whole validation and test sets",
                short_model(96),
                PtbRecipe {
                    batch: 64,
                    eval_batch: 64,
                    epochs: 2,
                    ..PtbRecipe::ptb_final()
                },
            )),
            "ptb-child" => Ok(base(
                name,
                "a search child of nao ptb's default preset: emb = hid = 64, SGD lr 20, clip 0.25, batch 64, bptt 35, the first 120 windows of the training stream (about 270k tokens), scored on the whole validation set",
                short_model(64),
                PtbRecipe {
                    batch: 64,
                    eval_batch: 64,
                    epochs: 1,
                    asgd: false,
                    max_train_windows: Some(120),
                    ..PtbRecipe::ptb_final()
                },
            )),
            "smoke" => Ok(base(
                name,
                "seconds: emb = hid = 16, batch 32, bptt 20, two epochs of 20 windows, 10 validation windows",
                short_model(16),
                PtbRecipe {
                    batch: 32,
                    eval_batch: 32,
                    bptt: 20,
                    epochs: 2,
                    max_train_windows: Some(20),
                    max_valid_windows: Some(10),
                    ..PtbRecipe::ptb_final()
                },
            )),
            other => Err(format!(
                "unknown language-model recipe `{other}`; known: {}",
                LmRecipe::PRESETS.join(", ")
            )),
        }
    }
}

/// A small model for CPU budgets: emb = hid = `size`, dropouts 0.4 (output) / 0.1 (h, x,
/// input), no word dropout, TAR 1e-3 (the spec's 0.75 / 0.25 / 0.75 / 0.2 are tuned for
/// hid 850 over thousands of epochs and only slow a few epochs down).
fn short_model(size: usize) -> RnnConfig {
    RnnConfig {
        emb: size,
        hidden: size,
        dropout: 0.4,
        dropouth: 0.1,
        dropoutx: 0.1,
        dropouti: 0.1,
        dropoute: 0.0,
        ..RnnConfig::ptb_search()
    }
}

/// Named recurrent cells, written in our `rnn` encoding (flat `pred act` pairs, spec 1.6):
/// `(name, flat form, what it is)`.
pub const NAMED_CELLS: [(&str, &str, &str); 4] = [
    (
        "darts-v2",
        "0 2 1 1 1 1 1 3 2 0 5 2 3 0 5 1 8 3 8 3 8 3",
        "DARTS V2 (Liu et al. 2019): its 8 nodes are nodes 1-8 here; DARTS averages those 8, our space has 11 nodes and averages all of them, so nodes 9-11 are identity nodes reading node 8 (the nearest cell of our space, not DARTS V2 exactly)",
    ),
    (
        "enas",
        "0 0 1 0 1 1 3 0 3 0 3 1 4 1 7 1 8 1 8 1 8 1",
        "the ENAS PTB cell (Pham et al. 2018), 11 nodes as in our space; ENAS averages only the loose ends (nodes 2, 5, 6, 9, 10, 11), our cell all 11",
    ),
    (
        "nao",
        "0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2",
        "the NAO cell found on PTB without weight sharing (spec 1.6)",
    ),
    (
        "nao-ws",
        "0 1 1 1 2 2 1 2 4 1 4 1 4 1 7 1 8 2 1 0 4 1",
        "the NAO-WS cell found on PTB (spec 1.6)",
    ),
];

/// Parses an `rnn` architecture: a name of [`NAMED_CELLS`], the text or flat form, or a
/// file holding one of them (or the JSON form). Returns the tokens and the name, if any.
pub fn parse_rnn_arch(arg: &str) -> Result<(Arch, Option<String>)> {
    if let Some((name, flat, _)) = NAMED_CELLS.iter().find(|(n, _, _)| *n == arg) {
        return Ok((RnnSpace.from_text(flat)?, Some(name.to_string())));
    }
    let tokens = crate::arch_arg::read_arch(&RnnSpace, arg).map_err(|e| match e {
        Error::Arch(e) => Error::Config(format!(
            "{e} (an rnn architecture is a named cell ({}), 22 integers `pred act` per node, or the text form `[0 tanh] [0 relu] ...`)",
            NAMED_CELLS.map(|c| c.0).join(", ")
        )),
        other => other,
    })?;
    RnnSpace.validate(&tokens)?;
    Ok((tokens, None))
}

/// `nao train --help`'s examples and notes for `--task lm`.
pub const TRAIN_LM_HELP: &str = "\
Examples:
  nao train --arch \"0 0 1 3 ...\" --recipe nao-search --epochs 1      # a CNN on CIFAR-10
  nao train --arch arch.txt --recipe smoke --epochs 1 --train-images 2000
  nao train --dataset cifar100 --arch arch.txt --recipe nao-final-c100 --n 6 --f 128  # the paper's transfer
  nao train --task lm --arch darts-v2 --recipe ptb-short --out runs/darts   # a cell on PTB
  nao train --task lm --arch enas --data wikitext2 --recipe wt2-final --out runs/enas-wt2
  nao train --task lm --arch \"0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2\" --epochs 2 --out runs/lm
  nao train --task lm --resume --out runs/darts                 # continue an interrupted run

--task lm: the cell is an rnn-space architecture (22 integers `pred act`, the text form, or a
named cell: darts-v2, enas, nao, nao-ws; DARTS V2 and ENAS as written in our 11-node
encoding, see ARCHITECTURE.md). Recipes: ptb-final (spec 8.3, the default), wt2-final,
ptb-search (spec 8.2), ptb-short, ptb-child, smoke; --epochs overrides the recipe's.
PTB comes from DATA/ptb/ptb.{train,valid,test}.txt, WikiText-2 from
DATA/wikitext-2/wiki.{train,valid,test}.tokens (DATA = --data-dir, else $NAO_DATA_DIR, else
./data). Valid and test perplexity are printed after every epoch; the run directory gets
lm.json, epochs.jsonl, timings.jsonl, checkpoint/ (after every epoch), result.json and
cell.svg.

A missing CIFAR dataset is downloaded into the data directory unless --offline.";

/// The settings of `nao train --task lm`: the cell `arch` (see [`parse_rnn_arch`]), the
/// corpus `data` (`ptb`, `wikitext2`), the recipe (see [`LmRecipe::preset`]), an optional
/// number of epochs replacing the recipe's, and the seed.
pub fn lm_config(
    arch: &str,
    data: &str,
    recipe: &str,
    epochs: Option<usize>,
    seed: u64,
) -> Result<LmRunConfig> {
    let (tokens, arch_name) = parse_rnn_arch(arch)?;
    let data = LmData::parse(data).map_err(Error::Config)?;
    let mut recipe = LmRecipe::preset(recipe).map_err(Error::Config)?;
    if let Some(e) = epochs {
        if e == 0 {
            return Err(Error::Config("--epochs must be at least 1".into()));
        }
        recipe.train.epochs = e;
        recipe.name = format!("{}-{e}ep", recipe.name);
    }
    Ok(LmRunConfig {
        text: RnnSpace.to_text(&tokens),
        arch: tokens,
        arch_name,
        data,
        recipe,
        seed,
    })
}

/// Every setting of one language-model run (`lm.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmRunConfig {
    /// The cell's tokens (`rnn` space).
    pub arch: Vec<usize>,
    /// Its text form.
    pub text: String,
    /// Its name, when it is one of [`NAMED_CELLS`].
    pub arch_name: Option<String>,
    /// The corpus.
    pub data: LmData,
    /// How it trains.
    pub recipe: LmRecipe,
    /// Seed of the weights, the dropout masks and the window lengths.
    pub seed: u64,
}

/// One line of `epochs.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Training perplexity (mean over the epoch's windows, dropout on, without TAR).
    pub train_ppl: f64,
    /// Validation perplexity.
    pub valid_ppl: f64,
    /// Test perplexity.
    pub test_ppl: f64,
    /// Whether averaged SGD was on during the epoch.
    pub asgd: bool,
}

/// `result.json`: a finished language-model run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmResult {
    /// The cell's text form.
    pub text: String,
    /// Its name, if any.
    pub arch_name: Option<String>,
    /// The corpus.
    pub data: LmData,
    /// The recipe's name.
    pub recipe: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Lowest validation perplexity over the epochs.
    pub best_valid_ppl: f64,
    /// Validation perplexity at the end (the weights kept, averaged if ASGD switched on).
    pub valid_ppl: f64,
    /// Test perplexity at the end, same weights.
    pub test_ppl: f64,
    /// Trainable parameters.
    pub params: usize,
    /// The epoch after which ASGD switched on, if it did.
    pub asgd_from_epoch: Option<usize>,
    /// Training wall time summed over epochs and invocations, seconds (the only field
    /// that differs between two runs with the same seed).
    pub train_seconds: f64,
}

fn ck_err(e: impl std::fmt::Display) -> Error {
    Error::Config(e.to_string())
}

/// Builds the model and session of `config` on `device`.
fn session(config: &LmRunConfig, corpus: &Corpus, device: &autograd::Device) -> Result<LmSession> {
    let cell = RnnSpace.decode(&config.arch)?;
    let model_cfg = config.recipe.model.with_vocab(corpus.vocab.len());
    model_cfg
        .validate()
        .map_err(|e| Error::Config(format!("recipe {}: {e}", config.recipe.name)))?;
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let model = RnnLanguageModel::new(&cell, &model_cfg, &mut rng);
    autograd::nn::Module::to_device(&model, device)
        .map_err(|e| Error::Config(format!("cannot move the model to {device}: {e}")))?;
    LmSession::new(model, &config.recipe.train, corpus, config.seed).map_err(ck_err)
}

/// Runs (or, with `resume`, continues) the language-model run `config` in `dir`, with the
/// corpus from `data_dir`. A finished run returns its `result.json` without training.
/// Without `resume`, `dir` must not hold a run yet; with it, `config` must equal the one
/// in `dir/lm.json` (callers that resume from the directory read it with
/// [`read_lm_config`] first). The model trains on `device` (not in `lm.json`: a run may
/// resume on another device).
pub fn run_lm(
    dir: &Path,
    config: &LmRunConfig,
    data_dir: &Path,
    resume: bool,
    progress: bool,
    device: &autograd::Device,
) -> Result<LmResult> {
    let cfg_path = dir.join("lm.json");
    let result_path = dir.join("result.json");
    if cfg_path.exists() {
        if !resume {
            return Err(Error::Config(format!(
                "{} already holds a language-model run: continue it with --resume or choose another --out",
                dir.display()
            )));
        }
        let old = read_lm_config(dir)?;
        if &old != config {
            return Err(Error::Config(format!(
                "{} holds a run with other settings; resume it with its own (lm.json) or choose another --out",
                dir.display()
            )));
        }
        if let Ok(bytes) = std::fs::read(&result_path) {
            return serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                path: result_path,
                source,
            });
        }
    } else {
        std::fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        write_json_atomic(&cfg_path, config)?;
    }
    write_atomic(
        &dir.join("cell.svg"),
        RnnSpace.to_svg(&config.arch).as_bytes(),
    )?;
    let corpus = config.data.load(data_dir)?;
    let mut s = session(config, &corpus, device)?;
    let ckpt = dir.join("checkpoint");
    let mut rows: Vec<EpochRow> = Vec::new();
    if let Some(latest) = latest_checkpoint(&ckpt)? {
        s.load(&latest).map_err(ck_err)?;
        rows = read_json_file(&latest.join("rows.json"))?;
    }
    // The log holds exactly the rows of the checkpoint (a crash may have left one more).
    let epochs_path = dir.join("epochs.jsonl");
    let mut text = String::new();
    for r in &rows {
        text += &serde_json::to_string(r).expect("serialisable");
        text.push('\n');
    }
    write_atomic(&epochs_path, text.as_bytes())?;
    let mut epochs_log = JsonlAppender::open(&epochs_path)?;
    let mut timings = JsonlAppender::open(&dir.join("timings.jsonl"))?;
    let recipe = &config.recipe.train;
    let pb = bar((s.windows_per_epoch() * recipe.epochs) as u64, progress);
    pb.set_prefix(config.arch_name.clone().unwrap_or_else(|| "lm".into()));
    pb.set_position((s.windows_per_epoch() * s.epochs_done()) as u64);
    let test_ids = corpus.test.clone();
    while s.epochs_done() < recipe.epochs {
        let start = Instant::now();
        let stats = match s.run_epoch(Some(&pb)) {
            Ok(st) => st,
            Err(e) => {
                pb.abandon();
                return Err(ck_err(e));
            }
        };
        let test_loss = s
            .evaluate_ids(&test_ids, recipe.max_valid_windows)
            .map_err(ck_err)?;
        let row = EpochRow {
            epoch: stats.epoch,
            train_ppl: stats.train_ppl,
            valid_ppl: stats.valid_ppl,
            test_ppl: test_loss.exp(),
            asgd: stats.asgd,
        };
        rows.push(row.clone());
        let tmp = ckpt.join(format!("tmp-{}", stats.epoch));
        let _ = std::fs::remove_dir_all(&tmp);
        s.save(&tmp).map_err(ck_err)?;
        write_json_atomic(&tmp.join("rows.json"), &rows)?;
        let name = format!("epoch-{}", stats.epoch);
        let _ = std::fs::remove_dir_all(ckpt.join(&name));
        atomic_file::publish_dir(&tmp, &ckpt.join(&name))
            .map_err(io_err("cannot publish", &tmp))?;
        write_atomic(&ckpt.join("latest"), name.as_bytes())?;
        if stats.epoch > 1 {
            let _ = std::fs::remove_dir_all(ckpt.join(format!("epoch-{}", stats.epoch - 1)));
        }
        epochs_log.append(&row)?;
        timings.append(&serde_json::json!({
            "epoch": stats.epoch,
            "wall_s": start.elapsed().as_secs_f64(),
        }))?;
        let line = format!(
            "epoch {:4}: train ppl {:9.2}  valid ppl {:9.2}  test ppl {:9.2}{}  ({:.1}s)",
            row.epoch,
            row.train_ppl,
            row.valid_ppl,
            row.test_ppl,
            if row.asgd { "  [asgd]" } else { "" },
            stats.seconds
        );
        // Printed even without a terminal (logs), unless the caller wants silence.
        match (progress, pb.is_hidden()) {
            (false, _) => {}
            (true, true) => eprintln!("{line}"),
            (true, false) => pb.println(line),
        }
    }
    pb.finish_and_clear();
    let report = s.report().clone();
    let last = rows
        .last()
        .ok_or_else(|| Error::Config("the recipe trains no epoch (epochs = 0)".into()))?;
    let result = LmResult {
        text: config.text.clone(),
        arch_name: config.arch_name.clone(),
        data: config.data,
        recipe: config.recipe.name.clone(),
        epochs: rows.len(),
        best_valid_ppl: report.best_valid_ppl,
        valid_ppl: last.valid_ppl,
        test_ppl: last.test_ppl,
        params: report.num_params,
        asgd_from_epoch: report.asgd_from_epoch,
        train_seconds: report.epochs.iter().map(|e| e.seconds).sum(),
    };
    write_json_atomic(&result_path, &result)?;
    Ok(result)
}

/// Reads `lm.json` of a language-model run directory.
pub fn read_lm_config(dir: &Path) -> Result<LmRunConfig> {
    read_json_file(&dir.join("lm.json"))
}

fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io_err("cannot read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// The newest published checkpoint directory, if any.
fn latest_checkpoint(ckpt: &Path) -> Result<Option<PathBuf>> {
    let latest = ckpt.join("latest");
    match std::fs::read_to_string(&latest) {
        Ok(name) => Ok(Some(ckpt.join(name.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("cannot read", latest)(e)),
    }
}

/// The per-epoch rows of a run directory (complete lines of `epochs.jsonl`).
pub fn read_epochs(dir: &Path) -> Result<Vec<EpochRow>> {
    let path = dir.join("epochs.jsonl");
    read_lines(&path)?
        .iter()
        .map(|l| {
            serde_json::from_str(l).map_err(|source| Error::Json {
                path: path.clone(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_cells_parse_and_are_valid() {
        for (name, flat, _) in NAMED_CELLS {
            let (tokens, n) = parse_rnn_arch(name).unwrap();
            assert_eq!(n.as_deref(), Some(name));
            assert_eq!(tokens, RnnSpace.from_text(flat).unwrap());
        }
        // ENAS: node 8 reads node 7, nodes 9-11 read node 8, all relu.
        let enas = RnnSpace.decode(&parse_rnn_arch("enas").unwrap().0).unwrap();
        assert_eq!(enas.nodes[7].pred, 7);
        assert!(enas.nodes[8..].iter().all(|n| n.pred == 8));
        // DARTS V2: node 1 is sigmoid of node 0, node 6 sigmoid of node 5.
        let darts = RnnSpace
            .decode(&parse_rnn_arch("darts-v2").unwrap().0)
            .unwrap();
        assert_eq!(darts.nodes[0].act.name(), "sigmoid");
        assert_eq!(
            (darts.nodes[5].pred, darts.nodes[5].act.name()),
            (5, "sigmoid")
        );
        let (_, none) = parse_rnn_arch("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2").unwrap();
        assert_eq!(none, None);
        let err = parse_rnn_arch("darts-v3").unwrap_err().to_string();
        assert!(err.contains("darts-v2, enas"), "{err}");
    }

    #[test]
    fn recipes_validate() {
        for name in LmRecipe::PRESETS {
            let r = LmRecipe::preset(name).unwrap();
            assert_eq!(r.name, name);
            r.model.validate().unwrap();
            r.train.validate().unwrap();
        }
        let f = LmRecipe::preset("ptb-final").unwrap();
        assert_eq!(
            (f.model.hidden, f.train.lr, f.train.asgd),
            (850, 20.0, true)
        );
        let w = LmRecipe::preset("wt2-final").unwrap();
        assert_eq!(
            (w.model.hidden, w.model.dropouth, w.train.epochs),
            (700, 0.15, 2000)
        );
        assert!(LmRecipe::preset("nope").unwrap_err().contains("ptb-final"));
    }

    /// WikiText-2 loads from `wikitext-2/wiki.*.tokens`; without the files the error names
    /// the directory and the files.
    #[test]
    fn wikitext2_loads_generated_files_and_names_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let err = LmData::Wikitext2.load(dir.path()).unwrap_err().to_string();
        let want = dir.path().join("wikitext-2");
        assert!(err.contains(&want.display().to_string()), "{err}");
        assert!(
            err.contains("wiki.train.tokens") && err.contains("wiki.test.tokens"),
            "{err}"
        );
        std::fs::create_dir(&want).unwrap();
        for split in ["train", "valid", "test"] {
            std::fs::write(
                want.join(format!("wiki.{split}.tokens")),
                " = Head = \n\n the cat <unk> sat \n",
            )
            .unwrap();
        }
        let c = LmData::Wikitext2.load(dir.path()).unwrap();
        assert_eq!(c.train.len(), 4 + 1 + 5);
        assert_eq!(LmData::parse("wikitext2").unwrap(), LmData::Wikitext2);
        assert!(LmData::parse("wt103").is_err());
    }
}

//! Run directories: configuration, logs, checkpoints, resumption and reports.
//!
//! A run directory holds:
//!
//! | file | what |
//! |---|---|
//! | `config.json` | every setting ([`SearchConfig`]) |
//! | `manifest.json` | seed, crate version, git commit, host, cpus, start/end, wall time, status ([`Manifest`]) |
//! | `archs.jsonl` | one [`Record`] per evaluation, appended as results arrive; no timings, so the same seed gives the same bytes |
//! | `timings.jsonl` | wall time per evaluation (`{"index", "wall_s"}`) and per round (`{"round", "wall_s"}`) |
//! | `rounds.jsonl` | diagnostics per round |
//! | `checkpoint/round-R/` | `state.json` (round, RNG, algorithm state), `pool.jsonl` (the records so far), `surrogate/`; `checkpoint/latest` names the newest |
//! | `result.json` | the best architecture with all its metrics (for a table: its full row), and the top 5 |
//! | `best-1.svg`... | cells of the best architectures |
//! | `curve.svg` | the search curve |
//! | `report.md` | what ran, the best architectures, the per-round diagnostics |
//!
//! Whole files are written atomically and log lines are fsynced one by one. A checkpoint is
//! written after every round; the two newest are kept, so that a damaged newest checkpoint
//! (or a log line torn by a crash) costs only the last round on resumption ([`repair`]). [`run_search`] with `resume` continues an interrupted run: it
//! restores the newest checkpoint, keeps the log up to it, and replays every evaluation
//! logged after it from the log instead of querying the evaluator again, so the continued
//! run makes exactly the same decisions and writes the same `archs.jsonl`.
//!
//! [`run_search_with`] ties the parts together, one file each: opening the directory
//! (`open.rs`: a new run's first files, or an interrupted run's state and logs cut back to
//! its checkpoint), the rounds (`rounds.rs`: each round's line, timing and checkpoint),
//! the checkpoints themselves (`checkpoint.rs`), the manifest (`manifest.rs`), the
//! repairs of a damaged directory ([`repair`]) and the reports ([`report`]).

pub mod atomic;
mod checkpoint;
mod manifest;
mod open;
pub mod plain_progress;
pub mod preset_file;
pub mod repair;
pub mod report;
mod rounds;
pub mod svg;
pub mod train_curve;

pub(crate) use manifest::hostname;
pub use manifest::{Manifest, now_iso};

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use models::space::{SpaceKind, space};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result, io_err};
use crate::evaluator::{Delayed, Evaluator, EvaluatorConfig, Replay};
use crate::executor::{ExecutorConfig, LocalExecutor, SlurmExecutor};
use crate::search::surrogate::{Surrogate, build_surrogate};
use crate::search::{AlgoConfig, Ctx, Record, RecordSink};
use atomic::{JsonlAppender, read_lines, write_json_atomic};

/// Every setting of a search run (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// The search space.
    pub space: SpaceKind,
    /// The algorithm and its settings.
    pub algo: AlgoConfig,
    /// Distinct canonical architectures to query (failures count).
    pub budget: usize,
    /// The seed of the run's generator.
    pub seed: u64,
    /// The evaluator.
    pub evaluator: EvaluatorConfig,
    /// Artificial delay per query, milliseconds (testing only; 0 normally).
    #[serde(default)]
    pub eval_delay_ms: u64,
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue the run in the directory instead of starting a new one.
    pub resume: bool,
    /// Report progress: bars when stderr is a terminal, else one plain line per finished
    /// evaluation and round ([`plain_progress`]).
    pub progress: bool,
    /// Where evaluations run ([`crate::executor`]); the records are the same for all.
    pub executor: ExecutorConfig,
    /// The device children and the NAO controller train on (the CPU by default). Not in
    /// `config.json`: a run resumed on another device is the same run. Out-of-process tasks
    /// get theirs from their own `--device` (the executor passes it on).
    pub device: autograd::Device,
}

impl RunOptions {
    /// In-process evaluation, with `resume` and `progress` as given.
    pub fn inline(resume: bool, progress: bool) -> RunOptions {
        RunOptions {
            resume,
            progress,
            executor: ExecutorConfig::Inline,
            device: autograd::Device::Cpu,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The best successful evaluation.
    pub best: Option<Record>,
    /// All evaluations.
    pub records: Vec<Record>,
    /// Rounds run (over all invocations).
    pub rounds: usize,
    /// Evaluations replayed from the log in this invocation.
    pub replayed: usize,
    /// Repairs of a damaged run directory made on resumption (each also printed on stderr
    /// as a warning; see [`repair`]).
    pub repairs: Vec<String>,
}

/// Reads `config.json` of a run directory.
pub fn read_config(dir: &Path) -> Result<SearchConfig> {
    read_json(&dir.join("config.json"))
}

/// Reads `config.json` of what should be a run directory, saying clearly when `dir` is not
/// one: it does not exist, is a file, is the output of `nao cifar` (whose run directory is
/// its `search/`), or holds no `config.json`.
pub fn open_run_dir(dir: &Path) -> Result<SearchConfig> {
    let d = dir.display();
    if !dir.exists() {
        return Err(Error::Config(format!(
            "{d} does not exist: give a run directory (the --out of `nao search`)"
        )));
    }
    if !dir.is_dir() {
        return Err(Error::Config(format!(
            "{d} is a file, not a run directory: give the --out directory of `nao search`"
        )));
    }
    if !dir.join("config.json").exists() {
        if dir.join("cifar.json").exists() {
            return Err(Error::Config(format!(
                "{d} is the output of `nao cifar`, not a run directory: its report is {}; its search run directory is {}",
                dir.join("report.md").display(),
                dir.join("search").display()
            )));
        }
        return Err(Error::Config(format!(
            "{d} is not a run directory: it has no config.json (every `nao search` --out has one, with archs.jsonl and manifest.json)"
        )));
    }
    read_config(dir)
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_err("cannot read", path))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `archs.jsonl` (complete lines) as records, with the raw lines.
pub fn read_records(dir: &Path) -> Result<(Vec<Record>, Vec<String>)> {
    let path = dir.join("archs.jsonl");
    let lines = read_lines(&path)?;
    let mut recs = Vec::with_capacity(lines.len());
    for l in &lines {
        recs.push(serde_json::from_str(l).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?);
    }
    Ok((recs, lines))
}

/// Runs the search configured by `config` in `dir`, building the evaluator and (for NAO)
/// the surrogate from the configuration.
pub fn run_search(dir: &Path, config: &SearchConfig, opts: &RunOptions) -> Result<RunOutcome> {
    let inner = config.evaluator.build(config.space, &opts.device)?;
    let dir_abs = std::path::absolute(dir).map_err(io_err("cannot resolve", dir))?;
    let mut evaluator: Box<dyn Evaluator> = match &opts.executor {
        ExecutorConfig::Inline => inner,
        ExecutorConfig::Local { workers, task } => {
            Box::new(LocalExecutor::new(&dir_abs, *workers, task.clone(), inner))
        }
        ExecutorConfig::Slurm { options, task } => Box::new(SlurmExecutor::new(
            &dir_abs,
            options.clone(),
            task.clone(),
            inner,
        )),
    };
    let surrogate = match &config.algo {
        AlgoConfig::Nao(c) => {
            Some(build_surrogate(c, config.space, &opts.device).map_err(Error::Config)?)
        }
        _ => None,
    };
    run_search_with(dir, config, &mut *evaluator, surrogate, opts)
}

/// The files a running search appends to, and the plain progress lines (stderr not a
/// terminal).
struct Logs {
    archs: JsonlAppender,
    timings: JsonlAppender,
    plain: Option<std::rc::Rc<plain_progress::PlainProgress>>,
}

impl RecordSink for Logs {
    fn record(&mut self, rec: &Record, wall_s: f64) -> Result<()> {
        self.archs.append(rec)?;
        if let Some(p) = &self.plain {
            eprintln!("{}", p.evaluation(rec));
        }
        self.timings
            .append(&json!({"index": rec.index, "wall_s": wall_s}))
    }

    fn timing(&mut self, value: &Value) -> Result<()> {
        self.timings.append(value)
    }
}

/// Runs the search with a given evaluator and surrogate (see the module docs). Without
/// `opts.resume`, `dir` must not hold a run yet.
pub fn run_search_with(
    dir: &Path,
    config: &SearchConfig,
    evaluator: &mut dyn Evaluator,
    surrogate: Option<Box<dyn Surrogate>>,
    opts: &RunOptions,
) -> Result<RunOutcome> {
    let started = Instant::now();
    let space = space(config.space);
    let mut algo = config.algo.build(surrogate).map_err(Error::Config)?;
    let man_path = dir.join("manifest.json");
    let open::Opened {
        mut manifest,
        records,
        cache,
        rng,
        next_round,
        notes,
    } = if opts.resume {
        open::resume(dir, config, &mut *algo)?
    } else {
        open::start(dir, config)?
    };
    manifest.status = "running".into();
    write_json_atomic(&man_path, &manifest)?;
    let prior_wall = manifest.wall_time_s;

    let plain = (opts.progress && !std::io::stderr().is_terminal()).then(|| {
        std::rc::Rc::new(plain_progress::PlainProgress::new(
            "search",
            config.budget,
            records.len(),
            crate::search::best_of(&records).and_then(|r| r.score),
        ))
    });
    let mut logs = Logs {
        archs: JsonlAppender::open(&dir.join("archs.jsonl"))?,
        timings: JsonlAppender::open(&dir.join("timings.jsonl"))?,
        plain: plain.clone(),
    };
    let mut rounds_log = JsonlAppender::open(&dir.join("rounds.jsonl"))?;
    let progress = progress_bar(opts.progress, config.budget);
    let mut delayed;
    // Out-of-process tasks sleep themselves (`executor::task::run_task`).
    let inline = opts.executor == ExecutorConfig::Inline;
    let inner: &mut dyn Evaluator = if config.eval_delay_ms > 0 && inline {
        delayed = Delayed {
            inner: evaluator,
            delay: Duration::from_millis(config.eval_delay_ms),
        };
        &mut delayed
    } else {
        evaluator
    };
    let mut replay = Replay {
        inner,
        cache,
        hits: 0,
    };
    let result = (|| -> Result<(Vec<Record>, usize)> {
        let mut ctx = Ctx::new(
            &*space,
            rng,
            config.budget,
            records,
            &mut replay,
            &mut logs,
            progress.clone(),
        );
        let mut round_logs = rounds::RoundLogs {
            rounds: &mut rounds_log,
            ckpt_dir: &dir.join("checkpoint"),
            plain: plain.as_deref(),
            progress: &progress,
        };
        let round = rounds::run_rounds(&mut ctx, &mut *algo, next_round, &mut round_logs)?;
        Ok((ctx.records, round))
    })();
    progress.finish_and_clear();
    manifest.replayed_evaluations += replay.hits;
    manifest.end_time = Some(now_iso());
    manifest.wall_time_s = prior_wall + started.elapsed().as_secs_f64();
    let (records, rounds) = match result {
        Ok(x) => x,
        Err(e) => {
            manifest.status = format!("failed: {e}");
            write_json_atomic(&man_path, &manifest)?;
            return Err(e);
        }
    };
    manifest.status = "finished".into();
    write_json_atomic(&man_path, &manifest)?;
    report::write_outputs(dir, config, &records)?;
    Ok(RunOutcome {
        best: crate::search::best_of(&records).cloned(),
        records,
        rounds,
        replayed: replay.hits,
        repairs: notes,
    })
}

/// The evaluations' progress bar: drawn when `progress` and stderr is a terminal, else
/// hidden.
fn progress_bar(progress: bool, budget: usize) -> ProgressBar {
    if progress && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(budget as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} evaluations  {msg}",
            )
            .expect("valid template"),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    } else {
        ProgressBar::hidden()
    }
}

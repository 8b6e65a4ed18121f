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

pub mod atomic;
pub mod plain_progress;
pub mod preset_file;
pub mod repair;
pub mod report;
pub mod svg;
pub mod train_curve;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use models::space::{SpaceKind, space};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result, io_err};
use crate::evaluator::{Delayed, Evaluator, EvaluatorConfig, Replay};
use crate::executor::{ExecutorConfig, LocalExecutor, SlurmExecutor};
use crate::search::surrogate::{Surrogate, build_surrogate};
use crate::search::{AlgoConfig, Ctx, Record, RecordSink};
use atomic::{JsonlAppender, read_lines, write_atomic, write_json_atomic};

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

/// `manifest.json`: where, when and how a run ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The run's seed.
    pub seed: u64,
    /// This crate's version.
    pub crate_version: String,
    /// `git rev-parse HEAD` of the working directory, when available.
    pub git_commit: Option<String>,
    /// The host's name, when available.
    pub hostname: Option<String>,
    /// Logical CPUs available.
    pub cpu_count: usize,
    /// When the run first started (UTC, ISO 8601).
    pub start_time: String,
    /// When it last ended (UTC, ISO 8601).
    pub end_time: Option<String>,
    /// Wall time summed over all invocations, seconds.
    pub wall_time_s: f64,
    /// `running`, `finished` or `failed: ...`.
    pub status: String,
    /// How many times the run was started (1 + resumptions).
    pub invocations: usize,
    /// Evaluations answered from the log on resumption, over all resumptions.
    pub replayed_evaluations: usize,
}

impl Manifest {
    /// The manifest of a run starting now with `seed` (status `running`, one invocation).
    pub fn starting(seed: u64) -> Manifest {
        Manifest {
            seed,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git_commit(),
            hostname: hostname(),
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
            start_time: now_iso(),
            end_time: None,
            wall_time_s: 0.0,
            status: "running".into(),
            invocations: 1,
            replayed_evaluations: 0,
        }
    }
}

/// Current UTC time as ISO 8601 (`2026-01-31T12:00:00Z`).
pub fn now_iso() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `git rev-parse HEAD` in the working directory, else in the crate's source tree.
fn git_commit() -> Option<String> {
    let rev = |dir: Option<&str>| {
        let mut c = std::process::Command::new("git");
        if let Some(d) = dir {
            c.args(["-C", d]);
        }
        let out = c
            .args(["rev-parse", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    rev(None).or_else(|| rev(Some(env!("CARGO_MANIFEST_DIR"))))
}

pub(crate) fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            let out = std::process::Command::new("hostname").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
        })
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

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    round: usize,
    n_records: usize,
    rng: Pcg64Mcg,
    algo: Value,
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
    let cfg_path = dir.join("config.json");
    let man_path = dir.join("manifest.json");
    let ckpt_dir = dir.join("checkpoint");
    let mut manifest;
    let mut records = Vec::new();
    let mut cache = HashMap::new();
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let mut next_round = 0;
    let mut notes = Vec::new();
    if opts.resume {
        let stored = read_config(dir)?;
        if &stored != config {
            return Err(Error::Config(format!(
                "{} does not match the settings given for --resume",
                cfg_path.display()
            )));
        }
        manifest = read_json::<Manifest>(&man_path)?;
        manifest.invocations += 1;
        for name in ["archs.jsonl", "rounds.jsonl", "timings.jsonl"] {
            if let Some(note) = repair::repair_torn_tail(&dir.join(name))? {
                eprintln!("warning: {note}");
                notes.push(note);
            }
        }
        let (logged, raw) = read_records(dir)?;
        let mut keep = 0;
        if let Some(st) =
            repair::restore_newest_usable(&ckpt_dir, &mut *algo, logged.len(), &mut notes)?
        {
            rng = st.rng;
            keep = st.n_records;
            next_round = st.round + 1;
        }
        records = logged[..keep].to_vec();
        for r in &logged[keep..] {
            cache.insert(r.arch.clone(), r.outcome());
        }
        // Cut the logs back to the checkpoint; replayed evaluations are appended again.
        let mut kept = raw[..keep].join("\n");
        if keep > 0 {
            kept.push('\n');
        }
        write_atomic(&dir.join("archs.jsonl"), kept.as_bytes())?;
        let keep_round = |l: &String| {
            serde_json::from_str::<Value>(l).ok().is_some_and(|v| {
                match (v["round"].as_u64(), v["index"].as_u64()) {
                    (Some(r), None) => (r as usize) < next_round,
                    (None, Some(i)) => (i as usize) < keep,
                    _ => false,
                }
            })
        };
        for name in ["rounds.jsonl", "timings.jsonl"] {
            let p = dir.join(name);
            let lines: Vec<String> = read_lines(&p)?.into_iter().filter(keep_round).collect();
            let mut text = lines.join("\n");
            if !lines.is_empty() {
                text.push('\n');
            }
            write_atomic(&p, text.as_bytes())?;
        }
    } else {
        if cfg_path.exists() || dir.join("archs.jsonl").exists() {
            return Err(Error::Config(format!(
                "{} already holds a run: pass --resume to continue it, or choose another --out",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        write_json_atomic(&cfg_path, config)?;
        manifest = Manifest {
            seed: config.seed,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git_commit(),
            hostname: hostname(),
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
            start_time: now_iso(),
            end_time: None,
            wall_time_s: 0.0,
            status: "running".into(),
            invocations: 1,
            replayed_evaluations: 0,
        };
    }
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
    let progress = if opts.progress && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(config.budget as u64);
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
    };
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
        let mut round = next_round;
        while ctx.remaining() > 0 {
            let t = Instant::now();
            let before = ctx.records.len();
            let diag = algo.round(&mut ctx, round)?;
            let mut line = Map::new();
            line.insert("round".into(), json!(round));
            line.insert("evaluations".into(), json!(ctx.records.len()));
            line.insert(
                "failed".into(),
                json!(ctx.records.iter().filter(|r| r.score.is_none()).count()),
            );
            line.insert("best".into(), json!(ctx.best().and_then(|r| r.score)));
            line.extend(diag);
            rounds_log.append(&line)?;
            ctx.log_timing(&json!({"round": round, "wall_s": t.elapsed().as_secs_f64()}))?;
            write_checkpoint(&ckpt_dir, round, &ctx, &*algo)?;
            if let Some(p) = &plain {
                eprintln!("{}", p.round(round));
            }
            if let Some(b) = ctx.best().and_then(|r| r.score) {
                progress.set_message(format!("round {round} done, best {b:.4}"));
            }
            round += 1;
            if ctx.records.len() == before {
                break; // nothing new could be found: the space is exhausted
            }
        }
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

/// Writes `checkpoint/round-R/` via a temporary directory and a rename, then points
/// `checkpoint/latest` at it; keeps the two newest checkpoints.
fn write_checkpoint(
    ckpt_dir: &Path,
    round: usize,
    ctx: &Ctx<'_>,
    algo: &dyn crate::search::Algorithm,
) -> Result<()> {
    std::fs::create_dir_all(ckpt_dir).map_err(io_err("cannot create", ckpt_dir))?;
    let name = format!("round-{round}");
    let tmp = ckpt_dir.join(format!(".{name}.tmp"));
    let fin = ckpt_dir.join(&name);
    for d in [&tmp, &fin] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(io_err("cannot remove", d))?;
        }
    }
    let sdir = tmp.join("surrogate");
    std::fs::create_dir_all(&sdir).map_err(io_err("cannot create", &sdir))?;
    algo.save_extra(&sdir)?;
    let state = CheckpointState {
        round,
        n_records: ctx.records.len(),
        rng: ctx.rng.clone(),
        algo: algo.state(),
    };
    write_json_atomic(&tmp.join("state.json"), &state)?;
    let mut pool = String::new();
    for r in &ctx.records {
        pool.push_str(&serde_json::to_string(r).expect("serialisable"));
        pool.push('\n');
    }
    write_atomic(&tmp.join("pool.jsonl"), pool.as_bytes())?;
    atomic_file::publish_dir(&tmp, &fin).map_err(io_err("cannot rename into", &fin))?;
    write_atomic(&ckpt_dir.join("latest"), format!("{name}\n").as_bytes())?;
    if round >= 2 {
        let old = ckpt_dir.join(format!("round-{}", round - 2));
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

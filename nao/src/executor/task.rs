//! The run-directory protocol between an executor and its tasks, and the task itself
//! (`nao eval --run DIR --index I`).
//!
//! * `DIR/pending.json` ([`Pending`]): the batch being evaluated, one entry per record
//!   index, written by the executor before it starts any task.
//! * `DIR/evals/I.json` ([`EvalFile`]): the outcome for record index `I`, written
//!   atomically by the task; `DIR/evals/I.log` its output.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use models::space::Arch;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::evaluator::EvalResult;
use crate::run::atomic::write_json_atomic;
use crate::run::{read_config, read_json};

/// One architecture of the pending batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEntry {
    /// The record index it will get.
    pub index: usize,
    /// Its tokens.
    pub arch: Arch,
}

/// `DIR/pending.json`: the batch being evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The architectures, in batch order.
    pub batch: Vec<PendingEntry>,
}

/// `DIR/evals/I.json`: what a task measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalFile {
    /// The record index.
    pub index: usize,
    /// The architecture evaluated (checked against the batch before the file is used).
    pub arch: Arch,
    /// The outcome (a failed evaluation is an outcome too).
    pub outcome: EvalResult,
    /// Seconds the evaluation took.
    pub wall_s: f64,
    /// Where it ran.
    #[serde(default)]
    pub host: Option<String>,
}

/// `DIR/pending.json`.
pub fn pending_path(run: &Path) -> PathBuf {
    run.join("pending.json")
}

/// `DIR/evals/I.json`.
pub fn eval_path(run: &Path, index: usize) -> PathBuf {
    run.join("evals").join(format!("{index}.json"))
}

/// `DIR/evals/I.log`: the task's standard output and error.
pub fn log_path(run: &Path, index: usize) -> PathBuf {
    run.join("evals").join(format!("{index}.log"))
}

/// Writes `DIR/pending.json` for `batch` and creates `DIR/evals/`.
pub fn write_pending(run: &Path, batch: &[(usize, Arch)]) -> Result<()> {
    let evals = run.join("evals");
    std::fs::create_dir_all(&evals).map_err(crate::error::io_err("cannot create", &evals))?;
    let pending = Pending {
        batch: batch
            .iter()
            .map(|(index, arch)| PendingEntry {
                index: *index,
                arch: arch.clone(),
            })
            .collect(),
    };
    write_json_atomic(&pending_path(run), &pending)
}

/// The finished result for record `index` if `DIR/evals/I.json` holds one for `arch`
/// (a file for another architecture, from an abandoned batch, is ignored).
pub fn finished(run: &Path, index: usize, arch: &Arch) -> Option<(EvalResult, f64)> {
    let bytes = std::fs::read(eval_path(run, index)).ok()?;
    let f: EvalFile = serde_json::from_slice(&bytes).ok()?;
    (f.index == index && &f.arch == arch).then_some((f.outcome, f.wall_s))
}

/// The last `lines` lines of the task's log, for failure messages.
pub fn log_tail(run: &Path, index: usize, lines: usize) -> String {
    let text = std::fs::read_to_string(log_path(run, index)).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// `nao eval --run DIR --index I`: evaluates architecture `index` of the pending batch with
/// the run's evaluator (its `config.json`; the hidden per-evaluation delay included) and
/// writes `DIR/evals/I.json` atomically. The evaluation's own failure is written as an
/// outcome; an `Err` means the task could not run (no such index, unreadable run).
/// Children train on `device` (the task's own `--device`).
pub fn run_task(run: &Path, index: usize, device: &autograd::Device) -> Result<EvalFile> {
    let config = read_config(run)?;
    let pending: Pending = read_json(&pending_path(run))?;
    let entry = pending
        .batch
        .iter()
        .find(|e| e.index == index)
        .ok_or_else(|| {
            Error::Config(format!(
                "record index {index} is not in the pending batch of {} (indices {:?}): was the batch finished already?",
                run.display(),
                pending.batch.iter().map(|e| e.index).collect::<Vec<_>>()
            ))
        })?;
    let mut evaluator = config.evaluator.build(config.space, device)?;
    let start = Instant::now();
    if config.eval_delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(config.eval_delay_ms));
    }
    let outcome = evaluator.evaluate(&entry.arch);
    let file = EvalFile {
        index,
        arch: entry.arch.clone(),
        outcome,
        wall_s: start.elapsed().as_secs_f64(),
        host: crate::run::hostname(),
    };
    write_json_atomic(&eval_path(run, index), &file)?;
    Ok(file)
}

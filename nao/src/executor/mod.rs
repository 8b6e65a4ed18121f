//! Executors: where a round's batch of evaluations runs.
//!
//! The search algorithms hand batches to [`crate::search::Ctx::query_batch`], which passes
//! them to [`Evaluator::evaluate_batch`](crate::evaluator::Evaluator::evaluate_batch).
//! The executor decides where the evaluations run; the search loop does not change, and
//! every executor records the same results in the same order, so a run's `archs.jsonl` is
//! the same whichever ran it.
//!
//! * `inline` (default): in the driver's process, one after another (the evaluator
//!   itself, no wrapper).
//! * `local` ([`local::LocalExecutor`]): up to K child processes of `nao` on this machine,
//!   each `nao eval --run DIR --index I` on one architecture, with the machine's threads
//!   split among them.
//! * `slurm` ([`slurm::SlurmExecutor`]): each batch is one `sbatch --array` job whose
//!   tasks run `nao eval`; the run directory must be on a file system the nodes share.
//!
//! Both out-of-process executors talk to their tasks through the run directory
//! ([`task`]): `pending.json` holds the batch (record index and architecture of each), a
//! task writes `evals/I.json` atomically, and a finished file is reused rather than
//! recomputed (after a crash of the driver, or by a task that finished while it was down).
//! A task that dies without a result is retried once, then recorded as a failed
//! evaluation with the reason; the search goes on.

pub mod local;
pub mod slurm;
pub mod task;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use local::LocalExecutor;
pub use slurm::{SlurmExecutor, SlurmOptions};

/// Which executor a run uses (`--executor`); not part of `config.json`: a run may be
/// resumed with another executor and gives the same records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecutorConfig {
    /// In the driver's process, one evaluation after another.
    #[default]
    Inline,
    /// Child processes on this machine.
    Local {
        /// At most this many evaluations at once.
        workers: usize,
        /// How to start `nao eval`.
        task: TaskCommand,
    },
    /// `sbatch --array` jobs on a Slurm cluster.
    Slurm {
        /// Partition, time limit, gres, extra options, parallelism.
        options: SlurmOptions,
        /// How to start `nao eval`.
        task: TaskCommand,
    },
}

/// The command a task runs: `program [global_args] eval --run DIR --index I`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCommand {
    /// The `nao` binary (absolute: tasks may start elsewhere).
    pub program: PathBuf,
    /// Global options placed before `eval` (e.g. `--device cuda`, `--data-dir DIR`).
    pub global_args: Vec<String>,
}

impl TaskCommand {
    /// This process's own binary with `global_args`.
    pub fn this_binary(global_args: Vec<String>) -> std::io::Result<TaskCommand> {
        Ok(TaskCommand {
            program: std::env::current_exe()?,
            global_args,
        })
    }

    /// The arguments after the program for record index `index` of the batch in `run`.
    pub fn args(&self, run: &std::path::Path, index: usize) -> Vec<String> {
        let mut a = self.global_args.clone();
        a.extend([
            "eval".into(),
            "--run".into(),
            run.display().to_string(),
            "--index".into(),
            index.to_string(),
        ]);
        a
    }
}

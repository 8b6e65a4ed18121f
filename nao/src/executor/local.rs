//! [`LocalExecutor`]: a batch's evaluations as child processes of `nao eval` on this
//! machine, at most `workers` at once, the machine's threads split among them.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use models::space::Arch;
use serde_json::Value;

use super::TaskCommand;
use super::task::{finished, log_path, log_tail, write_pending};
use crate::error::{Result, io_err};
use crate::evaluator::{EvalFailure, EvalResult, Evaluator};

/// How often running tasks are polled.
const POLL: Duration = Duration::from_millis(10);

/// Runs each evaluation of a batch as `nao eval --run DIR --index I` (see the module
/// docs of [`crate::executor`]); answers `describe`, `best_possible` and
/// `reference_sample` from the run's own evaluator.
pub struct LocalExecutor {
    run: PathBuf,
    workers: usize,
    task: TaskCommand,
    threads: usize,
    inner: Box<dyn Evaluator>,
}

impl LocalExecutor {
    /// `workers` processes at once for the run in `run`; `inner` is the run's evaluator
    /// (used only for what is known without evaluating).
    pub fn new(
        run: &Path,
        workers: usize,
        task: TaskCommand,
        inner: Box<dyn Evaluator>,
    ) -> LocalExecutor {
        let workers = workers.max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalExecutor {
            run: run.to_path_buf(),
            workers,
            task,
            threads: (cores / workers).max(1),
            inner,
        }
    }

    fn spawn(&self, index: usize) -> Result<Child> {
        let log_file = log_path(&self.run, index);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .map_err(io_err("cannot open", &log_file))?;
        let err = log.try_clone().map_err(io_err("cannot open", &log_file))?;
        Command::new(&self.task.program)
            .args(self.task.args(&self.run, index))
            .env("RAYON_NUM_THREADS", self.threads.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io_err("cannot start", &self.task.program))
    }
}

impl Evaluator for LocalExecutor {
    /// A single architecture outside a batch: in this process.
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        self.inner.evaluate(arch)
    }

    fn describe(&self) -> Value {
        self.inner.describe()
    }

    fn best_possible(&self) -> Option<f64> {
        self.inner.best_possible()
    }

    fn reference_sample(&self, n: usize) -> Option<Vec<(Arch, f64)>> {
        self.inner.reference_sample(n)
    }

    fn evaluate_batch(
        &mut self,
        batch: &[(usize, Arch)],
        done: &mut dyn FnMut(usize, EvalResult, f64) -> Result<()>,
    ) -> Result<()> {
        write_pending(&self.run, batch)?;
        let mut results: Vec<Option<(EvalResult, f64)>> = batch
            .iter()
            .map(|(i, a)| finished(&self.run, *i, a))
            .collect();
        let mut queue: VecDeque<usize> =
            (0..batch.len()).filter(|&p| results[p].is_none()).collect();
        let mut attempts = vec![0usize; batch.len()];
        let mut running: Vec<(usize, Child)> = Vec::new();
        let mut reported = 0;
        let outcome = (|| -> Result<()> {
            loop {
                while running.len() < self.workers
                    && let Some(p) = queue.pop_front()
                {
                    attempts[p] += 1;
                    running.push((p, self.spawn(batch[p].0)?));
                }
                let mut k = 0;
                while k < running.len() {
                    let (p, child) = &mut running[k];
                    let Some(status) = child
                        .try_wait()
                        .map_err(io_err("cannot wait for", &self.task.program))?
                    else {
                        k += 1;
                        continue;
                    };
                    let (p, (index, arch)) = (*p, &batch[*p]);
                    running.swap_remove(k);
                    if let Some(r) = finished(&self.run, *index, arch) {
                        results[p] = Some(r);
                    } else if attempts[p] < 2 {
                        eprintln!(
                            "warning: evaluation {index} ended without a result ({status}); retrying once (log: {})",
                            log_path(&self.run, *index).display()
                        );
                        queue.push_back(p);
                    } else {
                        let failure = EvalFailure::error(format!(
                            "`nao eval` ended without a result twice ({status}); its log {}: {}",
                            log_path(&self.run, *index).display(),
                            log_tail(&self.run, *index, 5)
                        ));
                        results[p] = Some((Err(failure), 0.0));
                    }
                }
                while reported < batch.len()
                    && let Some((r, wall)) = results[reported].take()
                {
                    done(reported, r, wall)?;
                    reported += 1;
                }
                if reported == batch.len() {
                    return Ok(());
                }
                std::thread::sleep(POLL);
            }
        })();
        // On an error (the driver cannot go on) stop what still runs.
        for (_, mut child) in running {
            let _ = child.kill();
            let _ = child.wait();
        }
        outcome
    }
}

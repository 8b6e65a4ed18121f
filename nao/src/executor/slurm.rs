//! [`SlurmExecutor`]: each batch is one `sbatch --array` job; task `k` of the array runs
//! `nao eval --run DIR --index I` for the batch's `k`-th record index `I`.
//!
//! * Job ids go to `DIR/slurm/jobs.jsonl` (one line per submission: job id, record
//!   indices, architectures). A driver resumed after it was killed re-attaches: a task
//!   of a recorded job that is still pending or running for the same architecture is
//!   waited for, not submitted again.
//! * A task that leaves Slurm's queue without writing its result (it failed, was
//!   cancelled, hit its time limit, its node died) is submitted once more; the second
//!   time it is recorded as a failed evaluation with the reason Slurm gives
//!   (`scontrol show job`: state, reason, exit code) and the end of its log.
//! * SIGINT / SIGTERM to the driver while it waits cancels its jobs (`scancel`) and stops
//!   the search with an error (the run resumes with `--resume`).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use models::space::Arch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TaskCommand;
use super::task::{finished, log_path, log_tail, write_pending};
use crate::error::{Error, Result, io_err};
use crate::evaluator::{EvalFailure, EvalResult, Evaluator};
use crate::run::atomic::read_lines;

/// How often the queue and the result files are polled.
const POLL: Duration = Duration::from_millis(500);

/// Slurm settings of `--executor slurm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlurmOptions {
    /// `--partition` (none: the cluster's default).
    pub partition: Option<String>,
    /// `--time` of each task, e.g. `0:30:00` (none: the partition's default).
    pub time: Option<String>,
    /// `--gres`, e.g. `gpu:1` (then tasks run with `--device cuda`).
    pub gres: Option<String>,
    /// Further `sbatch` options, split at whitespace (e.g. `--account=abc --qos=short`).
    pub extra: Vec<String>,
    /// At most this many tasks of an array at once (`--array=0-N%M`).
    pub max_parallel: Option<usize>,
}

/// One line of `DIR/slurm/jobs.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobLine {
    job: String,
    indices: Vec<usize>,
    archs: Vec<Arch>,
}

/// The Slurm executor (see the module docs).
pub struct SlurmExecutor {
    run: PathBuf,
    options: SlurmOptions,
    task: TaskCommand,
    inner: Box<dyn Evaluator>,
}

/// A task of an array job: `(job id, array index)`.
type TaskId = (String, usize);

fn slurm_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!(
        "{what}: {e} (is Slurm installed and this machine a submit host? `sinfo` should list the cluster)"
    ))
}

/// Runs a Slurm command, returning its standard output (an error names the command and
/// its standard error).
fn slurm(cmd: &str, args: &[String]) -> Result<String> {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| slurm_err(&format!("cannot run `{cmd}`"), e))?;
    if !o.status.success() {
        return Err(slurm_err(
            &format!("`{cmd} {}` failed ({})", args.join(" "), o.status),
            String::from_utf8_lossy(&o.stderr).trim(),
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Array indices of one `squeue` job field: `123_4` -> [4]; `123_[0-3%2]` or
/// `123_[1,4-6]` -> every index listed.
fn array_tasks(field: &str) -> Option<(String, Vec<usize>)> {
    let (job, rest) = field.split_once('_')?;
    let rest = rest.trim_start_matches('[').trim_end_matches(']');
    let rest = rest.split('%').next()?;
    let mut out = Vec::new();
    for part in rest.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some((job.to_string(), out))
}

/// The tasks of `jobs` still pending or running (`squeue`). Jobs Slurm no longer knows
/// have none.
fn active(jobs: &HashSet<String>) -> Result<HashSet<TaskId>> {
    if jobs.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = jobs.iter().map(String::as_str).collect();
    let o = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i %T", "-j", &ids.join(",")])
        .output()
        .map_err(|e| slurm_err("cannot run `squeue`", e))?;
    // squeue fails when every id is unknown (all finished and purged): nothing is active.
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = HashSet::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(id), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        if matches!(state, "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT") {
            continue;
        }
        if let Some((job, tasks)) = array_tasks(id) {
            out.extend(tasks.into_iter().map(|t| (job.clone(), t)));
        }
    }
    Ok(out)
}

/// What Slurm says about a finished task: `JobState`, `Reason` and `ExitCode` of
/// `scontrol show job -o JOB_TASK`; once the controller has forgotten the job
/// (`MinJobAge`, e.g. after the driver was down), the accounting's (`sacct`) where the
/// cluster keeps one; else that Slurm no longer knows.
fn why(task: &TaskId) -> String {
    let id = format!("{}_{}", task.0, task.1);
    let Ok(text) = slurm(
        "scontrol",
        &["show".into(), "job".into(), "-o".into(), id.clone()],
    ) else {
        let accounting = slurm(
            "sacct",
            &["-n", "-P", "-X", "-o", "State,Reason,ExitCode", "-j", &id].map(String::from),
        );
        return match accounting.ok().and_then(|t| sacct_why(&t)) {
            Some((state, reason, exit)) => format!(
                "Slurm task {id} ended {state} (Reason={reason}, ExitCode={exit}; from sacct)"
            ),
            None => format!("Slurm task {id} ended; Slurm no longer reports why"),
        };
    };
    let field = |k: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or("?")
            .to_string()
    };
    format!(
        "Slurm task {id} ended {} (Reason={}, ExitCode={})",
        field("JobState"),
        field("Reason"),
        field("ExitCode")
    )
}

/// State, reason and exit code from `sacct -n -P -X -o State,Reason,ExitCode`'s first
/// line (`TIMEOUT|TimeLimit|0:0`; a state such as `CANCELLED by 0` kept whole); `None`
/// when it lists nothing (no accounting, or not this job).
fn sacct_why(text: &str) -> Option<(String, String, String)> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut f = line.split('|').map(str::trim);
    let (state, reason, exit) = (f.next()?, f.next()?, f.next()?);
    (!state.is_empty()).then(|| (state.into(), reason.into(), exit.into()))
}

impl SlurmExecutor {
    /// For the run in `run` (on a file system the nodes share); `inner` is the run's
    /// evaluator (used only for what is known without evaluating).
    pub fn new(
        run: &Path,
        options: SlurmOptions,
        mut task: TaskCommand,
        inner: Box<dyn Evaluator>,
    ) -> SlurmExecutor {
        if options.gres.as_deref().is_some_and(|g| g.contains("gpu"))
            && !task.global_args.iter().any(|a| a == "--device")
        {
            task.global_args.extend(["--device".into(), "cuda".into()]);
        }
        SlurmExecutor {
            run: run.to_path_buf(),
            options,
            task,
            inner,
        }
    }

    fn jobs_path(&self) -> PathBuf {
        self.run.join("slurm").join("jobs.jsonl")
    }

    /// Submits one array job for `entries` (record index, architecture); returns its id.
    fn submit(&self, entries: &[(usize, Arch)]) -> Result<String> {
        let dir = self.run.join("slurm");
        std::fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
        let first = entries[0].0;
        let script = dir.join(format!("batch-{first}.sh"));
        let indices: Vec<String> = entries.iter().map(|(i, _)| i.to_string()).collect();
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let program = quote(&self.task.program.display().to_string());
        let global: Vec<String> = self.task.global_args.iter().map(|a| quote(a)).collect();
        let text = format!(
            "#!/bin/bash\n# nao: evaluations {} of {}\nINDICES=({})\nI=${{INDICES[$SLURM_ARRAY_TASK_ID]}}\nexec {program} {} eval --run {} --index \"$I\" >> {}/\"$I\".log 2>&1\n",
            indices.join(","),
            self.run.display(),
            indices.join(" "),
            global.join(" "),
            quote(&self.run.display().to_string()),
            quote(&self.run.join("evals").display().to_string()),
        );
        std::fs::write(&script, text).map_err(io_err("cannot write", &script))?;
        let mut args = vec![
            "--parsable".to_string(),
            "--job-name=nao-eval".into(),
            "--no-requeue".into(),
            format!("--chdir={}", self.run.display()),
            format!("--output={}", dir.join("slurm-%A_%a.out").display()),
        ];
        let mut array = format!("--array=0-{}", entries.len() - 1);
        if let Some(m) = self.options.max_parallel {
            array += &format!("%{}", m.max(1));
        }
        args.push(array);
        if let Some(p) = &self.options.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(t) = &self.options.time {
            args.push(format!("--time={t}"));
        }
        if let Some(g) = &self.options.gres {
            args.push(format!("--gres={g}"));
        }
        args.extend(self.options.extra.iter().cloned());
        args.push(script.display().to_string());
        let out = slurm("sbatch", &args)?;
        let job = out
            .trim()
            .split(';')
            .next()
            .filter(|j| !j.is_empty() && j.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| slurm_err("sbatch printed no job id", out.trim()))?
            .to_string();
        let line = JobLine {
            job: job.clone(),
            indices: entries.iter().map(|(i, _)| *i).collect(),
            archs: entries.iter().map(|(_, a)| a.clone()).collect(),
        };
        let path = self.jobs_path();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("cannot open", &path))?;
        writeln!(f, "{}", serde_json::to_string(&line).expect("serialisable"))
            .and_then(|_| f.sync_data())
            .map_err(io_err("cannot write", &path))?;
        eprintln!(
            "submitted Slurm job {job}: evaluations {}",
            line.indices
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(job)
    }

    /// Tasks of earlier submissions (this driver's or a killed one's) for these record
    /// indices and architectures, newest first.
    fn recorded(&self, batch: &[(usize, Arch)]) -> HashMap<usize, Vec<TaskId>> {
        let wanted: HashMap<usize, &Arch> = batch.iter().map(|(i, a)| (*i, a)).collect();
        let mut out: HashMap<usize, Vec<TaskId>> = HashMap::new();
        for l in read_lines(&self.jobs_path())
            .unwrap_or_default()
            .iter()
            .rev()
        {
            let Ok(j) = serde_json::from_str::<JobLine>(l) else {
                continue;
            };
            for (k, (i, a)) in j.indices.iter().zip(&j.archs).enumerate() {
                if wanted.get(i) == Some(&a) {
                    out.entry(*i).or_default().push((j.job.clone(), k));
                }
            }
        }
        out
    }
}

impl Evaluator for SlurmExecutor {
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
        if batch.is_empty() {
            return Ok(());
        }
        write_pending(&self.run, batch)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handlers = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
            .into_iter()
            .filter_map(|s| signal_hook::flag::register(s, Arc::clone(&stop)).ok())
            .collect::<Vec<_>>();
        let mut jobs: HashSet<String> = HashSet::new();
        let outcome = self.wait_for(batch, done, &stop, &mut jobs);
        for h in handlers {
            signal_hook::low_level::unregister(h);
        }
        if outcome.is_err() && !jobs.is_empty() {
            let ids: Vec<String> = jobs.into_iter().collect();
            eprintln!("cancelling Slurm jobs {}", ids.join(","));
            let _ = slurm("scancel", &ids);
        }
        outcome
    }
}

impl SlurmExecutor {
    fn wait_for(
        &self,
        batch: &[(usize, Arch)],
        done: &mut dyn FnMut(usize, EvalResult, f64) -> Result<()>,
        stop: &AtomicBool,
        jobs: &mut HashSet<String>,
    ) -> Result<()> {
        let n = batch.len();
        let mut results: Vec<Option<(EvalResult, f64)>> = batch
            .iter()
            .map(|(i, a)| finished(&self.run, *i, a))
            .collect();
        // Where each outstanding evaluation runs, and how many submissions it had.
        let mut task_of: Vec<Option<TaskId>> = vec![None; n];
        let mut attempts = vec![0usize; n];
        let recorded = self.recorded(batch);
        let mut known: HashSet<String> = recorded.values().flatten().map(|t| t.0.clone()).collect();
        let live = active(&known)?;
        for (p, (i, _)) in batch.iter().enumerate() {
            if results[p].is_some() {
                continue;
            }
            if let Some(t) = recorded
                .get(i)
                .and_then(|ts| ts.iter().find(|t| live.contains(t)))
            {
                eprintln!("re-attached to Slurm task {}_{} (evaluation {i})", t.0, t.1);
                task_of[p] = Some(t.clone());
                attempts[p] = 1;
                jobs.insert(t.0.clone());
            }
        }
        let mut reported = 0;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(Error::Config(
                    "interrupted: the Slurm jobs are cancelled; continue with --resume".into(),
                ));
            }
            // Submit everything that has neither a result nor a live task.
            // (Positions before `reported` are done: their results were handed on.)
            let to_submit: Vec<usize> = (reported..n)
                .filter(|&p| results[p].is_none() && task_of[p].is_none())
                .collect();
            if !to_submit.is_empty() {
                let entries: Vec<(usize, Arch)> =
                    to_submit.iter().map(|&p| batch[p].clone()).collect();
                let job = self.submit(&entries)?;
                jobs.insert(job.clone());
                known.insert(job.clone());
                for (k, &p) in to_submit.iter().enumerate() {
                    task_of[p] = Some((job.clone(), k));
                    attempts[p] += 1;
                }
            }
            std::thread::sleep(POLL);
            let live = active(jobs)?;
            for p in reported..n {
                let Some(t) = task_of[p].clone() else {
                    continue;
                };
                let (index, arch) = &batch[p];
                if let Some(r) = finished(&self.run, *index, arch) {
                    results[p] = Some(r);
                    task_of[p] = None;
                } else if !live.contains(&t) {
                    // Gone from the queue without a result; look once more (the file may
                    // have landed between the two looks).
                    if let Some(r) = finished(&self.run, *index, arch) {
                        results[p] = Some(r);
                    } else if attempts[p] < 2 {
                        eprintln!(
                            "warning: evaluation {index}: {}, without a result; submitting it once more",
                            why(&t)
                        );
                    } else {
                        let failure = EvalFailure::error(format!(
                            "{}, without a result, twice; log {}: {}",
                            why(&t),
                            log_path(&self.run, *index).display(),
                            log_tail(&self.run, *index, 5)
                        ));
                        results[p] = Some((Err(failure), 0.0));
                    }
                    task_of[p] = None;
                }
            }
            while reported < n
                && let Some((r, wall)) = results[reported].take()
            {
                done(reported, r, wall)?;
                reported += 1;
            }
            if reported == n {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sacct_lines_give_state_reason_and_exit_code() {
        assert_eq!(
            sacct_why("TIMEOUT|TimeLimit|0:0\n"),
            Some(("TIMEOUT".into(), "TimeLimit".into(), "0:0".into()))
        );
        assert_eq!(
            sacct_why("\nCANCELLED by 0|None|0:15\nCOMPLETED|None|0:0\n"),
            Some(("CANCELLED by 0".into(), "None".into(), "0:15".into()))
        );
        // Nothing listed (no accounting kept, or another cluster's job): no reason.
        assert_eq!(sacct_why(""), None);
        assert_eq!(sacct_why("garbage"), None);
    }

    #[test]
    fn squeue_job_fields_expand_to_array_tasks() {
        assert_eq!(array_tasks("12_3"), Some(("12".into(), vec![3])));
        assert_eq!(
            array_tasks("12_[0-3%2]"),
            Some(("12".into(), vec![0, 1, 2, 3]))
        );
        assert_eq!(
            array_tasks("7_[1,4-6]"),
            Some(("7".into(), vec![1, 4, 5, 6]))
        );
        assert_eq!(array_tasks("12"), None);
    }
}

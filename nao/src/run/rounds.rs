//! The rounds of a search ([`run_rounds`]): each runs the algorithm's round, appends its
//! line to `rounds.jsonl` and its wall time to `timings.jsonl`, and writes a checkpoint.

use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use serde_json::{Map, json};

use super::atomic::JsonlAppender;
use super::checkpoint::write_checkpoint;
use super::plain_progress::PlainProgress;
use crate::error::Result;
use crate::search::{Algorithm, Ctx};

/// Where a round reports: `rounds.jsonl`, the checkpoints, the progress line or bar.
pub(super) struct RoundLogs<'a> {
    /// `rounds.jsonl`.
    pub(super) rounds: &'a mut JsonlAppender,
    /// `checkpoint/`.
    pub(super) ckpt_dir: &'a Path,
    /// Plain progress lines (stderr not a terminal).
    pub(super) plain: Option<&'a PlainProgress>,
    /// The progress bar (hidden unless stderr is a terminal).
    pub(super) progress: &'a ProgressBar,
}

/// Runs rounds from `first` on until the budget is spent or a round finds nothing new (the
/// space is exhausted); returns the number of the round after the last one run.
pub(super) fn run_rounds(
    ctx: &mut Ctx<'_>,
    algo: &mut dyn Algorithm,
    first: usize,
    logs: &mut RoundLogs<'_>,
) -> Result<usize> {
    let mut round = first;
    while ctx.remaining() > 0 {
        let found_new = one_round(ctx, algo, round, logs)?;
        round += 1;
        if !found_new {
            break; // nothing new could be found: the space is exhausted
        }
    }
    Ok(round)
}

/// Round `round`: the algorithm's round, its line and timing, a checkpoint, progress.
/// Returns whether it added records.
fn one_round(
    ctx: &mut Ctx<'_>,
    algo: &mut dyn Algorithm,
    round: usize,
    logs: &mut RoundLogs<'_>,
) -> Result<bool> {
    let t = Instant::now();
    let before = ctx.records.len();
    let diag = algo.round(ctx, round)?;
    let mut line = Map::new();
    line.insert("round".into(), json!(round));
    line.insert("evaluations".into(), json!(ctx.records.len()));
    line.insert(
        "failed".into(),
        json!(ctx.records.iter().filter(|r| r.score.is_none()).count()),
    );
    line.insert("best".into(), json!(ctx.best().and_then(|r| r.score)));
    line.extend(diag);
    logs.rounds.append(&line)?;
    ctx.log_timing(&json!({"round": round, "wall_s": t.elapsed().as_secs_f64()}))?;
    write_checkpoint(logs.ckpt_dir, round, ctx, algo)?;
    if let Some(p) = logs.plain {
        eprintln!("{}", p.round(round));
    }
    if let Some(b) = ctx.best().and_then(|r| r.score) {
        logs.progress
            .set_message(format!("round {round} done, best {b:.4}"));
    }
    Ok(ctx.records.len() != before)
}

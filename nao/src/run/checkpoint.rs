//! `checkpoint/round-R/`: what a search keeps after every round so that `--resume` can
//! continue it ([`super::repair::restore_newest_usable`] reads it back).
//!
//! A checkpoint holds `state.json` ([`CheckpointState`]: the round, how many records it
//! covers, the run's generator and the algorithm's state), `pool.jsonl` (the records so
//! far) and `surrogate/` (the algorithm's extra files, e.g. the controller's weights).
//! `checkpoint/latest` names the newest; the two newest are kept.

use std::path::Path;

use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::atomic::{write_atomic, write_json_atomic};
use crate::error::{Result, io_err};
use crate::search::{Algorithm, Ctx};

/// `state.json` of a checkpoint.
#[derive(Serialize, Deserialize)]
pub(super) struct CheckpointState {
    /// The round the checkpoint was written after.
    pub(super) round: usize,
    /// The records it covers (the first ones of `archs.jsonl`).
    pub(super) n_records: usize,
    /// The run's generator after the round.
    pub(super) rng: Pcg64Mcg,
    /// The algorithm's state ([`Algorithm::state`]).
    pub(super) algo: Value,
}

/// Writes `checkpoint/round-R/` via a temporary directory and a rename, then points
/// `checkpoint/latest` at it; keeps the two newest checkpoints.
pub(super) fn write_checkpoint(
    ckpt_dir: &Path,
    round: usize,
    ctx: &Ctx<'_>,
    algo: &dyn Algorithm,
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

//! Opening a run directory for [`super::run_search_with`]: a new run's first files
//! ([`start`]), or an interrupted run's state read back and its logs cut to the newest
//! usable checkpoint ([`resume`]).

use std::collections::HashMap;
use std::path::Path;

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde_json::Value;

use super::atomic::{read_lines, write_atomic, write_json_atomic};
use super::{Manifest, SearchConfig, read_config, read_json, read_records, repair};
use crate::error::{Error, Result, io_err};
use crate::evaluator::EvalResult;
use crate::search::{Algorithm, Record};
use models::space::Arch;

/// Where a search starts from.
pub(super) struct Opened {
    /// The manifest (its invocation counted).
    pub(super) manifest: Manifest,
    /// The records up to the checkpoint (none for a new run).
    pub(super) records: Vec<Record>,
    /// Outcomes logged after the checkpoint, replayed instead of evaluated again.
    pub(super) cache: HashMap<Arch, EvalResult>,
    /// The run's generator.
    pub(super) rng: Pcg64Mcg,
    /// The first round to run.
    pub(super) next_round: usize,
    /// Repairs made on resumption ([`repair`]), each already printed as a warning.
    pub(super) notes: Vec<String>,
}

/// A new run in `dir`: refuses a directory that already holds one, else writes
/// `config.json` and starts the manifest.
pub(super) fn start(dir: &Path, config: &SearchConfig) -> Result<Opened> {
    if dir.join("config.json").exists() || dir.join("archs.jsonl").exists() {
        return Err(Error::Config(format!(
            "{} already holds a run: pass --resume to continue it, or choose another --out",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
    write_json_atomic(&dir.join("config.json"), config)?;
    Ok(Opened {
        manifest: Manifest::starting(config.seed),
        records: Vec::new(),
        cache: HashMap::new(),
        rng: Pcg64Mcg::seed_from_u64(config.seed),
        next_round: 0,
        notes: Vec::new(),
    })
}

/// Continues the run in `dir`, whose `config.json` must equal `config`: repairs torn log
/// tails, restores `algo` from the newest usable checkpoint, keeps the records up to it
/// and cuts `archs.jsonl`, `rounds.jsonl` and `timings.jsonl` back to it; the outcomes
/// logged after it become the replay cache.
pub(super) fn resume(
    dir: &Path,
    config: &SearchConfig,
    algo: &mut dyn Algorithm,
) -> Result<Opened> {
    let stored = read_config(dir)?;
    if &stored != config {
        return Err(Error::Config(format!(
            "{} does not match the settings given for --resume",
            dir.join("config.json").display()
        )));
    }
    let mut manifest = read_json::<Manifest>(&dir.join("manifest.json"))?;
    manifest.invocations += 1;
    let mut notes = Vec::new();
    for name in ["archs.jsonl", "rounds.jsonl", "timings.jsonl"] {
        if let Some(note) = repair::repair_torn_tail(&dir.join(name))? {
            eprintln!("warning: {note}");
            notes.push(note);
        }
    }
    let (logged, raw) = read_records(dir)?;
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let mut keep = 0;
    let mut next_round = 0;
    if let Some(st) =
        repair::restore_newest_usable(&dir.join("checkpoint"), algo, logged.len(), &mut notes)?
    {
        rng = st.rng;
        keep = st.n_records;
        next_round = st.round + 1;
    }
    let records = logged[..keep].to_vec();
    let mut cache = HashMap::new();
    for r in &logged[keep..] {
        cache.insert(r.arch.clone(), r.outcome());
    }
    cut_logs(dir, &raw, keep, next_round)?;
    Ok(Opened {
        manifest,
        records,
        cache,
        rng,
        next_round,
        notes,
    })
}

/// Cuts the logs back to the checkpoint (the first `keep` records, rounds before
/// `next_round`); replayed evaluations are appended again.
fn cut_logs(dir: &Path, raw: &[String], keep: usize, next_round: usize) -> Result<()> {
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
    Ok(())
}

//! Repairs of a damaged run directory on `--resume`, so that damage never costs more than
//! the last unfinished step:
//!
//! * a log (`archs.jsonl`, `rounds.jsonl`, `timings.jsonl`) whose last line was torn by a
//!   crash mid-write (no final newline, or not JSON) is cut back to its last whole line
//!   ([`repair_torn_tail`]); a torn evaluation is simply evaluated again;
//! * a newest checkpoint that cannot be read (truncated or corrupt `state.json`, surrogate
//!   files that do not load, more records than the log holds) is skipped for the previous
//!   one (`restore_newest_usable`); the evaluations since are replayed from the log.
//!
//! Each repair is reported with a line on stderr (`warning: ...`) and in the returned
//! notes.

use std::path::Path;

use super::atomic::write_atomic;
use super::checkpoint::CheckpointState;
use super::read_json;
use crate::error::{Error, Result, io_err};
use crate::search::Algorithm;

/// Cuts a JSON-lines file back to its last whole line when the end is torn: a last line
/// without its newline, or a last line that is not JSON. Returns a note saying what was
/// removed, or `None` when the file is whole (or absent).
pub fn repair_torn_tail(path: &Path) -> Result<Option<String>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("cannot read", path)(e)),
    };
    // Only the end can be torn by an append: look at the last line alone.
    let ends_whole = bytes.ends_with(b"\n");
    let end = bytes.len() - usize::from(ends_whole);
    let start = bytes[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let last = &bytes[start..end];
    let whole = bytes.is_empty()
        || (ends_whole
            && (last.iter().all(u8::is_ascii_whitespace)
                || serde_json::from_slice::<serde_json::Value>(last).is_ok()));
    let keep = if whole { bytes.len() } else { start };
    if keep == bytes.len() {
        return Ok(None);
    }
    write_atomic(path, &bytes[..keep])?;
    Ok(Some(format!(
        "{} ended in a torn line ({} bytes, left by a crash mid-write): removed it; that step is done again",
        path.display(),
        bytes.len() - keep
    )))
}

/// Checkpoint directory names (`round-R`), newest first: the one `latest` names, then the
/// others by round, descending.
fn candidates(ckpt_dir: &Path) -> Vec<String> {
    let mut names: Vec<(usize, String)> = std::fs::read_dir(ckpt_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let round = name.strip_prefix("round-")?.parse().ok()?;
            e.path().is_dir().then_some((round, name))
        })
        .collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.0));
    let mut out: Vec<String> = Vec::new();
    if let Ok(latest) = std::fs::read_to_string(ckpt_dir.join("latest")) {
        let latest = latest.trim().to_string();
        if names.iter().any(|(_, n)| *n == latest) {
            out.push(latest);
        }
    }
    for (_, n) in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// Restores `algo` from the newest checkpoint in `ckpt_dir` that reads and loads, skipping
/// damaged ones (each skip is a note). `logged` is the number of records in the log: a
/// checkpoint claiming more cannot be continued. `Ok(None)`: there is no checkpoint (the
/// run stopped in its first round). An error when checkpoints exist but none is usable.
pub(super) fn restore_newest_usable(
    ckpt_dir: &Path,
    algo: &mut dyn Algorithm,
    logged: usize,
    notes: &mut Vec<String>,
) -> Result<Option<CheckpointState>> {
    let names = candidates(ckpt_dir);
    let mut problems = Vec::new();
    for name in &names {
        let cdir = ckpt_dir.join(name);
        let tried = (|| -> Result<CheckpointState> {
            let st: CheckpointState = read_json(&cdir.join("state.json"))?;
            if st.n_records > logged {
                return Err(Error::Config(format!(
                    "it holds {} records but archs.jsonl only {logged}",
                    st.n_records
                )));
            }
            algo.restore(&st.algo)?;
            algo.load_extra(&cdir.join("surrogate"))?;
            Ok(st)
        })();
        match tried {
            Ok(st) => {
                if !problems.is_empty() {
                    let note = format!(
                        "{}; resumed from the previous checkpoint {} instead (the evaluations since are replayed from archs.jsonl)",
                        problems.join("; "),
                        cdir.display()
                    );
                    eprintln!("warning: {note}");
                    notes.push(note);
                }
                return Ok(Some(st));
            }
            Err(e) => problems.push(format!("checkpoint {} is damaged ({e})", cdir.display())),
        }
    }
    if problems.is_empty() {
        return Ok(None);
    }
    Err(Error::Config(format!(
        "no usable checkpoint: {}. Fix: delete {} to replay the whole run from archs.jsonl (no evaluation is repeated)",
        problems.join("; "),
        ckpt_dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(content: &[u8]) -> (Option<String>, Vec<u8>) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl");
        std::fs::write(&p, content).unwrap();
        let note = repair_torn_tail(&p).unwrap();
        (note, std::fs::read(&p).unwrap())
    }

    #[test]
    fn torn_tails_are_cut_back_to_the_last_whole_line() {
        let whole = b"{\"i\":1}\n{\"i\":2}\n";
        assert_eq!(tail(whole), (None, whole.to_vec()));
        assert_eq!(tail(b""), (None, vec![]));
        // No final newline.
        let (note, kept) = tail(b"{\"i\":1}\n{\"i\":2}\n{\"i\":");
        assert_eq!(kept, whole);
        assert!(note.unwrap().contains("torn line (5 bytes"));
        // A newline, but not JSON (garbage left by the file system).
        let (note, kept) = tail(b"{\"i\":1}\n{\"i\":2}\n\0\0\0\n");
        assert_eq!(kept, whole);
        assert!(note.is_some());
        // A whole JSON value without its newline is also cut: it was not fully written.
        let (_, kept) = tail(b"{\"i\":1}\n{\"i\":2}");
        assert_eq!(kept, b"{\"i\":1}\n");
        // The only line torn.
        assert_eq!(tail(b"{\"i").1, b"");
    }

    #[test]
    fn absent_file_needs_no_repair() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(repair_torn_tail(&d.path().join("none")).unwrap(), None);
    }
}

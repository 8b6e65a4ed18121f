//! Crash-safe file writes: whole files by temp-file-and-rename (the [`atomic_file`] crate),
//! lines by one write + fsync.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, io_err};

/// Writes `bytes` to `path` atomically (the workspace's one helper, [`atomic_file`]): a
/// temporary file in the same directory, fsync, rename over `path`, fsync of the directory.
/// A reader sees the old or the new file, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_file::write_atomic(path, bytes).map_err(io_err("cannot write", path))
}

/// Writes `value` as pretty JSON (with a final newline) atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value).expect("serialisable");
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Fsyncs a directory so that renames in it are durable (ignored where unsupported).
pub use atomic_file::sync_dir;

/// A JSON-lines file opened for appending; each line is written whole, flushed and fsynced.
#[derive(Debug)]
pub struct JsonlAppender {
    file: File,
    path: std::path::PathBuf,
}

impl JsonlAppender {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_err("cannot open", path))?;
        Ok(JsonlAppender {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends `value` as one line.
    pub fn append<T: serde::Serialize>(&mut self, value: &T) -> Result<()> {
        let mut line = serde_json::to_string(value).expect("serialisable");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .and_then(|_| self.file.sync_data())
            .map_err(io_err("cannot append to", &self.path))
    }
}

/// The complete lines of a JSON-lines file (a last line without its newline, left by a
/// crash mid-write, is dropped); an absent file has none.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("cannot read", path)(e)),
    };
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.pop();
    }
    Ok(lines
        .into_iter()
        .map(|l| l.trim_end_matches('\n').to_string())
        .filter(|l| !l.trim().is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_jsonl() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp files left"
        );
        let j = d.path().join("a.jsonl");
        let mut a = JsonlAppender::open(&j).unwrap();
        a.append(&serde_json::json!({"i": 1})).unwrap();
        a.append(&serde_json::json!({"i": 2})).unwrap();
        drop(a);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&j)
            .unwrap()
            .write_all(b"{\"i\":")
            .unwrap();
        assert_eq!(read_lines(&j).unwrap(), vec![r#"{"i":1}"#, r#"{"i":2}"#]);
        assert!(read_lines(&d.path().join("none")).unwrap().is_empty());
    }
}

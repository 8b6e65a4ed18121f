//! Crash-safe whole-file writes, in one place for the workspace.
//!
//! A file is written under a temporary name in the target's own directory, flushed to disk
//! (`fsync`), renamed over the target, and then the directory is flushed (best effort), so a
//! reader sees the old file or the new one, never a part of either. On any failure (and when
//! an [`AtomicFile`] is dropped without [`AtomicFile::commit`]) the temporary file is
//! removed and the target is untouched. The temporary files are `tempfile`'s
//! [`NamedTempFile`]s.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("a.json");
//! atomic_file::write_atomic(&path, b"{}\n")?;
//! assert_eq!(std::fs::read(&path)?, b"{}\n");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempPath};

/// A file being written in place of `dest`; it replaces `dest` only on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Starts a file that will replace `dest`, under a fresh hidden temporary name
    /// (`.NAME.XXXXXX.tmp`) in `dest`'s directory. Errors when the directory cannot be
    /// written or `dest` has no file name.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let name = file_name(dest)?;
        let prefix = format!(".{name}.");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            // tempfile creates 0600; keep the permissions of an ordinary `File::create`.
            use std::os::unix::fs::PermissionsExt;
            b.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let tmp = b.tempfile_in(parent(dest))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Starts a file that will replace `dest`, under the given temporary path (which must be
    /// in `dest`'s directory for the rename to be atomic); an existing file there is
    /// truncated. For temporary names that callers can see, like a download's `.part`.
    pub fn create_at(dest: &Path, tmp: &Path) -> io::Result<AtomicFile> {
        let file = File::create(tmp)?;
        Ok(AtomicFile {
            tmp: NamedTempFile::from_parts(file, TempPath::try_from_path(tmp)?),
            dest: dest.to_path_buf(),
        })
    }

    /// The temporary path being written (for error messages).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Flushes the file to disk, renames it over the target and flushes the directory.
    /// On an error the temporary file is removed.
    pub fn commit(self) -> io::Result<()> {
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(&self.dest).map_err(|e| e.error)?;
        sync_dir(parent(&self.dest));
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Writes `bytes` to `path` atomically (see the crate docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Publishes a complete file already written at `tmp` (in `dest`'s directory) as `dest`:
/// flushes it to disk, renames it over `dest` and flushes the directory. For files that are
/// written under a name callers can see across several runs, like a resumable download's
/// `.part`; a file written in one go wants [`write_atomic`] or [`AtomicFile`].
pub fn persist_file(tmp: &Path, dest: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, dest)?;
    sync_dir(parent(dest));
    Ok(())
}

/// Publishes a directory built at `tmp` as `dest` (both in the same directory; `dest` must
/// not exist or be an empty directory): flushes every file and directory under `tmp`
/// ([`sync_tree`]), renames `tmp` to `dest` and flushes the parent directory, so a reader
/// sees the whole new directory or none of it. For checkpoints written file by file.
pub fn publish_dir(tmp: &Path, dest: &Path) -> io::Result<()> {
    sync_tree(tmp);
    std::fs::rename(tmp, dest)?;
    sync_dir(parent(dest));
    Ok(())
}

/// Flushes every file under `dir` (recursively), then the directories themselves (best
/// effort: what cannot be opened is skipped).
pub fn sync_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                sync_tree(&p);
            } else if let Ok(f) = File::open(&p) {
                let _ = f.sync_all();
            }
        }
    }
    sync_dir(dir);
}

/// Flushes a directory so that renames in it are durable (ignored where unsupported).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The directory of `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file path", path.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(entries(d.path()), vec!["x.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn dropped_without_commit_leaves_the_target_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_atomic(&p, b"old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(entries(d.path()), vec!["x"]);
        let part = d.path().join("y.part");
        let mut f = AtomicFile::create_at(&d.path().join("y"), &part).unwrap();
        f.write_all(b"half").unwrap();
        assert!(part.exists());
        drop(f);
        assert_eq!(entries(d.path()), vec!["x"]);
    }

    #[test]
    fn persists_files_and_publishes_directories() {
        let d = tempfile::tempdir().unwrap();
        let part = d.path().join("a.part");
        std::fs::write(&part, b"whole").unwrap();
        persist_file(&part, &d.path().join("a")).unwrap();
        let tmp = d.path().join(".b.tmp");
        std::fs::create_dir_all(tmp.join("sub")).unwrap();
        std::fs::write(tmp.join("sub/x"), b"x").unwrap();
        publish_dir(&tmp, &d.path().join("b")).unwrap();
        assert_eq!(entries(d.path()), vec!["a", "b"]);
        assert_eq!(std::fs::read(d.path().join("a")).unwrap(), b"whole");
        assert_eq!(std::fs::read(d.path().join("b/sub/x")).unwrap(), b"x");
        assert!(persist_file(&part, &d.path().join("c")).is_err());
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(write_atomic(&d.path().join("no/such/x"), b"").is_err());
    }
}

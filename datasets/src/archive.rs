//! Extraction of `.tar.gz` archives, atomically: the archive is unpacked into
//! a temporary directory *inside the data directory*, checked, and only then
//! renamed into place. An interrupted or failed extraction therefore never
//! leaves a half-filled dataset directory behind.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{DatasetError, Result};

/// Unpacks the gzip'd tar `archive` into `dest` (which must exist).
///
/// Entries with absolute paths or `..` components are refused by the `tar`
/// crate. Any gzip or tar error (corrupt or truncated archive) is a
/// [`DatasetError::BadArchive`] naming the archive.
///
/// ```
/// # use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// // Build a tiny archive holding `d/hello.txt`.
/// let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// let mut tar = tar::Builder::new(gz);
/// let mut h = tar::Header::new_gnu();
/// h.set_size(5);
/// h.set_mode(0o644);
/// h.set_cksum();
/// tar.append_data(&mut h, "d/hello.txt", &b"hello"[..]).unwrap();
/// let bytes = tar.into_inner().unwrap().finish().unwrap();
/// let archive = dir.path().join("a.tar.gz");
/// std::fs::write(&archive, bytes).unwrap();
///
/// let out = dir.path().join("out");
/// std::fs::create_dir(&out).unwrap();
/// datasets::archive::unpack_tar_gz(&archive, &out).unwrap();
/// assert_eq!(std::fs::read(out.join("d/hello.txt")).unwrap(), b"hello");
/// ```
pub fn unpack_tar_gz(archive: &Path, dest: &Path) -> Result<()> {
    let file = File::open(archive).map_err(|e| DatasetError::io("open", archive, e))?;
    let gz = GzDecoder::new(BufReader::with_capacity(1 << 20, file));
    let mut tar = tar::Archive::new(gz);
    tar.set_preserve_permissions(false);
    tar.set_preserve_mtime(false);
    tar.unpack(dest).map_err(|e| {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        DatasetError::BadArchive {
            path: archive.to_path_buf(),
            reason: format!("{reason} (not a complete gzip'd tar file)"),
        }
    })
}

/// Extracts the directory `dir_name` of `archive` to `data_dir/dir_name`.
///
/// The archive is unpacked into a fresh temporary directory in `data_dir`;
/// `check` is called on the extracted `dir_name` there and must succeed (it
/// may write files into it, e.g. a marker); only then the directory is
/// renamed into place. If another process finished the same extraction
/// first, its result is kept and ours discarded.
///
/// ```
/// # use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// let mut tar = tar::Builder::new(gz);
/// let mut h = tar::Header::new_gnu();
/// h.set_size(2);
/// h.set_mode(0o644);
/// h.set_cksum();
/// tar.append_data(&mut h, "set/x.bin", &b"ok"[..]).unwrap();
/// std::fs::write(dir.path().join("set.tar.gz"), tar.into_inner().unwrap().finish().unwrap()).unwrap();
///
/// datasets::archive::extract_dir(&dir.path().join("set.tar.gz"), dir.path(), "set", |d| {
///     assert!(d.join("x.bin").is_file());
///     Ok(())
/// }).unwrap();
/// assert!(dir.path().join("set/x.bin").is_file());
/// ```
pub fn extract_dir(
    archive: &Path,
    data_dir: &Path,
    dir_name: &str,
    check: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(data_dir)
        .map_err(|e| DatasetError::io("create a temporary directory in", data_dir, e))?;
    unpack_tar_gz(archive, tmp.path())?;
    let extracted = tmp.path().join(dir_name);
    if !extracted.is_dir() {
        return Err(DatasetError::BadArchive {
            path: archive.to_path_buf(),
            reason: format!("it does not contain the directory {dir_name}/"),
        });
    }
    check(&extracted)?;
    let target = data_dir.join(dir_name);
    // Flushed before the rename: a crash leaves the whole directory or none of it.
    match atomic_file::publish_dir(&extracted, &target) {
        Ok(()) => Ok(()),
        // Someone else (another test thread or process) got there first.
        Err(_) if target.is_dir() => Ok(()),
        Err(e) => Err(DatasetError::io("rename into", &target, e)),
    }
    // `tmp` (now without the dataset) is removed when dropped.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_bad_archive() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.tar.gz");
        std::fs::write(&a, b"this is not gzip").unwrap();
        let err = extract_dir(&a, dir.path(), "x", |_| Ok(())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("x.tar.gz") && msg.contains("download it again"),
            "{msg}"
        );
        assert!(!dir.path().join("x").exists());
        // Temporary directory cleaned up.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

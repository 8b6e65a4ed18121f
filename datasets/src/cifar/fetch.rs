//! Making a CIFAR release available and trusted: download, extraction, MD5 verification
//! and the `.verified` marker.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::records::{check_size, read_dir, refetch_fix};
use super::spec::{CifarSpec, FileSpec};
use crate::archive;
use crate::checksum;
use crate::download::{self, FetchOptions};
use crate::error::{DatasetError, Result};

/// Name of the marker file written after a successful full verification.
pub const VERIFIED_MARKER: &str = ".verified";

/// How much checking [`Cifar::load`](super::Cifar::load) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Verify {
    /// Full check (MD5s) when the directory has no `.verified` marker, then
    /// write the marker; with a marker, sizes/structure/labels only.
    #[default]
    Auto,
    /// Always recompute and compare the MD5s (plus sizes, structure, labels).
    Full,
    /// Sizes, structure and labels only; never MD5.
    Quick,
}

/// Options for [`Cifar::load`](super::Cifar::load).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Download the archive from the spec's URL when neither the directory nor
    /// the archive is present. Off by default: offline setups get a clear
    /// error saying where to put the file.
    pub allow_download: bool,
    /// How much to verify.
    pub verify: Verify,
    /// Show a progress bar while downloading (plain lines when stderr is not a terminal).
    pub progress: bool,
    /// Retries of a broken download and the pause between them (`progress` above wins
    /// over the one in here).
    #[serde(skip)]
    pub fetch: FetchOptions,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            allow_download: false,
            verify: Verify::Auto,
            progress: true,
            fetch: FetchOptions::default(),
        }
    }
}

/// Makes sure the extracted directory exists (extracting or downloading as
/// needed) and returns its path.
pub(super) fn ensure_available(
    spec: &CifarSpec,
    data_dir: &Path,
    opts: &LoadOptions,
) -> Result<PathBuf> {
    let dir = data_dir.join(&spec.dir_name);
    if dir.is_dir() {
        return Ok(dir);
    }
    let archive_path = data_dir.join(&spec.archive_name);
    if archive_path.is_file() {
        extract_and_verify(spec, &archive_path, data_dir)?;
        return Ok(dir);
    }
    if !opts.allow_download {
        return Err(DatasetError::NotFound {
            dataset: spec.name.clone(),
            extracted: dir,
            archive: archive_path,
            url: spec.url.clone(),
        });
    }
    fs::create_dir_all(data_dir).map_err(|e| DatasetError::io("create directory", data_dir, e))?;
    download::download(
        &spec.url,
        &archive_path,
        &spec.archive_checksums,
        &FetchOptions {
            progress: opts.progress,
            ..opts.fetch.clone()
        },
    )?;
    if let Err(e) = extract_and_verify(spec, &archive_path, data_dir) {
        // We fetched it, and it is unusable: do not leave it to be mistaken for a good one.
        let _ = fs::remove_file(&archive_path);
        return Err(e);
    }
    Ok(dir)
}

/// Extracts the archive and checks every file (MD5s, records, labels) before the
/// directory is moved into place; writes the marker.
fn extract_and_verify(spec: &CifarSpec, archive_path: &Path, data_dir: &Path) -> Result<()> {
    archive::extract_dir(archive_path, data_dir, &spec.dir_name, |tmp_dir| {
        let bad_archive = |e: DatasetError| DatasetError::BadArchive {
            path: archive_path.to_path_buf(),
            reason: e.to_string(),
        };
        let sums = verify_checksums(spec, tmp_dir).map_err(bad_archive)?;
        // Parse once to check record structure and labels before accepting.
        read_dir(spec, tmp_dir).map_err(bad_archive)?;
        write_marker(tmp_dir, &sums)
    })
}

/// Checks sizes and MD5s of every file; returns `(name, md5)` pairs.
pub(super) fn verify_checksums(spec: &CifarSpec, dir: &Path) -> Result<Vec<(String, String)>> {
    let files: Vec<&FileSpec> = spec.all_files().collect();
    files
        .par_iter()
        .map(|f| {
            let path = dir.join(&f.name);
            check_size(spec, f, &path, dir)?;
            let actual = checksum::md5_file(&path)?;
            if let Some(expected) = &f.md5
                && !expected.eq_ignore_ascii_case(&actual)
            {
                return Err(DatasetError::ChecksumMismatch {
                    path,
                    expected: expected.clone(),
                    actual,
                    fix: refetch_fix(spec, dir),
                });
            }
            Ok((f.name.clone(), actual))
        })
        .collect()
}

/// Whether `dir` has a `.verified` marker naming every file of `spec` (with its official
/// MD5, where known).
pub(super) fn marker_ok(spec: &CifarSpec, dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(VERIFIED_MARKER)) else {
        return false;
    };
    spec.all_files().all(|f| {
        text.lines().any(|line| {
            let mut it = line.split_whitespace();
            let (Some(sum), Some(name)) = (it.next(), it.next()) else {
                return false;
            };
            name == f.name && f.md5.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(sum))
        })
    })
}

/// Writes the `.verified` marker (`md5  name` lines), atomically.
pub(super) fn write_marker(dir: &Path, sums: &[(String, String)]) -> Result<()> {
    let text: String = sums
        .iter()
        .map(|(name, sum)| format!("{sum}  {name}\n"))
        .collect();
    let path = dir.join(VERIFIED_MARKER);
    atomic_file::write_atomic(&path, text.as_bytes())
        .map_err(|e| DatasetError::io("write", &path, e))
}

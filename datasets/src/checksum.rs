//! MD5 and SHA-256 checksums of files and byte slices (lower-case hex), and
//! [`Checksum`], a known-good digest a download is checked against.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{DatasetError, Result};

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// MD5 of a byte slice as 32 lower-case hex digits.
///
/// ```
/// assert_eq!(datasets::checksum::md5_bytes(b""), "d41d8cd98f00b204e9800998ecf8427e");
/// ```
pub fn md5_bytes(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

/// MD5 of a file, streamed in 1 MiB chunks, as 32 lower-case hex digits.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("abc.txt");
/// std::fs::write(&path, b"abc").unwrap();
/// assert_eq!(datasets::checksum::md5_file(&path).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
/// ```
pub fn md5_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| DatasetError::io("open", path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| DatasetError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A known-good digest of a file, lower-case hex.
///
/// ```
/// use datasets::checksum::Checksum;
/// let c = Checksum::Md5("900150983cd24fb0d6963f7d28e17f72".into());
/// assert_eq!(c.to_string(), "md5 900150983cd24fb0d6963f7d28e17f72");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checksum {
    /// An MD5 digest (32 hex digits).
    Md5(String),
    /// A SHA-256 digest (64 hex digits).
    Sha256(String),
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Checksum::Md5(h) => write!(f, "md5 {h}"),
            Checksum::Sha256(h) => write!(f, "sha256 {h}"),
        }
    }
}

/// The digests of a file, computed in one pass, for the kinds `wanted` names (an MD5 if
/// any entry is MD5, a SHA-256 if any is SHA-256).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    /// The MD5, if asked for.
    pub md5: Option<String>,
    /// The SHA-256, if asked for.
    pub sha256: Option<String>,
}

impl Digests {
    /// Whether `c` is one of these digests.
    pub fn matches(&self, c: &Checksum) -> bool {
        match c {
            Checksum::Md5(h) => self
                .md5
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(h)),
            Checksum::Sha256(h) => self
                .sha256
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(h)),
        }
    }
}

impl std::fmt::Display for Digests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [("md5", &self.md5), ("sha256", &self.sha256)]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Computes the digests of the file at `path` that `wanted` needs (see [`Digests`]).
///
/// ```
/// use datasets::checksum::{Checksum, digests_file};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("abc.txt");
/// std::fs::write(&path, b"abc").unwrap();
/// let want = [Checksum::Sha256(
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
/// )];
/// let d = digests_file(&path, &want).unwrap();
/// assert!(d.matches(&want[0]));
/// assert_eq!(d.md5, None);
/// ```
pub fn digests_file(path: &Path, wanted: &[Checksum]) -> Result<Digests> {
    let want_md5 = wanted.iter().any(|c| matches!(c, Checksum::Md5(_)));
    let want_sha = wanted.iter().any(|c| matches!(c, Checksum::Sha256(_)));
    let mut md5 = want_md5.then(Md5::new);
    let mut sha = want_sha.then(Sha256::new);
    let mut file = File::open(path).map_err(|e| DatasetError::io("open", path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| DatasetError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        if let Some(h) = md5.as_mut() {
            h.update(&buf[..n]);
        }
        if let Some(h) = sha.as_mut() {
            h.update(&buf[..n]);
        }
    }
    Ok(Digests {
        md5: md5.map(|h| hex(&h.finalize())),
        sha256: sha.map(|h| hex(&h.finalize())),
    })
}

/// Incremental MD5 (used while streaming a download).
#[derive(Default, Clone)]
pub struct Md5Stream(Md5);

impl Md5Stream {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The hex digest of everything fed so far.
    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(md5_bytes(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        let mut s = Md5Stream::new();
        s.update(b"a");
        s.update(b"bc");
        assert_eq!(s.finish(), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = md5_file(Path::new("/nonexistent/x.bin")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/x.bin"), "{msg}");
        assert!(msg.contains("Fix:"), "{msg}");
    }
}

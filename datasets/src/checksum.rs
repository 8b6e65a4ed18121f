//! MD5 checksums of files and byte slices (lower-case hex).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};

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

//! Streaming HTTP download with a progress bar.
//!
//! The body is streamed into `<dest>.part`, hashed on the fly, flushed to
//! disk (`fsync`), checked (length against `Content-Length`, optional MD5),
//! and only then renamed to `dest`. A failed or partial download never leaves
//! a file under the final name.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use atomic_file::AtomicFile;
use indicatif::{ProgressBar, ProgressStyle};

use crate::checksum::Md5Stream;
use crate::error::{DatasetError, Result};

/// The `.part` path used while downloading to `dest`.
///
/// ```
/// use std::path::Path;
/// assert_eq!(
///     datasets::download::part_path(Path::new("d/a.tar.gz")),
///     Path::new("d/a.tar.gz.part")
/// );
/// ```
pub fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Downloads `url` to `dest`.
///
/// * `expected_md5`: if given, the MD5 of the received bytes must match.
/// * `progress`: draw an indicatif progress bar on stderr.
///
/// On any failure the `.part` file is removed and `dest` is untouched.
///
/// ```no_run
/// use std::path::Path;
/// datasets::download::download(
///     "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
///     Path::new("data/cifar-10-binary.tar.gz"),
///     Some("c32a1d4ab5d03f1284b67883e8d87530"),
///     true,
/// )?;
/// # Ok::<(), datasets::DatasetError>(())
/// ```
pub fn download(url: &str, dest: &Path, expected_md5: Option<&str>, progress: bool) -> Result<()> {
    let part = part_path(dest);
    let result = fetch_to(url, dest, &part, expected_md5, progress);
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

fn fetch_to(
    url: &str,
    dest: &Path,
    part: &Path,
    expected_md5: Option<&str>,
    progress: bool,
) -> Result<()> {
    let fail = |reason: String| DatasetError::Download {
        url: url.to_string(),
        path: dest.to_path_buf(),
        reason,
    };
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)));
    if loopback {
        // Never send loopback traffic (tests, local mirrors) through a proxy.
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config.build().into();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let content_length: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let mut reader = response.into_body().into_reader();

    let mut out =
        AtomicFile::create_at(dest, part).map_err(|e| DatasetError::io("create", part, e))?;
    let bar = if progress {
        let bar = match content_length {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(
            dest.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut hasher = Md5Stream::new();
    let mut got: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(match content_length {
                    Some(expected) if got < expected => DatasetError::IncompleteDownload {
                        url: url.to_string(),
                        path: dest.to_path_buf(),
                        got,
                        expected,
                    },
                    _ => fail(format!("read error after {got} bytes: {e}")),
                });
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| DatasetError::io("write", part, e))?;
        got += n as u64;
        bar.set_position(got);
    }
    bar.finish();
    if let Some(expected) = content_length
        && got != expected
    {
        return Err(DatasetError::IncompleteDownload {
            url: url.to_string(),
            path: dest.to_path_buf(),
            got,
            expected,
        });
    }
    let actual = hasher.finish();
    if let Some(expected) = expected_md5
        && !expected.eq_ignore_ascii_case(&actual)
    {
        return Err(DatasetError::ChecksumMismatch {
            path: PathBuf::from(url),
            expected: expected.to_string(),
            actual,
            fix: format!(
                "the download is corrupt and was discarded ({} was not written); retry, or download it by hand and put it at {}",
                dest.display(),
                dest.display()
            ),
        });
    }
    // fsync, rename over `dest`, fsync of the directory; on failure `part` is removed.
    out.commit()
        .map_err(|e| DatasetError::io("flush and rename into", dest, e))
}

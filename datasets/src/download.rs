//! Resumable HTTP(S) download with a progress bar and checksum verification.
//!
//! The body is streamed into `<dest>.part`. When the connection breaks, the bytes received
//! so far stay in `<dest>.part` (flushed to disk) and the next attempt, in this call or in a
//! later run, asks the server for the rest with an HTTP `Range` request; a server that does
//! not support ranges answers with the whole file, and the download starts over. Once the
//! file is complete its digests are checked against the known-good [`Checksum`]s *before*
//! it gets its final name (fsync, rename, fsync of the directory). A file that fails the
//! check is deleted, `.part` included: nothing corrupt or half-written ever carries the
//! final name.
//!
//! `https://` uses rustls (no system OpenSSL needed); loopback URLs (`http://127.0.0.1`,
//! `localhost`, `[::1]`: tests and local mirrors) never go through a proxy.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::checksum::{Checksum, digests_file};
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

/// How [`download`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Draw a progress bar on stderr when it is a terminal; otherwise print one plain line
    /// when the download starts and one when it ends.
    pub progress: bool,
    /// How many times a broken transfer (connection refused or cut, timeout) is resumed
    /// within this call before giving up (the `.part` file is kept for a later run).
    pub retries: usize,
    /// Pause before the first retry; doubled for each further one.
    pub retry_pause: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            progress: true,
            retries: 3,
            retry_pause: Duration::from_secs(2),
        }
    }
}

/// Downloads `url` to `dest`, resuming `<dest>.part` if an earlier attempt left one.
///
/// * `accept`: known-good digests; the file must match one of them (empty: not checked).
///   On a mismatch the file is deleted and [`DatasetError::DownloadChecksum`] returned.
/// * A broken transfer is resumed up to `opts.retries` times; after that
///   [`DatasetError::IncompleteDownload`] is returned and `<dest>.part` is kept so that the
///   next call resumes it.
/// * An HTTP error status (404, ...) is [`DatasetError::Download`].
///
/// `dest` only ever appears complete and verified.
///
/// ```no_run
/// use std::path::Path;
/// use datasets::checksum::Checksum;
/// datasets::download::download(
///     "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
///     Path::new("data/cifar-10-binary.tar.gz"),
///     &[Checksum::Md5("c32a1d4ab5d03f1284b67883e8d87530".into())],
///     &datasets::download::FetchOptions::default(),
/// )?;
/// # Ok::<(), datasets::DatasetError>(())
/// ```
pub fn download(url: &str, dest: &Path, accept: &[Checksum], opts: &FetchOptions) -> Result<()> {
    let part = part_path(dest);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bar = Bar::new(opts.progress, &name);
    let started = Instant::now();
    let mut retries = 0;
    loop {
        match attempt(url, dest, &part, &bar) {
            Ok(()) => break,
            Err(Attempt::Fatal(e)) => {
                bar.abandon();
                return Err(e);
            }
            Err(Attempt::Broken(e)) if retries < opts.retries => {
                let pause = opts.retry_pause * 2u32.saturating_pow(retries as u32);
                retries += 1;
                bar.note(&format!(
                    "{name}: {e}; retrying in {:.0?} ({retries} of {})",
                    pause, opts.retries
                ));
                std::thread::sleep(pause);
            }
            Err(Attempt::Broken(e)) => {
                bar.abandon();
                return Err(e);
            }
        }
    }
    let len = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    bar.finish(&format!(
        "{name}: {} received in {:.1?}; verifying",
        human_bytes(len),
        started.elapsed()
    ));
    verify_and_commit(url, dest, &part, accept)
}

/// Checks the complete `part` against `accept` and renames it to `dest`; on a mismatch
/// deletes it.
fn verify_and_commit(url: &str, dest: &Path, part: &Path, accept: &[Checksum]) -> Result<()> {
    if !accept.is_empty() {
        let digests = digests_file(part, accept)?;
        if !accept.iter().any(|c| digests.matches(c)) {
            let _ = fs::remove_file(part);
            return Err(DatasetError::DownloadChecksum {
                url: url.to_string(),
                path: dest.to_path_buf(),
                actual: digests.to_string(),
                expected: accept
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            });
        }
    }
    atomic_file::persist_file(part, dest).map_err(|e| DatasetError::io("rename into", dest, e))
}

/// Why one attempt stopped.
enum Attempt {
    /// The transfer broke (connection refused, cut, timed out): worth resuming.
    Broken(DatasetError),
    /// No point trying again (HTTP error status, local I/O error).
    Fatal(DatasetError),
}

fn agent(url: &str) -> ureq::Agent {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        // The archive is already compressed; a transparently decoded body would neither
        // match the checksum nor line up with a range request.
        .accept_encoding("identity");
    if loopback {
        // Never send loopback traffic (tests, local mirrors) through a proxy.
        config = config.proxy(None);
    }
    config.build().into()
}

/// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`) as `(START, TOTAL)`.
fn content_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some((start, total))
}

/// One request: resumes `part` if it holds bytes, else starts it.
fn attempt(url: &str, dest: &Path, part: &Path, bar: &Bar) -> Result<(), Attempt> {
    let fail = |reason: String| DatasetError::Download {
        url: url.to_string(),
        path: dest.to_path_buf(),
        reason,
    };
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent(url).get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(e) => return Err(Attempt::Broken(fail(e.to_string()))),
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length: Option<u64> = header("content-length").and_then(|v| v.trim().parse().ok());
    let range = header("content-range").and_then(|v| content_range(&v));
    let (start, total) = match status {
        200 => {
            if have > 0 {
                bar.note(&format!(
                    "{}: the server does not support resuming; starting over",
                    display_name(dest)
                ));
            }
            (0, length)
        }
        206 => match range {
            Some((Some(start), total)) if start == have => (have, total),
            _ => {
                // Not the range asked for: drop the partial file and start over.
                let _ = fs::remove_file(part);
                return Err(Attempt::Broken(fail(
                    "the server answered a range request with another range; starting over".into(),
                )));
            }
        },
        416 if have > 0 => {
            // The partial file is already as long as the whole file, or longer.
            if range.and_then(|r| r.1) == Some(have) {
                return Ok(());
            }
            let _ = fs::remove_file(part);
            return Err(Attempt::Broken(fail(format!(
                "the partial file {} does not fit the file on the server; starting over",
                part.display()
            ))));
        }
        _ => {
            let reason = format!(
                "HTTP status {status}{}",
                response
                    .status()
                    .canonical_reason()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default()
            );
            return Err(Attempt::Fatal(fail(reason)));
        }
    };
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(part)
        .map_err(|e| Attempt::Fatal(DatasetError::io("create", part, e)))?;
    let total = total.or(length.map(|l| start + l));
    bar.start(total, start);
    let mut reader = response.into_body().into_reader();
    let mut got = start;
    let mut buf = vec![0u8; 1 << 16];
    let broken = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(e.to_string()),
        };
        out.write_all(&buf[..n])
            .map_err(|e| Attempt::Fatal(DatasetError::io("write", part, e)))?;
        got += n as u64;
        bar.set(got);
    };
    // Keep what arrived, durably, for the next attempt.
    out.sync_data()
        .map_err(|e| Attempt::Fatal(DatasetError::io("flush", part, e)))?;
    match (broken, total) {
        (_, Some(expected)) if got < expected => {
            Err(Attempt::Broken(DatasetError::IncompleteDownload {
                url: url.to_string(),
                path: dest.to_path_buf(),
                part: part.to_path_buf(),
                got,
                expected,
            }))
        }
        (Some(reason), None) => Err(Attempt::Broken(fail(format!(
            "read error after {got} bytes: {reason}"
        )))),
        (_, Some(expected)) if got > expected => {
            let _ = fs::remove_file(part);
            Err(Attempt::Broken(fail(format!(
                "received {got} bytes, more than the {expected} announced; starting over"
            ))))
        }
        _ => Ok(()),
    }
}

fn display_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `1.5 MB`-style sizes.
fn human_bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{:.1} kB", n as f64 / 1e3)
    } else {
        format!("{n} B")
    }
}

/// The progress display: an indicatif bar on a terminal; plain lines (start, retries,
/// end) otherwise; nothing when progress is off.
struct Bar {
    bar: ProgressBar,
    name: String,
    plain: bool,
}

impl Bar {
    fn new(progress: bool, name: &str) -> Bar {
        let target = ProgressDrawTarget::stderr();
        let plain = progress && target.is_hidden();
        let bar = if progress && !plain {
            ProgressBar::with_draw_target(None, target)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(name.to_string());
        Bar {
            bar,
            name: name.to_string(),
            plain,
        }
    }

    fn start(&self, total: Option<u64>, from: u64) {
        if let Some(t) = total {
            self.bar.set_length(t);
        }
        self.bar.set_position(from);
        self.bar.reset_eta();
        if self.plain {
            let size = total.map(human_bytes).unwrap_or_else(|| "? bytes".into());
            if from > 0 {
                eprintln!(
                    "downloading {}: resuming at {} of {size}",
                    self.name,
                    human_bytes(from)
                );
            } else {
                eprintln!("downloading {} ({size})", self.name);
            }
        }
    }

    fn set(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    fn note(&self, line: &str) {
        if self.plain {
            eprintln!("{line}");
        } else if !self.bar.is_hidden() {
            self.bar.println(line);
        }
    }

    fn abandon(&self) {
        self.bar.abandon();
    }

    fn finish(&self, line: &str) {
        self.bar.finish_and_clear();
        if self.plain || !self.bar.is_hidden() {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        assert_eq!(
            content_range("bytes 100-199/200"),
            Some((Some(100), Some(200)))
        );
        assert_eq!(content_range("bytes */200"), Some((None, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((Some(5), None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }
}

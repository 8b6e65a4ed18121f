//! Test support for the download code: a loopback HTTP server that misbehaves on request
//! (cut connections, no range support, truncation, corruption), and the shared data files
//! (`$NAO_DATA_DIR`, `$NAO_SHARED_DIR/data`, else `../shared/data` next to the workspace)
//! that real-data tests serve from it. Used by this crate's and `nao`'s integration tests;
//! std only, nothing here runs outside tests.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A test server: its base URL and every request's `Range` header (or "-").
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    ranges: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Every request's `Range` header so far (`bytes=N-`, or `-` for none), in order.
    pub fn ranges(&self) -> Vec<String> {
        self.ranges.lock().unwrap().clone()
    }
}

/// Starts a server for `body`. Paths:
/// `/complete/…` the body, honouring `Range: bytes=N-` (206, or 416 past the end);
/// `/cut/…` like `complete`, except that the first request gets half the body and then
/// the connection closes; `/norange/…` ignores ranges (always 200 and the whole body),
/// its first request cut like `cut`; `/truncated/…` announces the full length, sends half
/// and closes, every time; `/corrupt/…` the whole body with bytes flipped; else 404.
pub fn serve(body: Arc<Vec<u8>>) -> Server {
    serve_many(vec![(String::new(), body)])
}

/// Like [`serve`], with one body per file name: a path gets the first body whose name it
/// ends with.
pub fn serve_many(files: Vec<(String, Arc<Vec<u8>>)>) -> Server {
    let files = Arc::new(files);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let log = ranges.clone();
    let count = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (files, log) = (files.clone(), log.clone());
            let nth = count.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || handle(stream, &files, &log, nth));
        }
    });
    Server {
        base: format!("http://{addr}"),
        ranges,
    }
}

fn handle(
    mut stream: TcpStream,
    files: &[(String, Arc<Vec<u8>>)],
    log: &Mutex<Vec<String>>,
    nth: usize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range: Option<u64> = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("range:") {
                    range = v
                        .trim()
                        .strip_prefix("bytes=")
                        .and_then(|r| r.trim_end_matches('-').parse().ok());
                }
            }
        }
    }
    log.lock()
        .unwrap()
        .push(range.map_or("-".into(), |r| format!("bytes={r}-")));
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let Some((_, body)) = files.iter().find(|(name, _)| path.ends_with(name.as_str())) else {
        return;
    };
    let body = body.as_slice();
    let len = body.len();
    let ok = |n: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-gzip\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
        )
    };
    let honour_range = path.starts_with("/complete/") || path.starts_with("/cut/");
    let cut_now = (path.starts_with("/cut/") || path.starts_with("/norange/")) && nth == 0;
    let _ = if path.starts_with("/truncated/") || cut_now {
        stream
            .write_all(ok(len).as_bytes())
            .and_then(|_| stream.write_all(&body[..len / 2]))
    } else if honour_range && range.is_some_and(|r| r as usize >= len) {
        stream.write_all(
            format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    } else if honour_range && let Some(r) = range {
        let r = r as usize;
        stream
            .write_all(
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {r}-{}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    len - 1,
                    len - r
                )
                .as_bytes(),
            )
            .and_then(|_| stream.write_all(&body[r..]))
    } else if honour_range || path.starts_with("/norange/") {
        stream
            .write_all(ok(len).as_bytes())
            .and_then(|_| stream.write_all(body))
    } else if path.starts_with("/corrupt/") {
        let mut bad = body.to_vec();
        for i in (len / 3..len / 3 + 64).step_by(8) {
            bad[i] ^= 0x5A;
        }
        stream
            .write_all(ok(len).as_bytes())
            .and_then(|_| stream.write_all(&bad))
    } else {
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// A file of the shared data (`rel` inside the data directory, e.g.
/// `cifar-10-binary.tar.gz` or `ptb/ptb.train.txt`): the first that exists of
/// `$NAO_DATA_DIR/rel`, `$NAO_SHARED_DIR/data/rel` and `WORKSPACE/../shared/data/rel`.
/// `None` prints "skipped: ..." (the caller's test then returns).
pub fn shared_data_file(rel: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("NAO_DATA_DIR").filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(d).join(rel));
    }
    if let Some(d) = std::env::var_os("NAO_SHARED_DIR").filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(d).join("data").join(rel));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data")
            .join(rel),
    );
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipped: no {rel} in $NAO_DATA_DIR, $NAO_SHARED_DIR/data or ../shared/data");
    }
    found
}

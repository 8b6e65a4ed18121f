//! The real download code against an HTTP server on 127.0.0.1 started by the
//! test, serving a small archive built by the test: complete, truncated and
//! corrupt variants.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;

use datasets::cifar::VERIFIED_MARKER;
use datasets::download::part_path;
use datasets::synthetic::small_cifar10_archive;
use datasets::{Cifar, CifarSpec, DatasetError, LoadOptions, Verify};

/// Starts a server; returns its base URL. Paths:
/// `/complete/…` whole body, `/truncated/…` announces the full length but
/// sends half and closes, `/corrupt/…` full length with bytes flipped,
/// anything else 404.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Arc::new(body);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let body = body.clone();
            thread::spawn(move || handle(stream, &body));
        }
    });
    format!("http://{addr}")
}

fn handle(mut stream: TcpStream, body: &[u8]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let header = |len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-gzip\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    let _ = if path.starts_with("/complete/") {
        stream
            .write_all(header(body.len()).as_bytes())
            .and_then(|_| stream.write_all(body))
    } else if path.starts_with("/truncated/") {
        stream
            .write_all(header(body.len()).as_bytes())
            .and_then(|_| stream.write_all(&body[..body.len() / 2]))
    } else if path.starts_with("/corrupt/") {
        let mut bad = body.to_vec();
        for i in (bad.len() / 3..bad.len() / 3 + 64).step_by(8) {
            bad[i] ^= 0x5A;
        }
        stream
            .write_all(header(bad.len()).as_bytes())
            .and_then(|_| stream.write_all(&bad))
    } else {
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn setup(variant: &str) -> (CifarSpec, tempfile::TempDir) {
    let (mut spec, bytes) = small_cifar10_archive(25, 10, 3).unwrap();
    let base = serve(bytes);
    spec.url = format!("{base}/{variant}/{}", spec.archive_name);
    (spec, tempfile::tempdir().unwrap())
}

fn online() -> LoadOptions {
    LoadOptions {
        allow_download: true,
        progress: false,
        ..LoadOptions::default()
    }
}

fn assert_nothing_left(spec: &CifarSpec, dir: &Path) {
    let archive = dir.join(&spec.archive_name);
    assert!(
        !archive.exists(),
        "{} must not exist after a failed download",
        archive.display()
    );
    assert!(!part_path(&archive).exists(), "partial file left behind");
    assert!(
        !dir.join(&spec.dir_name).exists(),
        "dataset dir must not exist"
    );
}

#[test]
fn complete_download_is_verified_extracted_and_loaded() {
    let (spec, dir) = setup("complete");
    let cifar = Cifar::load(&spec, dir.path(), &online()).unwrap();
    assert_eq!(cifar.train.len(), 25);
    assert_eq!(cifar.test.len(), 10);
    let archive = dir.path().join(&spec.archive_name);
    assert!(archive.is_file());
    assert!(!part_path(&archive).exists());
    assert!(
        dir.path()
            .join(&spec.dir_name)
            .join(VERIFIED_MARKER)
            .is_file()
    );
    // Second load: no download (server URL broken on purpose), data already there.
    let mut offline = spec.clone();
    offline.url = "http://127.0.0.1:1/nothing".into();
    let again = Cifar::load(
        &offline,
        dir.path(),
        &LoadOptions {
            verify: Verify::Full,
            ..online()
        },
    )
    .unwrap();
    assert_eq!(again, cifar);
    // No leftover temporary extraction directory.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".extract")),
        "{names:?}"
    );
}

#[test]
fn truncated_download_is_never_taken_for_complete() {
    let (spec, dir) = setup("truncated");
    let err = Cifar::load(&spec, dir.path(), &online()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DatasetError::IncompleteDownload { .. }),
        "{msg}"
    );
    assert!(
        msg.contains(&spec.url) && msg.contains("cifar-10-binary.tar.gz"),
        "{msg}"
    );
    assert!(msg.contains("Fix: retry"), "{msg}");
    assert_nothing_left(&spec, dir.path());
}

#[test]
fn corrupt_download_fails_archive_md5() {
    let (spec, dir) = setup("corrupt");
    let err = Cifar::load(&spec, dir.path(), &online()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DatasetError::ChecksumMismatch { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("bad checksum") && msg.contains("cifar-10-binary.tar.gz"),
        "{msg}"
    );
    assert!(msg.contains("Fix:"), "{msg}");
    assert_nothing_left(&spec, dir.path());
}

#[test]
fn corrupt_download_without_archive_md5_fails_extraction_and_is_removed() {
    let (mut spec, dir) = setup("corrupt");
    spec.archive_md5 = None;
    let err = Cifar::load(&spec, dir.path(), &online()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::BadArchive { .. }), "{msg}");
    assert!(
        msg.contains("cifar-10-binary.tar.gz") && msg.contains("download it again"),
        "{msg}"
    );
    assert_nothing_left(&spec, dir.path());
}

#[test]
fn http_error_is_clear() {
    let (mut spec, dir) = setup("complete");
    spec.url = spec.url.replace("/complete/", "/missing/");
    let err = Cifar::load(&spec, dir.path(), &online()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("404") && msg.contains(&spec.url), "{msg}");
    assert!(msg.contains("Fix:"), "{msg}");
    assert_nothing_left(&spec, dir.path());
}

#[test]
fn offline_without_data_says_where_to_put_the_archive() {
    let (spec, dir) = setup("complete");
    let err = Cifar::load(&spec, dir.path(), &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::NotFound { .. }), "{msg}");
    assert!(
        msg.contains(&dir.path().join(&spec.archive_name).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("allow_download"), "{msg}");
}

#[test]
fn local_archive_is_extracted_without_network() {
    let (mut spec, bytes) = small_cifar10_archive(12, 4, 8).unwrap();
    spec.url = "http://127.0.0.1:1/unreachable".into();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(&spec.archive_name), &bytes).unwrap();
    let c = Cifar::load(&spec, dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!((c.train.len(), c.test.len()), (12, 4));
}

#[test]
fn unreadable_local_archive_is_a_clear_error() {
    let (spec, bytes) = small_cifar10_archive(12, 4, 8).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join(&spec.archive_name);
    // Not gzip at all.
    std::fs::write(&archive, b"<html>not an archive</html>").unwrap();
    let msg = Cifar::load(&spec, dir.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&archive.display().to_string()), "{msg}");
    assert!(
        msg.contains("Fix: delete") && msg.contains("download it again"),
        "{msg}"
    );
    assert!(!dir.path().join(&spec.dir_name).exists());
    // A truncated gzip (e.g. an interrupted manual download).
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let msg = Cifar::load(&spec, dir.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cannot extract archive") && msg.contains("download it again"),
        "{msg}"
    );
    assert!(!dir.path().join(&spec.dir_name).exists());
}

//! The real download code against an HTTP server on 127.0.0.1 started by the test:
//! a tiny archive built by the test (complete, truncated, corrupt, cut once, without range
//! support), and the real CIFAR-10 archive from the shared data (`$NAO_DATA_DIR`, as
//! `.ci/run` prepares it, else `../shared/data`), cut half-way and resumed, and corrupted.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use datasets::checksum::{Checksum, digests_file, md5_bytes};
use datasets::cifar::VERIFIED_MARKER;
use datasets::download::{FetchOptions, download, part_path};
use datasets::synthetic::small_cifar10_archive;
use datasets::test_server::{serve, serve_many, shared_data_file};
use datasets::{Cifar, CifarSpec, DatasetError, LoadOptions, Verify};

/// Fast retries, no progress bar.
fn fetch() -> FetchOptions {
    FetchOptions {
        progress: false,
        retries: 3,
        retry_pause: Duration::from_millis(10),
    }
}

fn setup(variant: &str) -> (CifarSpec, tempfile::TempDir) {
    let (mut spec, bytes) = small_cifar10_archive(25, 10, 3).unwrap();
    let server = serve(Arc::new(bytes));
    spec.url = format!("{}/{variant}/{}", server.base, spec.archive_name);
    (spec, tempfile::tempdir().unwrap())
}

fn online() -> LoadOptions {
    LoadOptions {
        allow_download: true,
        progress: false,
        fetch: fetch(),
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
    assert!(msg.contains("Fix: run again to resume"), "{msg}");
    let archive = dir.path().join(&spec.archive_name);
    assert!(!archive.exists());
    assert!(!dir.path().join(&spec.dir_name).exists());
    // What arrived is kept for resuming, and never more than the server sent.
    let part = part_path(&archive);
    assert!(part.is_file(), "the partial file is kept for resuming");
    assert!(msg.contains(&part.display().to_string()), "{msg}");
}

#[test]
fn corrupt_download_fails_archive_md5() {
    let (spec, dir) = setup("corrupt");
    let err = Cifar::load(&spec, dir.path(), &online()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DatasetError::DownloadChecksum { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("is corrupt") && msg.contains("cifar-10-binary.tar.gz"),
        "{msg}"
    );
    assert!(msg.contains("Fix:"), "{msg}");
    assert_nothing_left(&spec, dir.path());
}

#[test]
fn corrupt_download_without_archive_md5_fails_extraction_and_is_removed() {
    let (mut spec, dir) = setup("corrupt");
    spec.archive_checksums.clear();
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
    assert!(msg.contains("--offline"), "{msg}");
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

/// A body of `n` bytes that is not all alike.
fn some_bytes(n: usize) -> Arc<Vec<u8>> {
    Arc::new((0..n).map(|i| (i * 31 % 251) as u8).collect())
}

#[test]
fn connection_cut_half_way_is_resumed_with_a_range_request() {
    let body = some_bytes(300_000);
    let server = serve(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.bin");
    let accept = [Checksum::Md5(md5_bytes(&body))];
    download(
        &format!("{}/cut/f.bin", server.base),
        &dest,
        &accept,
        &fetch(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *body);
    assert!(!part_path(&dest).exists());
    assert_eq!(server.ranges(), ["-", "bytes=150000-"]);
}

#[test]
fn server_without_range_support_restarts_from_zero() {
    let body = some_bytes(200_000);
    let server = serve(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.bin");
    let accept = [Checksum::Md5(md5_bytes(&body))];
    download(
        &format!("{}/norange/f.bin", server.base),
        &dest,
        &accept,
        &fetch(),
    )
    .unwrap();
    // The second request asked for the rest, got the whole file, and wrote it from the start.
    assert_eq!(server.ranges(), ["-", "bytes=100000-"]);
    assert_eq!(std::fs::read(&dest).unwrap(), *body);
}

#[test]
fn complete_part_file_is_verified_and_kept() {
    // A crash between the last byte and the rename leaves a complete `.part`: the server
    // answers 416 to the range request, and the file is checked and renamed.
    let body = some_bytes(50_000);
    let server = serve(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.bin");
    std::fs::write(part_path(&dest), &*body).unwrap();
    let accept = [Checksum::Md5(md5_bytes(&body))];
    download(
        &format!("{}/complete/f.bin", server.base),
        &dest,
        &accept,
        &fetch(),
    )
    .unwrap();
    assert_eq!(server.ranges(), ["bytes=50000-"]);
    assert_eq!(std::fs::read(&dest).unwrap(), *body);
    // A `.part` that does not belong to this file (longer than it) is thrown away.
    std::fs::remove_file(&dest).unwrap();
    std::fs::write(part_path(&dest), vec![7u8; 60_000]).unwrap();
    download(
        &format!("{}/complete/f.bin", server.base),
        &dest,
        &accept,
        &fetch(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *body);
}

/// The real CIFAR-10 archive of the shared data, read once; `None` (the test prints
/// "skipped") when it is not there.
fn real_archive() -> Option<(PathBuf, Arc<Vec<u8>>)> {
    static BODY: OnceLock<Option<(PathBuf, Arc<Vec<u8>>)>> = OnceLock::new();
    BODY.get_or_init(|| {
        let path = shared_data_file("cifar-10-binary.tar.gz")?;
        let bytes = std::fs::read(&path).ok()?;
        Some((path, Arc::new(bytes)))
    })
    .clone()
}

/// The real archive, cut half-way: the first run stops with the half kept in `.part`; the
/// next run resumes it with a range request, checks the archive's known checksum,
/// extracts and verifies all six files.
#[test]
fn real_archive_cut_half_way_then_resumed_by_the_next_run() {
    let Some((path, body)) = real_archive() else {
        return;
    };
    let server = serve(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut spec = CifarSpec::cifar10();
    spec.url = format!("{}/cut/{}", server.base, spec.archive_name);
    let once = LoadOptions {
        fetch: FetchOptions {
            retries: 0,
            ..fetch()
        },
        ..online()
    };
    let t = Instant::now();
    let err = Cifar::prepare(&spec, dir.path(), &once).unwrap_err();
    assert!(
        matches!(err, DatasetError::IncompleteDownload { got, expected, .. } if got == expected / 2),
        "{err}"
    );
    let archive = dir.path().join(&spec.archive_name);
    assert!(!archive.exists() && !dir.path().join(&spec.dir_name).exists());
    assert_eq!(
        std::fs::metadata(part_path(&archive)).unwrap().len(),
        body.len() as u64 / 2
    );

    let d = Cifar::prepare(&spec, dir.path(), &once).unwrap();
    assert_eq!(
        server.ranges(),
        ["-".to_string(), format!("bytes={}-", body.len() / 2)]
    );
    assert!(d.join(VERIFIED_MARKER).is_file());
    assert!(!part_path(&archive).exists());
    let known = digests_file(&archive, &spec.archive_checksums).unwrap();
    assert_eq!(known, digests_file(&path, &spec.archive_checksums).unwrap());
    eprintln!(
        "{} MB served twice (half + rest), checked, extracted and verified in {:.1?}",
        body.len() / 1_000_000,
        t.elapsed()
    );
}

/// The real archive with a few bytes flipped: the known checksums reject it before any
/// extraction, and nothing is left (no archive, no `.part`, no dataset directory).
#[test]
fn real_archive_corrupted_in_transit_fails_the_checksum_and_leaves_nothing() {
    let Some((_, body)) = real_archive() else {
        return;
    };
    let server = serve(body);
    let dir = tempfile::tempdir().unwrap();
    let mut spec = CifarSpec::cifar10();
    spec.url = format!("{}/corrupt/{}", server.base, spec.archive_name);
    let err = Cifar::prepare(&spec, dir.path(), &online()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DatasetError::DownloadChecksum { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("matches none of the known checksums")
            && msg.contains("c32a1d4ab5d03f1284b67883e8d87530")
            && msg.contains("Fix:"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing may be left behind"
    );
}

/// `ensure_ptb_from` fetches the three real PTB files (served from the shared data), each
/// checked against its published MD5, and `Corpus::ptb` then reads them; a second call
/// fetches nothing; offline, a missing file is a clear error naming where it goes.
#[test]
fn ptb_is_fetched_verified_and_loads() {
    let Some(train) = shared_data_file("ptb/ptb.train.txt") else {
        return;
    };
    let src = train.parent().unwrap();
    let files: Vec<(String, Arc<Vec<u8>>)> = datasets::ptb_download::PTB_FILES
        .iter()
        .map(|(n, _)| (n.to_string(), Arc::new(std::fs::read(src.join(n)).unwrap())))
        .collect();
    let server = serve_many(files);
    let dir = tempfile::tempdir().unwrap();
    let offline = LoadOptions::default();
    let msg = datasets::ptb_download::ensure_ptb_from(&server.base, dir.path(), &offline)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&dir.path().join("ptb/ptb.train.txt").display().to_string())
            && msg.contains("--offline"),
        "{msg}"
    );
    let base = format!("{}/cut", server.base);
    let d = datasets::ptb_download::ensure_ptb_from(&base, dir.path(), &online()).unwrap();
    let c = datasets::Corpus::ptb(dir.path()).unwrap();
    assert_eq!((c.vocab.len(), c.train.len()), (10_000, 929_589));
    let requests = server.ranges().len();
    assert!(requests >= 4, "one cut and resumed, two whole: {requests}");
    datasets::ptb_download::ensure_ptb_from(&base, dir.path(), &online()).unwrap();
    assert_eq!(server.ranges().len(), requests, "nothing fetched again");
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 3, "no .part left");
}

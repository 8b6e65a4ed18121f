//! Loading, verification and parsing tests over small synthetic CIFAR files.

use std::fs;
use std::path::Path;

use super::fetch::marker_ok;
use super::*;
use crate::synthetic;

fn small(dir: &Path) -> CifarSpec {
    synthetic::write_small_cifar10(dir, 30, 10, 5).unwrap()
}

fn load_err(spec: &CifarSpec, dir: &Path, verify: Verify) -> String {
    let opts = LoadOptions {
        verify,
        ..LoadOptions::default()
    };
    Cifar::load(spec, dir, &opts).unwrap_err().to_string()
}

#[test]
fn roundtrip_and_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = small(tmp.path());
    let c = Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
    assert_eq!(c.train.len(), 30);
    assert_eq!(c.test.len(), 10);
    assert_eq!(c.train.classes.len(), 10);
    assert!(
        tmp.path()
            .join(&spec.dir_name)
            .join(VERIFIED_MARKER)
            .is_file()
    );
    assert!(marker_ok(&spec, &tmp.path().join(&spec.dir_name)));
}

#[test]
fn missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = small(tmp.path());
    let f = tmp.path().join(&spec.dir_name).join("data_batch_2.bin");
    fs::remove_file(&f).unwrap();
    let msg = load_err(&spec, tmp.path(), Verify::Quick);
    assert!(
        msg.contains("missing file") && msg.contains("data_batch_2.bin"),
        "{msg}"
    );
    assert!(msg.contains("Fix: delete"), "{msg}");
}

#[test]
fn wrong_size_and_truncated_record() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = small(tmp.path());
    let f = tmp.path().join(&spec.dir_name).join("data_batch_3.bin");
    let bytes = fs::read(&f).unwrap();
    fs::write(&f, &bytes[..bytes.len() - 3073]).unwrap();
    let msg = load_err(&spec, tmp.path(), Verify::Quick);
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("expected"),
        "{msg}"
    );
    assert!(msg.contains("Fix: delete"), "{msg}");
    fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    let msg = load_err(&spec, tmp.path(), Verify::Quick);
    assert!(msg.contains("data_batch_3.bin is truncated"), "{msg}");
    assert!(msg.contains("Fix: delete"), "{msg}");
}

#[test]
fn label_out_of_range() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = small(tmp.path());
    let f = tmp.path().join(&spec.dir_name).join("test_batch.bin");
    let mut bytes = fs::read(&f).unwrap();
    bytes[3073 * 2] = 10;
    fs::write(&f, &bytes).unwrap();
    let msg = load_err(&spec, tmp.path(), Verify::Quick);
    assert!(
        msg.contains("test_batch.bin") && msg.contains("record 2"),
        "{msg}"
    );
    assert!(msg.contains("label 10"), "{msg}");
    assert!(msg.contains("Fix: delete"), "{msg}");
}

#[test]
fn bad_checksum_detected_only_when_asked_after_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = small(tmp.path());
    // First load verifies and writes the marker.
    Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
    let f = tmp.path().join(&spec.dir_name).join("data_batch_1.bin");
    let mut bytes = fs::read(&f).unwrap();
    bytes[5000] ^= 0xFF;
    fs::write(&f, &bytes).unwrap();
    // Marker present: Auto trusts sizes.
    Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
    let msg = load_err(&spec, tmp.path(), Verify::Full);
    assert!(
        msg.contains("bad checksum for") && msg.contains("data_batch_1.bin"),
        "{msg}"
    );
    assert!(msg.contains("Fix: delete"), "{msg}");
}

#[test]
fn not_found_offline_says_where_to_put_it() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = Cifar::cifar10(tmp.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");
    assert!(
        msg.contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
        "{msg}"
    );
    assert!(msg.contains("allow_download"), "{msg}");
}

#[test]
fn cifar100_records() {
    let set = synthetic::synthetic_images(6, 2);
    let mut with_coarse = set.clone();
    with_coarse.coarse_labels = Some(set.labels.iter().map(|l| l % 20).collect());
    let bytes = with_coarse.to_records();
    let p = parse_records(&bytes, Layout::Cifar100, 100, Path::new("train.bin")).unwrap();
    assert_eq!(p.coarse_labels, with_coarse.coarse_labels);
    assert_eq!(p.images, set.images);
    let mut bad = bytes.clone();
    bad[3074] = 25;
    let msg = parse_records(&bad, Layout::Cifar100, 100, Path::new("train.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("train.bin") && msg.contains("coarse label 25"),
        "{msg}"
    );
}

#[test]
fn cifar100_load_from_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = CifarSpec::cifar100();
    spec.train_files[0].records = 8;
    spec.test_files[0].records = 4;
    let dir = tmp.path().join(&spec.dir_name);
    fs::create_dir_all(&dir).unwrap();
    for (f, n) in [("train.bin", 8), ("test.bin", 4)] {
        let mut s = synthetic::synthetic_images(n, 9);
        s.coarse_labels = Some(s.labels.clone());
        fs::write(dir.join(f), s.to_records()).unwrap();
    }
    let c = Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
    assert_eq!(c.train.len(), 8);
    assert_eq!(c.test.coarse_labels.as_ref().map(Vec::len), Some(4));
}

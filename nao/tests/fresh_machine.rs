//! A fresh machine: `nao train` fetches a missing CIFAR-10 by itself (here from a loopback
//! server given by `NAO_CIFAR10_URL`, serving the real archive of the shared data and
//! cutting the first connection half-way), `--offline` never touches the network, and
//! `nao train --dataset cifar100` trains on CIFAR-100 files in the real binary format
//! (generated: there is no real copy here).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use datasets::test_server::{Server, serve, shared_data_file};

const BIN: &str = env!("CARGO_BIN_EXE_nao");
/// A valid `cnn-ws` cell (flat form).
const ARCH: &str =
    "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Serves `body` on 127.0.0.1 with `Range: bytes=N-` support; the first connection gets
/// half the body and is closed. Returns the server and the archive's URL on it.
fn serve_cut(body: Vec<u8>) -> (Server, String) {
    let server = serve(Arc::new(body));
    let url = format!("{}/cut/mirror/cifar-10-binary.tar.gz", server.base);
    (server, url)
}

fn real_archive() -> Option<Vec<u8>> {
    std::fs::read(shared_data_file("cifar-10-binary.tar.gz")?).ok()
}

fn train(data: &Path, url: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["train", "--arch", ARCH, "--recipe", "smoke"])
        .args([
            "--train-images",
            "256",
            "--eval-images",
            "500",
            "--n",
            "1",
            "--f",
            "4",
        ])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env("NAO_CIFAR10_URL", url)
        .env_remove("NAO_DATA_DIR")
        .output()
        .unwrap()
}

#[test]
fn train_downloads_missing_cifar10_resuming_a_cut_connection_and_offline_never_connects() {
    let Some(body) = real_archive() else { return };
    let (server, url) = serve_cut(body);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    let o = train(&data, &url, &["--offline", "--epochs", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&data.join("cifar-10-binary.tar.gz").display().to_string())
            && e.contains(&url)
            && e.contains("--offline"),
        "{e}"
    );
    assert!(server.ranges().is_empty(), "--offline touched the network");
    assert!(!data.exists(), "--offline created {}", data.display());

    let o = train(&data, &url, &["--epochs", "1"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    // stderr is a pipe here: plain lines, no progress bars.
    assert!(
        e.contains("downloading cifar-10-binary.tar.gz (170.0 MB)")
            && e.contains("resuming at 85.0 MB")
            && e.contains("verifying"),
        "{e}"
    );
    assert!(
        !e.contains('\r'),
        "a progress bar was drawn into a pipe: {e}"
    );
    // One plain line per epoch, with the best so far and the times.
    assert!(
        e.contains("epoch   1/1 ")
            && e.contains("| best eval acc ")
            && e.contains("| remaining ~0 s"),
        "{e}"
    );
    assert_eq!(server.ranges().len(), 2, "one cut, one resumed");
    assert_eq!(server.ranges()[1], "bytes=85018600-");
    assert!(data.join("cifar-10-batches-bin/.verified").is_file());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("test accuracy"), "{out}");

    // The second run finds the data and fetches nothing.
    let o = train(&data, &url, &["--epochs", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.ranges().len(), 2);
}

/// Writes `cifar-100-binary/{train,test}.bin` in the real format (3074-byte records:
/// coarse label, fine label, 3072 pixels; 50,000 and 10,000 records). Fine labels cycle
/// through 0..100 and the pixels carry the label, so that even a tiny network learns a bit.
fn write_cifar100(dir: &Path) {
    let d = dir.join("cifar-100-binary");
    std::fs::create_dir_all(&d).unwrap();
    for (name, n) in [("train.bin", 50_000usize), ("test.bin", 10_000)] {
        let mut bytes = Vec::with_capacity(n * 3074);
        for i in 0..n {
            let fine = (i * 7 % 100) as u8;
            bytes.push(fine / 5);
            bytes.push(fine);
            let base = fine.wrapping_mul(37);
            bytes.extend((0..3072).map(|p| base.wrapping_add((p % 29) as u8 ^ (i % 13) as u8)));
        }
        std::fs::write(d.join(name), bytes).unwrap();
    }
}

#[test]
fn train_on_cifar100_uses_fine_labels_and_100_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_cifar100(&data);
    // --out in a folder that does not exist yet: made before the training starts.
    let report = tmp.path().join("sub/r.json");
    let o = Command::new(BIN)
        .args([
            "train",
            "--dataset",
            "cifar100",
            "--arch",
            ARCH,
            "--recipe",
            "smoke",
        ])
        .args([
            "--epochs",
            "1",
            "--train-images",
            "256",
            "--eval-images",
            "300",
        ])
        .args(["--n", "1", "--f", "4"])
        .args(["--offline", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("on CIFAR-100"), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["report"]["config"]["classes"], 100);
    assert_eq!(v["dataset"], "cifar100");
    assert_eq!(
        (v["dev_images"].as_u64(), v["test_images"].as_u64()),
        (Some(300), Some(300))
    );
    let acc = v["test_acc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{v}");
    // The training curve (one line per epoch) and the cell drawing beside the report.
    let curve = std::fs::read_to_string(tmp.path().join("sub/r-curve.jsonl")).unwrap();
    assert_eq!(curve.lines().count(), 1, "{curve}");
    let line: serde_json::Value = serde_json::from_str(curve.lines().next().unwrap()).unwrap();
    assert_eq!(line["epoch"], 1);
    assert!(line["train_loss"].as_f64().unwrap().is_finite());
    for f in ["r-curve.svg", "r-cell.svg"] {
        let svg = std::fs::read_to_string(tmp.path().join("sub").join(f)).unwrap();
        assert!(svg.starts_with("<svg"), "{f}");
    }
    assert!(String::from_utf8_lossy(&o.stdout).contains("r-curve.svg"));

    // CIFAR-100 missing and --offline: says where to put it, names the CIFAR-100 archive.
    let o = Command::new(BIN)
        .args([
            "train",
            "--dataset",
            "cifar100",
            "--arch",
            ARCH,
            "--offline",
            "--data-dir",
        ])
        .arg(tmp.path().join("empty"))
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("cifar-100-binary.tar.gz"),
        "{}",
        stderr(&o)
    );
}

/// `nao cifar --final-dataset cifar100` on a run whose search has finished: the found
/// cells train on CIFAR-100 (generated files, real format), CIFAR-10 is not needed any
/// more, and `final.json` / `report.md` say which dataset the test accuracy is on.
#[test]
fn cifar_final_dataset_cifar100_retrains_the_found_cell() {
    use models::space::{SpaceKind, space};
    use nao::search::{Record, Source, Status};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_cifar100(&data);
    // A finished `nao cifar --preset smoke` search, as it leaves its output directory.
    let out = tmp.path().join("run");
    std::fs::create_dir_all(out.join("search")).unwrap();
    let preset = nao::cifar::CifarPreset::get("smoke").unwrap();
    std::fs::write(
        out.join("cifar.json"),
        serde_json::to_string_pretty(&preset).unwrap(),
    )
    .unwrap();
    let s = space(SpaceKind::CnnWs);
    let arch = s.from_text(ARCH).unwrap();
    let rec = |index: usize, round: usize, score: f64| Record {
        index,
        round,
        source: Source::Random,
        text: s.to_text(&arch),
        canonical: s.canonical(&arch),
        arch: arch.clone(),
        status: Status::Ok,
        error: None,
        score: Some(score),
        metrics: Default::default(),
        extras: None,
        predicted: None,
        eta: None,
        parent: None,
    };
    let lines: String = [rec(0, 0, 41.0), rec(1, 1, 43.0)]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(out.join("search/archs.jsonl"), lines).unwrap();
    std::fs::write(out.join("search/result.json"), "{}").unwrap();

    let o = Command::new(BIN)
        .args([
            "cifar",
            "--preset",
            "smoke",
            "--resume",
            "--final-dataset",
            "cifar100",
        ])
        .args(["--offline", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("on CIFAR-100"), "{}", stderr(&o));
    let fin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("final.json")).unwrap()).unwrap();
    let rows = fin["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{fin}");
    for r in rows {
        assert_eq!(r["dataset"], "cifar100", "{fin}");
        assert!(
            (0.0..=100.0).contains(&r["test_acc"].as_f64().unwrap()),
            "{fin}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| CIFAR-100 |"), "{md}");
    // The curve of the one final training (the random pool's best is the same cell).
    assert!(
        md.contains("![best training curve](best-cifar100-curve.svg)"),
        "{md}"
    );
    let curve = std::fs::read_to_string(out.join("best-cifar100-curve.jsonl")).unwrap();
    assert_eq!(curve.lines().count(), preset.final_recipe.epochs);
    assert!(
        std::fs::read_to_string(out.join("best-cifar100-curve.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    assert!(out.join("best.svg").is_file());
}

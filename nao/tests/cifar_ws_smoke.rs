//! `nao cifar --ws --preset smoke` end to end on real CIFAR-10 (reads NAO_DATA_DIR; CI sets
//! it): a supernet trained on real images, the pool scored and replaced, final training of
//! the best cell and of the random pool's best; the same seed writes the same search bytes;
//! `--resume` of the finished run redoes nothing.

use std::path::Path;
use std::process::Command;

#[test]
fn ws_smoke_preset_runs_end_to_end_on_real_cifar10() {
    let Ok(data) = std::env::var("NAO_DATA_DIR") else {
        eprintln!("skipped: NAO_DATA_DIR not set");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_nao"))
            .args(["cifar", "--ws", "--preset", "smoke", "--data-dir", &data])
            .args(["--seed", "1", "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let stdout = run(&a, &[]);
    assert!(
        stdout.contains("best") && stdout.contains("test"),
        "{stdout}"
    );
    let fin: serde_json::Value = serde_json::from_str(&read(&a.join("final.json"))).unwrap();
    let results = fin["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{fin}");
    for r in results {
        let acc = r["test_acc"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&acc), "{r}");
    }
    // 2 rounds x a pool of 8 scores.
    let archs = read(&a.join("search/archs.jsonl"));
    assert_eq!(archs.lines().count(), 16);
    assert!(read(&a.join("search/report.md")).contains("## Rounds"));
    assert!(read(&a.join("report.md")).contains("random-best"));
    assert!(read(&a.join("best.svg")).starts_with("<svg"));
    run(&b, &[]);
    for f in [
        "search/archs.jsonl",
        "search/rounds.jsonl",
        "search/result.json",
    ] {
        assert_eq!(
            read(&a.join(f)),
            read(&b.join(f)),
            "{f} differs between equal seeds"
        );
    }
    let before = read(&a.join("final.json"));
    run(&a, &["--resume"]);
    assert_eq!(read(&a.join("final.json")), before);
}

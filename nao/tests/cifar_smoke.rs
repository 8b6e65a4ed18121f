//! `nao cifar --preset smoke` end to end on real CIFAR-10 (reads NAO_DATA_DIR; CI sets it):
//! a search whose children really train, final training of the best cell and of the random
//! pool's best, test accuracies, the report; then `--resume` of the finished run redoes
//! nothing.

use std::path::Path;
use std::process::Command;

#[test]
fn smoke_preset_runs_end_to_end_on_real_cifar10() {
    let Ok(data) = std::env::var("NAO_DATA_DIR") else {
        eprintln!("skipped: NAO_DATA_DIR not set");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_nao"))
            .args([
                "cifar",
                "--preset",
                "smoke",
                "--data-dir",
                &data,
                "--seed",
                "1",
                "--out",
            ])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let stdout = run(&[]);
    assert!(
        stdout.contains("best") && stdout.contains("test"),
        "{stdout}"
    );
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let fin: serde_json::Value = serde_json::from_str(&read(&out.join("final.json"))).unwrap();
    let results = fin["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{fin}");
    for r in results {
        let acc = r["test_acc"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&acc), "{r}");
    }
    let archs = read(&out.join("search/archs.jsonl"));
    assert_eq!(archs.lines().count(), 8);
    assert!(read(&out.join("report.md")).contains("random-best"));
    assert!(read(&out.join("best.svg")).starts_with("<svg"));
    // Resuming a finished run changes nothing.
    let before = read(&out.join("final.json"));
    run(&["--resume"]);
    assert_eq!(read(&out.join("final.json")), before);
}

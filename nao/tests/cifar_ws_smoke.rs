//! `nao cifar --ws --preset smoke` end to end on real CIFAR-10 (reads NAO_DATA_DIR; CI sets
//! it): a supernet trained on real images, the pool scored and replaced, final training of
//! the best cell and of the random pool's best, the ranking study (final-pool cells trained
//! stand-alone: `ranking.json`, `ranking.svg`, a report section); the same seed writes the
//! same search bytes; `--eval-batches 2` is recorded with the preset and changes the scores;
//! `--resume` of the finished run redoes nothing, and a resume after a ranking row was lost
//! retrains only that one, to the same accuracy.

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
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (stdout, stderr) = run(&a, &[]);
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
    // The ranking study: 3 cells of the final pool (ranks 1, 4, 8 of 8).
    assert_eq!(
        stderr.matches("stand-alone training of pool rank").count(),
        3,
        "{stderr}"
    );
    let ranking_text = read(&a.join("ranking.json"));
    let ranking: serde_json::Value = serde_json::from_str(&ranking_text).unwrap();
    let rows = ranking["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{ranking}");
    let ranks: Vec<u64> = rows
        .iter()
        .map(|r| r["pool_rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, [1, 4, 8]);
    for r in rows {
        for k in ["supernet_score", "dev_acc"] {
            let x = r[k].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..=100.0).contains(&x), "{k}: {r}");
        }
    }
    let tau = ranking["kendall_tau"].as_f64().expect("a Kendall tau");
    assert!((-1.0..=1.0).contains(&tau), "{ranking}");
    let svg = read(&a.join("ranking.svg"));
    assert!(svg.starts_with("<svg") && svg.matches("<circle").count() == 3);
    let report = read(&a.join("report.md"));
    assert!(
        report.contains("## Does sharing rank well?")
            && report.contains(&format!("**{tau:.3}**"))
            && report.contains("(ranking.svg)"),
        "{report}"
    );
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
    // --eval-batches: recorded with the preset, and the scores average two dev batches.
    let c = tmp.path().join("c");
    run(&c, &["--eval-batches", "2"]);
    let preset: serde_json::Value = serde_json::from_str(&read(&c.join("cifar-ws.json"))).unwrap();
    assert_eq!(preset["train"]["eval_batches"], 2, "{preset}");
    assert_ne!(
        read(&a.join("search/archs.jsonl")),
        read(&c.join("search/archs.jsonl")),
        "scores on two batches equal those on one"
    );
    let before = read(&a.join("final.json"));
    let (_, stderr) = run(&a, &["--resume"]);
    assert_eq!(read(&a.join("final.json")), before);
    assert_eq!(read(&a.join("ranking.json")), ranking_text);
    assert!(
        !stderr.contains("stand-alone training of pool rank"),
        "{stderr}"
    );
    // A run killed before its last ranking row was written: the resume trains that one only.
    let mut cut = ranking.clone();
    cut["rows"].as_array_mut().unwrap().pop();
    std::fs::write(a.join("ranking.json"), cut.to_string()).unwrap();
    let (_, stderr) = run(&a, &["--resume"]);
    assert_eq!(
        stderr.matches("stand-alone training of pool rank").count(),
        1,
        "{stderr}"
    );
    let again: serde_json::Value = serde_json::from_str(&read(&a.join("ranking.json"))).unwrap();
    assert_eq!(again["rows"].as_array().unwrap()[..2], rows[..2]);
    let (x, y) = (&again["rows"][2], &ranking["rows"][2]);
    assert_eq!((&x["arch"], &x["dev_acc"]), (&y["arch"], &y["dev_acc"]));
}

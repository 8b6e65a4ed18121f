//! `nao ptb` and `nao train --task lm` end to end.
//!
//! * The language-model tests run on a generated corpus (a temporary data directory).
//! * `nao ptb --preset smoke` and `nao ptb --ws --preset smoke` run on the real PTB files in `NAO_DATA_DIR/ptb/` (`.ci/run`
//!   copies them there). With `NAO_DATA_DIR` set the files must be there; without it the
//!   test prints "skipped", unless `CI` is set, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nao");

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |s| s.matches('\n').count())
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// A data directory with a generated PTB-shaped corpus (`ptb/ptb.*.txt`, 50 words, each
/// line a run of words with a fixed step, so the next word is learnable).
fn fake_ptb(dir: &Path) -> PathBuf {
    let ptb = dir.join("ptb");
    std::fs::create_dir_all(&ptb).unwrap();
    let text = |lines: std::ops::Range<usize>| -> String {
        lines
            .map(|i| {
                let w: Vec<String> = (0..12)
                    .map(|j| format!("w{}", (i * 7 + j * 3) % 50))
                    .collect();
                w.join(" ") + "\n"
            })
            .collect()
    };
    std::fs::write(ptb.join("ptb.train.txt"), text(0..3000)).unwrap();
    std::fs::write(ptb.join("ptb.valid.txt"), text(3000..3300)).unwrap();
    std::fs::write(ptb.join("ptb.test.txt"), text(3300..3600)).unwrap();
    dir.to_path_buf()
}

fn lm_cmd(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data)
        .args(["train", "--task", "lm", "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

const LM_ARGS: [&str; 8] = [
    "--arch", "enas", "--recipe", "smoke", "--epochs", "12", "--seed", "2",
];

/// `--task lm` trains a named cell with a named recipe and `--epochs`, one row per epoch
/// with valid and test perplexity; the same seed gives the same bytes; a run killed with
/// SIGKILL and continued with `--resume` ends exactly like the uninterrupted one.
#[test]
fn lm_training_is_deterministic_and_resumes_after_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fake_ptb(tmp.path());
    let a = tmp.path().join("a");
    let stdout = ok(lm_cmd(&data, &a, &LM_ARGS).output().unwrap());
    assert!(stdout.contains("test ppl"), "{stdout}");
    let cfg: serde_json::Value = serde_json::from_str(&read(&a.join("lm.json"))).unwrap();
    assert_eq!(cfg["arch_name"], "enas");
    assert_eq!(cfg["data"], "ptb");
    assert_eq!(cfg["recipe"]["name"], "smoke-12ep");
    assert_eq!(cfg["recipe"]["train"]["epochs"], 12);
    let rows: Vec<serde_json::Value> = read(&a.join("epochs.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 12);
    for r in &rows {
        for k in ["train_ppl", "valid_ppl", "test_ppl"] {
            let v = r[k].as_f64().unwrap();
            assert!(v.is_finite() && v > 1.0, "{r}");
        }
    }
    assert!(
        rows[11]["valid_ppl"].as_f64() < rows[0]["valid_ppl"].as_f64(),
        "it learns: {rows:?}"
    );
    assert!(read(&a.join("cell.svg")).starts_with("<svg"));

    // A second directory without --resume refuses an existing run.
    let again = lm_cmd(&data, &a, &LM_ARGS).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    // Killed after two epochs, then resumed.
    let b = tmp.path().join("b");
    let mut child = lm_cmd(&data, &b, &LM_ARGS).spawn().unwrap();
    let start = Instant::now();
    while lines(&b.join("epochs.jsonl")) < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines(&b.join("epochs.jsonl")) < 12, "killed too late");
    assert!(!b.join("result.json").exists());
    ok(lm_cmd(&data, &b, &["--resume"]).output().unwrap());
    assert_eq!(read(&a.join("epochs.jsonl")), read(&b.join("epochs.jsonl")));
    assert_eq!(read(&a.join("lm.json")), read(&b.join("lm.json")));
    let result = |d: &Path| {
        let mut v: serde_json::Value = serde_json::from_str(&read(&d.join("result.json"))).unwrap();
        v.as_object_mut().unwrap().remove("train_seconds");
        v
    };
    assert_eq!(result(&a), result(&b));
}

/// `--data wikitext2` reads `wikitext-2/wiki.*.tokens`; without them the error says where
/// to put them.
#[test]
fn lm_training_on_wikitext2_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let args = [
        "--arch",
        "darts-v2",
        "--recipe",
        "smoke",
        "--data",
        "wikitext2",
    ];
    let missing = lm_cmd(&data, &tmp.path().join("x"), &args)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains(&data.join("wikitext-2").display().to_string())
            && err.contains("wiki.valid.tokens"),
        "{err}"
    );
    // Generated WikiText-2-shaped files (headings, blank lines, <unk>).
    let wt = data.join("wikitext-2");
    std::fs::create_dir_all(&wt).unwrap();
    let text: String = (0..2500)
        .map(|i| {
            if i % 50 == 0 {
                format!(" = Heading {} = \n\n", i / 50)
            } else {
                format!(
                    " w{} w{} <unk> w{} , w{} . \n",
                    i % 97,
                    i % 13,
                    i % 31,
                    i % 7
                )
            }
        })
        .collect();
    for split in ["train", "valid", "test"] {
        std::fs::write(wt.join(format!("wiki.{split}.tokens")), &text).unwrap();
    }
    let out = tmp.path().join("wt2");
    ok(lm_cmd(&data, &out, &args).output().unwrap());
    let cfg: serde_json::Value = serde_json::from_str(&read(&out.join("lm.json"))).unwrap();
    assert_eq!(cfg["data"], "wikitext2");
    assert_eq!(cfg["arch_name"], "darts-v2");
    let res: serde_json::Value = serde_json::from_str(&read(&out.join("result.json"))).unwrap();
    assert!(res["test_ppl"].as_f64().unwrap().is_finite(), "{res}");
}

/// The real PTB data directory, or `None` (skip) outside CI.
fn real_ptb() -> Option<PathBuf> {
    match std::env::var_os("NAO_DATA_DIR").filter(|d| !d.is_empty()) {
        Some(d) => {
            let d = PathBuf::from(d);
            assert!(
                d.join("ptb/ptb.train.txt").is_file(),
                "NAO_DATA_DIR={} has no ptb/ptb.train.txt (.ci/run copies PTB there)",
                d.display()
            );
            Some(d)
        }
        None if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            panic!("CI is set but NAO_DATA_DIR is not: the PTB smoke test needs the real files")
        }
        None => {
            eprintln!("skipped: NAO_DATA_DIR not set");
            None
        }
    }
}

fn ptb_cmd(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data)
        .args(["ptb", "--preset", "smoke", "--seed", "1", "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `nao ptb --preset smoke` on the real PTB files: the search's children really train, the
/// best cell, the random pool's best, DARTS V2 and ENAS train with the final recipe and get
/// test perplexities, the report has the predictor's ranking per round. A second run with
/// the same seed, killed with SIGKILL during the search and resumed, writes the same
/// search log and the same perplexities; resuming a finished run redoes nothing.
#[test]
fn ptb_smoke_preset_end_to_end_on_real_ptb() {
    let Some(data) = real_ptb() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let stdout = ok(ptb_cmd(&data, &a, &[]).output().unwrap());
    assert!(stdout.contains("test ppl"), "{stdout}");
    assert_eq!(lines(&a.join("search/archs.jsonl")), 8);
    let fin: serde_json::Value = serde_json::from_str(&read(&a.join("final.json"))).unwrap();
    let roles: Vec<&str> = fin["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["best", "random-best", "darts-v2", "enas"]);
    for r in fin["results"].as_array().unwrap() {
        let t = r["test_ppl"].as_f64().unwrap();
        // A barely trained model, but better than uniform over the 10,000 words.
        assert!(t.is_finite() && t > 1.0 && t < 10_000.0, "{r}");
    }
    let report = read(&a.join("report.md"));
    assert!(report.contains("held-out pairwise acc"), "{report}");
    assert!(report.contains("| 2 |"), "a row for round 2: {report}");
    for role in roles {
        assert!(read(&a.join(format!("{role}.svg"))).starts_with("<svg"));
    }

    let b = tmp.path().join("b");
    let mut child = ptb_cmd(&data, &b, &[]).spawn().unwrap();
    let start = Instant::now();
    while lines(&b.join("search/archs.jsonl")) < 5 {
        assert!(start.elapsed() < Duration::from_secs(300), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    ok(ptb_cmd(&data, &b, &["--resume"]).output().unwrap());
    assert_eq!(
        read(&a.join("search/archs.jsonl")),
        read(&b.join("search/archs.jsonl"))
    );
    for role in ["best", "darts-v2"] {
        let f = format!("final/{role}/epochs.jsonl");
        assert_eq!(read(&a.join(&f)), read(&b.join(&f)), "{f}");
    }
    let before = read(&a.join("final.json"));
    ok(ptb_cmd(&data, &a, &["--resume"]).output().unwrap());
    assert_eq!(read(&a.join("final.json")), before);
}

fn ptb_ws_cmd(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = ptb_cmd(data, out, extra);
    c.arg("--ws");
    c
}

/// `nao ptb --ws --preset smoke` on the real PTB files: the RNN supernet trains on the
/// real stream, the pool is scored twice (6 cells, 2 replaced), the final cells train and
/// get test perplexities, the report has a row per round. A second run with the same seed,
/// killed with SIGKILL during the search and resumed, writes the same search bytes and the
/// same final perplexities; resuming a finished run redoes nothing.
#[test]
fn ptb_ws_smoke_preset_end_to_end_on_real_ptb() {
    let Some(data) = real_ptb() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let stdout = ok(ptb_ws_cmd(&data, &a, &[]).output().unwrap());
    assert!(stdout.contains("test ppl"), "{stdout}");
    // 2 evaluations of a pool of 6.
    assert_eq!(lines(&a.join("search/archs.jsonl")), 12);
    let cfg: serde_json::Value = serde_json::from_str(&read(&a.join("ptb-ws.json"))).unwrap();
    assert_eq!(cfg["name"], "smoke");
    let fin: serde_json::Value = serde_json::from_str(&read(&a.join("final.json"))).unwrap();
    let results = fin["results"].as_array().unwrap();
    let roles: Vec<&str> = results
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["best", "random-best", "darts-v2", "enas"]);
    for r in results {
        let t = r["test_ppl"].as_f64().unwrap();
        assert!(t.is_finite() && t > 1.0 && t < 10_000.0, "{r}");
    }
    for r in &results[..2] {
        let p = r["search_valid_ppl"].as_f64().unwrap();
        assert!(p.is_finite() && p > 1.0, "a supernet chunk perplexity: {r}");
    }
    let report = read(&a.join("report.md"));
    assert!(report.contains("stability tau"), "{report}");
    assert!(report.contains("| 1 | 2 |"), "a row for round 1: {report}");
    assert!(read(&a.join("search/report.md")).contains("## Rounds"));
    for role in roles {
        assert!(read(&a.join(format!("{role}.svg"))).starts_with("<svg"));
    }

    let b = tmp.path().join("b");
    let mut child = ptb_ws_cmd(&data, &b, &[]).spawn().unwrap();
    let start = Instant::now();
    while lines(&b.join("search/archs.jsonl")) < 1 {
        assert!(start.elapsed() < Duration::from_secs(300), "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    ok(ptb_ws_cmd(&data, &b, &["--resume"]).output().unwrap());
    for f in [
        "search/archs.jsonl",
        "search/rounds.jsonl",
        "search/result.json",
        "final/best/epochs.jsonl",
        "final/enas/epochs.jsonl",
    ] {
        assert_eq!(read(&a.join(f)), read(&b.join(f)), "{f}");
    }
    let before = read(&a.join("final.json"));
    ok(ptb_ws_cmd(&data, &a, &["--resume"]).output().unwrap());
    assert_eq!(read(&a.join("final.json")), before);
    // A second run into a finished directory without --resume is refused, nothing changed.
    let o = ptb_ws_cmd(&data, &a, &[]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    assert_eq!(read(&a.join("final.json")), before);
}

//! A run killed with SIGKILL and resumed with `--resume` ends exactly like an uninterrupted
//! run with the same seed; the same seed twice gives byte-identical logs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nao::evaluator::table::synthetic_nb201_csv;

const BIN: &str = env!("CARGO_BIN_EXE_nao");

fn table(dir: &Path) -> PathBuf {
    let p = dir.join("table.csv");
    std::fs::write(&p, synthetic_nb201_csv(7, 0.5)).unwrap();
    p
}

fn search_cmd(table: &Path, algo: &str, seed: u64, out: &Path, delay_ms: u64) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "search",
        "--space",
        "nb201",
        "--metric",
        "valid_acc",
        "--budget",
        "60",
    ])
    .args(["--algo", algo, "--seed", &seed.to_string()])
    .arg("--table")
    .arg(table)
    .arg("--out")
    .arg(out)
    .args(["--eval-delay-ms", &delay_ms.to_string()])
    // the real controller, trained briefly, so its checkpoints are part of what resumes
    .args(["--surrogate", "nao:20"])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

fn run_ok(mut c: Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |s| s.matches('\n').count())
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Kills a run once `archs.jsonl` has `kill_at` lines, resumes it, and compares with an
/// uninterrupted run.
fn kill_and_resume(algo: &str, kill_at: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let t = table(tmp.path());
    let reference = tmp.path().join("reference");
    run_ok(search_cmd(&t, algo, 3, &reference, 0));

    let dir = tmp.path().join("interrupted");
    let mut child = search_cmd(&t, algo, 3, &dir, 25).spawn().unwrap();
    let start = Instant::now();
    while lines(&dir.join("archs.jsonl")) < kill_at {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never got going"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = lines(&dir.join("archs.jsonl"));
    assert!(done < 60, "killed too late ({done} evaluations)");
    assert!(!dir.join("result.json").exists());

    let mut resume = Command::new(BIN);
    resume
        .args(["search", "--resume", "--out"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    run_ok(resume);

    assert_eq!(
        String::from_utf8(read(&dir.join("archs.jsonl"))).unwrap(),
        String::from_utf8(read(&reference.join("archs.jsonl"))).unwrap(),
        "{algo}: archs.jsonl differs after kill at {done} and resume"
    );
    assert_eq!(
        read(&dir.join("result.json")),
        read(&reference.join("result.json"))
    );
    let strip = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(
        strip(&dir.join("rounds.jsonl")),
        strip(&reference.join("rounds.jsonl"))
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("manifest.json"))).unwrap();
    assert_eq!(manifest["invocations"], 2);
    assert_eq!(manifest["status"], "finished");
    assert_eq!(lines(&dir.join("archs.jsonl")), 60);
}

#[test]
fn nao_killed_mid_round_resumes_identically() {
    // 18 initial, then rounds of 6: 25 is inside round 2, after two checkpoints.
    kill_and_resume("nao", 25);
}

#[test]
fn nao_killed_before_first_checkpoint_resumes_identically() {
    kill_and_resume("nao", 5);
}

#[test]
fn evolution_killed_resumes_identically() {
    kill_and_resume("evolution", 27);
}

#[test]
fn random_killed_resumes_identically() {
    kill_and_resume("random", 15);
}

#[test]
fn same_seed_twice_gives_identical_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = table(tmp.path());
    for algo in ["nao", "random", "evolution"] {
        let a = tmp.path().join(format!("{algo}-a"));
        let b = tmp.path().join(format!("{algo}-b"));
        let c = tmp.path().join(format!("{algo}-c"));
        run_ok(search_cmd(&t, algo, 11, &a, 0));
        run_ok(search_cmd(&t, algo, 11, &b, 0));
        run_ok(search_cmd(&t, algo, 12, &c, 0));
        assert_eq!(
            read(&a.join("archs.jsonl")),
            read(&b.join("archs.jsonl")),
            "{algo}"
        );
        assert_eq!(
            read(&a.join("result.json")),
            read(&b.join("result.json")),
            "{algo}"
        );
        assert_ne!(
            read(&a.join("archs.jsonl")),
            read(&c.join("archs.jsonl")),
            "{algo}: seeds 11, 12"
        );
        assert_eq!(lines(&a.join("archs.jsonl")), 60);
    }
}

#[test]
fn a_finished_run_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let t = table(tmp.path());
    let d = tmp.path().join("r");
    run_ok(search_cmd(&t, "random", 0, &d, 0));
    let out = search_cmd(&t, "random", 0, &d, 0).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
}

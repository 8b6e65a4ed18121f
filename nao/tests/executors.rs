//! The executors end to end (`--executor local` and `--executor slurm`), against the
//! inline one: same `archs.jsonl` for the same seed; a task killed mid-run is retried and
//! the search finishes; a driver killed with SIGKILL and resumed re-attaches to (or reuses)
//! its tasks; `nao cifar --preset smoke` completes.
//!
//! The Slurm tests need a running cluster (`tests/slurm/start.sh` starts a one-node one;
//! `.ci/run` runs it). Without one they print "skipped", unless `CI` is set: then they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nao");

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether a Slurm cluster answers here; fails under CI when it does not.
fn slurm_ready() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%a"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("up"));
    if !up {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI is set but no Slurm cluster answers `sinfo`: run tests/slurm/start.sh");
        }
        eprintln!("skipped: no Slurm cluster (run tests/slurm/start.sh)");
    }
    up
}

/// A synthetic NAS-Bench-201 table in `dir`.
fn table(dir: &Path) -> PathBuf {
    let t = dir.join("t.csv");
    if !t.exists() {
        ok(Command::new(BIN)
            .args(["synth-table", "--out"])
            .arg(&t)
            .output()
            .unwrap());
    }
    t
}

fn search(t: &Path, out: &Path, algo: &str, budget: usize, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["search", "--space", "nb201", "--table"])
        .arg(t)
        .args([
            "--metric",
            "valid_acc",
            "--algo",
            algo,
            "--surrogate",
            "linear",
        ])
        .args(["--budget", &budget.to_string(), "--seed", "4", "--out"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Evaluations submitted to Slurm in the run `run` (`slurm/jobs.jsonl`).
fn submitted(run: &Path) -> usize {
    read(&run.join("slurm/jobs.jsonl"))
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["indices"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum()
}

fn executor_args(kind: &str) -> Vec<&str> {
    match kind {
        "inline" => vec![],
        "local" => vec!["--executor", "local", "--workers", "2"],
        _ => vec!["--executor", "slurm", "--slurm-max-parallel", "2"],
    }
}

/// Random search, evolution and NAO (linear surrogate) on a table give the inline
/// executor's `archs.jsonl`.
fn same_records_as_inline(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let t = table(tmp.path());
    for (algo, budget) in [("random", 12), ("evolution", 14), ("nao", 16)] {
        let a = tmp.path().join(format!("{algo}-inline"));
        let b = tmp.path().join(format!("{algo}-{kind}"));
        ok(search(&t, &a, algo, budget, &[]).output().unwrap());
        ok(search(&t, &b, algo, budget, &executor_args(kind))
            .output()
            .unwrap());
        assert_eq!(
            read(&a.join("archs.jsonl")),
            read(&b.join("archs.jsonl")),
            "{algo}: --executor {kind} recorded other results than inline"
        );
        assert!(b.join("evals").join("0.json").is_file());
        if kind == "slurm" {
            assert_eq!(
                submitted(&b),
                read(&b.join("archs.jsonl")).lines().count(),
                "{algo}: every evaluation submitted once"
            );
        }
    }
}

fn wait_for(what: &str, child: &mut Child, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the search ended before {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of running `nao eval` tasks of `run` for record `index`.
fn task_pids(run: &Path, index: usize) -> Vec<u32> {
    let needle = format!("{}\0--index\0{index}\0", run.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(&needle)
            && String::from_utf8_lossy(&cmd).contains("\0eval\0")
        {
            out.push(pid);
        }
    }
    out
}

/// Kills the running task of record 1 (SIGKILL for a local one, `scancel` for a Slurm
/// one): it is retried, and the search ends with the inline executor's records.
fn killed_task_is_retried(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let t = table(tmp.path());
    let a = tmp.path().join("inline");
    let b = tmp.path().join(kind);
    ok(search(&t, &a, "random", 4, &[]).output().unwrap());
    let mut args = executor_args(kind);
    args.extend(["--eval-delay-ms", "3000"]);
    let mut child = search(&t, &b, "random", 4, &args).spawn().unwrap();
    wait_for("task 1 to start", &mut child, || {
        !task_pids(&b, 1).is_empty()
    });
    if kind == "local" {
        for pid in task_pids(&b, 1) {
            Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
        }
    } else {
        let jobs = read(&b.join("slurm/jobs.jsonl"));
        let job: serde_json::Value = serde_json::from_str(jobs.lines().next().unwrap()).unwrap();
        let pos = job["indices"]
            .as_array()
            .unwrap()
            .iter()
            .position(|i| i == 1)
            .unwrap();
        let id = format!("{}_{pos}", job["job"].as_str().unwrap());
        assert!(Command::new("scancel").arg(&id).status().unwrap().success());
    }
    let stderr = ok(child.wait_with_output().unwrap());
    assert!(
        stderr.contains("retrying once") || stderr.contains("once more"),
        "{stderr}"
    );
    assert_eq!(read(&a.join("archs.jsonl")), read(&b.join("archs.jsonl")));
}

/// Kills the driver with SIGKILL while its tasks run, then resumes with the same
/// executor: finished and running tasks are reused (Slurm: re-attached, not submitted
/// again), and the records equal the inline executor's.
fn killed_driver_resumes(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let t = table(tmp.path());
    let a = tmp.path().join("inline");
    let b = tmp.path().join(kind);
    ok(search(&t, &a, "random", 6, &[]).output().unwrap());
    let mut args = executor_args(kind);
    args.extend(["--eval-delay-ms", "2000"]);
    let mut child = search(&t, &b, "random", 6, &args).spawn().unwrap();
    wait_for("the first task to start", &mut child, || {
        !task_pids(&b, 0).is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let mut resume = args.clone();
    resume.push("--resume");
    let stderr = ok(search(&t, &b, "random", 6, &resume).output().unwrap());
    if kind == "slurm" {
        assert!(stderr.contains("re-attached"), "{stderr}");
        assert_eq!(
            submitted(&b),
            6,
            "every evaluation submitted once: {}",
            read(&b.join("slurm/jobs.jsonl"))
        );
    }
    assert_eq!(read(&a.join("archs.jsonl")), read(&b.join("archs.jsonl")));
}

/// `nao cifar --preset smoke` with the executor completes on real CIFAR-10 (reads
/// NAO_DATA_DIR; CI sets it), every search child scored. With `local`, the search and
/// the final trainings (two cells side by side, one thread each) give what inline gives.
fn cifar_smoke(kind: &str) {
    let Ok(data) = std::env::var("NAO_DATA_DIR") else {
        eprintln!("skipped: NAO_DATA_DIR not set");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &Path, kind: &str| {
        let mut c = Command::new(BIN);
        c.args([
            "--data-dir",
            &data,
            "cifar",
            "--preset",
            "smoke",
            "--seed",
            "2",
            "--out",
        ])
        .arg(out)
        .args(executor_args(kind));
        ok(c.output().unwrap());
    };
    let out = tmp.path().join("c");
    run(&out, kind);
    let archs = read(&out.join("search/archs.jsonl"));
    assert!(archs.lines().count() >= 4, "{archs}");
    assert!(!archs.contains("\"failed\""), "{archs}");
    // The final rows without their wall times.
    let finals = |out: &Path| {
        let mut fin: serde_json::Value =
            serde_json::from_str(&read(&out.join("final.json"))).unwrap();
        for r in fin["results"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("seconds");
        }
        fin
    };
    let fin = finals(&out);
    assert!(!fin["results"].as_array().unwrap().is_empty(), "{fin}");
    if kind == "local" {
        let inline = tmp.path().join("inline");
        run(&inline, "inline");
        assert_eq!(archs, read(&inline.join("search/archs.jsonl")));
        assert_eq!(fin, finals(&inline));
    }
}

#[test]
fn local_executor_records_what_inline_records() {
    same_records_as_inline("local");
}

#[test]
fn local_task_killed_is_retried() {
    killed_task_is_retried("local");
}

#[test]
fn local_driver_killed_and_resumed() {
    killed_driver_resumes("local");
}

#[test]
fn local_cifar_smoke_completes() {
    cifar_smoke("local");
}

#[test]
fn slurm_executor_records_what_inline_records() {
    if slurm_ready() {
        same_records_as_inline("slurm");
    }
}

#[test]
fn slurm_task_cancelled_is_retried() {
    if slurm_ready() {
        killed_task_is_retried("slurm");
    }
}

#[test]
fn slurm_driver_killed_and_resumed_reattaches() {
    if slurm_ready() {
        killed_driver_resumes("slurm");
    }
}

#[test]
fn slurm_cifar_smoke_completes() {
    if slurm_ready() {
        cifar_smoke("slurm");
    }
}

/// SIGINT to the driver while its Slurm tasks run cancels them (`scancel`) and stops the
/// search with an error; `--resume` then finishes it with the inline executor's records.
#[test]
fn slurm_driver_interrupted_cancels_its_jobs() {
    if !slurm_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = table(tmp.path());
    let a = tmp.path().join("inline");
    let b = tmp.path().join("slurm");
    ok(search(&t, &a, "random", 6, &[]).output().unwrap());
    let mut args = executor_args("slurm");
    args.extend(["--eval-delay-ms", "3000"]);
    let mut child = search(&t, &b, "random", 6, &args).spawn().unwrap();
    wait_for("the first task to start", &mut child, || {
        !task_pids(&b, 0).is_empty()
    });
    let jobs = read(&b.join("slurm/jobs.jsonl"));
    let job: serde_json::Value = serde_json::from_str(jobs.lines().next().unwrap()).unwrap();
    let id = job["job"].as_str().unwrap().to_string();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cancelling Slurm jobs"), "{stderr}");
    let start = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-r", "-j", &id, "-o", "%i %T"])
            .output()
            .unwrap();
        let q = String::from_utf8_lossy(&q.stdout).to_string();
        if !q.contains("RUNNING") && !q.contains("PENDING") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "job {id} still queued: {q}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut resume = args.clone();
    resume.push("--resume");
    ok(search(&t, &b, "random", 6, &resume).output().unwrap());
    assert_eq!(read(&a.join("archs.jsonl")), read(&b.join("archs.jsonl")));
}

/// A Slurm task that runs past `--slurm-time` is ended by Slurm (TIMEOUT), submitted once
/// more, and after its second time-out recorded as a failed evaluation with the reason
/// Slurm gives; the search goes on and the other evaluations succeed. The evaluator is an
/// external command that hangs on cells whose first edge is `avg_pool_3x3` (with seed 4,
/// one of the four random cells). Takes about two to three minutes: Slurm's time limits
/// have a resolution of one minute.
#[test]
fn slurm_task_past_its_time_limit_is_retried_then_recorded_failed() {
    if !slurm_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("slurm");
    let script = r#"case "$1" in "|avg_pool"*) exec sleep 600;; esac; n=$(printf '%s' "$1" | grep -o nor_conv | wc -l); echo "{\"acc\": $n}""#;
    let mut c = Command::new(BIN);
    c.args([
        "search", "--space", "nb201", "--metric", "acc", "--algo", "random", "--budget", "4",
        "--seed", "4", "--out",
    ])
    .arg(&run)
    .args(executor_args("slurm"))
    .args([
        "--slurm-time",
        "1",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        "{arch}",
    ]);
    let stderr = ok(c.output().unwrap());
    let recs: Vec<serde_json::Value> = read(&run.join("archs.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 4, "{recs:?}");
    let (hung, fine): (Vec<_>, Vec<_>) = recs
        .iter()
        .partition(|r| r["text"].as_str().unwrap().starts_with("|avg_pool"));
    assert!(!hung.is_empty() && !fine.is_empty(), "{recs:?}");
    for r in &hung {
        assert_eq!(r["status"], "failed", "{r}");
        let msg = r["error"]["message"].as_str().unwrap();
        eprintln!("recorded: {msg}");
        assert!(msg.contains("TIMEOUT") && msg.contains("twice"), "{msg}");
    }
    for r in &fine {
        assert_eq!(r["status"], "ok", "{r}");
    }
    assert!(stderr.contains("submitting it once more"), "{stderr}");
    assert_eq!(
        submitted(&run),
        recs.len() + hung.len(),
        "each timed-out task submitted twice, the others once: {}",
        read(&run.join("slurm/jobs.jsonl"))
    );
}

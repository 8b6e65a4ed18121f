//! The `nao` command line: errors that explain themselves, placeholders, draw, report,
//! the external-command evaluator inside a search, compare.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nao::evaluator::table::synthetic_nb201_csv;

const BIN: &str = env!("CARGO_BIN_EXE_nao");
const ARCH: &str =
    "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|";

fn nao(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_table(dir: &Path) -> PathBuf {
    let p = dir.join("t.csv");
    std::fs::write(&p, synthetic_nb201_csv(1, 0.5)).unwrap();
    p
}

#[test]
fn table_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_table(d);
    let base = [
        "search", "--space", "nb201", "--algo", "random", "--budget", "5", "--out", "r",
    ];
    let o = nao(
        &[&base[..], &["--table", "t.csv", "--metric", "top1"]].concat(),
        d,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no column `top1`") && stderr(&o).contains("arch, valid_acc, test_acc"),
        "{}",
        stderr(&o)
    );

    std::fs::write(d.join("noarch.csv"), "cell,acc\nx,1\n").unwrap();
    let o = nao(
        &[&base[..], &["--table", "noarch.csv", "--metric", "acc"]].concat(),
        d,
    );
    assert!(stderr(&o).contains("no `arch` column"), "{}", stderr(&o));

    std::fs::write(
        d.join("bad.csv"),
        format!("arch,acc\n{ARCH},1\n|nope~0|+|x|,2\n"),
    )
    .unwrap();
    let o = nao(
        &[&base[..], &["--table", "bad.csv", "--metric", "acc"]].concat(),
        d,
    );
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));

    let o = nao(&[&base[..], &["--metric", "acc"]].concat(), d);
    assert!(stderr(&o).contains("no evaluator"), "{}", stderr(&o));
}

#[test]
fn cuda_without_support_and_missing_data_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["cifar"][..],
        &[
            "train",
            "--arch",
            "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4",
        ],
    ] {
        let o = nao(
            &[args, &["--device", "cuda", "--data-dir", "x"]].concat(),
            tmp.path(),
        );
        assert!(!o.status.success());
        // Without the `cuda` feature: not compiled in; with it: no driver, or no device.
        let e = stderr(&o);
        assert!(
            e.contains("--device cuda")
                && (e.contains("CUDA support not compiled in")
                    || e.contains("no NVIDIA driver")
                    || e.contains("no CUDA device")),
            "{e}"
        );
        let o = nao(
            &[
                args,
                &["--data-dir", "no-such-dir", "--out", "o", "--offline"],
            ]
            .concat(),
            tmp.path(),
        );
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(
            e.contains("no-such-dir") && e.contains("cifar-10") && e.contains("--offline"),
            "{e}"
        );
    }
}

#[test]
fn help_has_examples() {
    let o = nao(&["search", "--help"], Path::new("."));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("Examples:") && s.contains("--resume"), "{s}");
    assert!(!s.contains("eval-delay-ms"));
}

#[test]
fn draw_from_text_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let o = nao(
        &["draw", "--space", "nb201", "--arch", ARCH, "--out", "a.svg"],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(d.join("a.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    std::fs::write(d.join("arch.txt"), format!("{ARCH}\n")).unwrap();
    let o = nao(
        &[
            "draw", "--space", "nb201", "--arch", "arch.txt", "--out", "b.svg",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = nao(
        &[
            "draw", "--space", "nb201", "--arch", "|bad|", "--out", "c.svg",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn search_outputs_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_table(d);
    let o = nao(
        &[
            "search",
            "--space",
            "nb201",
            "--table",
            "t.csv",
            "--metric",
            "valid_acc",
            "--algo",
            "nao",
            "--surrogate",
            "nao:20",
            "--budget",
            "40",
            "--seed",
            "2",
            "--out",
            "r",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = d.join("r");
    for f in [
        "config.json",
        "manifest.json",
        "archs.jsonl",
        "rounds.jsonl",
        "timings.jsonl",
        "result.json",
        "best-1.svg",
        "curve.svg",
        "report.md",
        "checkpoint/latest",
    ] {
        assert!(r.join(f).exists(), "{f} missing");
    }
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("result.json")).unwrap()).unwrap();
    let best = &result["best"];
    // the search saw the metric and nothing else of the table (no test accuracy)
    assert_eq!(
        best["metrics"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["valid_acc"]
    );
    assert_eq!(best["metrics"]["valid_acc"], best["score"]);
    let log = std::fs::read_to_string(r.join("archs.jsonl")).unwrap();
    assert!(
        !log.contains("test_acc"),
        "the run log holds another column"
    );
    let report = std::fs::read_to_string(r.join("report.md")).unwrap();
    assert!(report.contains("heldout_pairwise_acc") && report.contains("best-1.svg"));
    // the predictor's quality on the table's reference sample, per round, plotted
    assert!(report.contains("reference_kendall_tau") && report.contains("predictor.svg"));
    assert!(r.join("predictor.svg").exists());
    std::fs::remove_file(r.join("report.md")).unwrap();
    std::fs::remove_file(r.join("curve.svg")).unwrap();
    let o = nao(&["report", "r"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("best valid_acc"));
    assert!(r.join("report.md").exists() && r.join("curve.svg").exists());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("manifest.json")).unwrap()).unwrap();
    for k in [
        "seed",
        "crate_version",
        "git_commit",
        "hostname",
        "cpu_count",
        "start_time",
        "end_time",
        "wall_time_s",
        "status",
    ] {
        assert!(manifest.get(k).is_some(), "{k} missing from manifest");
    }
}

#[cfg(unix)]
#[test]
fn command_evaluator_failures_do_not_stop_the_search() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Fails (exit 1) when edge 1<-0 is avg_pool, prints junk when it is none, else scores
    // by the number of nor_conv edges.
    let script = r#"case "$1" in "|avg_pool"*) exit 1;; "|none"*) echo junk;; *) n=$(printf '%s' "$1" | grep -o nor_conv | wc -l); echo "{\"acc\": $n}";; esac"#;
    let o = nao(
        &[
            "search", "--space", "nb201", "--metric", "acc", "--algo", "random", "--budget", "30",
            "--out", "r", "--", "sh", "-c", script, "sh", "{arch}",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let log = std::fs::read_to_string(d.join("r/archs.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 30);
    assert!(
        recs.iter().any(|r| r["status"] == "failed"
            && r["error"]["message"].as_str().unwrap().contains("exited"))
    );
    assert!(
        recs.iter().any(|r| r["status"] == "failed"
            && r["error"]["message"].as_str().unwrap().contains("no JSON"))
    );
    assert!(recs.iter().any(|r| r["status"] == "ok"));
}

#[test]
fn compare_runs_seeds_and_writes_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_table(d);
    let args = [
        "compare",
        "--space",
        "nb201",
        "--table",
        "t.csv",
        "--metric",
        "valid_acc",
        "--algos",
        "nao,random,local",
        "--report-metric",
        "test_acc",
        "--jobs",
        "2",
        "--surrogate",
        "linear",
        "--seeds",
        "3",
        "--budget",
        "30",
        "--out",
        "c",
    ];
    let o = nao(&args, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("| vs nao: W-L-T |") && out.contains("Wilcoxon") && out.contains("| local |"),
        "{out}"
    );
    assert!(out.contains("judged by `test_acc`"), "{out}");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("c/compare.json")).unwrap()).unwrap();
    assert_eq!(c["best_per_seed"]["nao"].as_array().unwrap().len(), 3);
    // the reported metric is the chosen cell's test_acc, read from the table
    let table = std::fs::read_to_string(d.join("t.csv")).unwrap();
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("c/nao/seed-0/result.json")).unwrap())
            .unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{},", best["best"]["arch"].as_str().unwrap())))
        .unwrap();
    let test: f64 = row.split(',').nth(2).unwrap().parse().unwrap();
    assert_eq!(c["reported_per_seed"]["nao"][0].as_f64().unwrap(), test);
    assert_eq!(
        std::fs::read_to_string(d.join("c/compare.md")).unwrap(),
        out.lines()
            .filter(|l| !l.starts_with("wrote"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    assert!(d.join("c/random/seed-2/result.json").exists());
    // a second invocation reuses the finished runs
    let o2 = nao(&args, d);
    assert_eq!(String::from_utf8_lossy(&o2.stdout), out);
}

#[test]
fn a_test_metric_needs_to_be_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_table(d);
    let args = [
        "search", "--space", "nb201", "--table", "t.csv", "--metric", "test_acc", "--algo",
        "random", "--budget", "5", "--out", "r",
    ];
    let o = nao(&args, d);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("looks like a test-set column")
            && stderr(&o).contains("--allow-test-metric"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("r").exists());
    let o = nao(&[&args[..], &["--allow-test-metric"]].concat(), d);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_search_without_one_success_exits_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let o = nao(
        &[
            "search", "--space", "nb201", "--metric", "acc", "--algo", "random", "--budget", "4",
            "--out", "r", "--", "sh", "-c", "exit 3",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no evaluation succeeded (4 failed)"),
        "{}",
        stderr(&o)
    );
    // what was computed is kept
    let log = std::fs::read_to_string(d.join("r/archs.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4);
}

/// Generation settings that make no sense are user errors naming the flag; the chosen
/// ones reach the run's config.json.
#[test]
fn generation_flags_are_checked_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_table(d);
    let base = [
        "search",
        "--space",
        "nb201",
        "--algo",
        "nao",
        "--budget",
        "12",
        "--table",
        "t.csv",
        "--metric",
        "valid_acc",
        "--surrogate",
        "linear",
    ];
    let o = nao(
        &[&base[..], &["--out", "bad", "--temperature=-1"]].concat(),
        d,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--temperature"), "{}", stderr(&o));
    let o = nao(&[&base[..], &["--out", "bad", "--draws", "0"]].concat(), d);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--draws"), "{}", stderr(&o));
    let o = nao(
        &[
            &base[..],
            &[
                "--out",
                "ok",
                "--temperature",
                "2.5",
                "--trust-radius",
                "2",
                "--expand-seeds",
                "7",
                "--expand-radius",
                "3",
                "--draws",
                "4",
                "--focus",
                "3",
                "--no-cool-down",
            ],
        ]
        .concat(),
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let config = std::fs::read_to_string(d.join("ok").join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let nao = &config["algo"];
    assert_eq!(nao["temperature"], 2.5, "{config}");
    assert_eq!(nao["trust_radius"], 2, "{config}");
    assert_eq!(nao["expand_seeds"], 7, "{config}");
    assert_eq!(nao["expand_radius"], 3, "{config}");
    assert_eq!(nao["draws"], 4, "{config}");
    assert_eq!(nao["focus"], 3, "{config}");
    assert_eq!(nao["cool_down"], false, "{config}");
}

/// `--eval-batches` is an option of the weight-sharing search only, and at least 1.
#[test]
fn eval_batches_needs_ws_and_one_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let o = nao(
        &["cifar", "--eval-batches", "2", "--out", "x", "--offline"],
        d,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("needs --ws"), "{}", stderr(&o));
    let o = nao(
        &[
            "cifar",
            "--ws",
            "--eval-batches",
            "0",
            "--out",
            "x",
            "--offline",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at least 1"), "{}", stderr(&o));
    assert!(!d.join("x").exists());
}

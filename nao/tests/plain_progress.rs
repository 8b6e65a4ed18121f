//! With stderr sent to a file or a pipe (a log, a Slurm job), progress bars hide
//! themselves; a run then prints one plain line per finished evaluation and round, and
//! `nao train` one per epoch, each with the best so far, the elapsed and the remaining time.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nao");

#[test]
fn search_with_stderr_to_a_file_prints_a_line_per_evaluation_and_round() {
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("t.csv");
    std::fs::write(&table, nao::evaluator::table::synthetic_nb201_csv(2, 0.5)).unwrap();
    let log = tmp.path().join("stderr.log");
    let status = Command::new(BIN)
        .args([
            "search",
            "--space",
            "nb201",
            "--metric",
            "valid_acc",
            "--budget",
            "30",
        ])
        .args(["--algo", "nao", "--surrogate", "linear", "--table"])
        .arg(&table)
        .arg("--out")
        .arg(tmp.path().join("run"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let evals: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("[search] evaluation "))
        .collect();
    assert_eq!(evals.len(), 30, "{text}");
    assert!(
        evals[0].starts_with("[search] evaluation 1/30 (round 0): score "),
        "{text}"
    );
    assert!(
        evals[29].starts_with("[search] evaluation 30/30 "),
        "{text}"
    );
    for l in &evals {
        assert!(
            l.contains("| best ") && l.contains("| elapsed ") && l.contains("| remaining "),
            "{l}"
        );
    }
    let rounds = text
        .lines()
        .filter(|l| l.starts_with("[search] round "))
        .count();
    let logged = std::fs::read_to_string(tmp.path().join("run/rounds.jsonl")).unwrap();
    assert_eq!(rounds, logged.lines().count(), "{text}");
    assert!(
        text.lines().last().unwrap().contains("remaining 0s"),
        "{text}"
    );
    assert!(
        !text.contains('\r') && !text.contains('\u{1b}'),
        "a progress bar was drawn: {text}"
    );
}

//! Damaged run directories, each damage built on purpose: a truncated or corrupt newest
//! checkpoint, a torn last line of `archs.jsonl`, an `--out` that holds another run, and
//! `nao report` on a folder that is not a run directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_nao");

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn nao(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A finished NAO run (the real controller, briefly trained, so that checkpoints hold
/// its weights), made once per test binary; its directory lives as long as the process.
fn reference() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let table = tmp.path().join("t.csv");
        std::fs::write(&table, nao::evaluator::table::synthetic_nb201_csv(7, 0.5)).unwrap();
        let out = tmp.path().join("reference");
        let o = Command::new(BIN)
            .args([
                "search",
                "--space",
                "nb201",
                "--metric",
                "valid_acc",
                "--budget",
                "60",
            ])
            .args([
                "--algo",
                "nao",
                "--seed",
                "3",
                "--surrogate",
                "nao:20",
                "--table",
            ])
            .arg(&table)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        (tmp, out)
    })
    .1
}

/// A copy of the reference run to damage, and the names of its two checkpoints (newest
/// first).
fn copy_of_reference(tmp: &Path) -> (PathBuf, String, String) {
    let dir = tmp.join("run");
    copy_dir(reference(), &dir);
    let latest = String::from_utf8(read(&dir.join("checkpoint/latest")))
        .unwrap()
        .trim()
        .to_string();
    let round: usize = latest.strip_prefix("round-").unwrap().parse().unwrap();
    let previous = format!("round-{}", round - 1);
    assert!(dir.join("checkpoint").join(&previous).is_dir());
    (dir, latest, previous)
}

fn resume(dir: &Path) -> Output {
    let o = Command::new(BIN)
        .args(["search", "--resume", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

#[test]
fn truncated_newest_checkpoint_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, latest, previous) = copy_of_reference(tmp.path());
    let state = dir.join("checkpoint").join(&latest).join("state.json");
    let bytes = read(&state);
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();

    let e = stderr(&resume(&dir));
    assert!(
        e.contains("warning: checkpoint")
            && e.contains(&format!("{latest} is damaged"))
            && e.contains("resumed from the previous checkpoint")
            && e.contains(&previous),
        "{e}"
    );
    // The last round is redone from the log: the same decisions, the same log.
    assert_eq!(
        read(&dir.join("archs.jsonl")),
        read(&reference().join("archs.jsonl"))
    );
    assert_eq!(
        read(&dir.join("result.json")),
        read(&reference().join("result.json"))
    );
    // The redone round wrote a good checkpoint over the damaged one.
    assert_eq!(
        read(&state),
        read(
            &reference()
                .join("checkpoint")
                .join(&latest)
                .join("state.json")
        )
    );
}

#[test]
fn corrupt_controller_weights_fall_back_to_the_previous_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, latest, previous) = copy_of_reference(tmp.path());
    let params = dir
        .join("checkpoint")
        .join(&latest)
        .join("surrogate/controller.params");
    let n = read(&params).len();
    std::fs::write(&params, vec![0xAB; n / 3]).unwrap();

    let e = stderr(&resume(&dir));
    assert!(
        e.contains(&format!("{latest} is damaged")) && e.contains(&previous),
        "{e}"
    );
    assert_eq!(
        read(&dir.join("archs.jsonl")),
        read(&reference().join("archs.jsonl"))
    );
}

#[test]
fn no_usable_checkpoint_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, latest, previous) = copy_of_reference(tmp.path());
    for name in [&latest, &previous] {
        std::fs::write(dir.join("checkpoint").join(name).join("state.json"), b"{").unwrap();
    }
    let o = nao(&["search", "--resume", "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("no usable checkpoint") && e.contains("Fix: delete") && e.contains(&previous),
        "{e}"
    );
}

#[test]
fn torn_last_line_of_archs_jsonl_is_repaired_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, latest, _) = copy_of_reference(tmp.path());
    // A crash during the last round: its checkpoint never got written, and the last
    // record was cut mid-write.
    std::fs::remove_dir_all(dir.join("checkpoint").join(&latest)).unwrap();
    let round: usize = latest.strip_prefix("round-").unwrap().parse().unwrap();
    std::fs::write(
        dir.join("checkpoint/latest"),
        format!("round-{}\n", round - 1),
    )
    .unwrap();
    let archs = dir.join("archs.jsonl");
    let bytes = read(&archs);
    std::fs::write(&archs, &bytes[..bytes.len() - 40]).unwrap();

    let e = stderr(&resume(&dir));
    assert!(
        e.contains("archs.jsonl ended in a torn line") && e.contains("removed it"),
        "{e}"
    );
    assert_eq!(read(&archs), read(&reference().join("archs.jsonl")));
}

#[test]
fn out_holding_a_run_is_refused_without_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, _) = copy_of_reference(tmp.path());
    let table = tmp.path().join("t.csv");
    std::fs::write(&table, nao::evaluator::table::synthetic_nb201_csv(1, 0.5)).unwrap();
    let before: Vec<Vec<u8>> = ["config.json", "archs.jsonl", "manifest.json"]
        .iter()
        .map(|f| read(&dir.join(f)))
        .collect();
    let o = nao(&[
        "search",
        "--space",
        "nb201",
        "--metric",
        "valid_acc",
        "--budget",
        "10",
        "--algo",
        "random",
        "--table",
        table.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already holds a run") && stderr(&o).contains("--resume"));
    let after: Vec<Vec<u8>> = ["config.json", "archs.jsonl", "manifest.json"]
        .iter()
        .map(|f| read(&dir.join(f)))
        .collect();
    assert!(before == after, "the existing run was changed");

    // `nao cifar` into a `nao cifar` output, or into a search run: refused before anything
    // is written or any data is looked for.
    let cifar_out = tmp.path().join("c");
    std::fs::create_dir_all(cifar_out.join("search")).unwrap();
    std::fs::write(cifar_out.join("cifar.json"), b"{\"mine\":1}").unwrap();
    for (out, says) in [
        (&cifar_out, "already holds a `nao cifar` run"),
        (&dir, "holds a `nao search` run"),
    ] {
        let o = nao(&[
            "cifar",
            "--offline",
            "--data-dir",
            "nowhere",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    assert_eq!(read(&cifar_out.join("cifar.json")), b"{\"mine\":1}");
    assert!(!dir.join("cifar.json").exists());
}

#[test]
fn report_on_a_folder_that_is_not_a_run_directory_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("file.txt"), b"x").unwrap();
    std::fs::create_dir_all(t.join("cifar-out/search")).unwrap();
    std::fs::write(t.join("cifar-out/cifar.json"), b"{}").unwrap();
    std::fs::create_dir_all(t.join("empty")).unwrap();
    for (name, says) in [
        ("missing", "does not exist"),
        ("file.txt", "is a file, not a run directory"),
        ("cifar-out", "is the output of `nao cifar`"),
        ("empty", "is not a run directory: it has no config.json"),
    ] {
        let o = nao(&["report", t.join(name).to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(stderr(&o).contains(says), "{name}: {}", stderr(&o));
    }
    assert_eq!(
        std::fs::read_dir(t.join("empty")).unwrap().count(),
        0,
        "report wrote into a non-run folder"
    );
    // A real run directory is fine.
    let o = nao(&["report", reference().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

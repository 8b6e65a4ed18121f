//! One binary for both: a `nao` built with `--features cuda` starts and works on the CPU on a
//! machine without the NVIDIA driver (a cluster's login node, this CI machine), and
//! `--device cuda` says what is missing. The driver is loaded at run time (`ops-cuda`'s
//! `driver.rs`), never linked.
//!
//! Run with `cargo test --release -p nao --features cuda --test cuda_driver`; without the
//! feature this file holds no test.
#![cfg(feature = "cuda")]

use std::path::Path;
use std::process::{Command, Output};

use nao::evaluator::table::synthetic_nb201_csv;

const BIN: &str = env!("CARGO_BIN_EXE_nao");
/// A CNN child in the micro encoding (the CUDA option is checked before any data is read).
const CNN: &str = "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";

fn nao(args: &[&str], cwd: &Path, driver_dir: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(cwd);
    if let Some(d) = driver_dir {
        c.env("LD_LIBRARY_PATH", d);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn train_on_cuda(cwd: &Path, driver_dir: Option<&Path>) -> String {
    let o = nao(
        &[
            "train",
            "--arch",
            CNN,
            "--device",
            "cuda",
            "--data-dir",
            "x",
        ],
        cwd,
        driver_dir,
    );
    assert!(!o.status.success(), "--device cuda without a GPU must fail");
    stderr(&o)
}

#[test]
fn the_cuda_build_runs_on_the_cpu_without_the_driver() {
    // Not linked against libcuda: the loader cannot refuse the binary.
    match Command::new("ldd").arg(BIN).output() {
        Ok(o) => {
            let libs = String::from_utf8_lossy(&o.stdout);
            assert!(!libs.contains("libcuda"), "nao links libcuda:\n{libs}");
        }
        Err(e) => eprintln!("ldd not available ({e}): linkage not inspected"),
    }

    // A CPU job runs to the end.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.csv"), synthetic_nb201_csv(1, 0.5)).unwrap();
    let o = nao(
        &[
            "search",
            "--space",
            "nb201",
            "--algo",
            "random",
            "--budget",
            "5",
            "--table",
            "t.csv",
            "--metric",
            "valid_acc",
            "--out",
            "r",
        ],
        tmp.path(),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tmp.path().join("r/archs.jsonl").is_file());

    // --device cuda names what is missing and the fix.
    match ops_cuda::CudaDevice::new(0) {
        Err(ops_cuda::CudaError::NoDriver { .. }) => {
            let e = train_on_cuda(tmp.path(), None);
            assert!(
                e.contains("--device cuda: no NVIDIA driver")
                    && e.contains("libcuda.so.1")
                    && e.contains("--device cpu"),
                "{e}"
            );
        }
        other => eprintln!(
            "the_cuda_build_runs_on_the_cpu_without_the_driver: a driver is installed here \
             ({}): the no-driver message was not checked",
            match other {
                Ok(d) => format!("device 0 is {}", d.name()),
                Err(e) => e.to_string(),
            }
        ),
    }
}

/// Builds `dir/libcuda.so.1` whose functions (`symbols`) all return 100
/// (`CUDA_ERROR_NO_DEVICE`): a driver without a GPU. `None` when no C compiler is here.
fn stub_driver(dir: &Path, symbols: &[&str]) -> Option<()> {
    let src: String = symbols
        .iter()
        .map(|s| format!("int {s}(void) {{ return 100; }}\n"))
        .collect();
    std::fs::write(dir.join("stub.c"), src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o"])
        .arg(dir.join("libcuda.so.1"))
        .arg(dir.join("stub.c"))
        .output();
    match out {
        Ok(o) if o.status.success() => Some(()),
        Ok(o) => panic!("{cc} failed: {}", stderr(&o)),
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI needs a C compiler ({cc}): {e}"),
        Err(e) => {
            eprintln!("a_driver_without_a_gpu...: skipped: no C compiler ({cc}: {e})");
            None
        }
    }
}

#[test]
fn a_driver_without_a_gpu_or_with_missing_entry_points_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all");
    let short = tmp.path().join("short");
    std::fs::create_dir_all(&all).unwrap();
    std::fs::create_dir_all(&short).unwrap();

    if stub_driver(&all, ops_cuda::DRIVER_SYMBOLS).is_none() {
        return;
    }
    let e = train_on_cuda(tmp.path(), Some(&all));
    assert!(
        e.contains(
            "--device cuda: no CUDA device found (cuInit failed: CUDA_ERROR_NO_DEVICE (CUresult 100))"
        ) && e.contains("--device cpu"),
        "{e}"
    );

    let missing = "cuLaunchKernel";
    let fewer: Vec<&str> = ops_cuda::DRIVER_SYMBOLS
        .iter()
        .copied()
        .filter(|s| *s != missing)
        .collect();
    stub_driver(&short, &fewer).unwrap();
    let e = train_on_cuda(tmp.path(), Some(&short));
    assert!(
        e.contains("no NVIDIA driver: libcuda.so.1 lacks the entry point cuLaunchKernel"),
        "{e}"
    );
}

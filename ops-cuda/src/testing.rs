//! Helpers for tests that need a GPU: they skip loudly when there is none.

use std::io::Write;

use crate::{CudaDevice, CudaError};

/// Opens device 0, or reports `<test>: skipped: no CUDA device (<why>)` and returns `None`,
/// so a test without a GPU says that it skipped instead of passing silently. The line goes
/// straight to the process's stderr (not through `eprintln!`, which the test harness would
/// capture and hide for a passing test).
///
/// Set `OPS_CUDA_REQUIRE_GPU=1` to turn the skip into a panic (the GPU machine's script does,
/// so that a broken driver cannot look like a pass).
pub fn device_or_skip(test: &str) -> Option<CudaDevice> {
    match CudaDevice::new(0) {
        Ok(d) => Some(d),
        Err(e) => {
            if std::env::var_os("OPS_CUDA_REQUIRE_GPU").is_some_and(|v| v == "1") {
                panic!("{test}: OPS_CUDA_REQUIRE_GPU=1 but no CUDA device: {e}");
            }
            let why = match e {
                CudaError::NoDevice { reason } => reason,
                other => other.to_string(),
            };
            let _ = writeln!(std::io::stderr(), "{test}: skipped: no CUDA device ({why})");
            None
        }
    }
}

//! Heap policy for tensor buffers (glibc on Linux).
//!
//! Every op allocates its output afresh, and a training step frees and re-allocates the
//! same multi-megabyte activations and gradients over and over. glibc serves blocks above
//! its mmap threshold (128 KiB, rising to at most 32 MiB) with fresh `mmap`s and trims free
//! memory at the top of its heaps back to the system, so each step re-faults (and the
//! kernel re-zeroes) every page it touches: about a sixth of a CNN training step. Raising
//! the mmap threshold to its 32 MiB maximum and switching trimming off keeps freed buffers
//! in the process for the next step. The cost is that memory freed after a peak is not
//! returned to the system until the process ends.
//!
//! The policy is process-wide, so the library does not choose it: a program that trains
//! calls [`retain_freed_memory`] once at startup (the `nao` binary does, first thing in
//! `main`; so do the benchmarks and examples that train). A program that does not keeps
//! glibc's defaults. The policy changes where buffers come from, never the numbers
//! computed.

use std::sync::Once;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
}

/// Applies the policy above: glibc's mmap threshold raised to 32 MiB, trimming off.
///
/// Call it once, early, from the binary (later calls do nothing). It has no effect off
/// glibc, or when the environment variable `AUTOGRAD_KEEP_HEAP=0` is set. Also exported as
/// [`crate::retain_freed_memory`].
pub fn retain_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("AUTOGRAD_KEEP_HEAP").is_ok_and(|v| v == "0") {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
            const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
            // SAFETY: mallopt only changes allocator parameters; both values are in range
            // (the mmap threshold's maximum on 64-bit glibc is 32 MiB).
            unsafe {
                mallopt(M_MMAP_THRESHOLD, 32 << 20);
                mallopt(M_TRIM_THRESHOLD, std::ffi::c_int::MAX);
            }
        }
    });
}

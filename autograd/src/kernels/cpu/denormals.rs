//! Flush-to-zero: the CPU's float mode that treats subnormal numbers as zero.
//!
//! A float whose magnitude is below the smallest normal number (`f32::MIN_POSITIVE`,
//! about 1.2e-38) is *subnormal*. On x86 an arithmetic instruction that reads or writes one
//! takes a microcode assist of about a hundred cycles, for every vector lane. Training can
//! fill a tensor with them: the NAO controller, trained on and on across a search, leaves a
//! quarter of its predictor's weights subnormal (weight decay pulls the weights of dead
//! units towards zero), and its fits then ran 3-5x slower (a budget-200 NB201 search: 134 s
//! against 37 s). Deep-learning frameworks set the flush modes for this reason (TensorFlow
//! on every thread it computes on; PyTorch offers `torch.set_flush_denormal`).
//!
//! With the modes on, a subnormal input reads as zero (x86 DAZ) and a subnormal result is
//! written as zero (x86 FTZ; aarch64 FZ does both). Numbers that never come near 1e-38
//! are computed exactly as before; numbers that do lose the last ~1e-38 of their value.
//!
//! The mode is per thread, and a thread computing with another mode than its neighbours
//! would make results depend on which thread ran which chunk. So it is a process-wide
//! choice, made by the program, never by the library: [`flush_denormals`] once at startup
//! (the `nao` binary does) sets it on the calling thread and on every thread of rayon's
//! global pool, and remembers it. A new thread starts with its creator's mode (POSIX), so
//! threads started later from a flushing thread flush too; a thread whose creator may not
//! (one started before the choice, a thread of another rayon pool) calls
//! [`inherit_denormal_mode`] first thing. A program that never
//! calls [`flush_denormals`] computes with the CPU's default (subnormals kept). Setting
//! `AUTOGRAD_FLUSH_DENORMALS=0` makes [`flush_denormals`] do nothing, to reproduce a
//! result computed without it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the program chose to flush ([`flush_denormals`] was called and took effect).
static FLUSH: AtomicBool = AtomicBool::new(false);

/// Sets flush-to-zero on the calling thread and on every thread of rayon's global pool
/// (creating the pool if it does not exist yet), and records the choice for
/// [`inherit_denormal_mode`]. Returns whether the mode is now on: false on a CPU this
/// module does not know (neither x86-64 nor aarch64), or when the environment variable
/// `AUTOGRAD_FLUSH_DENORMALS=0` is set. Also exported as [`crate::flush_denormals`].
pub fn flush_denormals() -> bool {
    if !SUPPORTED || std::env::var("AUTOGRAD_FLUSH_DENORMALS").is_ok_and(|v| v == "0") {
        return false;
    }
    FLUSH.store(true, Ordering::SeqCst);
    set_this_thread(true);
    rayon::broadcast(|_| set_this_thread(true));
    true
}

/// Gives the calling thread the process's mode: flush-to-zero when the program called
/// [`flush_denormals`], else nothing. Call it first thing in a thread that computes
/// (including a rayon pool's `start_handler`). Also exported as
/// [`crate::inherit_denormal_mode`].
pub fn inherit_denormal_mode() {
    if FLUSH.load(Ordering::SeqCst) {
        set_this_thread(true);
    }
}

const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
#[cfg(target_arch = "x86_64")]
const MXCSR_FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stmxcsr stores the 32-bit SSE control register to the given address, which
    // is a live, aligned u32.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr as *mut u32, options(nostack)) };
    csr
}

#[cfg(target_arch = "x86_64")]
fn set_this_thread(on: bool) {
    let csr = if on {
        mxcsr() | MXCSR_FTZ_DAZ
    } else {
        mxcsr() & !MXCSR_FTZ_DAZ
    };
    // SAFETY: ldmxcsr loads the control register from a live u32; only the two flush bits
    // differ from the current value, so rounding and exception masks are unchanged.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr as *const u32, options(nostack, readonly))
    };
}

#[cfg(target_arch = "x86_64")]
/// Whether the calling thread flushes subnormals to zero.
pub fn flushes_denormals() -> bool {
    mxcsr() & MXCSR_FTZ_DAZ == MXCSR_FTZ_DAZ
}

/// FPCR's flush-to-zero bit (FZ, bit 24).
#[cfg(target_arch = "aarch64")]
const FPCR_FZ: u64 = 1 << 24;

#[cfg(target_arch = "aarch64")]
fn fpcr() -> u64 {
    let v: u64;
    // SAFETY: reading FPCR has no side effect.
    unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack)) };
    v
}

#[cfg(target_arch = "aarch64")]
fn set_this_thread(on: bool) {
    let v = if on {
        fpcr() | FPCR_FZ
    } else {
        fpcr() & !FPCR_FZ
    };
    // SAFETY: only the FZ bit differs from the current FPCR.
    unsafe { std::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack)) };
}

#[cfg(target_arch = "aarch64")]
/// Whether the calling thread flushes subnormals to zero.
pub fn flushes_denormals() -> bool {
    fpcr() & FPCR_FZ != 0
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn set_this_thread(_on: bool) {}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
/// Whether the calling thread flushes subnormals to zero.
pub fn flushes_denormals() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// A product whose exact value (1e-40) is subnormal in f32, and a subnormal input.
    fn subnormal_results() -> (f32, f32) {
        let product = black_box(1e-20f32) * black_box(1e-20f32);
        let doubled = black_box(f32::from_bits(1)) * black_box(2.0f32);
        (product, doubled)
    }

    // The mode is per thread and dies with it: these tests run on threads of their own, so
    // they never change the mode of a thread that other tests compute on.
    #[test]
    fn the_mode_flushes_subnormal_results_and_inputs_on_its_thread_only() {
        std::thread::spawn(|| {
            assert!(
                !flushes_denormals(),
                "a new thread starts with subnormals kept"
            );
            let (product, doubled) = subnormal_results();
            assert!(product > 0.0 && product < f32::MIN_POSITIVE, "{product}");
            assert_eq!(doubled.to_bits(), 2);
            if !SUPPORTED {
                eprintln!("SKIPPED: flush-to-zero is not implemented for this CPU");
                return;
            }
            set_this_thread(true);
            assert!(flushes_denormals());
            assert_eq!(subnormal_results(), (0.0, 0.0));
            // normal numbers are untouched
            assert_eq!(
                black_box(1.5f32) * black_box(f32::MIN_POSITIVE),
                1.5 * f32::MIN_POSITIVE
            );
            std::thread::spawn(|| assert!(flushes_denormals(), "a new thread has its creator's"))
                .join()
                .unwrap();
            set_this_thread(false);
            assert!(!flushes_denormals());
            assert!(subnormal_results().0 > 0.0);
        })
        .join()
        .unwrap();
    }

    // No test in this binary calls `flush_denormals` (the process-wide choice is tested in
    // `tests/denormals.rs`, a process of its own).
    #[test]
    fn inherit_does_nothing_before_the_program_chooses() {
        std::thread::spawn(|| {
            inherit_denormal_mode();
            assert!(!flushes_denormals());
        })
        .join()
        .unwrap();
    }
}

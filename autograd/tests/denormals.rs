//! The process-wide flush-to-zero choice (`autograd::flush_denormals`), in a process of
//! its own: it changes the float mode of every thread of rayon's global pool.

use autograd::kernels::cpu::denormals::flushes_denormals;
use autograd::{Tensor, flush_denormals, inherit_denormal_mode};

#[test]
fn flush_denormals_reaches_every_computing_thread_and_the_products() {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        eprintln!("SKIPPED: flush-to-zero is not implemented for this CPU");
        assert!(!flush_denormals());
        return;
    }
    // a 2 x 2 product whose exact entries are subnormal (1e-20 * 1e-20 = 1e-40)
    let tiny = || {
        let a = Tensor::from_vec(vec![1e-20f32; 4], &[2, 2]);
        a.matmul(&a).to_vec::<f32>()
    };
    // a thread started before the choice keeps the CPU's default until it asks
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let early = std::thread::spawn(move || {
        wait.recv().unwrap();
        assert!(!flushes_denormals(), "started before the choice");
        inherit_denormal_mode();
        assert!(
            flushes_denormals(),
            "takes the program's choice when it asks"
        );
    });
    let before = tiny();
    assert!(
        before.iter().all(|&v| v > 0.0 && v < f32::MIN_POSITIVE),
        "{before:?}"
    );

    // SAFETY: no other thread of this process reads the environment at this point (the
    // test binary runs this single test).
    unsafe { std::env::set_var("AUTOGRAD_FLUSH_DENORMALS", "0") };
    assert!(!flush_denormals(), "AUTOGRAD_FLUSH_DENORMALS=0 opts out");
    assert!(!flushes_denormals());
    // SAFETY: as above.
    unsafe { std::env::remove_var("AUTOGRAD_FLUSH_DENORMALS") };

    // the one call a training program makes: heap policy and float mode
    assert!(autograd::configure_training_process());
    assert!(flushes_denormals(), "the calling thread");
    let pool: Vec<bool> = rayon::broadcast(|_| flushes_denormals());
    assert!(pool.iter().all(|&f| f), "rayon's pool: {pool:?}");
    assert_eq!(tiny(), vec![0.0; 4]);
    go.send(()).unwrap();
    early.join().unwrap();
}

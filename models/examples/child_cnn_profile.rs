//! Runs training steps of the workload-C child CNN (the `child_cnn` bench's `train_b64`)
//! in a loop, for profiling and for CPU-time comparisons on a busy machine:
//! `perf stat -e task-clock,cycles,instructions target/release/examples/child_cnn_profile [STEPS]`.

use autograd::nn::Module;
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use autograd::{DType, Tensor};
use models::cnn::{CnnConfig, CnnNetwork, Mode, PEER_ARCH};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn main() {
    // The nao binary's heap policy (freed tensor buffers kept for the next step) and float
    // mode (subnormals flushed to zero).
    autograd::configure_training_process();
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let net = CnnNetwork::from_flat(PEER_ARCH, &CnnConfig::workload_c(), &mut rng).unwrap();
    let x = Tensor::randn(&[64, 3, 32, 32], 1.0, DType::F32, &mut rng);
    let y: Vec<usize> = (0..64).map(|_| rng.random_range(0..10)).collect();
    let params = net.trainable_params();
    let mut opt = Sgd::new(0.025).with_momentum(0.9).with_weight_decay(3e-4);
    let mut step = || {
        let out = net.forward(&x, &mut Mode::train(&mut rng, 0.5));
        let loss = out.logits.cross_entropy(&y);
        let mut grads = loss.backward();
        clip_grad_norm(&mut grads, &params, 5.0);
        opt.step(&params, &grads);
        loss.item()
    };
    step(); // warm-up: first-touch page faults, lazily initialised tables
    let t = std::time::Instant::now();
    let mut last = 0.0;
    for _ in 0..steps {
        last = step();
    }
    let per = t.elapsed() / steps.max(1) as u32;
    println!("train step {per:?} (last loss {last:.4})");
}

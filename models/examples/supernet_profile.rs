//! Runs training steps of the NAO-WS supernet at the peer's workload-B shape (the
//! `supernet` bench's `train_b64`: N = 3, F = 20, batch 64, the peer's architecture) in a
//! loop, printing each step's time and the process's resident memory, for profiling and
//! for checking that memory stays flat from step to step:
//! `target/release/examples/supernet_profile [STEPS]`.

use autograd::nn::Module;
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use autograd::{DType, Tensor};
use models::cnn::supernet::{Supernet, SupernetConfig};
use models::cnn::{Mode, PEER_ARCH};
use models::space::SearchSpace;
use models::space::cnn::CnnSpace;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// Resident memory in MiB (`/proc/self/statm`, 4 KiB pages); 0 where it cannot be read.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / (1 << 20) as f64)
}

fn main() {
    // The nao binary's heap policy (freed tensor buffers kept for the next step) and float
    // mode (subnormals flushed to zero).
    autograd::configure_training_process();
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let net = Supernet::new(&SupernetConfig::peer(), &mut rng);
    let arch = CnnSpace::WS
        .decode(&CnnSpace::WS.from_text(PEER_ARCH).unwrap())
        .unwrap();
    let params = net.trainable_params();
    let mut opt = Sgd::new(0.025).with_momentum(0.9).with_weight_decay(3e-4);
    let x = Tensor::randn(&[64, 3, 32, 32], 1.0, DType::F32, &mut rng);
    let labels: Vec<usize> = (0..64).map(|i| (i * 7) % 10).collect();
    for s in 0..steps {
        let t = std::time::Instant::now();
        let logits = net.forward(&x, &arch, &mut Mode::train(&mut rng, 0.5));
        let loss = logits.cross_entropy(&labels);
        let mut grads = loss.backward();
        clip_grad_norm(&mut grads, &params, 5.0);
        opt.step(&params, &grads);
        println!(
            "step {s}: {:?}, loss {:.4}, rss {:.0} MiB",
            t.elapsed(),
            loss.item(),
            rss_mib()
        );
    }
}

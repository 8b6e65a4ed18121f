//! Runs controller training steps and generation in a loop, for profiling
//! (`perf record --call-graph dwarf target/release/examples/controller_profile [STEPS]
//! [train|gen]`; the second argument runs only that half, e.g. for `perf stat`).

use autograd::DType;
use models::space::{Arch, SpaceKind, space};
use nao::controller::{Controller, ControllerConfig};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn main() {
    // The nao binary's heap policy (freed tensor buffers kept for the next step) and float
    // mode (subnormals flushed to zero).
    autograd::configure_training_process();
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let only = std::env::args().nth(2).unwrap_or_default();
    let s = space(SpaceKind::CnnWs);
    let cfg = ControllerConfig::for_space(s.as_ref());
    let mut c = Controller::new(SpaceKind::CnnWs, cfg, DType::F32, 0);
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let archs: Vec<Arch> = (0..100).map(|_| s.sample(&mut rng)).collect();
    let labels: Vec<f64> = (0..100).map(|_| rng.random_range(0.0..1.0)).collect();
    let train_steps = if only == "gen" { 0 } else { steps };
    let gen_steps = if only == "train" { 0 } else { steps };
    let t = std::time::Instant::now();
    for _ in 0..train_steps {
        c.train_step(&archs, &labels, &mut rng);
    }
    let train = t.elapsed() / train_steps.max(1) as u32;
    let t = std::time::Instant::now();
    for _ in 0..gen_steps {
        c.move_and_decode(&archs, 1.0);
    }
    let gen_t = t.elapsed() / gen_steps.max(1) as u32;
    println!("train step {train:?}, generate_100 {gen_t:?}");
}

//! Runs controller training steps and generation in a loop, for profiling
//! (`perf record --call-graph dwarf target/release/examples/controller_profile`).

use autograd::DType;
use models::space::{Arch, SpaceKind, space};
use nao::controller::{Controller, ControllerConfig};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let s = space(SpaceKind::CnnWs);
    let cfg = ControllerConfig::for_space(s.as_ref());
    let mut c = Controller::new(SpaceKind::CnnWs, cfg, DType::F32, 0);
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let archs: Vec<Arch> = (0..100).map(|_| s.sample(&mut rng)).collect();
    let labels: Vec<f64> = (0..100).map(|_| rng.random_range(0.0..1.0)).collect();
    let t = std::time::Instant::now();
    for _ in 0..steps {
        c.train_step(&archs, &labels, &mut rng);
    }
    let train = t.elapsed() / steps as u32;
    let t = std::time::Instant::now();
    for _ in 0..steps {
        c.move_and_decode(&archs, 1.0);
    }
    let gen_t = t.elapsed() / steps as u32;
    println!("train step {train:?}, generate_100 {gen_t:?}");
}

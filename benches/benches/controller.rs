//! The NAO controller against the PyTorch peer (`shared/bench/peers/nao_controller.py`,
//! workload A, CIFAR-10 WS sizes: vocab 12, 40 tokens, 20 encoder steps, emb 48, hidden 96,
//! MLP 3 x 200, batch 100):
//!
//! * `train_step`: forward with teacher forcing + loss (0.8 MSE + 0.2 CE) + backward + clip
//!   5 + Adam (lr 1e-3, weight decay 1e-4), batch 100. Our decoder always runs the LSTM and
//!   the attention over all 40 positions in one call, like the peer's `train_fused`.
//! * `generate_100`: for 100 seed architectures: encoder forward, d prediction / d encoder
//!   outputs, the step, re-normalisation, and 40-step masked greedy decoding (the peer's
//!   `infer_nograd`).

use autograd::DType;
use criterion::{Criterion, criterion_group, criterion_main};
use models::space::{Arch, SpaceKind, space};
use nao::controller::{Controller, ControllerConfig};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::time::Duration;

fn setup() -> (Controller, Vec<Arch>, Vec<f64>, Pcg64Mcg) {
    let s = space(SpaceKind::CnnWs);
    let cfg = ControllerConfig::for_space(s.as_ref());
    let c = Controller::new(SpaceKind::CnnWs, cfg, DType::F32, 0);
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let archs: Vec<Arch> = (0..100).map(|_| s.sample(&mut rng)).collect();
    let labels: Vec<f64> = (0..100).map(|_| rng.random_range(0.0..1.0)).collect();
    (c, archs, labels, rng)
}

fn controller(c: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let mut g = c.benchmark_group("controller");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(2));
    let (mut ctl, archs, labels, mut rng) = setup();
    g.bench_function("train_step_b100", |b| {
        b.iter(|| ctl.train_step(&archs, &labels, &mut rng))
    });
    let (ctl, archs, _, _) = setup();
    g.bench_function("generate_100", |b| {
        b.iter(|| ctl.move_and_decode(&archs, 1.0))
    });
    g.finish();
}

criterion_group!(benches, controller);
criterion_main!(benches);

//! Small-op benches: one LSTM step and a 20-step LSTM layer at the controller's size
//! (batch 100, hidden 96), and softmax-cross-entropy (forward + backward) at the
//! controller decoder's size (4,000 rows of 12 tokens) and a language-model size
//! (1,024 rows of 10,000 words).

use autograd::ops::lstm::{LstmWeights, lstm, lstm_cell};
use autograd::{DType, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use std::time::Duration;

fn t(shape: &[usize], rng: &mut Pcg64Mcg) -> Tensor {
    Tensor::uniform(shape, -0.1, 0.1, DType::F32, rng)
}

fn bench_ops(c: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let mut g = c.benchmark_group("ops");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let (b, h) = (100, 96);
    let x = t(&[b, h], &mut rng);
    let h0 = t(&[b, h], &mut rng);
    let c0 = t(&[b, h], &mut rng);
    let w_ih = t(&[4 * h, h], &mut rng).requires_grad();
    let w_hh = t(&[4 * h, h], &mut rng).requires_grad();
    let bias = t(&[4 * h], &mut rng).requires_grad();
    g.bench_function("lstm_step_b100_h96_fwd_bwd", |bn| {
        bn.iter(|| {
            let (h1, c1) = lstm_cell(&x, &h0, &c0, &w_ih, &w_hh, &bias);
            (&h1 + &c1).sum().backward()
        })
    });
    let xs = t(&[20, b, h], &mut rng);
    let w = LstmWeights {
        w_ih: w_ih.clone(),
        w_hh: w_hh.clone(),
        bias: bias.clone(),
    };
    g.bench_function("lstm_layer_20steps_b100_h96_fwd_bwd", |bn| {
        bn.iter(|| lstm(&xs, &h0, &c0, &w).0.sum().backward())
    });
    for (rows, classes) in [(4000usize, 12usize), (1024, 10_000)] {
        let logits = t(&[rows, classes], &mut rng).requires_grad();
        let labels: Vec<usize> = (0..rows).map(|i| (i * 7919) % classes).collect();
        g.bench_function(
            format!("softmax_cross_entropy_{rows}x{classes}_fwd_bwd"),
            |bn| bn.iter(|| logits.cross_entropy(&labels).backward()),
        );
    }
    g.finish();
}

criterion_group!(benches, bench_ops);
criterion_main!(benches);

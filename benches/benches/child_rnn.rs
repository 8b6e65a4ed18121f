//! Workload D of `shared/bench/peers/ptb_rnn.py`: one PTB child RNN train step and one
//! evaluation forward, at the peer's exact configuration.
//!
//! emb = hid = 300, vocab 10,000, batch 256, bptt 35, the peer's cell
//! `[0 0 1 1 0 3 3 3 1 3 5 2 4 3 6 0 8 0 1 2 7 3]` (flat `pred act` pairs), dropouts output
//! 0.75 / h 0.25 / x 0.75 / input 0.2 / embedding 0, loss NLL + 1e-3 TAR, hidden state
//! carried (detached) between steps; then global-norm clipping at 10 and SGD (lr 0.25,
//! weight decay 5e-7).
//!
//! * `train_b256_bptt35`: fresh masks + forward (35 steps) + loss + backward + clip + SGD.
//! * `eval_b256_bptt35`: no-grad evaluation forward from a zero hidden state + NLL.
//! * `ws_train_b256_bptt35`: the same train step on the weight-sharing supernet
//!   ([`models::rnn::RnnSupernet`], 264 node slices): each step runs the path of one
//!   architecture drawn uniformly from a pool of 8 random ones, clips the path's gradient
//!   and steps SGD (with weight decay) on the path's weights only. The peer's row is the
//!   same step: its "child" is already the supernet's `NAOCellSearch` with one path.
//!
//! Compare with the peer's row at the same thread count (RESULTS.md; this machine has 2
//! cores, so the rayon pool has 2 threads). Each step takes seconds: 10 samples.
//!
//! Run: `cargo bench -p nao-benches --bench child_rnn`.

use std::time::Duration;

use autograd::nn::Module;
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use criterion::{Criterion, criterion_group, criterion_main};
use models::rnn::{RnnConfig, RnnLanguageModel, RnnSupernet};
use models::space::rnn::RnnCell;
use models::space::{RnnSpace, SearchSpace};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const ARCH: [usize; 22] = [
    0, 0, 1, 1, 0, 3, 3, 3, 1, 3, 5, 2, 4, 3, 6, 0, 8, 0, 1, 2, 7, 3,
];

fn bench_child_rnn(c: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let s = RnnSpace;
    let cell = s.decode(&s.from_flat(&ARCH).unwrap()).unwrap();
    let cfg = RnnConfig::ptb_search();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let lm = RnnLanguageModel::new(&cell, &cfg, &mut rng);
    let (b, t) = (256, 35);
    let data = Array2::from_shape_fn((t + 1, b), |_| rng.random_range(0..10_000u32));
    let (inp, tgt) = (
        data.slice(ndarray::s![..t, ..]),
        data.slice(ndarray::s![1.., ..]),
    );
    let params = lm.trainable_params();
    let mut opt = Sgd::new(0.25).with_weight_decay(5e-7);
    let mut hidden = lm.init_hidden(b);

    let mut g = c.benchmark_group("D_ptb_rnn_child");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    g.bench_function("train_b256_bptt35", |bench| {
        bench.iter(|| {
            let out = lm.forward(inp, tgt, &hidden, Some(&mut rng));
            let mut grads = out.loss.backward();
            clip_grad_norm(&mut grads, &params, 10.0);
            opt.step(&params, &grads);
            hidden = out.hidden;
        })
    });
    g.bench_function("eval_b256_bptt35", |bench| {
        bench.iter(|| {
            autograd::no_grad(|| {
                let out = lm.forward(inp, tgt, &lm.init_hidden(b), None);
                out.nll.item()
            })
        })
    });
    g.finish();
}

fn bench_supernet_rnn(c: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let s = RnnSpace;
    let cfg = RnnConfig::ptb_search();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let net = RnnSupernet::new(&cfg, &mut rng);
    let pool: Vec<RnnCell> = (0..8)
        .map(|_| s.decode(&s.sample(&mut rng)).unwrap())
        .collect();
    let (b, t) = (256, 35);
    let data = Array2::from_shape_fn((t + 1, b), |_| rng.random_range(0..10_000u32));
    let (inp, tgt) = (
        data.slice(ndarray::s![..t, ..]),
        data.slice(ndarray::s![1.., ..]),
    );
    let mut opt = Sgd::new(0.25).with_weight_decay(5e-7);
    let mut hidden = net.init_hidden(b);

    let mut g = c.benchmark_group("D_ptb_rnn_child");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    g.bench_function("ws_train_b256_bptt35", |bench| {
        bench.iter(|| {
            let arch = &pool[rng.random_range(0..pool.len())];
            let child = net.child(arch);
            let params = net.path_params(arch);
            let out = child.forward(inp, tgt, &hidden, Some(&mut rng));
            let mut grads = out.loss.backward();
            clip_grad_norm(&mut grads, &params, 10.0);
            opt.step(&params, &grads);
            hidden = out.hidden;
        })
    });
    g.finish();
}

criterion_group!(benches, bench_child_rnn, bench_supernet_rnn);
criterion_main!(benches);

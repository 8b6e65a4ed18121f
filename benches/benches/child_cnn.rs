//! The child CNN of workload C, as the PyTorch peer `shared/bench/peers/nasnet_child.py`
//! runs it: `cnn-ws`, N = 2, F = 16 (8 cells, stem 48), 10 classes, no auxiliary head,
//! dropout keep 0.6, drop-path keep 0.8 at mid-training (progress 0.5), batch 64 of random
//! 32x32 inputs, the peer's fixed architecture.
//!
//! * `train_b64`: forward (training mode) + cross-entropy + backward + clip to global norm
//!   5 + SGD (momentum 0.9, lr 0.025, weight decay 3e-4).
//! * `eval_b64`: evaluation-mode forward under `no_grad`.
//!
//! Peer figures (2 threads, RESULTS.md): train 1323 ms (NCHW), 763 ms (channels-last);
//! eval 357 ms.
//!
//! Run: `cargo bench -p nao-benches --bench child_cnn -- --warm-up-time 2 --measurement-time 20`.
//!
//! `child_cnn_N2F16_cuda`: the same two steps on CUDA device 0 (build with
//! `--features cuda`); without a device it prints `skipped: no CUDA device (...)`. Each
//! iteration ends by reading a number back, so the GPU work is timed, not just enqueued.

use autograd::nn::Module;
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use autograd::{DType, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use models::cnn::{CnnConfig, CnnNetwork, Mode, PEER_ARCH};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::time::Duration;

fn bench_child(cr: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let net = CnnNetwork::from_flat(PEER_ARCH, &CnnConfig::workload_c(), &mut rng).unwrap();
    assert_eq!(net.num_params(), 342_458);
    let x = Tensor::randn(&[64, 3, 32, 32], 1.0, DType::F32, &mut rng);
    let y: Vec<usize> = (0..64).map(|_| rng.random_range(0..10)).collect();
    let params = net.trainable_params();
    let mut opt = Sgd::new(0.025).with_momentum(0.9).with_weight_decay(3e-4);
    let mut g = cr.benchmark_group("child_cnn_N2F16");
    g.sample_size(10);
    g.bench_function("train_b64", |b| {
        b.iter(|| {
            let out = net.forward(&x, &mut Mode::train(&mut rng, 0.5));
            let loss = out.logits.cross_entropy(&y);
            let mut grads = loss.backward();
            clip_grad_norm(&mut grads, &params, 5.0);
            opt.step(&params, &grads);
            loss.item()
        })
    });
    g.bench_function("eval_b64", |b| {
        b.iter(|| autograd::no_grad(|| net.forward(&x, &mut Mode::eval()).logits))
    });
    g.finish();
}

fn bench_child_cuda(cr: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let dev = match autograd::Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            println!("child_cnn_N2F16_cuda skipped: no CUDA device ({e})");
            return;
        }
    };
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let net = CnnNetwork::from_flat(PEER_ARCH, &CnnConfig::workload_c(), &mut rng).unwrap();
    net.to_device(&dev).unwrap();
    let x = Tensor::randn(&[64, 3, 32, 32], 1.0, DType::F32, &mut rng).to(&dev);
    let y: Vec<usize> = (0..64).map(|_| rng.random_range(0..10)).collect();
    let params = net.trainable_params();
    let mut opt = Sgd::new(0.025).with_momentum(0.9).with_weight_decay(3e-4);
    let mut g = cr.benchmark_group("child_cnn_N2F16_cuda");
    g.sample_size(10);
    g.bench_function("train_b64", |b| {
        b.iter(|| {
            let out = net.forward(&x, &mut Mode::train(&mut rng, 0.5));
            let loss = out.logits.cross_entropy(&y);
            let mut grads = loss.backward();
            clip_grad_norm(&mut grads, &params, 5.0);
            opt.step(&params, &grads);
            // Reading a parameter back waits for the update.
            (loss.item(), params[0].get().to_vec::<f32>()[0])
        })
    });
    g.bench_function("eval_b64", |b| {
        b.iter(|| {
            autograd::no_grad(|| net.forward(&x, &mut Mode::eval()).logits.to_vec::<f32>()[0])
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(10));
    targets = bench_child, bench_child_cuda
}
criterion_main!(benches);

//! The NAO-WS supernet, shaped as the PyTorch peer's workload B
//! (`shared/bench/peers/nao_ws_cnn.py`): N = 3, F = 20, batch 64, the peer's pinned
//! architecture; `train_b64` = forward + cross-entropy + backward + clip 5 + SGD momentum
//! 0.9 / L2 3e-4 along that architecture's path (drop-path at mid-training, keep 0.9);
//! `eval_b500` = no-grad forward of 500 images with batch statistics.

use autograd::nn::Module;
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use autograd::{DType, Tensor, no_grad};
use criterion::{Criterion, criterion_group, criterion_main};
use models::cnn::supernet::{Supernet, SupernetConfig};
use models::cnn::{Mode, PEER_ARCH};
use models::space::SearchSpace;
use models::space::cnn::CnnSpace;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

fn bench(c: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let net = Supernet::new(&SupernetConfig::peer(), &mut rng);
    let arch = CnnSpace::WS
        .decode(&CnnSpace::WS.from_text(PEER_ARCH).unwrap())
        .unwrap();
    let params = net.trainable_params();
    let mut opt = Sgd::new(0.025).with_momentum(0.9).with_weight_decay(3e-4);
    let x = Tensor::randn(&[64, 3, 32, 32], 1.0, DType::F32, &mut rng);
    let labels: Vec<usize> = (0..64).map(|i| (i * 7) % 10).collect();
    let xe = Tensor::randn(&[500, 3, 32, 32], 1.0, DType::F32, &mut rng);
    let mut g = c.benchmark_group("naows_supernet");
    g.sample_size(10);
    g.bench_function("train_b64", |b| {
        b.iter(|| {
            let logits = net.forward(&x, &arch, &mut Mode::train(&mut rng, 0.5));
            let mut grads = logits.cross_entropy(&labels).backward();
            clip_grad_norm(&mut grads, &params, 5.0);
            opt.step(&params, &grads);
        })
    });
    g.bench_function("eval_b500", |b| {
        b.iter(|| no_grad(|| net.forward(&xe, &arch, &mut Mode::eval())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

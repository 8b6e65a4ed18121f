//! The child CNN on a GPU: one training step (forward with dropout and drop-path, backward,
//! an SGD step) on CUDA device 0 matches the CPU, and `train_cnn_on` trains there.
//! Tolerance: rel 1e-3 of `|cpu| + mean|cpu|` (convolutions and batch norm sum in another
//! order on the GPU). Without a GPU each test prints `skipped: no CUDA device (...)`.

use std::sync::Arc;

use autograd::nn::Module;
use autograd::optim::{Optimizer, Sgd};
use autograd::{Device, Tensor};
use datasets::{ChannelStats, synthetic};
use models::cnn::{CnnConfig, CnnNetwork, Mode};
use models::space::{CnnSpace, SearchSpace, SpaceKind};
use models::train::cnn_trainer::train_cnn_on;
use models::train::{Recipe, TrainData};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

const ARCH: &str =
    "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";

fn gpu() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            if std::env::var("OPS_CUDA_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("OPS_CUDA_REQUIRE_GPU=1 but no CUDA device: {e}");
            }
            println!("skipped: no CUDA device ({e})");
            None
        }
    }
}

fn cfg() -> CnnConfig {
    CnnConfig {
        space: SpaceKind::CnnWs,
        n_cells: 1,
        channels: 8,
        classes: 10,
        dropout_keep: 0.8,
        drop_path_keep: 0.7,
        aux_head: true,
    }
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().map(|v| v.abs()).sum::<f32>() / want.len().max(1) as f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-3 * (w.abs() + scale),
            "{what}[{i}]: GPU {g} vs CPU {w}"
        );
    }
}

#[test]
fn one_training_step_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let x = Tensor::uniform(
        &[4, 3, 32, 32],
        -1.0,
        1.0,
        autograd::DType::F32,
        &mut Pcg64Mcg::seed_from_u64(5),
    );
    let labels = [1usize, 7, 3, 3];
    let run = |device: &Device| {
        let mut rng = Pcg64Mcg::seed_from_u64(0);
        let net = CnnNetwork::from_flat(ARCH, &cfg(), &mut rng).unwrap();
        net.to_device(device).unwrap();
        let out = net.forward(&x.to(device), &mut Mode::train(&mut rng, 0.5));
        let loss = out.logits.cross_entropy(&labels).add(
            &out.aux_logits
                .unwrap()
                .cross_entropy(&labels)
                .mul_scalar(0.4),
        );
        let grads = loss.backward();
        let params = net.trainable_params();
        Sgd::new(0.1).with_momentum(0.9).step(&params, &grads);
        let after: Vec<Vec<f32>> = net
            .params()
            .iter()
            .map(|p| p.get().to_vec::<f32>())
            .collect();
        (loss.item() as f32, after)
    };
    let (lc, pc) = run(&Device::Cpu);
    let (lg, pg) = run(&dev);
    close("loss", &[lg], &[lc]);
    for (i, (g, c)) in pg.iter().zip(&pc).enumerate() {
        close(&format!("parameter {i} after one step"), g, c);
    }
}

#[test]
fn train_cnn_on_the_gpu_learns() {
    let Some(dev) = gpu() else { return };
    let set = Arc::new(synthetic::synthetic_images(320, 1));
    let data = TrainData {
        train: set.clone(),
        eval: Arc::new(synthetic::synthetic_images(100, 2)),
        stats: ChannelStats::compute(&set),
    };
    let mut r = Recipe::preset("smoke").unwrap().with_constant_lr(0.05);
    r.epochs = 3;
    r.batch_size = 32;
    let tokens = CnnSpace::WS
        .from_text(
            "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 | 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4",
        )
        .unwrap();
    let cfg = CnnConfig {
        channels: 4,
        dropout_keep: 1.0,
        drop_path_keep: 1.0,
        aux_head: false,
        ..cfg()
    };
    let (net, rep) = train_cnn_on(&tokens, &cfg, &r, &data, 0, false, &dev).unwrap();
    assert_eq!(models::train::cnn_trainer::net_device(&net), dev);
    assert!(
        rep.epochs[2].train_loss < rep.epochs[0].train_loss,
        "{:?}",
        rep.epochs
    );
    assert!(
        rep.final_eval_acc > 0.3,
        "eval accuracy {}",
        rep.final_eval_acc
    );
}

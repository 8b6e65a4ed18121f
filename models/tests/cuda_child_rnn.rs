//! The child RNN language model on a GPU: one training step (forward with every dropout
//! and TAR, backward, clipping, an SGD step) on CUDA device 0 matches the CPU with the same
//! seed, and `train_rnn_on` trains there (the loss falls). Tolerance: loss within 1e-3
//! relative, parameters within 1e-3 of `|cpu| + mean|cpu|` (the GPU sums in another order).
//! Without a GPU the GPU tests print `skipped: no CUDA device (...)`; the CPU check of
//! `train_rnn_on` always runs.

use autograd::Device;
use autograd::nn::Module;
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use models::rnn::{RnnConfig, RnnLanguageModel};
use models::space::rnn::RnnCell;
use models::space::{RnnSpace, SearchSpace};
use models::train::ptb_recipe::PtbRecipe;
use models::train::rnn_trainer::{train_rnn, train_rnn_on};
use ndarray::Array2;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

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

fn arch() -> RnnCell {
    let s = RnnSpace;
    s.decode(
        &s.from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2")
            .unwrap(),
    )
    .unwrap()
}

/// Every dropout on and TAR on, so that each mask and the TAR term reach the GPU.
fn cfg(vocab: usize) -> RnnConfig {
    RnnConfig {
        emb: 16,
        hidden: 16,
        vocab,
        dropout: 0.3,
        dropouth: 0.2,
        dropouti: 0.2,
        dropoute: 0.1,
        dropoutx: 0.25,
        tar_beta: 1.0,
    }
}

fn corpus() -> datasets::Corpus {
    let sents = [
        "the cat sat on the mat",
        "a dog ran in the park",
        "the bird sang a song",
        "my cat ate the fish",
    ];
    let text = |n: usize, seed: usize| -> String {
        (0..n)
            .map(|i| sents[(i * 7 + seed + i / 3) % 4])
            .collect::<Vec<_>>()
            .join("\n")
    };
    datasets::Corpus::from_texts(&text(400, 0), &text(60, 1), &text(60, 2)).unwrap()
}

fn recipe(epochs: usize) -> PtbRecipe {
    PtbRecipe {
        batch: 8,
        eval_batch: 4,
        bptt: 10,
        epochs,
        max_train_windows: None,
        max_valid_windows: None,
        ..PtbRecipe::ptb_final()
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

/// What one step left, on the host.
struct Step {
    loss: f64,
    nll: f64,
    hidden: Vec<f32>,
    /// Name and value of every parameter after the step.
    params: Vec<(String, Vec<f32>)>,
}

/// One step on `device`.
fn one_step(device: &Device) -> Step {
    let v = 30;
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let lm = RnnLanguageModel::new(&arch(), &cfg(v), &mut rng);
    lm.to_device(device).unwrap();
    let (t_len, b) = (6, 4);
    let ids = Array2::from_shape_fn((t_len, b), |(t, j)| ((t * 7 + j * 3) % v) as u32);
    let tgt = Array2::from_shape_fn((t_len, b), |(t, j)| ((t * 7 + j * 3 + 1) % v) as u32);
    let h0 = lm.init_hidden(b);
    assert_eq!(h0.device(), device);
    let mut mask_rng = Pcg64Mcg::seed_from_u64(9);
    let out = lm.forward(ids.view(), tgt.view(), &h0, Some(&mut mask_rng));
    assert_eq!(out.loss.device(), device);
    assert_eq!(out.hidden.device(), device);
    let params = lm.trainable_params();
    let mut grads = out.loss.backward();
    clip_grad_norm(&mut grads, &params, 0.25);
    let mut opt = Sgd::new(1.0).with_weight_decay(1e-4);
    opt.step(&params, &grads);
    let after = params
        .iter()
        .map(|p| {
            assert_eq!(&p.device(), device, "{} left the device", p.name());
            (p.name().to_string(), p.get().to_vec::<f32>())
        })
        .collect();
    Step {
        loss: out.loss.item(),
        nll: out.nll.item(),
        hidden: out.hidden.to_vec::<f32>(),
        params: after,
    }
}

#[test]
fn one_training_step_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let c = one_step(&Device::Cpu);
    let g = one_step(&dev);
    let (loss_c, nll_c, h_c, p_c) = (c.loss, c.nll, c.hidden, c.params);
    let (loss_g, nll_g, h_g, p_g) = (g.loss, g.nll, g.hidden, g.params);
    assert!(
        (loss_g - loss_c).abs() <= 1e-3 * loss_c.abs(),
        "loss: GPU {loss_g} vs CPU {loss_c}"
    );
    assert!(
        (nll_g - nll_c).abs() <= 1e-3 * nll_c.abs(),
        "nll: GPU {nll_g} vs CPU {nll_c}"
    );
    close("hidden", &h_g, &h_c);
    for ((name, g), (_, c)) in p_g.iter().zip(&p_c) {
        close(name, g, c);
    }
}

#[test]
fn trains_on_the_gpu() {
    let Some(dev) = gpu() else { return };
    let r = train_rnn_on(&arch(), &cfg(0), &recipe(3), &corpus(), 3, false, &dev).unwrap();
    let first = r.epochs.first().unwrap();
    let last = r.epochs.last().unwrap();
    assert!(
        last.train_loss < first.train_loss && last.valid_loss.is_finite(),
        "the loss did not fall on the GPU: {:?}",
        r.epochs
    );
}

/// `train_rnn_on` the CPU is `train_rnn` with the default (CPU) training device, bit for
/// bit (apart from the timings).
#[test]
fn train_rnn_on_the_cpu_is_train_rnn() {
    let strip = |mut r: models::train::rnn_trainer::RnnReport| {
        r.epochs.iter_mut().for_each(|e| e.seconds = 0.0);
        r
    };
    let a = train_rnn(&arch(), &cfg(0), &recipe(1), &corpus(), 5, false).unwrap();
    let b = train_rnn_on(
        &arch(),
        &cfg(0),
        &recipe(1),
        &corpus(),
        5,
        false,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(strip(a), strip(b));
}

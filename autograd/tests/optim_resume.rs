//! Resuming training from saved parameters, optimiser state and data-generator state gives
//! bit-identical parameters to training without interruption (Adam, and SGD with Nesterov
//! momentum and weight decay), with a cosine schedule and gradient clipping in the loop.

use autograd::nn::{Linear, Module, Param};
use autograd::optim::schedule::{CosineAnnealing, Schedule};
use autograd::optim::{Adam, Optimizer, Sgd, clip_grad_norm};
use autograd::{DType, Tensor};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::path::Path;

struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn new(seed: u64) -> Mlp {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        Mlp {
            fc1: Linear::new("mlp.fc1", 3, 16, true, &mut rng),
            fc2: Linear::new("mlp.fc2", 16, 2, true, &mut rng),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).tanh())
    }
}

impl Module for Mlp {
    fn params(&self) -> Vec<Param> {
        let mut p = self.fc1.params();
        p.extend(self.fc2.params());
        p
    }
}

/// A fresh random batch: targets are a smooth function of the inputs.
fn batch(rng: &mut Pcg64Mcg) -> (Tensor, Tensor) {
    let n = 32;
    let x: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let y: Vec<f32> = x
        .chunks(3)
        .flat_map(|r| [r[0] * r[1] - r[2], (r[0] + r[2]).sin()])
        .collect();
    (Tensor::from_vec(x, &[n, 3]), Tensor::from_vec(y, &[n, 2]))
}

const TOTAL: usize = 20;

fn train(model: &Mlp, opt: &mut dyn Optimizer, data: &mut Pcg64Mcg, steps: std::ops::Range<usize>) {
    let sched = CosineAnnealing {
        lr_max: opt_lr_max(opt),
        lr_min: 1e-4,
        total: TOTAL,
    };
    let params = model.trainable_params();
    for step in steps {
        opt.set_lr(sched.lr(step));
        let (x, y) = batch(data);
        let loss = (model.forward(&x) - &y).square().mean();
        let mut grads = loss.backward();
        clip_grad_norm(&mut grads, &params, 1.0);
        opt.step(&params, &grads);
    }
}

/// The schedule's peak for the optimiser kind (kept out of the optimiser's state on purpose:
/// the schedule is part of the recipe, not of what gets saved).
fn opt_lr_max(opt: &dyn Optimizer) -> f64 {
    if opt.state().kind == "adam" {
        0.01
    } else {
        0.1
    }
}

fn bits(m: &Mlp) -> Vec<(String, Vec<u32>)> {
    m.params()
        .iter()
        .map(|p| {
            (
                p.name().to_string(),
                p.get().array::<f32>().iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

fn resume_is_bit_identical(make_opt: fn() -> Box<dyn Optimizer>) {
    // uninterrupted
    let a = Mlp::new(1);
    let init = bits(&a);
    let mut opt_a = make_opt();
    let mut data_a = Pcg64Mcg::seed_from_u64(2);
    train(&a, opt_a.as_mut(), &mut data_a, 0..TOTAL);
    assert_ne!(bits(&a), init, "training must move the parameters");

    // interrupted after 10 steps: save params, optimiser state and the data generator
    let dir = tempfile::tempdir().unwrap();
    let (pfile, sfile, rfile) = (
        dir.path().join("model.params"),
        dir.path().join("model.optim"),
        dir.path().join("data_rng.json"),
    );
    {
        let b = Mlp::new(1);
        let mut opt_b = make_opt();
        let mut data_b = Pcg64Mcg::seed_from_u64(2);
        train(&b, opt_b.as_mut(), &mut data_b, 0..10);
        b.save(&pfile).unwrap();
        opt_b.save_state_file(&sfile).unwrap();
        std::fs::write(&rfile, serde_json::to_vec(&data_b).unwrap()).unwrap();
    }

    // a fresh process: another initialisation, a fresh optimiser, everything loaded
    let c = Mlp::new(99);
    let mut opt_c = make_opt();
    opt_c.set_lr(123.0); // restored from the state file
    c.load(&pfile).unwrap();
    opt_c
        .load_state_file(Path::new(&sfile), &c.params())
        .unwrap();
    let mut data_c: Pcg64Mcg = serde_json::from_slice(&std::fs::read(&rfile).unwrap()).unwrap();
    assert_eq!(
        opt_c.lr().to_bits(),
        opt_a_lr_at(opt_c.as_ref(), 9).to_bits()
    );
    train(&c, opt_c.as_mut(), &mut data_c, 10..TOTAL);

    assert_eq!(bits(&c), bits(&a));
    assert_eq!(c.params()[0].dtype(), DType::F32);
}

fn opt_a_lr_at(opt: &dyn Optimizer, step: usize) -> f64 {
    CosineAnnealing {
        lr_max: opt_lr_max(opt),
        lr_min: 1e-4,
        total: TOTAL,
    }
    .lr(step)
}

#[test]
fn adam_resume_is_bit_identical() {
    resume_is_bit_identical(|| Box::new(Adam::new(0.01).with_weight_decay(1e-3)));
}

#[test]
fn sgd_nesterov_resume_is_bit_identical() {
    resume_is_bit_identical(|| {
        Box::new(
            Sgd::new(0.1)
                .with_momentum(0.9)
                .with_nesterov(true)
                .with_weight_decay(1e-4),
        )
    });
}

#[test]
fn loading_state_from_another_model_is_refused() {
    let a = Mlp::new(1);
    let mut opt = Adam::new(0.01);
    let mut data = Pcg64Mcg::seed_from_u64(2);
    train(&a, &mut opt, &mut data, 0..2);
    let dir = tempfile::tempdir().unwrap();
    let sfile = dir.path().join("s");
    opt.save_state_file(&sfile).unwrap();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let other = Linear::new("mlp.fc1", 3, 8, true, &mut rng);
    let mut fresh = Adam::new(0.5);
    let e = fresh
        .load_state_file(&sfile, &other.params())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&sfile.display().to_string()), "{e}");
    assert!(
        e.contains("state 'exp_avg' of parameter 'mlp.fc1.weight' has shape [16, 3] but the parameter has shape [8, 3]"),
        "{e}"
    );
    assert!(
        e.contains("the state has parameter 'mlp.fc2.bias' that the model does not have"),
        "{e}"
    );
    assert_eq!(fresh.lr(), 0.5, "a failed load changes nothing");
}

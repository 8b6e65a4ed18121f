//! Supernet tests: gradients of a path, untouched weights off the path, batch statistics.

use super::*;
use autograd::DType;
use autograd::optim::{Optimizer, Sgd};
use autograd::testing::{GradcheckOptions, gradcheck_params, rand_f64};
use rand::SeedableRng;
use std::collections::HashSet;

use crate::space::cnn::CnnSpace;

/// The peer's fixed architecture (every op and both reduction inputs appear).
const ARCH_A: &str =
    "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";
/// A second architecture sharing some branches with [`ARCH_A`].
const ARCH_B: &str =
    "1 1 0 4 2 0 1 2 3 3 0 0 4 1 2 4 5 0 3 2 0 1 1 4 2 2 0 0 3 1 1 3 4 0 2 2 5 1 0 4";

fn arch(text: &str) -> CnnArch {
    let flat: Vec<usize> = text.split(' ').map(|t| t.parse().unwrap()).collect();
    CnnArch::from_flat(&CnnSpace::WS, &flat).unwrap()
}

fn tiny() -> SupernetConfig {
    SupernetConfig {
        n_cells: 1,
        channels: 2,
        classes: 3,
        drop_path_keep: 0.9,
        dropout_keep: 1.0,
    }
}

fn loss(net: &Supernet, x: &Tensor, a: &CnnArch, labels: &[usize]) -> Tensor {
    net.forward(x, a, &mut Mode::train_deterministic())
        .cross_entropy(labels)
}

/// f64 central differences agree with backward for every weight the path of an
/// architecture reads (stem, calibrations, the selected per-input op weights, factorized
/// reduces, output-conv slices, classifier), on 8x8 inputs.
#[test]
fn path_gradients_check_out_in_f64() {
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let net = Supernet::new(&tiny(), &mut rng);
    net.to_dtype(DType::F64);
    let x = rand_f64(&[2, 3, 8, 8], 2);
    let a = arch(ARCH_A);
    let params: Vec<Param> = net
        .path_params(&a)
        .into_iter()
        .filter(|p| p.is_trainable())
        .collect();
    let rep = gradcheck_params(
        || loss(&net, &x, &a, &[0, 2]),
        &params,
        GradcheckOptions::default(),
    )
    .unwrap();
    assert!(
        rep.elements > 1000,
        "checked only {} elements",
        rep.elements
    );
}

/// Weights off the path get no gradient, and an SGD step with momentum and weight decay
/// leaves them (and their momentum) bit-identical, even when an earlier step on another
/// architecture gave them momentum; every trainable weight on the path moves.
#[test]
fn weights_off_the_path_stay_unchanged() {
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    let net = Supernet::new(&tiny(), &mut rng);
    let x = Tensor::uniform(&[4, 3, 8, 8], -1.0, 1.0, DType::F32, &mut rng);
    let labels = [0, 1, 2, 1];
    let (a, b) = (arch(ARCH_A), arch(ARCH_B));
    let params = net.trainable_params();
    let mut opt = Sgd::new(0.1).with_momentum(0.9).with_weight_decay(3e-4);
    opt.step(&params, &loss(&net, &x, &a, &labels).backward());

    let before: Vec<Vec<f32>> = net.params().iter().map(|p| p.get().to_vec()).collect();
    let on_b: HashSet<String> = net
        .path_params(&b)
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let grads = loss(&net, &x, &b, &labels).backward();
    let (mut off, mut on) = (0, 0);
    for p in &params {
        let has = grads.get(&p.get()).is_some();
        if on_b.contains(p.name()) {
            assert!(has, "'{}' is on the path but got no gradient", p.name());
        } else {
            assert!(!has, "'{}' is off the path but got a gradient", p.name());
        }
    }
    opt.step(&params, &grads);
    for (p, old) in net.params().iter().zip(&before) {
        let now: Vec<f32> = p.get().to_vec();
        let same = now.iter().zip(old).all(|(x, y)| x.to_bits() == y.to_bits());
        if on_b.contains(p.name()) {
            if p.is_trainable() {
                assert!(!same, "'{}' is on the path but did not move", p.name());
                on += 1;
            }
        } else {
            assert!(same, "'{}' is off the path but changed", p.name());
            off += 1;
        }
    }
    assert!(
        off > on,
        "expected more weights off the path ({off}) than on it ({on})"
    );
}

/// Batch norm uses batch statistics in every mode: the running-statistics buffers never
/// change, and a sample's logits depend on the rest of its batch even without a generator.
#[test]
fn batch_norm_always_uses_batch_statistics() {
    let mut rng = Pcg64Mcg::seed_from_u64(5);
    let net = Supernet::new(&tiny(), &mut rng);
    let a = arch(ARCH_A);
    let buffers = |n: &Supernet| -> Vec<Vec<f32>> {
        n.params()
            .iter()
            .filter(|p| !p.is_trainable())
            .map(|p| p.get().to_vec())
            .collect()
    };
    let start = buffers(&net);
    let x = Tensor::uniform(&[4, 3, 8, 8], -1.0, 1.0, DType::F32, &mut rng);
    let y = Tensor::uniform(&[4, 3, 8, 8], -1.0, 1.0, DType::F32, &mut rng);
    let first = |t: &Tensor| -> Vec<f32> {
        let out = autograd::no_grad(|| net.forward(t, &a, &mut Mode::eval()));
        out.to_vec::<f32>()[..3].to_vec()
    };
    let mixed = Tensor::concat(&[&x.narrow(0, 0, 1), &y.narrow(0, 1, 3)], 0);
    assert_ne!(first(&x), first(&mixed));
    let _ = net.forward(&x, &a, &mut Mode::train(&mut rng, 0.5));
    assert_eq!(buffers(&net), start);
}

/// An op outside `cnn-ws` is refused with its name.
#[test]
#[should_panic(expected = "not in the cnn-ws space")]
fn ops_outside_the_space_panic() {
    let mut rng = Pcg64Mcg::seed_from_u64(6);
    let net = Supernet::new(&tiny(), &mut rng);
    let mut a = arch(ARCH_A);
    a.normal.nodes[0].a.op = crate::space::cnn::CnnOp::Conv3x3;
    let x = Tensor::zeros(&[2, 3, 8, 8], DType::F32);
    let _ = net.forward(&x, &a, &mut Mode::train_deterministic());
}

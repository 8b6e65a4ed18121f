//! An MLP trained with Adam learns a non-linear 4-class problem on the plane (XOR of the
//! quadrants crossed with inside/outside a ring) to more than 95% test accuracy.

use autograd::nn::{Linear, Module, Param};
use autograd::optim::{Adam, Optimizer};
use autograd::{Tensor, no_grad};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const RADIUS: f32 = 0.7;
const MARGIN: f32 = 0.05;

/// `n` points uniform in [-1, 1]^2, at least `MARGIN` away from every class boundary, and
/// their labels: 2 * [x * y > 0] + [|p| > RADIUS].
fn dataset(n: usize, rng: &mut Pcg64Mcg) -> (Tensor, Vec<usize>) {
    let (mut xs, mut labels) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    while labels.len() < n {
        let x = rng.random_range(-1.0f32..1.0);
        let y = rng.random_range(-1.0f32..1.0);
        let r = (x * x + y * y).sqrt();
        if x.abs() < MARGIN || y.abs() < MARGIN || (r - RADIUS).abs() < MARGIN {
            continue;
        }
        xs.extend([x, y]);
        labels.push(2 * usize::from(x * y > 0.0) + usize::from(r > RADIUS));
    }
    (Tensor::from_vec(xs, &[n, 2]), labels)
}

struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    fn new(rng: &mut Pcg64Mcg) -> Mlp {
        let sizes = [2, 32, 32, 4];
        Mlp {
            layers: sizes
                .windows(2)
                .enumerate()
                .map(|(i, w)| Linear::new(&format!("mlp.fc{i}"), w[0], w[1], true, rng))
                .collect(),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h);
            if i + 1 < self.layers.len() {
                h = h.tanh();
            }
        }
        h
    }
}

impl Module for Mlp {
    fn params(&self) -> Vec<Param> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }
}

/// Mean cross-entropy from existing ops: a private stand-in until the crate's own
/// cross-entropy op lands (log-softmax = z - max - log(sum(exp(z - max))), the max
/// detached for stability; the loss picks the label's log-probability with a one-hot mask).
fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Tensor {
    let (n, k) = (logits.dim(0), logits.dim(1));
    let z = logits - &logits.max_axis(1, true).detach();
    let log_p = &z - &z.exp().sum_axes(&[1], true).log();
    let mut one_hot = vec![0.0f32; n * k];
    for (i, &c) in labels.iter().enumerate() {
        one_hot[i * k + c] = 1.0;
    }
    (log_p * Tensor::from_vec(one_hot, &[n, k]))
        .sum()
        .mul_scalar(-1.0 / n as f64)
}

fn accuracy(model: &Mlp, x: &Tensor, labels: &[usize]) -> f64 {
    let pred = no_grad(|| model.forward(x)).argmax_axis(1);
    let right = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len() as f64
}

#[test]
fn mlp_learns_four_non_linear_classes() {
    let mut rng = Pcg64Mcg::seed_from_u64(2024);
    let (train_x, train_y) = dataset(1000, &mut rng);
    let (test_x, test_y) = dataset(1000, &mut rng);
    let model = Mlp::new(&mut rng);
    let params = model.trainable_params();
    assert_eq!(model.num_params(), 2 * 32 + 32 + 32 * 32 + 32 + 32 * 4 + 4);
    let mut opt = Adam::new(0.02);
    let start = std::time::Instant::now();
    let first = cross_entropy(&model.forward(&train_x), &train_y).item();
    let mut loss = first;
    for _ in 0..600 {
        let l = cross_entropy(&model.forward(&train_x), &train_y);
        loss = l.item();
        let grads = l.backward();
        opt.step(&params, &grads);
    }
    let acc = accuracy(&model, &test_x, &test_y);
    eprintln!(
        "loss {first:.3} -> {loss:.4}, test accuracy {:.1}% in {:.2?}",
        100.0 * acc,
        start.elapsed()
    );
    assert!(acc > 0.95, "test accuracy {acc}");
    assert!(accuracy(&model, &train_x, &train_y) > 0.95);
}

#[test]
fn cross_entropy_helper_matches_by_hand() {
    // logits [0, ln 3] -> p = [1/4, 3/4]; label 1: -ln(3/4)
    let l = Tensor::from_vec(vec![0.0f32, 3f32.ln(), 0.0, 0.0], &[2, 2]);
    let ce = cross_entropy(&l, &[1, 0]).item();
    let want = (-(0.75f64).ln() - (0.5f64).ln()) / 2.0;
    assert!((ce - want).abs() < 1e-6, "{ce} {want}");
}

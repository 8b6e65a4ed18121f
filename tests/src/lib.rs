//! Shared helpers for the workspace's gradient-check suite, learning proofs and end-to-end
//! tests (the tests themselves live in `tests/tests/`).

use autograd::Tensor;
use autograd::nn::Param;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// The workspace's named generator, seeded.
pub fn rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed)
}

/// Fraction of rows of `logits (N, C)` whose argmax equals the label.
pub fn accuracy(logits: &Tensor, labels: &[usize]) -> f64 {
    let pred = logits.argmax_axis(-1);
    assert_eq!(
        pred.len(),
        labels.len(),
        "accuracy: {} predictions for {} labels",
        pred.len(),
        labels.len()
    );
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

/// A trainable parameter initialised uniformly in `±bound` (f32).
pub fn param(name: &str, shape: &[usize], bound: f64, rng: &mut Pcg64Mcg) -> Param {
    Param::new(
        name,
        autograd::nn::init::uniform(shape, bound, autograd::DType::F32, rng),
    )
}

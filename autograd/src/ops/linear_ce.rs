//! The softmax decoder of a language model and its loss as one op:
//! [`linear_cross_entropy`] computes `mean_n CE(x_n W^T + b, label_n)` block by block,
//! never holding the `N x V` logits (the kernel: [`crate::kernels::cpu::linear_ce`]).
//!
//! The forward also computes the gradients of `x`, `W` and `b` when one of them is tracked
//! (they fall out of each block's probabilities); the backward only scales them by the
//! incoming gradient of the (scalar) loss. On a GPU (inputs on a CUDA device) the op is
//! computed unfused by [`linear_cross_entropy_composed`]: `matmul_t`, a broadcast bias add
//! and `cross_entropy`, each of which has a GPU path; the value and gradients are the
//! same.

use crate::graph::is_grad_enabled;
use crate::tensor::Tensor;

/// Panics naming the shapes when `x (N, D)`, `w (V, D)`, `b (V)` and `N` labels do not fit.
fn check_shapes(op: &str, x: &Tensor, w: &Tensor, b: &Tensor, labels: &[usize]) {
    assert!(
        x.ndim() == 2
            && w.ndim() == 2
            && x.shape()[1] == w.shape()[1]
            && b.shape() == [w.shape()[0]].as_slice()
            && labels.len() == x.shape()[0],
        "{op}: x {:?}, w {:?}, b {:?} and {} labels do not fit \
         (need (N, D), (V, D), (V) and N labels)",
        x.shape(),
        w.shape(),
        b.shape(),
        labels.len()
    );
}

/// `mean_n CE(x_n W^T + b, labels_n)` for `x: (N, D)`, `w: (V, D)`, `b: (V)`, as a 0-d
/// tensor; differentiable in `x`, `w` and `b` (see the module docs).
///
/// Panics naming the shapes when they do not fit, and naming the label when one is out of
/// range.
///
/// ```
/// use autograd::Tensor;
/// use autograd::ops::linear_ce::linear_cross_entropy;
/// // Two classes with equal logits: the loss is ln 2.
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2]);
/// let w = Tensor::from_vec(vec![0.5f64, 0.5, 0.5, 0.5], &[2, 2]);
/// let b = Tensor::from_vec(vec![0.0f64, 0.0], &[2]);
/// let loss = linear_cross_entropy(&x, &w, &b, &[1]);
/// assert!((loss.item() - 2f64.ln()).abs() < 1e-12);
/// ```
pub fn linear_cross_entropy(x: &Tensor, w: &Tensor, b: &Tensor, labels: &[usize]) -> Tensor {
    check_shapes("linear_cross_entropy", x, w, b, labels);
    let v = w.shape()[0];
    if let Some(&bad) = labels.iter().find(|&&l| l >= v) {
        panic!("linear_cross_entropy: label {bad} out of range for {v} classes");
    }
    let grad = is_grad_enabled() && (x.is_tracked() || w.is_tracked() || b.is_tracked());
    let Some((loss, grads)) =
        x.storage()
            .linear_cross_entropy(w.storage(), b.storage(), labels, grad)
    else {
        return linear_cross_entropy_composed(x, w, b, labels);
    };
    let grads = grads.map(|g| [g.dx, g.dw, g.db].map(Tensor::from_storage));
    Tensor::from_op(
        loss,
        &[x, w, b],
        "linear_cross_entropy",
        move |_: &[Tensor], _: &Tensor, g: &Tensor| {
            let grads = grads
                .as_ref()
                .expect("linear_cross_entropy: gradients were not computed in the forward");
            let k = g.item();
            let scaled = |t: &Tensor| Some(if k == 1.0 { t.clone() } else { t.mul_scalar(k) });
            grads.iter().map(scaled).collect()
        },
    )
}

/// [`linear_cross_entropy`] composed of ordinary autograd ops — `(x W^T + b)` by
/// `matmul_t` and a broadcast add, then the mean `cross_entropy` — on whatever device the
/// inputs live (the GPU path of the fused op; on the CPU it holds the whole `N x V` logits).
///
/// Panics naming the shapes when they do not fit, and naming the label when one is out of
/// range.
pub fn linear_cross_entropy_composed(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    labels: &[usize],
) -> Tensor {
    check_shapes("linear_cross_entropy_composed", x, w, b, labels);
    let v = w.shape()[0];
    x.matmul_t(w).add(&b.reshape(&[1, v])).cross_entropy(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, gradcheck, rand_f64};
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn rand(shape: &[usize], rng: &mut Pcg64Mcg) -> Tensor {
        Tensor::uniform(shape, -1.0, 1.0, crate::DType::F64, rng).requires_grad()
    }

    /// In f32 (vectorised exponentials, 8-lane max and sum) the fused op stays within
    /// f32 rounding of the composed one, in value and gradients; `V` is not a multiple
    /// of the 8 lanes.
    #[test]
    fn f32_fused_op_matches_the_composed_one() {
        let mut rng = Pcg64Mcg::seed_from_u64(12);
        let (n, d, v) = (37, 16, 1003);
        let r = |s: &[usize], rng: &mut Pcg64Mcg| {
            Tensor::uniform(s, -2.0, 2.0, crate::DType::F32, rng).requires_grad()
        };
        let (x, w, b) = (
            r(&[n, d], &mut rng),
            r(&[v, d], &mut rng),
            r(&[v], &mut rng),
        );
        let labels: Vec<usize> = (0..n).map(|i| (i * 131 + 7) % v).collect();
        let fused = linear_cross_entropy(&x, &w, &b, &labels);
        let comp = linear_cross_entropy_composed(&x, &w, &b, &labels);
        assert!((fused.item() - comp.item()).abs() < 1e-5 * comp.item().abs());
        let (gf, gc) = (fused.backward(), comp.backward());
        for t in [&x, &w, &b] {
            let (a, c) = (gf.get(t).unwrap(), gc.get(t).unwrap());
            for (p, q) in a.to_vec::<f32>().iter().zip(c.to_vec::<f32>()) {
                assert!((p - q).abs() < 1e-5, "gradient {p} vs {q}");
            }
        }
    }

    /// The composed (GPU) path equals the fused op in value and in all three gradients.
    #[test]
    fn composed_path_matches_the_fused_op() {
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let (n, d, v) = (7, 5, 13);
        let x = rand(&[n, d], &mut rng);
        let w = rand(&[v, d], &mut rng);
        let b = rand(&[v], &mut rng);
        let labels: Vec<usize> = (0..n).map(|i| (i * 5 + 3) % v).collect();
        let fused = linear_cross_entropy(&x, &w, &b, &labels).mul_scalar(1.7);
        let comp = linear_cross_entropy_composed(&x, &w, &b, &labels).mul_scalar(1.7);
        assert!((fused.item() - comp.item()).abs() < 1e-12);
        let (gf, gc) = (fused.backward(), comp.backward());
        for t in [&x, &w, &b] {
            let (a, c) = (gf.get(t).unwrap(), gc.get(t).unwrap());
            assert_eq!(a.shape(), c.shape());
            for (p, q) in a.to_vec::<f64>().iter().zip(c.to_vec::<f64>()) {
                assert!((p - q).abs() < 1e-12, "gradient {p} vs {q}");
            }
        }
    }

    /// The gradient check (f64), and the fused op against the composed one over more than
    /// one block of rows.
    #[test]
    fn fused_decoder_loss_matches_the_composed_one_and_gradchecks() {
        // N = 2500 rows > one block of 1024, so blocks and the gradient accumulation over
        // blocks are exercised.
        let (n, d, v) = (2500, 5, 9);
        let x = rand_f64(&[n, d], 1).requires_grad();
        let w = rand_f64(&[v, d], 2).requires_grad();
        let b = rand_f64(&[v], 3).requires_grad();
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % v).collect();
        let fused = linear_cross_entropy(&x, &w, &b, &labels).mul_scalar(3.0);
        let composed = (&x.matmul_t(&w) + &b)
            .cross_entropy(&labels)
            .mul_scalar(3.0);
        assert!((fused.item() - composed.item()).abs() < 1e-12);
        let (g1, g2) = (fused.backward(), composed.backward());
        for t in [&x, &w, &b] {
            assert_close(g1.get(t).unwrap(), g2.get(t).unwrap(), 1e-12, 1e-12);
        }
        gradcheck(
            |t| linear_cross_entropy(&t[0], &t[1], &t[2], &[1, 0, 4]),
            &[
                rand_f64(&[3, 4], 4),
                rand_f64(&[5, 4], 5),
                rand_f64(&[5], 6),
            ],
        )
        .unwrap();
        // no gradient wanted: no gradient computed, same value
        let e = crate::no_grad(|| linear_cross_entropy(&x, &w, &b, &labels));
        assert!((3.0 * e.item() - composed.item()).abs() < 1e-12);
    }
}

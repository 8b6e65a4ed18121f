//! The softmax decoder of a language model and its loss as one op:
//! [`linear_cross_entropy`] computes `mean_n CE(x_n W^T + b, label_n)` block by block,
//! never holding the `N x V` logits (the kernel: [`crate::kernels::cpu::linear_ce`]).
//! [`linear_cross_entropy_masked`] is the same loss with the locked dropout of the
//! decoder's input folded in, multiplying only the columns each stream keeps.
//!
//! The forward also computes the gradients of `x`, `W` and `b` when one of them is tracked
//! (they fall out of each block's probabilities); the backward only scales them by the
//! incoming gradient of the (scalar) loss. On a GPU (inputs on a CUDA device) the op is
//! computed unfused by [`linear_cross_entropy_composed`]: `matmul_t`, a broadcast bias add
//! and `cross_entropy`, each of which has a GPU path; the value and gradients are the
//! same.

use crate::graph::is_grad_enabled;
use crate::storage::{LinearCeGrads, Storage};
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
    check_labels("linear_cross_entropy", w, labels);
    let grad = wants_grad(x, w, b);
    match x
        .storage()
        .linear_cross_entropy(w.storage(), b.storage(), labels, grad)
    {
        Some(fused) => from_fused("linear_cross_entropy", fused, [x, w, b]),
        None => linear_cross_entropy_composed(x, w, b, labels),
    }
}

/// [`linear_cross_entropy`] of `x * mask`, where row `r` of `x: (N, D)` is multiplied by
/// row `r % G` of `mask: (G, D)`: a locked dropout on the decoder's input folded into the
/// op. The rows of a language model's outputs `(T, B, D)` flattened to `(T * B, D)` belong
/// to stream `r % B`, so `mask` is the `(B, D)` locked-dropout mask (0 or `1 / keep`).
///
/// Only the columns each stream keeps enter its products (the kernel:
/// [`crate::kernels::cpu::linear_ce::linear_cross_entropy_masked`]): at the PTB search's
/// output dropout of 0.75 the decoder's three products cost a quarter of the dense ones.
/// The mask is a constant: no gradient flows to it. On a GPU the op is composed as
/// `linear_cross_entropy_composed(x * mask, ...)`; value and gradients are the same.
///
/// Panics naming the shapes when they do not fit (`N` must be a multiple of `G`), naming
/// the label when one is out of range, and when `mask` is tracked.
///
/// ```
/// use autograd::Tensor;
/// use autograd::ops::linear_ce::{linear_cross_entropy, linear_cross_entropy_masked};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
/// let mask = Tensor::from_vec(vec![2.0f64, 0.0], &[1, 2]); // keep column 0, doubled
/// let w = Tensor::from_vec(vec![0.5f64, -1.0, 0.25, 1.0], &[2, 2]);
/// let b = Tensor::from_vec(vec![0.1f64, 0.0], &[2]);
/// let dropped = Tensor::from_vec(vec![2.0f64, 0.0, 6.0, 0.0], &[2, 2]);
/// let a = linear_cross_entropy_masked(&x, &mask, &w, &b, &[1, 0]).item();
/// let e = linear_cross_entropy(&dropped, &w, &b, &[1, 0]).item();
/// assert!((a - e).abs() < 1e-12);
/// ```
pub fn linear_cross_entropy_masked(
    x: &Tensor,
    mask: &Tensor,
    w: &Tensor,
    b: &Tensor,
    labels: &[usize],
) -> Tensor {
    check_shapes("linear_cross_entropy_masked", x, w, b, labels);
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let g = mask.shape().first().copied().unwrap_or(0);
    assert!(
        mask.ndim() == 2 && mask.shape()[1] == d && g > 0 && n % g == 0,
        "linear_cross_entropy_masked: mask {:?} does not fit x {:?} (need (G, D) with N a \
         multiple of G)",
        mask.shape(),
        x.shape()
    );
    assert!(
        !mask.is_tracked(),
        "linear_cross_entropy_masked: the mask is a constant, but it is tracked (detach it)"
    );
    check_labels("linear_cross_entropy_masked", w, labels);
    let grad = wants_grad(x, w, b);
    match x.storage().linear_cross_entropy_masked(
        mask.storage(),
        w.storage(),
        b.storage(),
        labels,
        grad,
    ) {
        Some(fused) => from_fused("linear_cross_entropy_masked", fused, [x, w, b]),
        None => {
            let dropped = x.reshape(&[n / g, g, d]).mul(mask).reshape(&[n, d]);
            linear_cross_entropy_composed(&dropped, w, b, labels)
        }
    }
}

/// Panics naming the first label out of range for `w`'s `V` classes.
fn check_labels(op: &str, w: &Tensor, labels: &[usize]) {
    let v = w.shape()[0];
    if let Some(&bad) = labels.iter().find(|&&l| l >= v) {
        panic!("{op}: label {bad} out of range for {v} classes");
    }
}

/// Whether the fused forward must also compute the gradients.
fn wants_grad(x: &Tensor, w: &Tensor, b: &Tensor) -> bool {
    is_grad_enabled() && (x.is_tracked() || w.is_tracked() || b.is_tracked())
}

/// The graph node of a fused loss whose forward computed the gradients of `x`, `w` and
/// `b`: the backward only scales them by the incoming gradient.
fn from_fused(
    op: &'static str,
    (loss, grads): (Storage, Option<LinearCeGrads>),
    inputs: [&Tensor; 3],
) -> Tensor {
    let grads = grads.map(|g| [g.dx, g.dw, g.db].map(Tensor::from_storage));
    Tensor::from_op(
        loss,
        &inputs,
        op,
        move |_: &[Tensor], _: &Tensor, g: &Tensor| {
            let grads = grads
                .as_ref()
                .unwrap_or_else(|| panic!("{op}: gradients were not computed in the forward"));
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

    /// A locked mask `(G, D)` of 0 and `1 / keep` with some all-dropped and all-kept rows.
    fn locked_mask(g: usize, d: usize, dtype: crate::DType, seed: u64) -> Tensor {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let u = Tensor::uniform(&[g, d], 0.0, 1.0, crate::DType::F64, &mut rng).to_vec::<f64>();
        let m: Vec<f64> = u
            .iter()
            .enumerate()
            .map(|(i, &p)| match i / d {
                0 => 0.0, // a stream that keeps nothing
                1 => 1.0, // one that keeps everything
                _ if p < 0.6 => 0.0,
                _ => 2.5,
            })
            .collect();
        Tensor::from_vec(m, &[g, d]).to_dtype(dtype)
    }

    /// The masked op equals the dense one on `x * mask` in value and in the gradients of
    /// `w` and `b`, and its `dx` is `mask * dx` of the dense op; over more than one block
    /// of streams (T = 5 rows each, G = 300 streams: 1,500 rows); and the gradient check.
    #[test]
    fn masked_op_is_the_dense_op_on_masked_inputs_and_gradchecks() {
        let (t, g, d, v) = (5, 300, 6, 11);
        let n = t * g;
        let x = rand_f64(&[n, d], 21).requires_grad();
        let w = rand_f64(&[v, d], 22).requires_grad();
        let b = rand_f64(&[v], 23).requires_grad();
        let mask = locked_mask(g, d, crate::DType::F64, 24);
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 2) % v).collect();
        let masked = linear_cross_entropy_masked(&x, &mask, &w, &b, &labels).mul_scalar(2.0);
        let dropped = x.reshape(&[t, g, d]).mul(&mask).reshape(&[n, d]);
        let dense = linear_cross_entropy(&dropped, &w, &b, &labels).mul_scalar(2.0);
        assert!((masked.item() - dense.item()).abs() < 1e-12);
        let (gm, gd) = (masked.backward(), dense.backward());
        for p in [&w, &b, &x] {
            assert_close(gm.get(p).unwrap(), gd.get(p).unwrap(), 1e-12, 1e-12);
        }
        // dropped columns get exactly zero gradient
        let dx = gm.get(&x).unwrap().to_vec::<f64>();
        let mv = mask.to_vec::<f64>();
        for (i, &gx) in dx.iter().enumerate() {
            let (row, col) = (i / d, i % d);
            if mv[(row % g) * d + col] == 0.0 {
                assert_eq!(gx, 0.0, "row {row} column {col}");
            }
        }
        let small_mask = locked_mask(3, 4, crate::DType::F64, 25);
        gradcheck(
            |p| linear_cross_entropy_masked(&p[0], &small_mask, &p[1], &p[2], &[1, 0, 4, 2, 3, 0]),
            &[
                rand_f64(&[6, 4], 26),
                rand_f64(&[5, 4], 27),
                rand_f64(&[5], 28),
            ],
        )
        .unwrap();
        // no gradient wanted: same value
        let e = crate::no_grad(|| linear_cross_entropy_masked(&x, &mask, &w, &b, &labels));
        assert!((2.0 * e.item() - dense.item()).abs() < 1e-12);
    }

    /// In f32 the masked op stays within f32 rounding of the composed one, and its
    /// result does not depend on the number of threads (the same bits on 1 and 2).
    #[test]
    fn f32_masked_op_matches_composed_and_ignores_thread_count() {
        let mut rng = Pcg64Mcg::seed_from_u64(31);
        let (t, g, d, v) = (7, 40, 24, 1203);
        let n = t * g;
        let r = |s: &[usize], rng: &mut Pcg64Mcg| {
            Tensor::uniform(s, -1.0, 1.0, crate::DType::F32, rng).requires_grad()
        };
        let (x, w, b) = (
            r(&[n, d], &mut rng),
            r(&[v, d], &mut rng),
            r(&[v], &mut rng),
        );
        let mask = locked_mask(g, d, crate::DType::F32, 32);
        let labels: Vec<usize> = (0..n).map(|i| (i * 131 + 7) % v).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let l = linear_cross_entropy_masked(&x, &mask, &w, &b, &labels);
                let gr = l.backward();
                let grads: Vec<Vec<f32>> = [&x, &w, &b]
                    .iter()
                    .map(|p| gr.get(p).unwrap().to_vec::<f32>())
                    .collect();
                (l.item(), grads)
            })
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.0.to_bits(), two.0.to_bits());
        assert_eq!(one.1, two.1);
        let dropped = x.reshape(&[t, g, d]).mul(&mask).reshape(&[n, d]);
        let comp = linear_cross_entropy_composed(&dropped, &w, &b, &labels);
        assert!((one.0 - comp.item()).abs() < 1e-5 * comp.item().abs());
        let gc = comp.backward();
        for (p, fused) in [&x, &w, &b].iter().zip(&one.1) {
            for (a, c) in fused.iter().zip(gc.get(p).unwrap().to_vec::<f32>()) {
                assert!((a - c).abs() < 1e-5, "gradient {a} vs {c}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit x")]
    fn masked_op_names_a_mask_that_does_not_divide_the_rows() {
        let x = rand_f64(&[7, 4], 1);
        let mask = locked_mask(3, 4, crate::DType::F64, 2);
        linear_cross_entropy_masked(
            &x,
            &mask,
            &rand_f64(&[5, 4], 3),
            &rand_f64(&[5], 4),
            &[0; 7],
        );
    }
}

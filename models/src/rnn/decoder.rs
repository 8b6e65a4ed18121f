//! The softmax decoder and its loss as one op: [`linear_cross_entropy`] computes
//! `mean_n CE(x_n W^T + b, label_n)` block by block, never holding the `N x V` logits.
//!
//! For PTB at the search sizes the logits are `8960 x 10,000` (358 MB in f32); building
//! them, their probabilities and their gradient as whole tensors costs more in page
//! faults than in arithmetic. Here each block of rows is multiplied out into one reused
//! buffer, turned into probabilities in place, and — when a gradient will be needed —
//! immediately turned into the gradients of `x`, `W` and `b` (`P - onehot` times the other
//! factor, accumulated over blocks). The backward then only scales those saved gradients
//! by the incoming gradient of the (scalar) loss. The FLOPs are those of the unfused
//! `matmul_t` + `cross_entropy` (one product forward, two backward).
//!
//! On a GPU (inputs on a CUDA device) the op is computed unfused by
//! [`linear_cross_entropy_composed`]: `matmul_t`, a broadcast bias add and
//! `cross_entropy`, each of which has a GPU path; the value and gradients are the same.

use autograd::kernels::cpu::gemm;
use autograd::ops::device_of;
use autograd::{Float, Storage, Tensor, dispatch, is_grad_enabled, no_grad};
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Rows per block: the logits buffer is `BLOCK x V`.
const BLOCK: usize = 1024;

/// Turns each row of `logits` (`rows x v`) into `softmax - onehot(label)` scaled by
/// `scale` (when `grad`), returning the sum over rows of `-log softmax[label]` (f64, in
/// row order). Without `grad` the rows are left holding `exp(logit - max)` (scratch).
///
/// Each row is a few vectorisable passes: bias add, max and sum with 8 independent
/// lanes (combined in a fixed order, so the result does not depend on threads), and the
/// exponentials through [`Float::exp_inplace`] (f32: the vectorised polynomial of
/// `kernels::cpu::fastmath`; f64: libm).
fn rows_softmax<T: Float>(
    logits: &mut [T],
    bias: &[T],
    v: usize,
    labels: &[usize],
    scale: T,
    grad: bool,
) -> f64 {
    let row = |(xr, &l): (&mut [T], &usize)| -> f64 {
        xr.iter_mut().zip(bias).for_each(|(x, &b)| *x += b);
        let m = lanes_fold(xr, T::neg_infinity(), T::max);
        let picked = xr[l];
        xr.iter_mut().for_each(|x| *x -= m);
        T::exp_inplace(xr);
        let s = lanes_fold(xr, T::zero(), |a, b| a + b);
        if grad {
            let r = scale / s;
            xr.iter_mut().for_each(|x| *x *= r);
            xr[l] -= scale;
        }
        (s.ln() - (picked - m)).to_f64().unwrap()
    };
    let losses: Vec<f64> = logits
        .par_chunks_mut(v)
        .zip(labels.par_iter())
        .map(row)
        .collect();
    losses.iter().sum()
}

/// Folds `x` with `f` in 8 interleaved lanes (element `i` goes to lane `i % 8`), then the
/// lanes and the tail in order: a fixed order the compiler can vectorise.
fn lanes_fold<T: Float>(x: &[T], init: T, f: impl Fn(T, T) -> T) -> T {
    let mut acc = [init; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] = f(acc[k], c[k]);
        }
    }
    let mut r = acc.iter().fold(init, |a, &b| f(a, b));
    for &t in chunks.remainder() {
        r = f(r, t);
    }
    r
}

struct Saved<T> {
    dx: Vec<T>,
    dw: Vec<T>,
    db: Vec<T>,
}

#[allow(clippy::too_many_arguments)]
fn forward<T: Float>(
    x: &[T],
    w: &[T],
    b: &[T],
    n: usize,
    d: usize,
    v: usize,
    labels: &[usize],
    grad: bool,
) -> (f64, Option<Saved<T>>) {
    let xa = ArrayView2::from_shape((n, d), x).unwrap();
    let wa = ArrayView2::from_shape((v, d), w).unwrap();
    let scale = T::one() / T::of(n.max(1) as f64);
    let mut saved = grad.then(|| Saved {
        dx: vec![T::zero(); n * d],
        dw: vec![T::zero(); v * d],
        db: vec![T::zero(); v],
    });
    let mut buf = vec![T::zero(); BLOCK.min(n) * v];
    let mut total = 0.0;
    for r0 in (0..n).step_by(BLOCK) {
        let rows = BLOCK.min(n - r0);
        let xb = xa.slice(ndarray::s![r0..r0 + rows, ..]);
        let lb = &mut buf[..rows * v];
        let mut la = ArrayViewMut2::from_shape((rows, v), &mut *lb).unwrap();
        gemm(T::one(), xb, false, wa, true, T::zero(), la.view_mut());
        total += rows_softmax(lb, b, v, &labels[r0..r0 + rows], scale, grad);
        if let Some(s) = saved.as_mut() {
            let p = ArrayView2::from_shape((rows, v), &*lb).unwrap();
            let dxb =
                ArrayViewMut2::from_shape((rows, d), &mut s.dx[r0 * d..(r0 + rows) * d]).unwrap();
            gemm(T::one(), p, false, wa, false, T::zero(), dxb);
            let dwa = ArrayViewMut2::from_shape((v, d), &mut s.dw[..]).unwrap();
            gemm(T::one(), p, true, xb, false, T::one(), dwa);
            // db += column sums of P, split over column ranges.
            s.db.par_chunks_mut(1024).enumerate().for_each(|(ci, dbc)| {
                let c0 = ci * 1024;
                for r in 0..rows {
                    let pr = &lb[r * v + c0..r * v + c0 + dbc.len()];
                    dbc.iter_mut().zip(pr).for_each(|(a, &p)| *a += p);
                }
            });
        }
    }
    (total, saved)
}

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
pub fn linear_cross_entropy(x: &Tensor, w: &Tensor, b: &Tensor, labels: &[usize]) -> Tensor {
    check_shapes("linear_cross_entropy", x, w, b, labels);
    let (n, d, v) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    if let Some(&bad) = labels.iter().find(|&&l| l >= v) {
        panic!("linear_cross_entropy: label {bad} out of range for {v} classes");
    }
    if device_of("linear_cross_entropy", &[x, w, b]).is_some() {
        return linear_cross_entropy_composed(x, w, b, labels);
    }
    let grad = is_grad_enabled() && (x.is_tracked() || w.is_tracked() || b.is_tracked());
    let xs = x.contiguous();
    let ws = w.contiguous();
    let mut grads: Option<(Tensor, Tensor, Tensor)> = None;
    let mut total = 0.0;
    no_grad(|| {
        let _ = dispatch!(xs.storage(), |xa| {
            let wa = ws
                .storage()
                .array::<T>()
                .expect("linear_cross_entropy: dtype mismatch");
            let bc = b.contiguous();
            let ba = bc
                .storage()
                .array::<T>()
                .expect("linear_cross_entropy: dtype mismatch");
            let (t, s) = forward(
                xa.as_slice().unwrap(),
                wa.as_slice().unwrap(),
                ba.as_slice().unwrap(),
                n,
                d,
                v,
                labels,
                grad,
            );
            total = t;
            grads = s.map(|s| {
                (
                    Tensor::from_vec(s.dx, &[n, d]),
                    Tensor::from_vec(s.dw, &[v, d]),
                    Tensor::from_vec(s.db, &[v]),
                )
            });
            ndarray::ArrayD::<T>::zeros(ndarray::IxDyn(&[]))
        });
    });
    let mean = total / n.max(1) as f64;
    let out: Storage = dispatch!(xs.storage(), |_a| ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        T::of(mean)
    ));
    Tensor::from_op(
        out,
        &[x, w, b],
        "linear_cross_entropy",
        move |_: &[Tensor], _: &Tensor, g: &Tensor| {
            let (dx, dw, db) = grads
                .as_ref()
                .expect("linear_cross_entropy: gradients were not computed in the forward");
            let k = g.item();
            let sc = |t: &Tensor| Some(if k == 1.0 { t.clone() } else { t.mul_scalar(k) });
            vec![sc(dx), sc(dw), sc(db)]
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
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn rand(shape: &[usize], rng: &mut Pcg64Mcg) -> Tensor {
        Tensor::uniform(shape, -1.0, 1.0, autograd::DType::F64, rng).requires_grad()
    }

    /// In f32 (vectorised exponentials, 8-lane max and sum) the fused op stays within
    /// f32 rounding of the composed one, in value and gradients; `V` is not a multiple
    /// of the 8 lanes.
    #[test]
    fn f32_fused_op_matches_the_composed_one() {
        let mut rng = Pcg64Mcg::seed_from_u64(12);
        let (n, d, v) = (37, 16, 1003);
        let r = |s: &[usize], rng: &mut Pcg64Mcg| {
            Tensor::uniform(s, -2.0, 2.0, autograd::DType::F32, rng).requires_grad()
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
}

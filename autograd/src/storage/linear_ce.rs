//! The softmax decoder and its loss in one pass, `mean_n CE(x_n W^T + b, labels_n)`: a CPU
//! kernel (`kernels::cpu::linear_ce`) without a GPU twin, so on a GPU
//! [`Storage::linear_cross_entropy`] returns `None` and the op composes other ops.

use super::Storage;
use crate::kernels::cpu::layout::standard;
use crate::kernels::cpu::linear_ce as kernel;
use ndarray::{ArrayD, IxDyn};

/// The gradients of the mean loss w.r.t. `x (N, D)`, `w (V, D)` and `b (V)`, computed by
/// the forward of [`Storage::linear_cross_entropy`].
#[derive(Debug)]
pub struct LinearCeGrads {
    /// `(N, D)`.
    pub dx: Storage,
    /// `(V, D)`.
    pub dw: Storage,
    /// `(V)`.
    pub db: Storage,
}

impl Storage {
    /// The mean loss of `self = x (N, D)`, `w (V, D)`, `b (V)` and `N` labels (shapes and
    /// labels checked by the caller) as a 0-d storage, and, when `grad`, its gradients;
    /// `None` on a GPU (no fused kernel there).
    pub fn linear_cross_entropy(
        &self,
        w: &Storage,
        b: &Storage,
        labels: &[usize],
        grad: bool,
    ) -> Option<(Storage, Option<LinearCeGrads>)> {
        if self.is_cuda() || w.is_cuda() || b.is_cuda() {
            return None;
        }
        let (n, d, v) = (self.shape()[0], self.shape()[1], w.shape()[0]);
        let grads;
        let loss = dispatch3!("linear_cross_entropy", self, w, b, |xa, wa, ba| {
            let (total, g) = kernel::linear_cross_entropy(
                &standard(xa),
                &standard(wa),
                &standard(ba),
                n,
                d,
                v,
                labels,
                grad,
            );
            let wrap = |data, shape: &[usize]| {
                Storage::from_array(ArrayD::from_shape_vec(IxDyn(shape), data).unwrap())
            };
            grads = g.map(|g| LinearCeGrads {
                dx: wrap(g.dx, &[n, d]),
                dw: wrap(g.dw, &[v, d]),
                db: wrap(g.db, &[v]),
            });
            ArrayD::from_elem(IxDyn(&[]), T::of(total / n.max(1) as f64))
        });
        Some((loss, grads))
    }
}

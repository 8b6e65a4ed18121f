//! The softmax decoder and its loss in one pass, `mean_n CE(x_n W^T + b, labels_n)`, dense
//! or with a locked column mask on `x` folded in: CPU kernels (`kernels::cpu::linear_ce`)
//! without a GPU twin, so on a GPU [`Storage::linear_cross_entropy`] and
//! [`Storage::linear_cross_entropy_masked`] return `None` and the ops compose other ops.

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
        self.fused_ce(None, w, b, labels, grad)
    }

    /// [`Storage::linear_cross_entropy`] of `self * mask` where row `r` of `self` takes
    /// row `r % G` of the constant `mask (G, D)` (a locked dropout; shapes checked by the
    /// caller); only the kept columns are multiplied. `dx` is the gradient w.r.t. `self`
    /// (the mask applied). `None` on a GPU.
    pub fn linear_cross_entropy_masked(
        &self,
        mask: &Storage,
        w: &Storage,
        b: &Storage,
        labels: &[usize],
        grad: bool,
    ) -> Option<(Storage, Option<LinearCeGrads>)> {
        if mask.is_cuda() {
            return None;
        }
        self.fused_ce(Some(mask), w, b, labels, grad)
    }

    /// Both fused decoder losses: the dense kernel, or the masked one when `mask` is given.
    fn fused_ce(
        &self,
        mask: Option<&Storage>,
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
            let (x, w, b) = (standard(xa), standard(wa), standard(ba));
            let (total, g) = match mask {
                None => kernel::linear_cross_entropy(&x, &w, &b, n, d, v, labels, grad),
                Some(m) => {
                    let ma = m.array::<T>().unwrap_or_else(|| {
                        panic!(
                            "linear_cross_entropy_masked: mask is {:?}, x is {:?}",
                            m.dtype(),
                            self.dtype()
                        )
                    });
                    let g = m.shape()[0];
                    let sizes = (n, d, v, g);
                    let mask = standard(ma);
                    kernel::linear_cross_entropy_masked(&x, &mask, &w, &b, sizes, labels, grad)
                }
            };
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

//! L2 normalisation along one axis, `y = x / max(||x||, eps)`, and its backward: one CPU
//! kernel pass each (`kernels::cpu::lanes`; contiguous last-axis lanes take the row
//! version), no GPU twin, so on a GPU [`Storage::l2_normalize`] returns `None` and the op
//! composes other ops.

use super::Storage;
use crate::kernels::cpu::lanes::{
    l2_normalize_backward, l2_normalize_forward, l2_normalize_rows_backward,
    l2_normalize_rows_forward, split_at_axis,
};
use crate::kernels::cpu::layout::standard;
use ndarray::{ArrayD, IxDyn};

impl Storage {
    /// Each lane of `self` along `axis` divided by `max(its L2 norm, eps)`, and the lanes'
    /// norms (what the backward needs, 1-D); `None` on a GPU.
    pub fn l2_normalize(&self, axis: usize, eps: f64) -> Option<(Storage, Storage)> {
        if self.is_cuda() {
            return None;
        }
        let shape = self.shape().to_vec();
        let (_, n, inner) = split_at_axis(&shape, axis);
        let norms;
        let out = dispatch!(self, |a| {
            let xs = standard(a);
            let mut y = vec![T::zero(); xs.len()];
            let nv = if inner == 1 && n > 0 {
                l2_normalize_rows_forward(&xs, &mut y, n, T::of(eps))
            } else {
                l2_normalize_forward(&xs, &mut y, n, inner, T::of(eps))
            };
            let len = nv.len();
            norms = Some(Storage::from_array(
                ArrayD::from_shape_vec(IxDyn(&[len]), nv).unwrap(),
            ));
            ArrayD::from_shape_vec(IxDyn(&shape), y).unwrap()
        });
        Some((out, norms.expect("set by the forward")))
    }

    /// The gradient of [`Storage::l2_normalize`] from the output gradient `self`, the
    /// forward's output `y` and its lane norms.
    pub fn l2_normalize_backward(
        &self,
        y: &Storage,
        norms: &Storage,
        axis: usize,
        eps: f64,
    ) -> Storage {
        let (_, n, inner) = split_at_axis(y.shape(), axis);
        dispatch3!("l2_normalize_backward", y, norms, self, |yy, nr, gg| {
            let ys = standard(yy);
            let gs = standard(gg);
            let ns = standard(nr);
            let mut dx = vec![T::zero(); ys.len()];
            if inner == 1 && n > 0 {
                l2_normalize_rows_backward(&ys, &ns, &gs, &mut dx, n, T::of(eps));
            } else {
                l2_normalize_backward(&ys, &ns, &gs, &mut dx, n, inner, T::of(eps));
            }
            ArrayD::from_shape_vec(IxDyn(yy.shape()), dx).unwrap()
        })
    }
}

//! Per-example weighted sums (`a[n] * ka[n] + b[n] * kb[n]`, the drop-path node sum of the
//! CNN cells) and per-example scaling: CPU kernels (`kernels::cpu::scaled_sum`) without a
//! GPU twin, so on a GPU these methods return `None` and the op composes other ops.

use super::Storage;
use crate::kernels::cpu::layout::standard;
use crate::kernels::cpu::scaled_sum as kernel;
use ndarray::{ArrayD, IxDyn};

impl Storage {
    /// `self[n] * ka[n] + other[n] * kb[n]` over the first axis (same shapes, factors of
    /// the batch's length; checked by the caller; `None` factors mean 1); `None` on a GPU.
    pub fn scaled_sum(
        &self,
        ka: Option<&[f64]>,
        other: &Storage,
        kb: Option<&[f64]>,
    ) -> Option<Storage> {
        if self.is_cuda() || other.is_cuda() {
            return None;
        }
        let shape = self.shape().to_vec();
        Some(dispatch2!("scaled_sum", self, other, |a, b| {
            let out = kernel::scaled_sum(&standard(a), ka, &standard(b), kb, shape[0]);
            ArrayD::from_shape_vec(IxDyn(&shape), out).unwrap()
        }))
    }

    /// `self[n] * k[n]` over the first axis (`k` of the batch's length, checked by the
    /// caller); `None` on a GPU.
    pub fn scale_examples(&self, k: &[f64]) -> Option<Storage> {
        if self.is_cuda() {
            return None;
        }
        let shape = self.shape().to_vec();
        Some(dispatch!(self, |g| {
            let out = kernel::scale_examples(&standard(g), k);
            ArrayD::from_shape_vec(IxDyn(&shape), out).unwrap()
        }))
    }
}

//! The softmax family and the losses, dispatched by device and dtype: softmax and
//! log-softmax along an axis (and their backward), the fused mean softmax cross-entropy
//! (and its backward), and the fused mean squared error (CPU only). The CPU kernels are
//! `kernels::cpu::lanes`, the GPU ones `kernels::cuda::softmax`.

use super::{Storage, Unary, all_cuda};
use crate::kernels::cpu::lanes::{self, split_at_axis};
use crate::kernels::cpu::layout::standard;
use crate::kernels::cuda::{self, CudaStorage, reduce as gpu_reduce, softmax as gpu};
use ndarray::{ArrayD, IxDyn};
use ops_cuda::CudaBuffer;
use std::sync::Arc;

/// What the backward of [`Storage::cross_entropy`] needs from its forward.
#[derive(Debug, Clone)]
pub struct CrossEntropySaved {
    /// The class labels, one per row.
    labels: Vec<usize>,
    /// The rows (`N`) and classes (`C`) of the logits.
    rows: usize,
    classes: usize,
    saved: Saved,
}

#[derive(Debug, Clone)]
enum Saved {
    /// CPU: the softmax probabilities, computed once by the forward.
    Cpu(Storage),
    /// GPU: the logits and the labels on the device (the backward kernel recomputes the
    /// probabilities row by row).
    Cuda {
        logits: CudaStorage,
        labels: Arc<CudaBuffer<i32>>,
    },
}

impl Storage {
    /// Softmax (or, with `log`, log-softmax) along `ax`, numerically stable (the lane
    /// maximum is subtracted before `exp`).
    pub fn softmax(&self, ax: usize, log: bool) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu::softmax(x, ax, log));
        }
        let shape = self.shape().to_vec();
        let (_, n, inner) = split_at_axis(&shape, ax);
        dispatch!(self, |a| {
            let xs = standard(a);
            let mut y = vec![T::zero(); xs.len()];
            lanes::softmax_forward(&xs, &mut y, n, inner, log);
            ArrayD::from_shape_vec(IxDyn(&shape), y).unwrap()
        })
    }

    /// The input gradient of [`Storage::softmax`] from its output `y` and the output
    /// gradient `self`.
    pub fn softmax_backward(&self, y: &Storage, ax: usize, log: bool) -> Storage {
        if let Some([y, g]) = all_cuda("softmax backward", [y, self]) {
            return Storage::Cuda(gpu::softmax_backward(y, g, ax, log));
        }
        let (_, n, inner) = split_at_axis(y.shape(), ax);
        dispatch2!("softmax_backward", y, self, |y, gg| {
            let ys = standard(y);
            let gs = standard(gg);
            let mut dx = vec![T::zero(); ys.len()];
            lanes::softmax_backward(&ys, &gs, &mut dx, n, inner, log);
            ArrayD::from_shape_vec(IxDyn(y.shape()), dx).unwrap()
        })
    }

    /// Mean softmax cross-entropy of `(N, C)` logits against `labels` (`N` of them, each
    /// `< C`; checked by the caller), shaped `[]`, and what its backward needs.
    pub fn cross_entropy(&self, labels: &[usize]) -> (Storage, CrossEntropySaved) {
        let (rows, classes) = (self.shape()[0], self.shape()[1]);
        let saved = |saved| CrossEntropySaved {
            labels: labels.to_vec(),
            rows,
            classes,
            saved,
        };
        if let Storage::Cuda(x) = self {
            const OP: &str = "cross_entropy";
            let lab = Arc::new(cuda::upload_indices(x.device(), OP, labels));
            let per_row = gpu::cross_entropy_rows(x, &lab);
            let mean = Storage::Cuda(gpu_reduce::sum_all(&per_row))
                .unary(Unary::MulScalar(1.0 / rows.max(1) as f64));
            let s = saved(Saved::Cuda {
                logits: x.clone(),
                labels: lab,
            });
            return (mean, s);
        }
        let shape = self.shape().to_vec();
        let total;
        let probs = dispatch!(self, |a| {
            let xs = standard(a);
            let mut p = vec![T::zero(); xs.len()];
            total = lanes::cross_entropy_forward(&xs, &mut p, classes, labels);
            ArrayD::from_shape_vec(IxDyn(&shape), p).unwrap()
        });
        let mean = total / rows.max(1) as f64;
        let out = dispatch!(&probs, |_p| ArrayD::from_elem(IxDyn(&[]), T::of(mean)));
        (out, saved(Saved::Cpu(probs)))
    }

    /// The logits' gradient of [`Storage::cross_entropy`], `(softmax - onehot) * g / N`,
    /// from the loss gradient `self` (shaped `[]`).
    pub fn cross_entropy_backward(&self, s: &CrossEntropySaved) -> Storage {
        let (rows, c) = (s.rows, s.classes);
        match &s.saved {
            Saved::Cuda { logits, labels } => {
                const OP: &str = "cross_entropy backward";
                let dloss = self
                    .unary(Unary::MulScalar(1.0 / rows.max(1) as f64))
                    .broadcast_to(&[rows]);
                let dloss = dloss
                    .as_cuda()
                    .unwrap_or_else(|| panic!("{OP}: the loss gradient is not on the GPU"));
                Storage::Cuda(gpu::cross_entropy_rows_backward(logits, labels, dloss))
            }
            Saved::Cpu(probs) => {
                let gv = with_array!(self, |a| a.iter().next().expect("a 0-d gradient").to_f64())
                    .expect("a float converts to f64")
                    / rows.max(1) as f64;
                dispatch!(probs, |p| {
                    let ps = standard(p);
                    let dx = lanes::cross_entropy_backward(&ps, c, &s.labels, T::of(gv));
                    ArrayD::from_shape_vec(IxDyn(p.shape()), dx).unwrap()
                })
            }
        }
    }

    /// The mean squared error `mean((self - target)^2)` of two storages of one shape
    /// (checked by the caller), shaped `[]`; `None` on a GPU (no fused kernel there).
    pub fn mse(&self, target: &Storage) -> Option<Storage> {
        if self.is_cuda() || target.is_cuda() {
            return None;
        }
        let n = self.shape().iter().product::<usize>().max(1) as f64;
        Some(dispatch2!("mse", self, target, |a, b| {
            let s: T = ndarray::Zip::from(a)
                .and(b)
                .fold(T::zero(), |acc, &x, &y| acc + (x - y) * (x - y));
            ArrayD::from_elem(IxDyn(&[]), s / T::of(n))
        }))
    }

    /// `(self - target) * scale`: the prediction's gradient of [`Storage::mse`] for
    /// `scale = 2 g / n` (the target's is its negation).
    pub fn mse_backward(&self, target: &Storage, scale: f64) -> Storage {
        dispatch2!("mse_backward", self, target, |a, b| {
            ndarray::Zip::from(a)
                .and(b)
                .map_collect(|&x, &y| (x - y) * T::of(scale))
        })
    }
}

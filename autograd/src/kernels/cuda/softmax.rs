//! Softmax, log-softmax and the fused cross-entropy on the GPU (row kernels of `ops-cuda`;
//! a softmax along another axis than the last is permuted there and back).

use super::{buf, check, wrap};
use crate::storage::Storage;
use crate::tensor::Tensor;
use ops_cuda::CudaDevice;
use ops_cuda::kernels::softmax as k;

fn to_last(dev: &CudaDevice, x: &Tensor, ax: usize) -> (Tensor, Option<Vec<usize>>) {
    if ax + 1 == x.ndim() {
        return (x.clone(), None);
    }
    let mut perm: Vec<usize> = (0..x.ndim()).filter(|&d| d != ax).collect();
    perm.push(ax);
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    let t = Tensor::from_storage(super::shape::permute(dev, x, &perm));
    (t, Some(inverse))
}

fn back(dev: &CudaDevice, t: Tensor, inverse: &Option<Vec<usize>>) -> Storage {
    match inverse {
        None => t.storage().clone(),
        Some(inv) => super::shape::permute(dev, &t, inv),
    }
}

/// Softmax (or log-softmax) along `ax`.
pub fn softmax(dev: &CudaDevice, x: &Tensor, ax: usize, log: bool) -> Storage {
    const OP: &str = "softmax";
    let (t, inv) = to_last(dev, x, ax);
    let cols = t.shape()[t.ndim() - 1];
    let rows = t.numel() / cols.max(1);
    let y = check(OP, k::softmax_forward(dev, buf(OP, &t), rows, cols, log));
    back(dev, Tensor::from_storage(wrap(y, t.shape())), &inv)
}

/// The input gradient of [`softmax`] from the output `y` and its gradient `g`.
pub fn softmax_backward(dev: &CudaDevice, y: &Tensor, g: &Tensor, ax: usize, log: bool) -> Tensor {
    const OP: &str = "softmax backward";
    let (yt, inv) = to_last(dev, y, ax);
    let (gt, _) = to_last(dev, g, ax);
    let cols = yt.shape()[yt.ndim() - 1];
    let rows = yt.numel() / cols.max(1);
    let d = check(
        OP,
        k::softmax_backward(dev, buf(OP, &gt), buf(OP, &yt), rows, cols, log),
    );
    Tensor::from_storage(back(dev, Tensor::from_storage(wrap(d, yt.shape())), &inv))
}

/// Mean cross-entropy of `logits (rows, cols)` against `labels`; a 0-d tensor with its
/// gradient `(softmax - onehot) * g / rows`.
pub fn cross_entropy(dev: &CudaDevice, logits: &Tensor, labels: &[usize]) -> Tensor {
    const OP: &str = "cross_entropy";
    let (rows, cols) = (logits.shape()[0], logits.shape()[1]);
    let lab = super::upload_indices(dev, OP, labels);
    let per_row = check(
        OP,
        k::cross_entropy_forward(dev, buf(OP, logits), &lab, rows, cols),
    );
    let per_row = Tensor::from_storage(wrap(per_row, &[rows]));
    let mean = Tensor::from_storage(super::reduce::sum_all(dev, &per_row))
        .mul_scalar(1.0 / rows.max(1) as f64);
    let d = dev.clone();
    let lab = std::sync::Arc::new(lab);
    Tensor::from_op(
        mean.storage().clone(),
        &[logits],
        "cross_entropy",
        move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            const OP: &str = "cross_entropy backward";
            let dloss = g.mul_scalar(1.0 / rows.max(1) as f64).broadcast_to(&[rows]);
            let dx = check(
                OP,
                k::cross_entropy_backward(&d, buf(OP, &inp[0]), &lab, buf(OP, &dloss), rows, cols),
            );
            vec![Some(Tensor::from_storage(wrap(dx, inp[0].shape())))]
        },
    )
}

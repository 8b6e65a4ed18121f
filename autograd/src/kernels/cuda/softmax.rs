//! Softmax, log-softmax and the cross-entropy row kernels on the GPU (`ops-cuda`; a softmax
//! along another axis than the last is permuted there and back).

use super::{CudaStorage, check, wrap};
use ops_cuda::CudaBuffer;
use ops_cuda::kernels::softmax as k;

fn to_last(x: &CudaStorage, ax: usize) -> (CudaStorage, Option<Vec<usize>>) {
    let nd = x.shape.len();
    if ax + 1 == nd {
        return (x.clone(), None);
    }
    let mut perm: Vec<usize> = (0..nd).filter(|&d| d != ax).collect();
    perm.push(ax);
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    (super::shape::permute(x, &perm), Some(inverse))
}

fn back(t: CudaStorage, inverse: &Option<Vec<usize>>) -> CudaStorage {
    match inverse {
        None => t,
        Some(inv) => super::shape::permute(&t, inv),
    }
}

fn rows_cols(t: &CudaStorage) -> (usize, usize) {
    let cols = t.shape[t.shape.len() - 1];
    (t.numel() / cols.max(1), cols)
}

/// Softmax (or log-softmax) along `ax`.
pub fn softmax(x: &CudaStorage, ax: usize, log: bool) -> CudaStorage {
    const OP: &str = "softmax";
    let (t, inv) = to_last(x, ax);
    let (rows, cols) = rows_cols(&t);
    let y = check(OP, k::softmax_forward(t.device(), &t.buf, rows, cols, log));
    back(wrap(y, &t.shape), &inv)
}

/// The input gradient of [`softmax`] from the output `y` and its gradient `g`.
pub fn softmax_backward(y: &CudaStorage, g: &CudaStorage, ax: usize, log: bool) -> CudaStorage {
    const OP: &str = "softmax backward";
    let (yt, inv) = to_last(y, ax);
    let (gt, _) = to_last(g, ax);
    let (rows, cols) = rows_cols(&yt);
    let d = check(
        OP,
        k::softmax_backward(yt.device(), &gt.buf, &yt.buf, rows, cols, log),
    );
    back(wrap(d, &yt.shape), &inv)
}

/// Per-row cross-entropy `(rows)` of `logits (rows, cols)` against `labels` (`i32` on the
/// device, from [`super::upload_indices`]).
pub fn cross_entropy_rows(logits: &CudaStorage, labels: &CudaBuffer<i32>) -> CudaStorage {
    const OP: &str = "cross_entropy";
    let (rows, cols) = (logits.shape[0], logits.shape[1]);
    let per_row = check(
        OP,
        k::cross_entropy_forward(logits.device(), &logits.buf, labels, rows, cols),
    );
    wrap(per_row, &[rows])
}

/// The logits' gradient of [`cross_entropy_rows`] for per-row loss gradients `dloss (rows)`:
/// `(softmax - onehot) * dloss`.
pub fn cross_entropy_rows_backward(
    logits: &CudaStorage,
    labels: &CudaBuffer<i32>,
    dloss: &CudaStorage,
) -> CudaStorage {
    const OP: &str = "cross_entropy backward";
    let (rows, cols) = (logits.shape[0], logits.shape[1]);
    let dx = check(
        OP,
        k::cross_entropy_backward(logits.device(), &logits.buf, labels, &dloss.buf, rows, cols),
    );
    wrap(dx, &logits.shape)
}

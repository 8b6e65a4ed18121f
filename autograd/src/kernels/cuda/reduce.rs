//! Reductions on the GPU: full and per-axis sums, the maximum along an axis with its
//! argmax.

use super::{CudaStorage, check, wrap};
use ops_cuda::kernels::reduce::{self, ReduceOp};

/// Sum of all elements, shaped `[]`.
pub fn sum_all(x: &CudaStorage) -> CudaStorage {
    if x.numel() == 0 {
        return CudaStorage::full(x.device(), &[], 0.0);
    }
    wrap(check("sum", reduce::sum_all(x.device(), &x.buf)), &[])
}

/// Sum over the (sorted, unique) axes `axes`, shaped `out_shape`.
pub fn sum_axes(x: &CudaStorage, axes: &[usize], out_shape: &[usize]) -> CudaStorage {
    let out = check(
        "sum_axes",
        reduce::reduce(x.device(), ReduceOp::Sum, &x.buf, &x.shape, axes),
    );
    wrap(out, out_shape)
}

/// Maximum along `axis` (shaped `out_shape`) and, on the host, the index of the first
/// maximum of each lane in the order of the other axes (what `argmax_axis` returns).
pub fn max_axis(x: &CudaStorage, axis: usize, out_shape: &[usize]) -> (CudaStorage, Vec<usize>) {
    let (m, idx) = check(
        "max_axis",
        reduce::max_with_argmax(x.device(), &x.buf, &x.shape, axis),
    );
    let idx = check("max_axis", idx.to_vec());
    (
        wrap(m, out_shape),
        idx.into_iter().map(|i| i as usize).collect(),
    )
}

/// Positions in the flattened input of the lanes' maxima: lane `l` (in the order of the
/// other axes) has its maximum at `idx[l]` along `axis`.
pub fn argmax_positions(shape: &[usize], axis: usize, idx: &[usize]) -> Vec<usize> {
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    idx.iter()
        .enumerate()
        .map(|(l, &i)| (l / inner) * len * inner + i * inner + l % inner)
        .collect()
}

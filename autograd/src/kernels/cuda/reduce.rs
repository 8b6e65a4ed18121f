//! Reductions on the GPU: full and per-axis sums, the maximum along an axis with its
//! argmax, and the maximum's backward (a scatter of the gradient to the argmax positions).

use super::{buf, check, wrap};
use crate::storage::Storage;
use crate::tensor::Tensor;
use ops_cuda::CudaDevice;
use ops_cuda::kernels::reduce::{self, ReduceOp};

/// Sum of all elements, shaped `[]`.
pub fn sum_all(dev: &CudaDevice, x: &Tensor) -> Storage {
    if x.numel() == 0 {
        return super::full(dev, &[], 0.0);
    }
    wrap(check("sum", reduce::sum_all(dev, buf("sum", x))), &[])
}

/// Sum over the (sorted, unique) axes `axes`, shaped `out_shape`.
pub fn sum_axes(dev: &CudaDevice, x: &Tensor, axes: &[usize], out_shape: &[usize]) -> Storage {
    let out = check(
        "sum_axes",
        reduce::reduce(dev, ReduceOp::Sum, buf("sum_axes", x), x.shape(), axes),
    );
    wrap(out, out_shape)
}

/// Maximum along `axis` (shaped `out_shape`) and, on the host, the index of the first
/// maximum of each lane in the order of the other axes (what `argmax_axis` returns).
pub fn max_axis(
    dev: &CudaDevice,
    x: &Tensor,
    axis: usize,
    out_shape: &[usize],
) -> (Storage, Vec<usize>) {
    let (m, idx) = check(
        "max_axis",
        reduce::max_with_argmax(dev, buf("max_axis", x), x.shape(), axis),
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

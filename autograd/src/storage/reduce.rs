//! The reduction and layout kernel families, dispatched by device and dtype: full and
//! per-axis sums, reshapes, axis permutations and row-major copies.

use super::Storage;
use crate::kernels::cpu::layout::to_standard;
use crate::kernels::cuda::{reduce as gpu_reduce, shape as gpu_shape};
use ndarray::{ArrayD, Axis, IxDyn};

impl Storage {
    /// The sum of all elements, shaped `[]`.
    pub fn sum_all(&self) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu_reduce::sum_all(x));
        }
        dispatch!(self, |a| ArrayD::from_elem(IxDyn(&[]), a.sum()))
    }

    /// Sums over `axes` (sorted, unique), shaped `out_shape` (with or without the summed
    /// axes kept as size 1).
    pub fn sum_axes(&self, axes: &[usize], out_shape: &[usize]) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu_reduce::sum_axes(x, axes, out_shape));
        }
        dispatch!(self, |a| {
            let mut r = a.clone();
            for &i in axes.iter().rev() {
                r = r.sum_axis(Axis(i));
            }
            r.into_shape_with_order(IxDyn(out_shape)).unwrap()
        })
    }

    /// The same elements in row-major order under `shape` (same count, checked by the
    /// caller). GPU storage shares its buffer.
    pub fn reshape(&self, shape: &[usize]) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(x.reshaped(shape));
        }
        dispatch!(self, |a| to_standard(a.view())
            .into_shape_with_order(IxDyn(shape))
            .unwrap())
    }

    /// Output axis `i` is input axis `perm[i]` (a permutation, checked by the caller). CPU
    /// storage keeps the permuted strides (no copy); GPU storage is copied.
    pub fn permute(&self, perm: &[usize]) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu_shape::permute(x, perm));
        }
        dispatch!(self, |a| a.clone().permuted_axes(IxDyn(perm)))
    }

    /// A row-major copy (GPU storage is always row-major: shared).
    pub fn contiguous(&self) -> Storage {
        if self.is_cuda() {
            return self.clone();
        }
        dispatch!(self, |a| to_standard(a.view()))
    }
}

//! The reduction and layout kernel families, dispatched by device and dtype: full and
//! per-axis sums, the maximum along an axis (with its argmax and backward), reshapes, axis
//! permutations and row-major copies.

use super::Storage;
use crate::kernels::cpu::layout::to_standard;
use crate::kernels::cuda::{index as gpu_index, reduce as gpu_reduce, shape as gpu_shape};
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

    /// The maximum along `ax` (the axis removed, or kept as size 1 with `keepdim`) and the
    /// index of the first maximum of each lane, in the order of the other axes' lanes (what
    /// [`Storage::argmax_axis`] returns; the backward needs it).
    pub fn max_axis(&self, ax: usize, keepdim: bool) -> (Storage, Vec<usize>) {
        if let Storage::Cuda(x) = self {
            let mut out_shape = x.shape.clone();
            if keepdim {
                out_shape[ax] = 1;
            } else {
                out_shape.remove(ax);
            }
            let (out, idx) = gpu_reduce::max_axis(x, ax, &out_shape);
            return (Storage::Cuda(out), idx);
        }
        let idx = self.argmax_axis(ax);
        let out = dispatch!(self, |a| {
            let r = a.map_axis(Axis(ax), |lane| {
                lane.iter().cloned().fold(T::neg_infinity(), T::max)
            });
            if keepdim { r.insert_axis(Axis(ax)) } else { r }
        });
        (out, idx)
    }

    /// The gradient of [`Storage::max_axis`]: `self` (one value per lane, shaped like the
    /// output with the axis kept as size 1) put at each lane's maximum `idx`, zeros
    /// elsewhere, shaped `in_shape`.
    pub fn max_axis_backward(&self, in_shape: &[usize], ax: usize, idx: &[usize]) -> Storage {
        if let Storage::Cuda(g) = self {
            const OP: &str = "max_axis backward";
            let pos = gpu_reduce::argmax_positions(in_shape, ax, idx);
            return Storage::Cuda(gpu_index::scatter_add(OP, g, &pos, in_shape));
        }
        dispatch!(self, |gg| {
            let mut z = ArrayD::<T>::zeros(IxDyn(in_shape));
            for (mut lane, (gv, &i)) in z
                .lanes_mut(Axis(ax))
                .into_iter()
                .zip(gg.iter().zip(idx.iter()))
            {
                lane[i] = *gv;
            }
            z
        })
    }

    /// Index of the (first) maximum along `ax`, in the order of the other axes' lanes.
    pub fn argmax_axis(&self, ax: usize) -> Vec<usize> {
        if let Storage::Cuda(x) = self {
            let mut out_shape = x.shape.clone();
            out_shape.remove(ax);
            return gpu_reduce::max_axis(x, ax, &out_shape).1;
        }
        with_array!(self, |a| a
            .lanes(Axis(ax))
            .into_iter()
            .map(|lane| {
                let mut best = 0;
                for (i, v) in lane.iter().enumerate() {
                    if *v > lane[best] {
                        best = i;
                    }
                }
                best
            })
            .collect())
    }
}

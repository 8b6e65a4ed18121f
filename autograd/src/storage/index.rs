//! The indexing kernel families, dispatched by device and dtype: slices along an axis
//! (`narrow`, `select`), joins (`concat`, a new axis for `stack`), zero padding, and the
//! gathers `index_select` / `gather` with their scatter-add adjoints. The CPU kernels are
//! `kernels::cpu::{concat, gather_scatter}`, the GPU ones `kernels::cuda::index`.
//!
//! Indices and shapes are checked by the caller (the op).

use super::{Storage, all_cuda_slice};
use crate::dtype::Float;
use crate::kernels::cpu::concat::concat;
use crate::kernels::cpu::gather_scatter;
use crate::kernels::cpu::lanes::split_at_axis;
use crate::kernels::cpu::layout::{standard, to_standard};
use crate::kernels::cuda::index as gpu;
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// `parts` (all of dtype `T`) joined along `ax` on the CPU.
fn concat_cpu<T: Float>(parts: &[&Storage], ax: usize) -> ArrayD<T> {
    let views: Vec<_> = parts
        .iter()
        .map(|s| {
            s.array::<T>()
                .unwrap_or_else(|| panic!("concat: dtype mismatch: {} vs {}", T::DTYPE, s.dtype()))
                .view()
        })
        .collect();
    concat(&views, ax)
}

impl Storage {
    /// Elements `start..start + len` along `ax`, row-major.
    pub fn narrow(&self, ax: usize, start: usize, len: usize) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu::narrow(x, ax, start, len));
        }
        dispatch!(self, |a| to_standard(
            a.slice_axis(Axis(ax), Slice::from(start..start + len))
        ))
    }

    /// The slice at `index` along `ax`, with that axis removed, row-major.
    pub fn select(&self, ax: usize, index: usize) -> Storage {
        if let Storage::Cuda(x) = self {
            let mut shape = x.shape.clone();
            shape.remove(ax);
            return Storage::Cuda(gpu::narrow(x, ax, index, 1).reshaped(&shape));
        }
        dispatch!(self, |a| to_standard(a.index_axis(Axis(ax), index)))
    }

    /// The same elements with a new axis of size 1 at `ax` (GPU storage shares its buffer).
    pub fn insert_axis(&self, ax: usize) -> Storage {
        if let Storage::Cuda(c) = self {
            let mut shape = c.shape.clone();
            shape.insert(ax, 1);
            return Storage::Cuda(c.reshaped(&shape));
        }
        dispatch!(self, |a| a.view().insert_axis(Axis(ax)).to_owned())
    }

    /// `parts` joined along `ax` (their other axes agree: checked by the caller); panics
    /// naming both devices or both dtypes when they differ.
    pub fn concat(parts: &[&Storage], ax: usize) -> Storage {
        if let Some(c) = all_cuda_slice("concat", parts) {
            return Storage::Cuda(gpu::concat(&c, ax));
        }
        match parts[0] {
            Storage::F32(_) => Storage::F32(concat_cpu::<f32>(parts, ax)),
            Storage::F64(_) => Storage::F64(concat_cpu::<f64>(parts, ax)),
            Storage::Cuda(_) => unreachable!("GPU concat returned above"),
        }
    }

    /// Zero padding: `pads[d] = (before, after)` for every axis `d`.
    pub fn pad(&self, pads: &[(usize, usize)]) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu::pad(x, pads));
        }
        let out_shape: Vec<usize> = self
            .shape()
            .iter()
            .zip(pads)
            .map(|(&d, &(b, a))| d + b + a)
            .collect();
        dispatch!(self, |a| {
            let mut o = ArrayD::<T>::zeros(IxDyn(&out_shape));
            let mut view = o.view_mut();
            for (d, (&(b, _), &n)) in pads.iter().zip(a.shape()).enumerate() {
                view.slice_axis_inplace(Axis(d), Slice::from(b..b + n));
            }
            view.assign(a);
            o
        })
    }

    /// Whole slices along `ax` picked by `indices` (repeats allowed, each in range).
    pub fn index_select(&self, ax: usize, indices: &[usize]) -> Storage {
        let mut out_shape = self.shape().to_vec();
        out_shape[ax] = indices.len();
        if let Storage::Cuda(x) = self {
            const OP: &str = "index_select";
            let pos = gpu::index_select_positions(&x.shape, ax, indices);
            return Storage::Cuda(gpu::gather(OP, x, &pos, &out_shape));
        }
        let (_, n, inner) = split_at_axis(self.shape(), ax);
        dispatch!(self, |a| {
            let src = standard(a);
            let mut o = vec![T::zero(); out_shape.iter().product()];
            gather_scatter::index_select(&src, n, inner, indices, &mut o);
            ArrayD::from_shape_vec(IxDyn(&out_shape), o).unwrap()
        })
    }

    /// The adjoint of [`Storage::index_select`]: `self` (the output gradient) scatter-added
    /// into zeros of the input's shape `in_shape`.
    pub fn index_select_backward(
        &self,
        in_shape: &[usize],
        ax: usize,
        indices: &[usize],
    ) -> Storage {
        if let Storage::Cuda(g) = self {
            const OP: &str = "index_select backward";
            let pos = gpu::index_select_positions(in_shape, ax, indices);
            return Storage::Cuda(gpu::scatter_add(OP, g, &pos, in_shape));
        }
        let (_, n, inner) = split_at_axis(in_shape, ax);
        dispatch!(self, |gg| {
            let gs = standard(gg);
            let mut dst = vec![T::zero(); in_shape.iter().product()];
            gather_scatter::index_add(&gs, n, inner, indices, &mut dst);
            ArrayD::from_shape_vec(IxDyn(in_shape), dst).unwrap()
        })
    }

    /// `torch.gather` along `ax`: `index` row-major in `index_shape` (equal to this
    /// storage's shape on every other axis, each index in range).
    pub fn gather(&self, ax: usize, index: &[usize], index_shape: &[usize]) -> Storage {
        let k = index_shape[ax];
        if let Storage::Cuda(x) = self {
            const OP: &str = "gather";
            let pos = gpu::gather_positions(&x.shape, ax, index, k);
            return Storage::Cuda(gpu::gather(OP, x, &pos, index_shape));
        }
        let (_, n, inner) = split_at_axis(self.shape(), ax);
        dispatch!(self, |a| {
            let src = standard(a);
            let mut o = vec![T::zero(); index.len()];
            gather_scatter::gather(&src, n, inner, index, k, &mut o);
            ArrayD::from_shape_vec(IxDyn(index_shape), o).unwrap()
        })
    }

    /// The adjoint of [`Storage::gather`]: `self` (the output gradient, shaped like the
    /// index) scatter-added into zeros of the input's shape `in_shape`.
    pub fn gather_backward(&self, in_shape: &[usize], ax: usize, index: &[usize]) -> Storage {
        let k = self.shape()[ax];
        if let Storage::Cuda(g) = self {
            const OP: &str = "gather backward";
            let pos = gpu::gather_positions(in_shape, ax, index, k);
            return Storage::Cuda(gpu::scatter_add(OP, g, &pos, in_shape));
        }
        let (_, n, inner) = split_at_axis(in_shape, ax);
        dispatch!(self, |gg| {
            let gs = standard(gg);
            let mut dst = vec![T::zero(); in_shape.iter().product()];
            gather_scatter::scatter_add(&gs, n, inner, index, k, &mut dst);
            ArrayD::from_shape_vec(IxDyn(in_shape), dst).unwrap()
        })
    }
}

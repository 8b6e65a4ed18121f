//! The 2-D pooling family on NCHW storage, dispatched by device and dtype: max pool (with
//! the argmax its backward needs), average pool (padding excluded from the divisor) and
//! global average pool, each with its backward. The CPU kernels are `kernels::cpu::pool`,
//! the GPU ones `kernels::cuda::conv` (pool section).

use super::Storage;
use crate::kernels::cpu::pool::{
    Pool2dParams, avg_pool2d_backward, avg_pool2d_forward, global_avg_pool_backward,
    global_avg_pool_forward, max_pool2d_backward, max_pool2d_forward,
};
use crate::kernels::cuda::conv as gpu;
use ndarray::{Ix2, Ix4};
use ops_cuda::CudaBuffer;

/// Where each max-pool window's maximum was (saved by the forward for the backward).
#[derive(Debug)]
pub enum PoolArgmax {
    /// CPU: the flat position of each window's first maximum within its plane.
    Cpu(Vec<u32>),
    /// GPU: the same, on the device.
    Cuda(CudaBuffer<i32>),
}

impl Storage {
    /// Max pool of an `(N, C, H, W)` storage (shape checked by the caller) and the argmax of
    /// every window.
    pub fn max_pool2d(&self, p: &Pool2dParams) -> (Storage, PoolArgmax) {
        if let Storage::Cuda(x) = self {
            let (out, arg) = gpu::max_pool2d(x, p);
            return (Storage::Cuda(out), PoolArgmax::Cuda(arg));
        }
        let (out, idx) = with_array!(self, |a| {
            let (o, i) = max_pool2d_forward(a.view().into_dimensionality::<Ix4>().unwrap(), p);
            (Storage::from_array(o.into_dyn()), i)
        });
        (out, PoolArgmax::Cpu(idx))
    }

    /// The input gradient of [`Storage::max_pool2d`] from the output gradient `self`: each
    /// window's gradient goes to its saved maximum. `x_shape` is the input's shape.
    pub fn max_pool2d_backward(
        &self,
        arg: &PoolArgmax,
        x_shape: &[usize],
        p: &Pool2dParams,
    ) -> Storage {
        const OP: &str = "max_pool2d backward";
        match (self, arg) {
            (Storage::Cuda(g), PoolArgmax::Cuda(arg)) => {
                Storage::Cuda(gpu::max_pool2d_backward(g, arg, x_shape, p))
            }
            (Storage::Cuda(_), PoolArgmax::Cpu(_)) | (_, PoolArgmax::Cuda(_)) => {
                panic!("{OP}: the gradient and the saved argmax are on different devices")
            }
            (g, PoolArgmax::Cpu(idx)) => {
                let (h, w) = (x_shape[2], x_shape[3]);
                dispatch!(g, |gg| max_pool2d_backward(
                    gg.view().into_dimensionality::<Ix4>().unwrap(),
                    idx,
                    h,
                    w
                )
                .into_dyn())
            }
        }
    }

    /// Average pool of an `(N, C, H, W)` storage; each window's sum is divided by the
    /// number of real (non-padding) elements in it.
    pub fn avg_pool2d(&self, p: &Pool2dParams) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu::avg_pool2d(x, p));
        }
        dispatch!(self, |a| avg_pool2d_forward(
            a.view().into_dimensionality::<Ix4>().unwrap(),
            p
        )
        .into_dyn())
    }

    /// The input gradient of [`Storage::avg_pool2d`] from the output gradient `self`.
    pub fn avg_pool2d_backward(&self, x_shape: &[usize], p: &Pool2dParams) -> Storage {
        if let Storage::Cuda(g) = self {
            return Storage::Cuda(gpu::avg_pool2d_backward(g, x_shape, p));
        }
        let (h, w) = (x_shape[2], x_shape[3]);
        dispatch!(self, |gg| avg_pool2d_backward(
            gg.view().into_dimensionality::<Ix4>().unwrap(),
            p,
            h,
            w
        )
        .into_dyn())
    }

    /// Global average pool `(N, C, H, W) -> (N, C)`, the mean of every plane.
    pub fn global_avg_pool(&self) -> Storage {
        if let Storage::Cuda(x) = self {
            return Storage::Cuda(gpu::global_avg_pool(x));
        }
        dispatch!(self, |a| global_avg_pool_forward(
            a.view().into_dimensionality::<Ix4>().unwrap()
        )
        .into_dyn())
    }

    /// The input gradient of [`Storage::global_avg_pool`] from the `(N, C)` output gradient
    /// `self`.
    pub fn global_avg_pool_backward(&self, x_shape: &[usize]) -> Storage {
        if let Storage::Cuda(g) = self {
            return Storage::Cuda(gpu::global_avg_pool_backward(g, x_shape));
        }
        let (h, w) = (x_shape[2], x_shape[3]);
        dispatch!(self, |gg| global_avg_pool_backward(
            gg.view().into_dimensionality::<Ix2>().unwrap(),
            h,
            w
        )
        .into_dyn())
    }
}

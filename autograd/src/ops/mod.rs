//! Differentiable ops, one family per file. Each op is a method on [`crate::Tensor`] (or a
//! function here) with its backward rule next to it and its gradient check in the file's
//! tests. Start reading at `elementwise.rs`.

pub mod attention;
pub mod batchnorm;
pub mod conv;
pub mod decode;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod highway;
pub mod index;
pub mod linear_ce;
pub mod lstm;
pub mod matmul;
pub mod normalize;
pub mod pool;
pub mod reduce;
pub mod scaled_sum;
pub mod shape;
pub mod softmax;
pub mod unary;

use crate::Device;
use crate::tensor::Tensor;
use ops_cuda::CudaDevice;

/// The GPU the inputs live on, or `None` when all are on the CPU. Every op dispatches in
/// [`crate::Storage`] (a fused CPU kernel without a GPU twin returns `None` there and the op
/// composes others); this is for callers outside `autograd` that choose a path themselves. Panics when they are on
/// different devices: `op NAME: inputs on different devices: cuda:0 and cpu — move one with
/// .to(&device)`.
#[track_caller]
pub fn device_of(op: &str, inputs: &[&Tensor]) -> Option<CudaDevice> {
    let first = inputs.first()?.device();
    for t in &inputs[1..] {
        if t.device() != first {
            crate::kernels::cuda::mixed_devices(op, first, t.device());
        }
    }
    match first {
        Device::Cpu => None,
        Device::Cuda(d) => Some(d.clone()),
    }
}

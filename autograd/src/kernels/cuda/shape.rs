//! Shape ops on the GPU. GPU storage is always contiguous, so a reshape shares the buffer
//! and only `permute` (and the strided views of `narrow`/`select`/`pad`/`concat`) copies.

use super::{CudaStorage, buf, check, gpu, wrap};
use crate::storage::Storage;
use crate::tensor::Tensor;
use ops_cuda::CudaDevice;
use ops_cuda::kernels::elementwise;

/// The same buffer under a new shape (same element count).
pub fn reshape(x: &Tensor, shape: &[usize]) -> Storage {
    Storage::Cuda(CudaStorage {
        buf: gpu("reshape", x).buf.clone(),
        shape: shape.to_vec(),
    })
}

/// Output axis `i` is input axis `perm[i]`.
pub fn permute(dev: &CudaDevice, x: &Tensor, perm: &[usize]) -> Storage {
    let (out, shape) = check(
        "permute",
        elementwise::permute(dev, buf("permute", x), x.shape(), perm),
    );
    wrap(out, &shape)
}

/// A strided view `x[offset + sum(i_d * strides[d])]` of shape `shape`, materialised.
pub fn strided(
    dev: &CudaDevice,
    op: &str,
    x: &Tensor,
    offset: usize,
    shape: &[usize],
    strides: &[usize],
) -> Storage {
    let (s, st) = ops_cuda::shape::coalesce(shape, &[strides.to_vec()]);
    let out = check(
        op,
        elementwise::strided_copy(dev, buf(op, x), offset, &s, &st[0]),
    );
    wrap(out, shape)
}

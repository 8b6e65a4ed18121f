//! Shape kernels on the GPU. GPU storage is always contiguous, so a reshape shares the
//! buffer ([`CudaStorage::reshaped`]) and only `permute` (and the strided views of
//! `narrow`/`select`/`pad`/`concat`) copies.

use super::{CudaStorage, check, wrap};
use ops_cuda::kernels::elementwise;

/// Output axis `i` is input axis `perm[i]`.
pub fn permute(x: &CudaStorage, perm: &[usize]) -> CudaStorage {
    let (out, shape) = check(
        "permute",
        elementwise::permute(x.device(), &x.buf, &x.shape, perm),
    );
    wrap(out, &shape)
}

/// A strided view `x[offset + sum(i_d * strides[d])]` of shape `shape`, materialised.
pub fn strided(
    op: &str,
    x: &CudaStorage,
    offset: usize,
    shape: &[usize],
    strides: &[usize],
) -> CudaStorage {
    let (s, st) = ops_cuda::shape::coalesce(shape, &[strides.to_vec()]);
    let out = check(
        op,
        elementwise::strided_copy(x.device(), &x.buf, offset, &s, &st[0]),
    );
    wrap(out, shape)
}

//! The matrix-product family, dispatched by device and dtype: the CPU kernels are
//! `kernels::cpu::matmul` (GEMM and packed-panel routes), the GPU one
//! `kernels::cuda::matmul` (SGEMM).

use super::{Storage, all_cuda};
use crate::kernels::cpu::matmul::matmul_kernel;
use crate::kernels::cuda::matmul as gpu;

impl Storage {
    /// `op(self) · op(other)`, where `op` transposes the last two axes when `ta` / `tb`:
    /// 2-D x 2-D, 3-D x 3-D (batched) or 3-D x 2-D (one matrix shared by the batch).
    /// `op` names the caller in errors (two devices, two dtypes).
    pub fn matmul(&self, op: &str, ta: bool, other: &Storage, tb: bool) -> Storage {
        if let Some([a, b]) = all_cuda(op, [self, other]) {
            return Storage::Cuda(gpu::matmul(a, ta, b, tb));
        }
        dispatch2!(op, self, other, |x, y| matmul_kernel(x, ta, y, tb))
    }
}

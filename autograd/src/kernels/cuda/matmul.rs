//! Matrix products on the GPU through `ops-cuda`'s SGEMM: 2-D x 2-D, batched 3-D x 3-D and
//! 3-D x 2-D (one `B` shared by the batch), with either operand read transposed.

use super::{CudaStorage, check, wrap};
use ops_cuda::CudaBuffer;
use ops_cuda::kernels::gemm::{self, GemmDesc};

/// `op(a) · op(b)` with the same shape rules as the CPU `matmul_kernel`: `op` transposes
/// the last two axes when `ta` / `tb`.
pub fn matmul(a: &CudaStorage, ta: bool, b: &CudaStorage, tb: bool) -> CudaStorage {
    const OP: &str = "matmul";
    let dev = a.device();
    let (sa, sb) = (&a.shape[..], &b.shape[..]);
    let last2 = |s: &[usize], t: bool| {
        let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
        if t { (c, r) } else { (r, c) }
    };
    match (sa.len(), sb.len()) {
        (2, 2) => {
            let (m, k) = last2(sa, ta);
            let (_, n) = last2(sb, tb);
            let c = check(OP, gemm::matmul(dev, &a.buf, &b.buf, m, k, n, ta, tb));
            wrap(c, &[m, n])
        }
        (3, 3) | (3, 2) => {
            let batch = sa[0];
            let (m, k) = last2(sa, ta);
            let (_, n) = last2(sb, tb);
            let mut d = GemmDesc::new(ta, tb, m, n, k).batched(batch);
            if sb.len() == 2 {
                d.stride_b = 0;
            }
            let mut c = check(
                OP,
                if k == 0 {
                    CudaBuffer::zeros(dev, batch * m * n)
                } else {
                    CudaBuffer::uninit(dev, batch * m * n)
                },
            );
            if k > 0 {
                check(OP, gemm::sgemm(dev, &d, &a.buf, &b.buf, &mut c));
            }
            wrap(c, &[batch, m, n])
        }
        _ => panic!(
            "matmul: unsupported shapes {:?} x {:?} (2-D x 2-D, 3-D x 3-D or 3-D x 2-D)",
            sa, sb
        ),
    }
}

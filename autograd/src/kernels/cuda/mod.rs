//! GPU kernels: thin adapters over the `ops-cuda` launch wrappers, one file per kernel
//! family, mirroring [`crate::kernels::cpu`]. **Kernels never see `Tensor`**: every function
//! here takes [`CudaStorage`] (and shapes, parameters) and returns [`CudaStorage`]; device
//! and dtype dispatch happens one layer up, in [`crate::Storage`], and the graph (inputs,
//! backward rules) one layer above that, in [`crate::ops`].
//!
//! GPU storage is f32 only and always contiguous row-major ([`CudaStorage`]). A failing
//! launch (out of memory, a driver error, a shape the kernel rejects) panics naming the op,
//! like a shape mismatch on the CPU.
//!
//! Everything here compiles without the `cuda` feature; it is then unreachable, because no
//! [`ops_cuda::CudaDevice`] can be made.

pub mod conv;
pub mod elementwise;
pub mod index;
pub mod lstm;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod shape;
pub mod softmax;

use crate::device::Device;
use ndarray::{ArrayD, IxDyn};
use ops_cuda::{CudaBuffer, CudaDevice, CudaError};
use std::sync::Arc;

/// The numbers of a GPU tensor: a contiguous row-major f32 buffer and its shape. The buffer
/// is shared (`Arc`) so that reshapes and clones cost nothing; graph nodes never mutate it.
#[derive(Debug, Clone)]
pub struct CudaStorage {
    /// The device memory (`numel` elements).
    pub buf: Arc<CudaBuffer>,
    /// The tensor's shape.
    pub shape: Vec<usize>,
}

impl CudaStorage {
    /// Wraps a buffer holding `shape.iter().product()` elements.
    pub fn new(buf: CudaBuffer, shape: &[usize]) -> CudaStorage {
        debug_assert_eq!(buf.len(), shape.iter().product::<usize>());
        CudaStorage {
            buf: Arc::new(buf),
            shape: shape.to_vec(),
        }
    }

    /// The device.
    pub fn device(&self) -> &CudaDevice {
        self.buf.device()
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The same buffer under a new shape (same element count).
    pub fn reshaped(&self, shape: &[usize]) -> CudaStorage {
        CudaStorage {
            buf: self.buf.clone(),
            shape: shape.to_vec(),
        }
    }

    /// Copies the numbers to the host as an array (synchronises the device's stream).
    pub fn to_array(&self) -> ArrayD<f32> {
        let v = check("copy to host", self.buf.to_vec());
        ArrayD::from_shape_vec(IxDyn(&self.shape), v).expect("GPU buffer length matches shape")
    }

    /// Copies a row-major host slice of `shape` to `dev`.
    pub fn upload(dev: &CudaDevice, v: &[f32], shape: &[usize]) -> Result<CudaStorage, CudaError> {
        Ok(CudaStorage::new(CudaBuffer::from_slice(dev, v)?, shape))
    }

    /// A GPU buffer of `shape` filled with `v`.
    pub fn full(dev: &CudaDevice, shape: &[usize], v: f32) -> CudaStorage {
        let n = shape.iter().product();
        CudaStorage::new(check("full", CudaBuffer::filled(dev, n, v)), shape)
    }
}

/// Panics for a CUDA storage that reached a CPU kernel (called by the `dispatch!` macros).
#[track_caller]
#[cold]
pub fn cpu_kernel_got_gpu(op: &str) -> ! {
    panic!(
        "{op}: a CPU kernel got a GPU tensor (this op has no GPU path); \
         move its inputs with .to(&Device::Cpu)"
    )
}

/// Unwraps a result of an `ops-cuda` call; a failure (out of memory, a driver error, a
/// shape the kernel rejects) panics naming the op, like a shape mismatch on the CPU.
#[track_caller]
pub fn check<T>(op: &str, r: Result<T, CudaError>) -> T {
    r.unwrap_or_else(|e| panic!("{op} on the GPU failed: {e}"))
}

/// Panics for inputs of one op on two devices, naming both.
#[track_caller]
#[cold]
pub fn mixed_devices(op: &str, a: &Device, b: &Device) -> ! {
    panic!("op {op}: inputs on different devices: {a} and {b} — move one with .to(&device)")
}

/// Wraps a buffer as GPU storage of `shape`.
pub fn wrap(buf: CudaBuffer, shape: &[usize]) -> CudaStorage {
    CudaStorage::new(buf, shape)
}

/// `i32` indices on the device (for gathers, scatters and labels); panics when an index
/// does not fit an `i32`.
pub fn upload_indices(dev: &CudaDevice, op: &str, idx: &[usize]) -> CudaBuffer<i32> {
    let v: Vec<i32> = idx
        .iter()
        .map(|&i| i32::try_from(i).unwrap_or_else(|_| panic!("{op}: index {i} exceeds i32")))
        .collect();
    check(op, CudaBuffer::from_slice(dev, &v))
}

/// `out[i] = src[idx[i]]` over the flattened `src`, shaped `shape` (`idx.len()` elements):
/// the GPU gather behind `index_select`, `gather`, `narrow` and friends.
pub fn gather_flat(op: &str, src: &CudaStorage, idx: &[usize], shape: &[usize]) -> CudaStorage {
    let dev = src.device();
    let i = upload_indices(dev, op, idx);
    let out = check(
        op,
        ops_cuda::kernels::embedding::embedding_forward(dev, &src.buf, &i, src.numel(), 1),
    );
    wrap(out, shape)
}

/// `out[idx[i]] += g[i]` into zeros of `shape` (`idx` indexes the flattened output): the
/// adjoint of [`gather_flat`]. Duplicate indices add with atomics, so their order of
/// summation (and the last bits) may vary between runs.
pub fn scatter_add_flat(op: &str, g: &CudaStorage, idx: &[usize], shape: &[usize]) -> CudaStorage {
    let dev = g.device();
    let n: usize = shape.iter().product();
    let i = upload_indices(dev, op, idx);
    let mut out = check(op, CudaBuffer::zeros(dev, n));
    check(
        op,
        ops_cuda::kernels::embedding::embedding_backward(dev, &mut out, &g.buf, &i, n, 1),
    );
    wrap(out, shape)
}

/// The sum of squares of the elements, on the host (for gradient norms).
pub fn sum_squares(x: &CudaStorage) -> f64 {
    let dev = x.device();
    let sq = check(
        "sum of squares",
        ops_cuda::kernels::elementwise::unary(dev, elementwise::UnaryOp::Square, &x.buf),
    );
    let s = check(
        "sum of squares",
        ops_cuda::kernels::reduce::sum_all(dev, &sq),
    );
    check("sum of squares", s.to_vec())[0] as f64
}

#[cfg(test)]
mod tests {
    //! The host-side index arithmetic of the GPU paths, checked against the CPU ops on
    //! `arange` inputs (whose values are their flat positions). The kernels themselves are
    //! checked on a GPU by `autograd/tests/cuda_parity`.
    use crate::tensor::Tensor;

    fn arange(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|v| v as f64).collect(), shape)
    }

    fn as_positions(t: &Tensor) -> Vec<usize> {
        t.to_vec::<f64>().into_iter().map(|v| v as usize).collect()
    }

    /// What `ops-cuda`'s `strided_copy` computes, on the host.
    fn strided_copy(src: &[f64], offset: usize, shape: &[usize], strides: &[usize]) -> Vec<f64> {
        let n: usize = shape.iter().product();
        (0..n)
            .map(|mut i| {
                let mut at = offset;
                for d in (0..shape.len()).rev() {
                    at += (i % shape[d]) * strides[d];
                    i /= shape[d];
                }
                src[at]
            })
            .collect()
    }

    #[test]
    fn index_positions_match_the_cpu_ops() {
        let x = arange(&[3, 4, 5]);
        let idx = [3, 0, 3, 1];
        assert_eq!(
            super::index::index_select_positions(x.shape(), 1, &idx),
            as_positions(&x.index_select(1, &idx))
        );
        let g: Vec<usize> = (0..3 * 2 * 5).map(|i| (i * 7) % 4).collect();
        assert_eq!(
            super::index::gather_positions(x.shape(), 1, &g, 2),
            as_positions(&x.gather(1, &g, &[3, 2, 5]))
        );
    }

    #[test]
    fn argmax_positions_point_at_the_maxima() {
        let x = crate::testing::rand_f64(&[3, 4, 5], 3);
        let xs = x.to_vec::<f64>();
        for ax in 0..3 {
            let idx = x.argmax_axis(ax as isize);
            let pos = super::reduce::argmax_positions(x.shape(), ax, &idx);
            let maxima = x.max_axis(ax as isize, false).to_vec::<f64>();
            let got: Vec<f64> = pos.iter().map(|&p| xs[p]).collect();
            assert_eq!(got, maxima, "axis {ax}");
        }
    }

    #[test]
    fn strided_views_match_the_cpu_ops() {
        let x = arange(&[3, 4, 5]);
        let xs = x.to_vec::<f64>();
        let cs = ops_cuda::shape::contiguous_strides(x.shape());
        // narrow along each axis, through the same coalescing as the GPU path
        for (ax, start, len) in [(0, 1, 2), (1, 1, 2), (2, 3, 2)] {
            let mut shape = x.shape().to_vec();
            shape[ax] = len;
            let (s, st) = ops_cuda::shape::coalesce(&shape, std::slice::from_ref(&cs));
            let got = strided_copy(&xs, start * cs[ax], &s, &st[0]);
            assert_eq!(
                got,
                x.narrow(ax as isize, start, len).to_vec::<f64>(),
                "axis {ax}"
            );
        }
        // broadcast_to
        let b = arange(&[4, 1]);
        let out = [3, 4, 5];
        let strides = ops_cuda::shape::broadcast_strides(b.shape(), &out);
        let (s, st) = ops_cuda::shape::coalesce(&out, &[strides]);
        let got = strided_copy(&b.to_vec::<f64>(), 0, &s, &st[0]);
        assert_eq!(got, b.broadcast_to(&out).to_vec::<f64>());
    }
}

//! GPU implementations of the ops, on top of the `ops-cuda` launch wrappers; one file per
//! op family, mirroring [`crate::kernels::cpu`].
//!
//! GPU tensors are f32 only and always contiguous row-major ([`CudaStorage`]). An op's
//! forward calls [`device_of`] on its inputs: `None` means all are on the CPU (the CPU code
//! runs unchanged); `Some(dev)` means all are on the same GPU, and the op computes its output
//! storage here. Mixing devices panics naming both. Backward rules are mostly written with
//! tensor ops, which dispatch by themselves; the few that call CPU kernels directly have a
//! GPU branch that calls these functions.
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

use crate::Device;
use crate::storage::Storage;
use crate::tensor::Tensor;
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

    /// Copies the numbers to the host as an array (synchronises the device's stream).
    pub fn to_array(&self) -> ArrayD<f32> {
        let v = check("copy to host", self.buf.to_vec());
        ArrayD::from_shape_vec(IxDyn(&self.shape), v).expect("GPU buffer length matches shape")
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

/// The GPU the inputs live on, or `None` when all are on the CPU. Panics when they are on
/// different devices: `op NAME: inputs on different devices: cuda:0 and cpu — move one with
/// .to(&device)`.
#[track_caller]
pub fn device_of(op: &str, inputs: &[&Tensor]) -> Option<CudaDevice> {
    let first = inputs.first()?.device();
    for t in &inputs[1..] {
        if t.device() != first {
            mixed_devices(op, first, t.device());
        }
    }
    match first {
        Device::Cpu => None,
        Device::Cuda(d) => Some(d.clone()),
    }
}

/// Panics for inputs of one op on two devices, naming both.
#[track_caller]
#[cold]
pub fn mixed_devices(op: &str, a: &Device, b: &Device) -> ! {
    panic!("op {op}: inputs on different devices: {a} and {b} — move one with .to(&device)")
}

/// The GPU storage of `t`; panics (naming `op`) when `t` is on the CPU.
#[track_caller]
pub fn gpu<'a>(op: &str, t: &'a Tensor) -> &'a CudaStorage {
    match t.storage() {
        Storage::Cuda(c) => c,
        _ => panic!("{op}: expected a GPU tensor, got one on the CPU"),
    }
}

/// The device buffer of `t` (which must be on the GPU).
#[track_caller]
pub fn buf<'a>(op: &str, t: &'a Tensor) -> &'a CudaBuffer {
    &gpu(op, t).buf
}

/// Wraps a buffer as GPU storage of `shape`.
pub fn wrap(buf: CudaBuffer, shape: &[usize]) -> Storage {
    Storage::Cuda(CudaStorage::new(buf, shape))
}

/// A GPU tensor of `shape` filled with `v`.
pub fn full(dev: &CudaDevice, shape: &[usize], v: f32) -> Storage {
    let n = shape.iter().product();
    wrap(check("full", CudaBuffer::filled(dev, n, v)), shape)
}

/// Copies CPU storage to `dev`; GPU tensors hold f32 only.
pub fn upload(dev: &CudaDevice, s: &Storage) -> Result<Storage, crate::Error> {
    let a = match s {
        Storage::F32(a) => a,
        Storage::F64(_) => return Err(crate::Error::GpuDtype(crate::DType::F64)),
        Storage::Cuda(c) => &c.to_array(),
    };
    let v = crate::kernels::cpu::layout::to_row_major(&a.view());
    Ok(wrap(CudaBuffer::from_slice(dev, &v)?, a.shape()))
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
pub fn gather_flat(
    dev: &CudaDevice,
    op: &str,
    src: &Tensor,
    idx: &[usize],
    shape: &[usize],
) -> Storage {
    let i = upload_indices(dev, op, idx);
    let out = check(
        op,
        ops_cuda::kernels::embedding::embedding_forward(dev, buf(op, src), &i, src.numel(), 1),
    );
    wrap(out, shape)
}

/// `out[idx[i]] += g[i]` into zeros of `shape` (`idx` indexes the flattened output): the
/// adjoint of [`gather_flat`]. Duplicate indices add with atomics, so their order of
/// summation (and the last bits) may vary between runs.
pub fn scatter_add_flat(
    dev: &CudaDevice,
    op: &str,
    g: &Tensor,
    idx: &[usize],
    shape: &[usize],
) -> Storage {
    let n: usize = shape.iter().product();
    let i = upload_indices(dev, op, idx);
    let mut out = check(op, CudaBuffer::zeros(dev, n));
    check(
        op,
        ops_cuda::kernels::embedding::embedding_backward(dev, &mut out, buf(op, g), &i, n, 1),
    );
    wrap(out, shape)
}

/// The sum of squares of a GPU tensor's elements, on the host (for gradient norms).
pub fn sum_squares(dev: &CudaDevice, t: &Tensor) -> f64 {
    let sq = check(
        "sum of squares",
        ops_cuda::kernels::elementwise::unary(dev, elementwise::UnaryOp::Square, buf("norm", t)),
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
    use crate::Tensor;

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

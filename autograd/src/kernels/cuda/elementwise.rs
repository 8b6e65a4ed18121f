//! Elementwise ops on the GPU: broadcasting binary arithmetic, unary math and its backward,
//! broadcasting up (`strided_copy` with zero strides) and summing down (`sum_to_shape`).

use super::{buf, check, wrap};
use crate::storage::Storage;
use crate::tensor::Tensor;
use ops_cuda::CudaDevice;
pub use ops_cuda::kernels::elementwise::{BinaryOp, UnaryOp};
use ops_cuda::kernels::{elementwise, reduce};

/// `a op b` with NumPy broadcasting; `name` is the op (for errors). The shapes were
/// already checked by the caller or are checked here with both shapes in the message.
pub fn binary(dev: &CudaDevice, name: &str, op: BinaryOp, a: &Tensor, b: &Tensor) -> Storage {
    let shape = crate::ops::elementwise::broadcast_shape(name, a.shape(), b.shape());
    let (out, out_shape) = check(
        name,
        elementwise::binary(dev, op, buf(name, a), a.shape(), buf(name, b), b.shape()),
    );
    debug_assert_eq!(out_shape, shape);
    wrap(out, &shape)
}

/// `op(x)` elementwise.
pub fn unary(dev: &CudaDevice, name: &str, op: UnaryOp, x: &Tensor) -> Storage {
    wrap(
        check(name, elementwise::unary(dev, op, buf(name, x))),
        x.shape(),
    )
}

/// The input gradient of `y = op(x)` from the output gradient `g`.
pub fn unary_backward(
    dev: &CudaDevice,
    name: &str,
    op: UnaryOp,
    g: &Tensor,
    x: &Tensor,
    y: &Tensor,
) -> Tensor {
    let d = check(
        name,
        elementwise::unary_backward(dev, op, buf(name, g), buf(name, x), buf(name, y)),
    );
    Tensor::from_storage(wrap(d, x.shape()))
}

/// `x` broadcast (materialised) to `shape`.
pub fn broadcast_to(dev: &CudaDevice, x: &Tensor, shape: &[usize]) -> Storage {
    let strides = ops_cuda::shape::broadcast_strides(x.shape(), shape);
    let (s, st) = ops_cuda::shape::coalesce(shape, &[strides]);
    let out = check(
        "broadcast_to",
        elementwise::strided_copy(dev, buf("broadcast_to", x), 0, &s, &st[0]),
    );
    wrap(out, shape)
}

/// `x` summed down to `target` (the adjoint of broadcasting).
pub fn sum_to_shape(dev: &CudaDevice, x: &Tensor, target: &[usize]) -> Storage {
    let out = check(
        "sum_to_shape",
        reduce::sum_to_shape(dev, buf("sum_to_shape", x), x.shape(), target),
    );
    wrap(out, target)
}

//! Elementwise kernels on the GPU: broadcasting binary arithmetic, unary math and its
//! backward, broadcasting up (`strided_copy` with zero strides) and summing down
//! (`sum_to_shape`).

use super::{CudaStorage, check, wrap};
pub use ops_cuda::kernels::elementwise::{BinaryOp, UnaryOp};
use ops_cuda::kernels::{elementwise, reduce};

/// `a op b` with NumPy broadcasting into `shape` (the broadcast shape, checked by the
/// caller); `name` is the op (for errors).
pub fn binary(
    name: &str,
    op: BinaryOp,
    a: &CudaStorage,
    b: &CudaStorage,
    shape: &[usize],
) -> CudaStorage {
    let (out, out_shape) = check(
        name,
        elementwise::binary(a.device(), op, &a.buf, &a.shape, &b.buf, &b.shape),
    );
    debug_assert_eq!(out_shape, shape);
    wrap(out, shape)
}

/// `op(x)` elementwise.
pub fn unary(name: &str, op: UnaryOp, x: &CudaStorage) -> CudaStorage {
    wrap(
        check(name, elementwise::unary(x.device(), op, &x.buf)),
        &x.shape,
    )
}

/// The input gradient of `y = op(x)` from the output gradient `g`.
pub fn unary_backward(
    name: &str,
    op: UnaryOp,
    g: &CudaStorage,
    x: &CudaStorage,
    y: &CudaStorage,
) -> CudaStorage {
    let d = check(
        name,
        elementwise::unary_backward(x.device(), op, &g.buf, &x.buf, &y.buf),
    );
    wrap(d, &x.shape)
}

/// `x` broadcast (materialised) to `shape`.
pub fn broadcast_to(x: &CudaStorage, shape: &[usize]) -> CudaStorage {
    let strides = ops_cuda::shape::broadcast_strides(&x.shape, shape);
    let (s, st) = ops_cuda::shape::coalesce(shape, &[strides]);
    let out = check(
        "broadcast_to",
        elementwise::strided_copy(x.device(), &x.buf, 0, &s, &st[0]),
    );
    wrap(out, shape)
}

/// `x` summed down to `target` (the adjoint of broadcasting).
pub fn sum_to_shape(x: &CudaStorage, target: &[usize]) -> CudaStorage {
    let out = check(
        "sum_to_shape",
        reduce::sum_to_shape(x.device(), &x.buf, &x.shape, target),
    );
    wrap(out, target)
}

//! Elementwise kernels (`kernels/elementwise.cu`): broadcasting binary ops, unary ops and
//! their backward, strided copies (permute / expand / slice), `axpby`.

use super::{check_buf, numel};
use crate::device::{KernelArg, LaunchCfg};
use crate::ptx::PtxModule;
use crate::shape::{
    MAX_DIMS, broadcast_shape, broadcast_strides, coalesce, contiguous_strides, to_i32,
};
use crate::{CudaBuffer, CudaDevice, CudaError};

/// Binary operations; `out = a op b` elementwise with NumPy broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)` (NaN in `a` propagates)
    Maximum,
    /// `min(a, b)` (NaN in `a` propagates)
    Minimum,
    /// `1.0` where `a >= b`, else `0.0` (masks for max/min backward)
    Ge,
    /// `1.0` where `a > b`, else `0.0`
    Gt,
    /// `1.0` where `a == b`, else `0.0`
    Eq,
    /// `powf(a, b)`
    Pow,
}

impl BinaryOp {
    fn code(self) -> i32 {
        self as i32
    }
}

/// Unary operations and their parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `exp(x)`
    Exp,
    /// `ln(x)`
    Log,
    /// `sqrt(x)`
    Sqrt,
    /// `tanh(x)`
    Tanh,
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `max(x, 0)`; gradient 0 at 0
    Relu,
    /// `|x|`; gradient 0 at 0
    Abs,
    /// `min(max(x, min), max)`; gradient passes where `min <= x <= max`
    Clamp {
        /// lower bound
        min: f32,
        /// upper bound
        max: f32,
    },
    /// `x^p`
    Powf(f32),
    /// `x + s`
    AddScalar(f32),
    /// `x * s`
    MulScalar(f32),
    /// `x * x`
    Square,
    /// `1 / x`
    Recip,
}

impl UnaryOp {
    fn code_params(self) -> (i32, f32, f32) {
        match self {
            UnaryOp::Neg => (0, 0.0, 0.0),
            UnaryOp::Exp => (1, 0.0, 0.0),
            UnaryOp::Log => (2, 0.0, 0.0),
            UnaryOp::Sqrt => (3, 0.0, 0.0),
            UnaryOp::Tanh => (4, 0.0, 0.0),
            UnaryOp::Sigmoid => (5, 0.0, 0.0),
            UnaryOp::Relu => (6, 0.0, 0.0),
            UnaryOp::Abs => (7, 0.0, 0.0),
            UnaryOp::Clamp { min, max } => (8, min, max),
            UnaryOp::Powf(p) => (9, p, 0.0),
            UnaryOp::AddScalar(s) => (10, s, 0.0),
            UnaryOp::MulScalar(s) => (11, s, 0.0),
            UnaryOp::Square => (12, 0.0, 0.0),
            UnaryOp::Recip => (13, 0.0, 0.0),
        }
    }
}

/// Shape and strides for the strided kernels (`struct Strides2` in the `.cu`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Strides2 {
    ndim: i32,
    shape: [i32; MAX_DIMS],
    sa: [i32; MAX_DIMS],
    sb: [i32; MAX_DIMS],
}
// SAFETY: #[repr(C)] plain ints, laid out like the CUDA struct.
unsafe impl KernelArg for Strides2 {}

impl Strides2 {
    fn new(
        op: &'static str,
        shape: &[usize],
        sa: &[usize],
        sb: &[usize],
    ) -> Result<Self, CudaError> {
        if shape.len() > MAX_DIMS {
            return Err(CudaError::shape(
                op,
                format!(
                    "{} dimensions after merging, at most {MAX_DIMS} supported",
                    shape.len()
                ),
            ));
        }
        let mut p = Strides2 {
            ndim: shape.len() as i32,
            ..Default::default()
        };
        for d in 0..shape.len() {
            p.shape[d] = to_i32(op, "dimension", shape[d])?;
            p.sa[d] = to_i32(op, "stride", sa[d])?;
            p.sb[d] = to_i32(op, "stride", sb.get(d).copied().unwrap_or(0))?;
        }
        Ok(p)
    }
}

/// `a op b` with broadcasting. `a` and `b` are contiguous with shapes `a_shape` and
/// `b_shape`; returns the contiguous result and its (broadcast) shape.
pub fn binary(
    dev: &CudaDevice,
    op: BinaryOp,
    a: &CudaBuffer,
    a_shape: &[usize],
    b: &CudaBuffer,
    b_shape: &[usize],
) -> Result<(CudaBuffer, Vec<usize>), CudaError> {
    const OP: &str = "binary";
    check_buf(OP, "a", dev, a, numel(OP, a_shape)?)?;
    check_buf(OP, "b", dev, b, numel(OP, b_shape)?)?;
    let out_shape = broadcast_shape(a_shape, b_shape).ok_or_else(|| {
        CudaError::shape(
            OP,
            format!("shapes {a_shape:?} and {b_shape:?} do not broadcast"),
        )
    })?;
    let n = numel(OP, &out_shape)?;
    let out = CudaBuffer::uninit(dev, n)?;
    if n == 0 {
        return Ok((out, out_shape));
    }
    let ni = to_i32(OP, "numel", n)?;
    if a.len() == n && b.len() == n {
        unsafe {
            dev.launch(
                PtxModule::Elementwise,
                "binary_same",
                LaunchCfg::linear(n),
                &[&op.code(), &out.arg(), &a.arg(), &b.arg(), &ni],
            )?;
        }
    } else {
        let sa = broadcast_strides(a_shape, &out_shape);
        let sb = broadcast_strides(b_shape, &out_shape);
        let (shape, st) = coalesce(&out_shape, &[sa, sb]);
        let p = Strides2::new(OP, &shape, &st[0], &st[1])?;
        unsafe {
            dev.launch(
                PtxModule::Elementwise,
                "binary_bcast",
                LaunchCfg::linear(n),
                &[&op.code(), &out.arg(), &a.arg(), &b.arg(), &ni, &p],
            )?;
        }
    }
    Ok((out, out_shape))
}

/// `op(x)` elementwise.
pub fn unary(dev: &CudaDevice, op: UnaryOp, x: &CudaBuffer) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "unary";
    check_buf(OP, "x", dev, x, x.len())?;
    let n = x.len();
    let out = CudaBuffer::uninit(dev, n)?;
    if n == 0 {
        return Ok(out);
    }
    let ni = to_i32(OP, "numel", n)?;
    let (code, p0, p1) = op.code_params();
    unsafe {
        dev.launch(
            PtxModule::Elementwise,
            "unary_forward",
            LaunchCfg::linear(n),
            &[&code, &out.arg(), &x.arg(), &ni, &p0, &p1],
        )?;
    }
    Ok(out)
}

/// `dx` of [`unary`] from the upstream gradient `dy`, the input `x` and the forward output
/// `y = op(x)` (all the same length).
pub fn unary_backward(
    dev: &CudaDevice,
    op: UnaryOp,
    dy: &CudaBuffer,
    x: &CudaBuffer,
    y: &CudaBuffer,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "unary_backward";
    let n = dy.len();
    check_buf(OP, "dy", dev, dy, n)?;
    check_buf(OP, "x", dev, x, n)?;
    check_buf(OP, "y", dev, y, n)?;
    let dx = CudaBuffer::uninit(dev, n)?;
    if n == 0 {
        return Ok(dx);
    }
    let ni = to_i32(OP, "numel", n)?;
    let (code, p0, p1) = op.code_params();
    unsafe {
        dev.launch(
            PtxModule::Elementwise,
            "unary_backward",
            LaunchCfg::linear(n),
            &[
                &code,
                &dx.arg(),
                &dy.arg(),
                &x.arg(),
                &y.arg(),
                &ni,
                &p0,
                &p1,
            ],
        )?;
    }
    Ok(dx)
}

/// Materialises a strided view of `src`: element `[i0, .., ik]` of the contiguous result
/// (shape `shape`) is `src[offset + sum(i_d * strides[d])]`. Covers permute, expand
/// (stride 0), slicing and transposes.
pub fn strided_copy(
    dev: &CudaDevice,
    src: &CudaBuffer,
    offset: usize,
    shape: &[usize],
    strides: &[usize],
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "strided_copy";
    let n = numel(OP, shape)?;
    let mut out = CudaBuffer::uninit(dev, n)?;
    strided_copy_into(dev, &mut out, 0, src, offset, shape, strides)?;
    Ok(out)
}

/// Like [`strided_copy`], writing the contiguous result into `dst[dst_offset..]`.
pub fn strided_copy_into(
    dev: &CudaDevice,
    dst: &mut CudaBuffer,
    dst_offset: usize,
    src: &CudaBuffer,
    offset: usize,
    shape: &[usize],
    strides: &[usize],
) -> Result<(), CudaError> {
    const OP: &str = "strided_copy";
    if shape.len() != strides.len() {
        return Err(CudaError::shape(OP, "shape and strides differ in length"));
    }
    let n = numel(OP, shape)?;
    check_buf(OP, "src", dev, src, src.len())?;
    check_buf(OP, "dst", dev, dst, dst.len())?;
    if n == 0 {
        return Ok(());
    }
    let last = offset
        + shape
            .iter()
            .zip(strides)
            .map(|(&d, &s)| (d - 1) * s)
            .sum::<usize>();
    if last >= src.len() || dst_offset + n > dst.len() {
        return Err(CudaError::shape(
            OP,
            format!(
                "view reaches element {last} of a {}-element source, or {} elements at {dst_offset} overflow a {}-element destination",
                src.len(),
                n,
                dst.len()
            ),
        ));
    }
    let (shape, st) = coalesce(shape, &[strides.to_vec()]);
    if shape.len() == 1 && st[0][0] == 1 {
        return dst.copy_within_from(dst_offset, src, offset, n);
    }
    let p = Strides2::new(OP, &shape, &st[0], &[])?;
    let ni = to_i32(OP, "numel", n)?;
    unsafe {
        dev.launch(
            PtxModule::Elementwise,
            "strided_copy",
            LaunchCfg::linear(n),
            &[&dst.arg_at(dst_offset), &src.arg_at(offset), &ni, &p],
        )?;
    }
    Ok(())
}

/// Permutes the axes of a contiguous tensor: result axis `i` is input axis `perm[i]`.
/// Returns the contiguous result and its shape.
pub fn permute(
    dev: &CudaDevice,
    x: &CudaBuffer,
    shape: &[usize],
    perm: &[usize],
) -> Result<(CudaBuffer, Vec<usize>), CudaError> {
    const OP: &str = "permute";
    check_buf(OP, "x", dev, x, numel(OP, shape)?)?;
    let mut seen = vec![false; shape.len()];
    if perm.len() != shape.len()
        || perm
            .iter()
            .any(|&p| p >= shape.len() || std::mem::replace(&mut seen[p], true))
    {
        return Err(CudaError::shape(
            OP,
            format!("{perm:?} is not a permutation of {} axes", shape.len()),
        ));
    }
    let cs = contiguous_strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| cs[p]).collect();
    Ok((strided_copy(dev, x, 0, &out_shape, &strides)?, out_shape))
}

/// `out[out_off..out_off+n] = alpha * x[x_off..x_off+n] + beta * out[..]` (bounds checked).
#[allow(clippy::too_many_arguments)]
pub(crate) fn axpby_at(
    dev: &CudaDevice,
    out: &mut CudaBuffer,
    out_off: usize,
    x: &CudaBuffer,
    x_off: usize,
    n: usize,
    alpha: f32,
    beta: f32,
) -> Result<(), CudaError> {
    const OP: &str = "axpby";
    check_buf(OP, "out", dev, out, out.len())?;
    check_buf(OP, "x", dev, x, x.len())?;
    if out_off + n > out.len() || x_off + n > x.len() {
        return Err(CudaError::shape(OP, "range out of bounds"));
    }
    if n == 0 {
        return Ok(());
    }
    let ni = to_i32(OP, "numel", n)?;
    unsafe {
        dev.launch(
            PtxModule::Elementwise,
            "axpby",
            LaunchCfg::linear(n),
            &[&out.arg_at(out_off), &x.arg_at(x_off), &ni, &alpha, &beta],
        )
    }
}

/// `out = alpha * x + beta * out` (with `beta == 0`, `out` is not read).
pub fn axpby(
    dev: &CudaDevice,
    out: &mut CudaBuffer,
    x: &CudaBuffer,
    alpha: f32,
    beta: f32,
) -> Result<(), CudaError> {
    const OP: &str = "axpby";
    let n = out.len();
    check_buf(OP, "out", dev, out, n)?;
    check_buf(OP, "x", dev, x, n)?;
    if n == 0 {
        return Ok(());
    }
    let ni = to_i32(OP, "numel", n)?;
    unsafe {
        dev.launch(
            PtxModule::Elementwise,
            "axpby",
            LaunchCfg::linear(n),
            &[&out.arg(), &x.arg(), &ni, &alpha, &beta],
        )?;
    }
    Ok(())
}

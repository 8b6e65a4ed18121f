//! Reductions (`kernels/reduce.cu`): sum / mean / max over any set of axes, argmax, full sum,
//! and `sum_to_shape` (the backward of broadcasting).

use super::{NULL, check_buf, numel};
use crate::device::{KernelArg, LaunchCfg, reduction_threads};
use crate::ptx::PtxModule;
use crate::shape::{MAX_DIMS, coalesce, contiguous_strides, to_i32};
use crate::{CudaBuffer, CudaDevice, CudaError};

/// Reduction operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum (NaN propagates).
    Max,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct RedParams {
    nkeep: i32,
    keep_shape: [i32; MAX_DIMS],
    keep_stride: [i32; MAX_DIMS],
    nred: i32,
    red_shape: [i32; MAX_DIMS],
    red_stride: [i32; MAX_DIMS],
}
// SAFETY: #[repr(C)] plain ints, laid out like `struct RedParams` in reduce.cu.
unsafe impl KernelArg for RedParams {}

fn fill_dims(
    op: &'static str,
    shape: &[usize],
    strides: &[usize],
    s: &mut [i32; MAX_DIMS],
    st: &mut [i32; MAX_DIMS],
) -> Result<i32, CudaError> {
    if shape.len() > MAX_DIMS {
        return Err(CudaError::shape(
            op,
            format!("more than {MAX_DIMS} dimensions after merging"),
        ));
    }
    for d in 0..shape.len() {
        s[d] = to_i32(op, "dimension", shape[d])?;
        st[d] = to_i32(op, "stride", strides[d])?;
    }
    Ok(shape.len() as i32)
}

fn reduce_impl(
    dev: &CudaDevice,
    op: ReduceOp,
    x: &CudaBuffer,
    shape: &[usize],
    axes: &[usize],
    argidx: Option<&CudaBuffer<i32>>,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "reduce";
    check_buf(OP, "x", dev, x, numel(OP, shape)?)?;
    let mut is_red = vec![false; shape.len()];
    for &a in axes {
        if a >= shape.len() || std::mem::replace(&mut is_red[a], true) {
            return Err(CudaError::shape(
                OP,
                format!("bad or repeated axis {a} for shape {shape:?}"),
            ));
        }
    }
    let cs = contiguous_strides(shape);
    let (mut ks, mut kst, mut rs, mut rst) = (vec![], vec![], vec![], vec![]);
    for d in 0..shape.len() {
        if is_red[d] {
            rs.push(shape[d]);
            rst.push(cs[d]);
        } else {
            ks.push(shape[d]);
            kst.push(cs[d]);
        }
    }
    let n_out = numel(OP, &ks)?;
    let red_size = numel(OP, &rs)?;
    let out = CudaBuffer::uninit(dev, n_out)?;
    if n_out == 0 {
        return Ok(out);
    }
    if red_size == 0 && op == ReduceOp::Max {
        return Err(CudaError::shape(OP, "max over an empty axis"));
    }
    let (ks, kst) = coalesce(&ks, &[kst]);
    let (rs, rst) = coalesce(&rs, &[rst]);
    let mut p = RedParams::default();
    p.nkeep = fill_dims(OP, &ks, &kst[0], &mut p.keep_shape, &mut p.keep_stride)?;
    p.nred = fill_dims(OP, &rs, &rst[0], &mut p.red_shape, &mut p.red_stride)?;
    let threads = reduction_threads(red_size, if n_out == 1 { 1024 } else { 256 });
    let code = op as i32;
    let (n_out_i, red_i) = (
        to_i32(OP, "outputs", n_out)?,
        to_i32(OP, "reduced size", red_size)?,
    );
    let arg = argidx.map_or(NULL, |a| a.arg());
    unsafe {
        dev.launch(
            PtxModule::Reduce,
            "reduce_axes",
            LaunchCfg::rows(n_out, threads, threads * 8),
            &[&code, &out.arg(), &arg, &x.arg(), &n_out_i, &red_i, &p],
        )?;
    }
    Ok(out)
}

/// Reduces the contiguous tensor `x` of shape `shape` over `axes` (any subset, any order).
/// The result is contiguous with the shape of `shape` minus the reduced axes (which is also
/// its keep-dim layout); reducing every axis gives one element.
pub fn reduce(
    dev: &CudaDevice,
    op: ReduceOp,
    x: &CudaBuffer,
    shape: &[usize],
    axes: &[usize],
) -> Result<CudaBuffer, CudaError> {
    reduce_impl(dev, op, x, shape, axes, None)
}

/// Maximum over one `axis` with the index (along that axis) of the first maximum.
pub fn max_with_argmax(
    dev: &CudaDevice,
    x: &CudaBuffer,
    shape: &[usize],
    axis: usize,
) -> Result<(CudaBuffer, CudaBuffer<i32>), CudaError> {
    let n_out = numel("max_with_argmax", shape)? / shape.get(axis).copied().unwrap_or(1).max(1);
    let idx = CudaBuffer::<i32>::uninit(dev, n_out)?;
    let out = reduce_impl(dev, ReduceOp::Max, x, shape, &[axis], Some(&idx))?;
    Ok((out, idx))
}

/// Sum of all elements (a one-element buffer).
pub fn sum_all(dev: &CudaDevice, x: &CudaBuffer) -> Result<CudaBuffer, CudaError> {
    reduce(dev, ReduceOp::Sum, x, &[x.len()], &[0])
}

/// Sums `x` (shape `shape`) down to `target`, the shape it was broadcast from (NumPy rules:
/// `target` is right-aligned; its size-1 or missing axes are summed). The backward of a
/// broadcasting binary op.
pub fn sum_to_shape(
    dev: &CudaDevice,
    x: &CudaBuffer,
    shape: &[usize],
    target: &[usize],
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "sum_to_shape";
    if target.len() > shape.len() {
        return Err(CudaError::shape(
            OP,
            format!("{target:?} has more axes than {shape:?}"),
        ));
    }
    let off = shape.len() - target.len();
    let mut axes = Vec::new();
    for d in 0..shape.len() {
        let t = if d < off { 1 } else { target[d - off] };
        if t == shape[d] {
            continue;
        }
        if t != 1 {
            return Err(CudaError::shape(
                OP,
                format!("{shape:?} is not a broadcast of {target:?}"),
            ));
        }
        axes.push(d);
    }
    if axes.is_empty() {
        check_buf(OP, "x", dev, x, numel(OP, shape)?)?;
        return x.try_clone();
    }
    reduce(dev, ReduceOp::Sum, x, shape, &axes)
}

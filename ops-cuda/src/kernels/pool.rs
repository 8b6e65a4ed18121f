//! Pooling, NCHW (`kernels/pool.cu`). Floor mode, no dilation, padding never counted:
//! average pooling divides by the number of input pixels in the window.

use super::check_buf;
use super::reduce::{ReduceOp, reduce};
use crate::device::LaunchCfg;
use crate::ptx::PtxModule;
use crate::shape::{conv_out_dim, to_i32};
use crate::{CudaBuffer, CudaDevice, CudaError};

/// Shape of a 2-D pooling: input `(n, c, h, w)`, window `(kh, kw)`, `stride` and `padding`
/// as (rows, cols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dShape {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Stride (rows, cols).
    pub stride: (usize, usize),
    /// Padding (rows, cols); at most half the window.
    pub padding: (usize, usize),
}

impl Pool2dShape {
    /// Output height and width.
    pub fn out_hw(&self) -> Result<(usize, usize), CudaError> {
        if 2 * self.padding.0 > self.kh || 2 * self.padding.1 > self.kw {
            return Err(CudaError::shape(
                "pool2d",
                format!("padding exceeds half the window: {self:?}"),
            ));
        }
        match (
            conv_out_dim(self.h, self.kh, self.stride.0, self.padding.0, 1),
            conv_out_dim(self.w, self.kw, self.stride.1, self.padding.1, 1),
        ) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(CudaError::shape(
                "pool2d",
                format!("window does not fit: {self:?}"),
            )),
        }
    }

    fn args(&self) -> Result<[i32; 11], CudaError> {
        let (oh, ow) = self.out_hw()?;
        let f = |v: usize| to_i32("pool2d", "size", v);
        Ok([
            f(self.n * self.c)?,
            f(self.h)?,
            f(self.w)?,
            f(self.kh)?,
            f(self.kw)?,
            f(self.stride.0)?,
            f(self.stride.1)?,
            f(self.padding.0)?,
            f(self.padding.1)?,
            f(oh)?,
            f(ow)?,
        ])
    }

    fn lens(&self) -> Result<(usize, usize), CudaError> {
        let (oh, ow) = self.out_hw()?;
        Ok((self.n * self.c * self.h * self.w, self.n * self.c * oh * ow))
    }
}

/// Max pooling forward: returns the output `(n, c, oh, ow)` and, per output, the argmax as
/// `ih * w + iw` within its input plane (for the backward pass).
pub fn maxpool2d_forward(
    dev: &CudaDevice,
    x: &CudaBuffer,
    s: &Pool2dShape,
) -> Result<(CudaBuffer, CudaBuffer<i32>), CudaError> {
    const OP: &str = "maxpool2d_forward";
    let (xl, ol) = s.lens()?;
    check_buf(OP, "x", dev, x, xl)?;
    let out = CudaBuffer::uninit(dev, ol)?;
    let arg = CudaBuffer::<i32>::uninit(dev, ol)?;
    let a = s.args()?;
    unsafe {
        dev.launch(
            PtxModule::Pool,
            "maxpool2d_forward",
            LaunchCfg::linear(ol),
            &[
                &out.arg(),
                &arg.arg(),
                &x.arg(),
                &a[0],
                &a[1],
                &a[2],
                &a[3],
                &a[4],
                &a[5],
                &a[6],
                &a[7],
                &a[8],
                &a[9],
                &a[10],
            ],
        )?;
    }
    Ok((out, arg))
}

/// Max pooling backward from `dy` and the forward argmax; returns `dx (n, c, h, w)`.
pub fn maxpool2d_backward(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    argmax: &CudaBuffer<i32>,
    s: &Pool2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "maxpool2d_backward";
    let (xl, ol) = s.lens()?;
    check_buf(OP, "dy", dev, dy, ol)?;
    check_buf(OP, "argmax", dev, argmax, ol)?;
    let dx = CudaBuffer::uninit(dev, xl)?;
    let a = s.args()?;
    unsafe {
        dev.launch(
            PtxModule::Pool,
            "maxpool2d_backward",
            LaunchCfg::linear(xl),
            &[
                &dx.arg(),
                &dy.arg(),
                &argmax.arg(),
                &a[0],
                &a[1],
                &a[2],
                &a[3],
                &a[4],
                &a[5],
                &a[6],
                &a[7],
                &a[8],
                &a[9],
                &a[10],
            ],
        )?;
    }
    Ok(dx)
}

/// Average pooling forward (padding excluded from the divisor).
pub fn avgpool2d_forward(
    dev: &CudaDevice,
    x: &CudaBuffer,
    s: &Pool2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "avgpool2d_forward";
    let (xl, ol) = s.lens()?;
    check_buf(OP, "x", dev, x, xl)?;
    let out = CudaBuffer::uninit(dev, ol)?;
    let a = s.args()?;
    unsafe {
        dev.launch(
            PtxModule::Pool,
            "avgpool2d_forward",
            LaunchCfg::linear(ol),
            &[
                &out.arg(),
                &x.arg(),
                &a[0],
                &a[1],
                &a[2],
                &a[3],
                &a[4],
                &a[5],
                &a[6],
                &a[7],
                &a[8],
                &a[9],
                &a[10],
            ],
        )?;
    }
    Ok(out)
}

/// Average pooling backward; returns `dx (n, c, h, w)`.
pub fn avgpool2d_backward(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    s: &Pool2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "avgpool2d_backward";
    let (xl, ol) = s.lens()?;
    check_buf(OP, "dy", dev, dy, ol)?;
    let dx = CudaBuffer::uninit(dev, xl)?;
    let a = s.args()?;
    unsafe {
        dev.launch(
            PtxModule::Pool,
            "avgpool2d_backward",
            LaunchCfg::linear(xl),
            &[
                &dx.arg(),
                &dy.arg(),
                &a[0],
                &a[1],
                &a[2],
                &a[3],
                &a[4],
                &a[5],
                &a[6],
                &a[7],
                &a[8],
                &a[9],
                &a[10],
            ],
        )?;
    }
    Ok(dx)
}

/// Global average pooling: `(n, c, h, w)` to `(n, c)`.
pub fn global_avgpool_forward(
    dev: &CudaDevice,
    x: &CudaBuffer,
    n: usize,
    c: usize,
    hw: usize,
) -> Result<CudaBuffer, CudaError> {
    reduce(dev, ReduceOp::Mean, x, &[n * c, hw], &[1])
}

/// Global average pooling backward: `dy (n, c)` to `dx (n, c, h, w)` = `dy / (h*w)`.
pub fn global_avgpool_backward(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    n: usize,
    c: usize,
    hw: usize,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "global_avgpool_backward";
    check_buf(OP, "dy", dev, dy, n * c)?;
    let dx = CudaBuffer::uninit(dev, n * c * hw)?;
    let (nc, hwi) = (to_i32(OP, "n*c", n * c)?, to_i32(OP, "hw", hw)?);
    if n * c * hw > 0 {
        unsafe {
            dev.launch(
                PtxModule::Pool,
                "global_avgpool_backward",
                LaunchCfg::linear(n * c * hw),
                &[&dx.arg(), &dy.arg(), &nc, &hwi],
            )?;
        }
    }
    Ok(dx)
}

//! 2-D convolution, NCHW (`kernels/conv.cu` + SGEMM).
//!
//! General convolutions (any stride, padding, dilation, groups) go through im2col into a
//! column buffer of shape `(C_in*KH*KW, nb*OH*OW)` for a chunk of `nb` images (chunks keep it
//! under 64 Mi floats), then one SGEMM per group with the weight `(C_out/g, C_in/g*KH*KW)`,
//! then a permute from `(C_out, nb, OH*OW)` to NCHW. The input gradient is the transposed
//! SGEMM followed by col2im (a deterministic gather), the weight gradient an SGEMM with
//! `K = nb*OH*OW` accumulated over chunks. Depthwise convolutions (`groups == C_in > 1`,
//! `C_out` a multiple of `C_in`) use direct kernels instead.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::check_buf;
use super::elementwise::{BinaryOp, binary, strided_copy_into};
use super::gemm::{GemmDesc, sgemm, sgemm_split_k};
use crate::device::LaunchCfg;
use crate::ptx::PtxModule;
use crate::shape::{conv_out_dim, to_i32};
use crate::{CudaBuffer, CudaDevice, CudaError};

/// Largest im2col buffer (elements) before the batch is split into chunks.
static COL_LIMIT: AtomicUsize = AtomicUsize::new(64 << 20);

/// Overrides the im2col chunk limit (elements; default 64 Mi) and returns the old value.
/// For tests of the chunked path and for memory-constrained runs.
pub fn set_col_limit(elements: usize) -> usize {
    COL_LIMIT.swap(elements.max(1), Ordering::Relaxed)
}

/// Shape of a 2-D convolution. Input `(n, c_in, h, w)`, weight `(c_out, c_in/groups, kh, kw)`,
/// output `(n, c_out, oh, ow)`; `stride`, `padding` (zeros) and `dilation` are (rows, cols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (rows, cols).
    pub stride: (usize, usize),
    /// Zero padding (rows, cols).
    pub padding: (usize, usize),
    /// Dilation (rows, cols).
    pub dilation: (usize, usize),
    /// Groups (`c_in` and `c_out` multiples of it).
    pub groups: usize,
}

impl Conv2dShape {
    /// Output height and width, or a shape error.
    pub fn out_hw(&self) -> Result<(usize, usize), CudaError> {
        let oh = conv_out_dim(
            self.h,
            self.kh,
            self.stride.0,
            self.padding.0,
            self.dilation.0,
        );
        let ow = conv_out_dim(
            self.w,
            self.kw,
            self.stride.1,
            self.padding.1,
            self.dilation.1,
        );
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => Err(CudaError::shape(
                "conv2d",
                format!("window does not fit: {self:?}"),
            )),
        }
    }

    /// Elements of the input, weight and output.
    pub fn lens(&self) -> Result<(usize, usize, usize), CudaError> {
        let (oh, ow) = self.out_hw()?;
        if self.groups == 0
            || !self.c_in.is_multiple_of(self.groups)
            || !self.c_out.is_multiple_of(self.groups)
        {
            return Err(CudaError::shape(
                "conv2d",
                format!(
                    "groups {} must divide c_in {} and c_out {}",
                    self.groups, self.c_in, self.c_out
                ),
            ));
        }
        Ok((
            self.n * self.c_in * self.h * self.w,
            self.c_out * (self.c_in / self.groups) * self.kh * self.kw,
            self.n * self.c_out * oh * ow,
        ))
    }

    /// Whether the depthwise kernels handle this shape (`groups == c_in > 1`).
    pub fn is_depthwise(&self) -> bool {
        self.groups == self.c_in && self.groups > 1 && self.c_out.is_multiple_of(self.c_in)
    }

    fn chunk(&self, ohw: usize) -> usize {
        let per_image = (self.c_in * self.kh * self.kw * ohw)
            .max(self.c_out * ohw)
            .max(1);
        (COL_LIMIT.load(Ordering::Relaxed) / per_image).clamp(1, self.n.max(1))
    }

    fn geom_args(&self) -> Result<[i32; 10], CudaError> {
        let (oh, ow) = self.out_hw()?;
        let f = |v: usize| to_i32("conv2d", "size", v);
        Ok([
            f(self.kh)?,
            f(self.kw)?,
            f(self.stride.0)?,
            f(self.stride.1)?,
            f(self.padding.0)?,
            f(self.padding.1)?,
            f(self.dilation.0)?,
            f(self.dilation.1)?,
            f(oh)?,
            f(ow)?,
        ])
    }
}

fn im2col_launch(
    dev: &CudaDevice,
    s: &Conv2dShape,
    x: &CudaBuffer,
    n0: usize,
    nb: usize,
    col: &CudaBuffer,
) -> Result<(), CudaError> {
    let g = s.geom_args()?;
    let (nbi, c, h, w) = (
        to_i32("conv2d", "nb", nb)?,
        s.c_in as i32,
        s.h as i32,
        s.w as i32,
    );
    let total = s.c_in * s.kh * s.kw * nb * (g[8] as usize) * (g[9] as usize);
    unsafe {
        dev.launch(
            PtxModule::Conv,
            "im2col",
            LaunchCfg::linear(total),
            &[
                &x.arg_at(n0 * s.c_in * s.h * s.w),
                &col.arg(),
                &nbi,
                &c,
                &h,
                &w,
                &g[0],
                &g[1],
                &g[2],
                &g[3],
                &g[4],
                &g[5],
                &g[6],
                &g[7],
                &g[8],
                &g[9],
            ],
        )
    }
}

/// Convolution forward: returns `(n, c_out, oh, ow)`; `bias` (length `c_out`) is optional.
pub fn conv2d_forward(
    dev: &CudaDevice,
    x: &CudaBuffer,
    weight: &CudaBuffer,
    bias: Option<&CudaBuffer>,
    s: &Conv2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "conv2d_forward";
    let (xl, wl, ol) = s.lens()?;
    check_buf(OP, "x", dev, x, xl)?;
    check_buf(OP, "weight", dev, weight, wl)?;
    if let Some(b) = bias {
        check_buf(OP, "bias", dev, b, s.c_out)?;
    }
    let (oh, ow) = s.out_hw()?;
    let ohw = oh * ow;
    let out = if s.is_depthwise() {
        depthwise_forward(dev, x, weight, s)?
    } else {
        let mut out = CudaBuffer::uninit(dev, ol)?;
        let nb = s.chunk(ohw);
        let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
        let kk = s.kh * s.kw;
        let col = CudaBuffer::uninit(dev, s.c_in * kk * nb * ohw)?;
        let mut tmp = CudaBuffer::uninit(dev, s.c_out * nb * ohw)?;
        let mut n0 = 0;
        while n0 < s.n {
            let b = nb.min(s.n - n0);
            im2col_launch(dev, s, x, n0, b, &col)?;
            let cols = b * ohw;
            // With one image the GEMM result is already NCHW: write it in place.
            let direct = b == 1;
            for g in 0..s.groups {
                let mut d = GemmDesc::new(false, false, cout_g, cols, cin_g * kk);
                d.offset_a = g * cout_g * cin_g * kk;
                d.offset_b = g * cin_g * kk * cols;
                d.offset_c = g * cout_g * cols + if direct { n0 * s.c_out * ohw } else { 0 };
                if direct {
                    sgemm(dev, &d, weight, &col, &mut out)?;
                } else {
                    sgemm(dev, &d, weight, &col, &mut tmp)?;
                }
            }
            if !direct {
                // tmp (c_out, b, ohw) -> out[n0..n0+b] (b, c_out, ohw)
                strided_copy_into(
                    dev,
                    &mut out,
                    n0 * s.c_out * ohw,
                    &tmp,
                    0,
                    &[b, s.c_out, ohw],
                    &[ohw, b * ohw, 1],
                )?;
            }
            n0 += b;
        }
        out
    };
    match bias {
        None => Ok(out),
        Some(bias) => Ok(binary(
            dev,
            BinaryOp::Add,
            &out,
            &[s.n, s.c_out, ohw],
            bias,
            &[s.c_out, 1],
        )?
        .0),
    }
}

/// Gradient of the input: `dy` is `(n, c_out, oh, ow)`; returns `(n, c_in, h, w)`.
pub fn conv2d_backward_input(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    weight: &CudaBuffer,
    s: &Conv2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "conv2d_backward_input";
    let (xl, wl, ol) = s.lens()?;
    check_buf(OP, "dy", dev, dy, ol)?;
    check_buf(OP, "weight", dev, weight, wl)?;
    if s.is_depthwise() {
        return depthwise_backward_input(dev, dy, weight, s);
    }
    let (oh, ow) = s.out_hw()?;
    let ohw = oh * ow;
    let g = s.geom_args()?;
    let dx = CudaBuffer::uninit(dev, xl)?;
    let nb = s.chunk(ohw);
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let kk = s.kh * s.kw;
    let mut col = CudaBuffer::uninit(dev, s.c_in * kk * nb * ohw)?;
    let mut tmp = CudaBuffer::uninit(dev, s.c_out * nb * ohw)?;
    let mut n0 = 0;
    while n0 < s.n {
        let b = nb.min(s.n - n0);
        let cols = b * ohw;
        // dy[n0..n0+b] (b, c_out, ohw) -> tmp (c_out, b, ohw)
        let (src, src_off): (&CudaBuffer, usize) = if b == 1 {
            (dy, n0 * s.c_out * ohw)
        } else {
            strided_copy_into(
                dev,
                &mut tmp,
                0,
                dy,
                n0 * s.c_out * ohw,
                &[s.c_out, b, ohw],
                &[ohw, s.c_out * ohw, 1],
            )?;
            (&tmp, 0)
        };
        for gi in 0..s.groups {
            let mut d = GemmDesc::new(true, false, cin_g * kk, cols, cout_g);
            d.offset_a = gi * cout_g * cin_g * kk;
            d.offset_b = src_off + gi * cout_g * cols;
            d.offset_c = gi * cin_g * kk * cols;
            sgemm(dev, &d, weight, src, &mut col)?;
        }
        let (nbi, c, h, w) = (to_i32(OP, "nb", b)?, s.c_in as i32, s.h as i32, s.w as i32);
        unsafe {
            dev.launch(
                PtxModule::Conv,
                "col2im",
                LaunchCfg::linear(b * s.c_in * s.h * s.w),
                &[
                    &col.arg(),
                    &dx.arg_at(n0 * s.c_in * s.h * s.w),
                    &nbi,
                    &c,
                    &h,
                    &w,
                    &g[0],
                    &g[1],
                    &g[2],
                    &g[3],
                    &g[4],
                    &g[5],
                    &g[6],
                    &g[7],
                    &g[8],
                    &g[9],
                ],
            )?;
        }
        n0 += b;
    }
    Ok(dx)
}

/// Gradient of the weight: `dy` is `(n, c_out, oh, ow)`, `x` the forward input; returns
/// `(c_out, c_in/groups, kh, kw)`.
pub fn conv2d_backward_weight(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    x: &CudaBuffer,
    s: &Conv2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "conv2d_backward_weight";
    let (xl, wl, ol) = s.lens()?;
    check_buf(OP, "dy", dev, dy, ol)?;
    check_buf(OP, "x", dev, x, xl)?;
    if s.is_depthwise() {
        return depthwise_backward_weight(dev, dy, x, s);
    }
    let (oh, ow) = s.out_hw()?;
    let ohw = oh * ow;
    let mut dw = CudaBuffer::uninit(dev, wl)?;
    let nb = s.chunk(ohw);
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let kk = s.kh * s.kw;
    let col = CudaBuffer::uninit(dev, s.c_in * kk * nb * ohw)?;
    let mut tmp = CudaBuffer::uninit(dev, s.c_out * nb * ohw)?;
    let mut n0 = 0;
    if s.n == 0 {
        dw.fill(0.0)?;
    }
    while n0 < s.n {
        let b = nb.min(s.n - n0);
        let cols = b * ohw;
        im2col_launch(dev, s, x, n0, b, &col)?;
        let (src, src_off): (&CudaBuffer, usize) = if b == 1 {
            (dy, n0 * s.c_out * ohw)
        } else {
            strided_copy_into(
                dev,
                &mut tmp,
                0,
                dy,
                n0 * s.c_out * ohw,
                &[s.c_out, b, ohw],
                &[ohw, s.c_out * ohw, 1],
            )?;
            (&tmp, 0)
        };
        for gi in 0..s.groups {
            let mut d = GemmDesc::new(false, true, cout_g, cin_g * kk, cols);
            d.offset_a = src_off + gi * cout_g * cols;
            d.offset_b = gi * cin_g * kk * cols;
            d.offset_c = gi * cout_g * cin_g * kk;
            d.beta = if n0 == 0 { 0.0 } else { 1.0 };
            sgemm_split_k(dev, &d, src, &col, &mut dw)?;
        }
        n0 += b;
    }
    Ok(dw)
}

fn dw_args(s: &Conv2dShape) -> Result<[i32; 15], CudaError> {
    let g = s.geom_args()?;
    let f = |v: usize| to_i32("depthwise_conv2d", "size", v);
    Ok([
        f(s.n)?,
        f(s.c_in)?,
        f(s.h)?,
        f(s.w)?,
        f(s.c_out / s.c_in)?,
        g[0],
        g[1],
        g[2],
        g[3],
        g[4],
        g[5],
        g[6],
        g[7],
        g[8],
        g[9],
    ])
}

fn check_depthwise(op: &'static str, s: &Conv2dShape) -> Result<(usize, usize, usize), CudaError> {
    if !s.is_depthwise() {
        return Err(CudaError::shape(
            op,
            format!("not depthwise (groups == c_in > 1, c_out multiple of c_in): {s:?}"),
        ));
    }
    s.lens()
}

/// Depthwise convolution forward (`groups == c_in`, multiplier `c_out / c_in`), direct kernel.
pub fn depthwise_forward(
    dev: &CudaDevice,
    x: &CudaBuffer,
    weight: &CudaBuffer,
    s: &Conv2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "depthwise_forward";
    let (xl, wl, ol) = check_depthwise(OP, s)?;
    check_buf(OP, "x", dev, x, xl)?;
    check_buf(OP, "weight", dev, weight, wl)?;
    let out = CudaBuffer::uninit(dev, ol)?;
    let a = dw_args(s)?;
    unsafe {
        dev.launch(
            PtxModule::Conv,
            "dw_conv_forward",
            LaunchCfg::linear(ol),
            &[
                &out.arg(),
                &x.arg(),
                &weight.arg(),
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
                &a[11],
                &a[12],
                &a[13],
                &a[14],
            ],
        )?;
    }
    Ok(out)
}

/// Depthwise convolution, gradient of the input.
pub fn depthwise_backward_input(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    weight: &CudaBuffer,
    s: &Conv2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "depthwise_backward_input";
    let (xl, wl, ol) = check_depthwise(OP, s)?;
    check_buf(OP, "dy", dev, dy, ol)?;
    check_buf(OP, "weight", dev, weight, wl)?;
    let dx = CudaBuffer::uninit(dev, xl)?;
    let a = dw_args(s)?;
    unsafe {
        dev.launch(
            PtxModule::Conv,
            "dw_conv_backward_input",
            LaunchCfg::linear(xl),
            &[
                &dx.arg(),
                &dy.arg(),
                &weight.arg(),
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
                &a[11],
                &a[12],
                &a[13],
                &a[14],
            ],
        )?;
    }
    Ok(dx)
}

/// Depthwise convolution, gradient of the weight (one block per weight element).
pub fn depthwise_backward_weight(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    x: &CudaBuffer,
    s: &Conv2dShape,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "depthwise_backward_weight";
    let (xl, wl, ol) = check_depthwise(OP, s)?;
    check_buf(OP, "dy", dev, dy, ol)?;
    check_buf(OP, "x", dev, x, xl)?;
    let dw = CudaBuffer::uninit(dev, wl)?;
    let a = dw_args(s)?;
    unsafe {
        dev.launch(
            PtxModule::Conv,
            "dw_conv_backward_weight",
            LaunchCfg::rows(wl, 256, 0),
            &[
                &dw.arg(),
                &dy.arg(),
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
                &a[11],
                &a[12],
                &a[13],
                &a[14],
            ],
        )?;
    }
    Ok(dw)
}

//! Convolutions and pooling on the GPU: `ops-cuda`'s im2col + SGEMM convolution (it picks
//! its direct depthwise kernels itself for `groups == c_in`), max/average/global pooling.

use super::{CudaStorage, check, wrap};
use crate::kernels::cpu::conv::Conv2dParams;
use crate::kernels::cpu::pool::Pool2dParams;
use ops_cuda::CudaBuffer;
use ops_cuda::kernels::conv::{self as k, Conv2dShape};
use ops_cuda::kernels::pool::{self as pk, Pool2dShape};
use ops_cuda::kernels::reduce::{self, ReduceOp};

/// The `ops-cuda` description of a convolution of `x` (NCHW) by `w`.
pub fn conv_shape(x: &[usize], w: &[usize], p: &Conv2dParams) -> Conv2dShape {
    Conv2dShape {
        n: x[0],
        c_in: x[1],
        h: x[2],
        w: x[3],
        c_out: w[0],
        kh: w[2],
        kw: w[3],
        stride: p.stride,
        padding: p.padding,
        dilation: p.dilation,
        groups: p.groups,
    }
}

/// Convolution forward, `(n, c_out, oh, ow)`.
pub fn conv2d_forward(
    x: &CudaStorage,
    w: &CudaStorage,
    b: Option<&CudaStorage>,
    p: &Conv2dParams,
) -> CudaStorage {
    const OP: &str = "conv2d";
    let s = conv_shape(&x.shape, &w.shape, p);
    let (oh, ow) = check(OP, s.out_hw());
    let out = check(
        OP,
        k::conv2d_forward(x.device(), &x.buf, &w.buf, b.map(|b| &*b.buf), &s),
    );
    wrap(out, &[s.n, s.c_out, oh, ow])
}

/// Gradients of input, weight and bias (each when `need` says so) from `g`.
pub fn conv2d_backward(
    x: &CudaStorage,
    w: &CudaStorage,
    g: &CudaStorage,
    p: &Conv2dParams,
    need: (bool, bool, bool),
) -> (
    Option<CudaStorage>,
    Option<CudaStorage>,
    Option<CudaStorage>,
) {
    const OP: &str = "conv2d backward";
    let dev = g.device();
    let s = conv_shape(&x.shape, &w.shape, p);
    let dx = need.0.then(|| {
        let d = check(OP, k::conv2d_backward_input(dev, &g.buf, &w.buf, &s));
        wrap(d, &x.shape)
    });
    let dw = need.1.then(|| {
        let d = check(OP, k::conv2d_backward_weight(dev, &g.buf, &x.buf, &s));
        wrap(d, &w.shape)
    });
    let db = need.2.then(|| {
        let d = check(
            OP,
            reduce::reduce(dev, ReduceOp::Sum, &g.buf, &g.shape, &[0, 2, 3]),
        );
        wrap(d, &[s.c_out])
    });
    (dx, dw, db)
}

fn pool_shape(x: &[usize], p: &Pool2dParams) -> Pool2dShape {
    Pool2dShape {
        n: x[0],
        c: x[1],
        h: x[2],
        w: x[3],
        kh: p.kernel.0,
        kw: p.kernel.1,
        stride: p.stride,
        padding: p.padding,
    }
}

fn out_shape(s: &Pool2dShape) -> Vec<usize> {
    let (oh, ow) = check("pool2d", s.out_hw());
    vec![s.n, s.c, oh, ow]
}

/// Max pooling forward: the output and the argmax of every window (for the backward).
pub fn max_pool2d(x: &CudaStorage, p: &Pool2dParams) -> (CudaStorage, CudaBuffer<i32>) {
    let s = pool_shape(&x.shape, p);
    let (y, arg) = check("max_pool2d", pk::maxpool2d_forward(x.device(), &x.buf, &s));
    (wrap(y, &out_shape(&s)), arg)
}

/// Max pooling backward: `g` to the saved argmax positions.
pub fn max_pool2d_backward(
    g: &CudaStorage,
    arg: &CudaBuffer<i32>,
    x_shape: &[usize],
    p: &Pool2dParams,
) -> CudaStorage {
    const OP: &str = "max_pool2d backward";
    let s = pool_shape(x_shape, p);
    let dx = check(OP, pk::maxpool2d_backward(g.device(), &g.buf, arg, &s));
    wrap(dx, x_shape)
}

/// Average pooling forward (padding excluded from the divisor).
pub fn avg_pool2d(x: &CudaStorage, p: &Pool2dParams) -> CudaStorage {
    let s = pool_shape(&x.shape, p);
    let y = check("avg_pool2d", pk::avgpool2d_forward(x.device(), &x.buf, &s));
    wrap(y, &out_shape(&s))
}

/// Average pooling backward.
pub fn avg_pool2d_backward(g: &CudaStorage, x_shape: &[usize], p: &Pool2dParams) -> CudaStorage {
    const OP: &str = "avg_pool2d backward";
    let s = pool_shape(x_shape, p);
    let dx = check(OP, pk::avgpool2d_backward(g.device(), &g.buf, &s));
    wrap(dx, x_shape)
}

/// Global average pooling `(n, c, h, w) -> (n, c)`.
pub fn global_avg_pool(x: &CudaStorage) -> CudaStorage {
    let s = &x.shape;
    let y = check(
        "global_avg_pool",
        pk::global_avgpool_forward(x.device(), &x.buf, s[0], s[1], s[2] * s[3]),
    );
    wrap(y, &s[..2])
}

/// Global average pooling backward: `g / (h * w)` over every plane.
pub fn global_avg_pool_backward(g: &CudaStorage, x_shape: &[usize]) -> CudaStorage {
    const OP: &str = "global_avg_pool backward";
    let s = x_shape;
    let dx = check(
        OP,
        pk::global_avgpool_backward(g.device(), &g.buf, s[0], s[1], s[2] * s[3]),
    );
    wrap(dx, x_shape)
}

//! The 2-D convolution family on NCHW storage, dispatched by device and dtype: forward and
//! backward, optionally with a ReLU fused on the input (CPU only). The CPU kernels are
//! `kernels::cpu::conv` (im2col + GEMM) and `kernels::cpu::depthwise` (`groups == Cin ==
//! Cout`), the GPU ones `kernels::cuda::conv`.

use super::{Storage, all_cuda};
use crate::dtype::Float;
use crate::kernels::cpu::conv::{
    Conv2dParams, conv2d_backward_act, conv2d_bias_grad, conv2d_forward_act,
};
use crate::kernels::cpu::depthwise::{depthwise_backward_act, depthwise_forward_act};
use crate::kernels::cuda::conv as gpu;
use ndarray::{ArrayD, Ix1, Ix4};

/// The gradients of a convolution's input, weight and bias (each `None` when not asked for).
pub type ConvGrads = (Option<Storage>, Option<Storage>, Option<Storage>);

fn is_depthwise(x: &[usize], w: &[usize], p: &Conv2dParams) -> bool {
    p.groups > 1 && p.groups == x[1] && w[0] == x[1] && w[1] == 1
}

fn forward<T: Float>(
    x: &ArrayD<T>,
    w: &ArrayD<T>,
    b: Option<&ArrayD<T>>,
    p: &Conv2dParams,
    relu: bool,
) -> ArrayD<T> {
    let xv = x.view().into_dimensionality::<Ix4>().unwrap();
    let wv = w.view().into_dimensionality::<Ix4>().unwrap();
    let bv = b.map(|b| b.view().into_dimensionality::<Ix1>().unwrap());
    if is_depthwise(x.shape(), w.shape(), p) {
        depthwise_forward_act(xv, wv, bv, p, relu).into_dyn()
    } else {
        conv2d_forward_act(xv, wv, bv, p, relu).into_dyn()
    }
}

fn backward<T: Float>(
    x: &ArrayD<T>,
    w: &ArrayD<T>,
    g: &ArrayD<T>,
    p: &Conv2dParams,
    need: (bool, bool, bool),
    relu: bool,
) -> ConvGrads {
    let xv = x.view().into_dimensionality::<Ix4>().unwrap();
    let wv = w.view().into_dimensionality::<Ix4>().unwrap();
    let gv = g.view().into_dimensionality::<Ix4>().unwrap();
    let (dx, dw) = if !need.0 && !need.1 {
        (None, None)
    } else if is_depthwise(x.shape(), w.shape(), p) {
        depthwise_backward_act(xv, wv, gv, p, need.0, need.1, relu)
    } else {
        conv2d_backward_act(xv, wv, gv, p, need.0, need.1, relu)
    };
    let db = need
        .2
        .then(|| Storage::from_array(conv2d_bias_grad(gv).into_dyn()));
    (
        dx.map(|a| Storage::from_array(a.into_dyn())),
        dw.map(|a| Storage::from_array(a.into_dyn())),
        db,
    )
}

/// The CPU forward, `None` when the dtypes differ (or a storage is on a GPU).
fn forward_cpu(
    x: &Storage,
    w: &Storage,
    b: Option<&Storage>,
    p: &Conv2dParams,
    relu: bool,
) -> Option<Storage> {
    Some(match (x, w, b) {
        (Storage::F32(x), Storage::F32(w), None) => Storage::F32(forward(x, w, None, p, relu)),
        (Storage::F32(x), Storage::F32(w), Some(Storage::F32(b))) => {
            Storage::F32(forward(x, w, Some(b), p, relu))
        }
        (Storage::F64(x), Storage::F64(w), None) => Storage::F64(forward(x, w, None, p, relu)),
        (Storage::F64(x), Storage::F64(w), Some(Storage::F64(b))) => {
            Storage::F64(forward(x, w, Some(b), p, relu))
        }
        _ => return None,
    })
}

impl Storage {
    /// 2-D convolution (cross-correlation) of an `(N, Cin, H, W)` storage with a
    /// `(Cout, Cin / groups, kh, kw)` weight and an optional `(Cout)` bias (shapes checked
    /// by the caller). Panics naming both devices, or the three dtypes, when they differ.
    pub fn conv2d(&self, w: &Storage, b: Option<&Storage>, p: &Conv2dParams) -> Storage {
        const OP: &str = "conv2d";
        if let Some([x, wc]) = all_cuda(OP, [self, w]) {
            let bc = b.map(|b| {
                all_cuda(OP, [self, b]);
                b.as_cuda().expect("checked above")
            });
            return Storage::Cuda(gpu::conv2d_forward(x, wc, bc, p));
        }
        if let Some(b) = b {
            all_cuda(OP, [self, b]);
        }
        forward_cpu(self, w, b, p, false).unwrap_or_else(|| {
            panic!(
                "conv2d: dtype mismatch: input {}, weight {}, bias {:?}",
                self.dtype(),
                w.dtype(),
                b.map(|b| b.dtype())
            )
        })
    }

    /// `relu(self)` convolved as in [`Storage::conv2d`], with the ReLU applied while the
    /// CPU kernels read the input; `None` where there is no fused kernel (GPU storage, or
    /// dtypes that differ): the caller then composes the two ops.
    pub fn relu_conv2d(
        &self,
        w: &Storage,
        b: Option<&Storage>,
        p: &Conv2dParams,
    ) -> Option<Storage> {
        forward_cpu(self, w, b, p, true)
    }

    /// The gradients of [`Storage::conv2d`] (or, with `relu`, of
    /// [`Storage::relu_conv2d`]) with respect to the input `self`, the weight `w` and the
    /// bias, from the output gradient `g`; `need` says which of the three to compute.
    pub fn conv2d_backward(
        &self,
        w: &Storage,
        g: &Storage,
        p: &Conv2dParams,
        need: (bool, bool, bool),
        relu: bool,
    ) -> ConvGrads {
        let name = if relu {
            "relu_conv2d backward"
        } else {
            "conv2d backward"
        };
        if let Some([x, wc, gc]) = all_cuda(name, [self, w, g]) {
            assert!(!relu, "{name}: no fused ReLU kernel on the GPU");
            let (dx, dw, db) = gpu::conv2d_backward(x, wc, gc, p, need);
            return (
                dx.map(Storage::Cuda),
                dw.map(Storage::Cuda),
                db.map(Storage::Cuda),
            );
        }
        match (self, w, g) {
            (Storage::F32(x), Storage::F32(w), Storage::F32(g)) => backward(x, w, g, p, need, relu),
            (Storage::F64(x), Storage::F64(w), Storage::F64(g)) => backward(x, w, g, p, need, relu),
            _ => panic!("{name}: dtype mismatch"),
        }
    }
}

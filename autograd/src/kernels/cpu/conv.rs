//! 2-D convolution on NCHW arrays by per-image im2col + GEMM.
//!
//! * Forward: for every image, the receptive fields are unrolled into a column matrix
//!   `col (Cin/groups * kh * kw, Ho * Wo)` held in a per-thread scratch buffer (rayon
//!   `for_each_init` over images), and `Y_g = W_g col` is one single-threaded GEMM per group.
//!   Per image the column matrix stays in L2, which is 1.5-2x faster than a whole-batch col
//!   matrix (see the anchors note).
//! * 1x1, stride 1, no padding convs skip im2col: the image itself is the column matrix.
//! * Backward: `dW_g += dY_g col^T` accumulated per rayon split (fold) and summed at the end;
//!   `dcol = W_g^T dY_g` scattered back into the input gradient by col2im.
//!
//! Stride, zero padding (separate for height and width), dilation and groups are supported.
//! Depthwise convs (`groups == Cin == Cout`) have their own direct kernel in `depthwise.rs`.

use crate::dtype::Float;
use crate::kernels::cpu::conv_gemm::{matmul_nt, matmul_rows};
use crate::kernels::cpu::uninit::{overwritten, overwritten_array};
use ndarray::{Array2, Array4, ArrayView1, ArrayView4};
use rayon::prelude::*;

/// Settings of a 2-D convolution (PyTorch semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between output positions, `(height, width)`.
    pub stride: (usize, usize),
    /// Zeros added on both sides, `(height, width)`.
    pub padding: (usize, usize),
    /// Spacing between kernel taps, `(height, width)`.
    pub dilation: (usize, usize),
    /// Input and output channels are split into this many independent groups.
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, no dilation, one group.
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl Conv2dParams {
    /// Square kernel settings: stride `s`, padding `p`, dilation `d`, `groups`.
    pub fn new(stride: usize, padding: usize, dilation: usize, groups: usize) -> Self {
        Conv2dParams {
            stride: (stride, stride),
            padding: (padding, padding),
            dilation: (dilation, dilation),
            groups,
        }
    }
}

/// Output length of a convolution or pooling window along one axis,
/// `out_size(len, k, stride, pad, dil)`; `None` when the (dilated) window does not fit into
/// the padded input or the stride is 0. One definition for the CPU and GPU paths:
/// [`ops_cuda::shape::conv_out_dim`].
pub use ops_cuda::shape::conv_out_dim as out_size;

/// The output positions `lo..hi` (of `out` positions) whose input index
/// `o * stride + off - pad` lies inside `0..len`.
#[inline]
pub(crate) fn valid_range(
    out: usize,
    stride: usize,
    pad: usize,
    off: usize,
    len: usize,
) -> (usize, usize) {
    let lo = if pad > off {
        (pad - off).div_ceil(stride)
    } else {
        0
    };
    let hi = if len + pad > off {
        ((len + pad - off - 1) / stride + 1).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// The sizes of one convolution, derived once from the input and weight shapes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
    pub groups: usize,
    pub ho: usize,
    pub wo: usize,
    pub cin_g: usize,
    pub cout_g: usize,
    /// Rows of the column matrix: `cin_g * kh * kw`.
    pub k: usize,
    /// Columns of the column matrix: `ho * wo`.
    pub l: usize,
    /// 1x1, stride 1, no padding: the image is its own column matrix.
    pub pointwise: bool,
}

impl Geom {
    /// Validates shapes; panics naming the input and weight shapes on mismatch.
    pub(crate) fn new(
        x: (usize, usize, usize, usize),
        wt: (usize, usize, usize, usize),
        p: &Conv2dParams,
    ) -> Geom {
        let (n, cin, h, w) = x;
        let (cout, cin_g, kh, kw) = wt;
        let groups = p.groups;
        let bad = |why: &str| -> ! {
            panic!(
                "conv2d: input {:?} and weight {:?} do not fit ({why}; {p:?})",
                [n, cin, h, w],
                [cout, cin_g, kh, kw]
            )
        };
        if groups == 0 || cin % groups != 0 || cout % groups != 0 {
            bad("groups must divide input and output channels");
        }
        if cin_g * groups != cin {
            bad("weight dim 1 must be input channels / groups");
        }
        if p.dilation.0 == 0 || p.dilation.1 == 0 {
            bad("dilation must be >= 1");
        }
        let ho = out_size(h, kh, p.stride.0, p.padding.0, p.dilation.0)
            .unwrap_or_else(|| bad("kernel larger than padded input, or stride 0"));
        let wo = out_size(w, kw, p.stride.1, p.padding.1, p.dilation.1)
            .unwrap_or_else(|| bad("kernel larger than padded input, or stride 0"));
        let pointwise = kh == 1 && kw == 1 && p.stride == (1, 1) && p.padding == (0, 0);
        Geom {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            sh: p.stride.0,
            sw: p.stride.1,
            ph: p.padding.0,
            pw: p.padding.1,
            dh: p.dilation.0,
            dw: p.dilation.1,
            groups,
            ho,
            wo,
            cin_g,
            cout_g: cout / groups,
            k: cin_g * kh * kw,
            l: ho * wo,
            pointwise,
        }
    }

    fn img_in(&self) -> usize {
        self.cin * self.h * self.w
    }

    fn img_out(&self) -> usize {
        self.cout * self.l
    }
}

/// Unrolls the channels of group `group` of one image (`cin * h * w`, row-major) into
/// `col` (`k * l`, row-major): `col[(c*kh + i)*kw + j, oh*wo + ow] = x[c, ih, iw]` (its
/// ReLU when `relu`) or 0 in the padding.
fn im2col<T: Float>(g: &Geom, x_img: &[T], group: usize, col: &mut [T], relu: bool) {
    let plane = g.h * g.w;
    for c in 0..g.cin_g {
        let xc = &x_img[(group * g.cin_g + c) * plane..][..plane];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * g.l..][..g.l];
                let off = j * g.dw;
                let (lo, hi) = valid_range(g.wo, g.sw, g.pw, off, g.w);
                for oh in 0..g.ho {
                    let out = &mut row[oh * g.wo..][..g.wo];
                    let ih = (oh * g.sh + i * g.dh) as isize - g.ph as isize;
                    if ih < 0 || ih as usize >= g.h {
                        out.fill(T::zero());
                        continue;
                    }
                    let xr = &xc[ih as usize * g.w..][..g.w];
                    out[..lo].fill(T::zero());
                    out[hi..].fill(T::zero());
                    let act = |v: T| {
                        if !relu || v > T::zero() { v } else { T::zero() }
                    };
                    if g.sw == 1 {
                        let start = lo + off - g.pw;
                        let src = &xr[start..start + hi - lo];
                        if relu {
                            out[lo..hi]
                                .iter_mut()
                                .zip(src)
                                .for_each(|(o, &v)| *o = act(v));
                        } else {
                            out[lo..hi].copy_from_slice(src);
                        }
                    } else {
                        for (ow, o) in out.iter_mut().enumerate().take(hi).skip(lo) {
                            *o = act(xr[ow * g.sw + off - g.pw]);
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds `col` back into the channels of group `group` of one
/// image's gradient.
fn col2im<T: Float>(g: &Geom, col: &[T], group: usize, dx_img: &mut [T]) {
    let plane = g.h * g.w;
    for c in 0..g.cin_g {
        let xc = &mut dx_img[(group * g.cin_g + c) * plane..][..plane];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((c * g.kh + i) * g.kw + j) * g.l..][..g.l];
                let off = j * g.dw;
                let (lo, hi) = valid_range(g.wo, g.sw, g.pw, off, g.w);
                for oh in 0..g.ho {
                    let ih = (oh * g.sh + i * g.dh) as isize - g.ph as isize;
                    if ih < 0 || ih as usize >= g.h {
                        continue;
                    }
                    let src = &row[oh * g.wo..][..g.wo];
                    let xr = &mut xc[ih as usize * g.w..][..g.w];
                    if g.sw == 1 {
                        let start = lo + off - g.pw;
                        xr[start..start + hi - lo]
                            .iter_mut()
                            .zip(&src[lo..hi])
                            .for_each(|(d, &v)| *d += v);
                    } else {
                        for (ow, &v) in src.iter().enumerate().take(hi).skip(lo) {
                            xr[ow * g.sw + off - g.pw] += v;
                        }
                    }
                }
            }
        }
    }
}

/// Conv2d forward: `x (N, Cin, H, W)`, `w (Cout, Cin/groups, kh, kw)`, optional
/// `bias (Cout)` -> `(N, Cout, Ho, Wo)`. Rayon over images, one single-threaded GEMM per
/// image and group.
///
/// Panics naming the input and weight shapes when they do not fit.
pub fn conv2d_forward<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    bias: Option<ArrayView1<T>>,
    p: &Conv2dParams,
) -> Array4<T> {
    conv2d_forward_act(x, w, bias, p, false)
}

/// [`conv2d_forward`] of `relu(x)` when `relu` (the ReLU is applied as the products read
/// their input; no ReLU output is stored).
pub fn conv2d_forward_act<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    bias: Option<ArrayView1<T>>,
    p: &Conv2dParams,
    relu: bool,
) -> Array4<T> {
    let g = Geom::new(x.dim(), w.dim(), p);
    if let Some(b) = &bias {
        assert_eq!(
            b.len(),
            g.cout,
            "conv2d: bias of length {} for weight {:?}",
            b.len(),
            w.shape()
        );
    }
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap();
    let w = w.as_standard_layout();
    let ws = w.as_slice().unwrap();
    let scratch = if g.pointwise { 0 } else { g.k * g.l };
    let image = |col: &mut Vec<T>, (ni, y): (usize, &mut [T])| {
        let x_img = &xs[ni * g.img_in()..][..g.img_in()];
        for gi in 0..g.groups {
            let colv: &[T] = if g.pointwise {
                &x_img[gi * g.k * g.l..][..g.k * g.l]
            } else {
                im2col(&g, x_img, gi, col, relu);
                &col[..]
            };
            let wg = &ws[gi * g.cout_g * g.k..][..g.cout_g * g.k];
            let yg = &mut y[gi * g.cout_g * g.l..][..g.cout_g * g.l];
            let relu_b = relu && g.pointwise;
            matmul_rows(wg, g.k, 1, g.cout_g, g.k, colv, g.l, g.l, yg, g.l, relu_b);
        }
        if let Some(b) = &bias {
            for (co, yc) in y.chunks_mut(g.l).enumerate() {
                let bv = b[co];
                yc.iter_mut().for_each(|v| *v += bv);
            }
        }
    };
    let run = |mut out: ndarray::ArrayViewMut4<T>| {
        let ys = out.as_slice_mut().unwrap();
        if ys.is_empty() {
            return;
        }
        if images_in_parallel(g.n) {
            ys.par_chunks_mut(g.img_out())
                .enumerate()
                .for_each_init(|| vec![T::zero(); scratch], image);
        } else {
            // Fewer images than threads: one image at a time, each GEMM split by the wrapper.
            let mut col = vec![T::zero(); scratch];
            ys.chunks_mut(g.img_out())
                .enumerate()
                .for_each(|item| image(&mut col, item));
        }
    };
    // SAFETY: every image's every group of output rows is overwritten by `matmul_rows`
    // (zeros when `k == 0`) before the bias is added to it; nothing is read before.
    unsafe { overwritten_array((g.n, g.cout, g.ho, g.wo), run) }
}

/// Whether a batch of `n` images is spread over the rayon pool (one single-threaded GEMM
/// per image) or run one image at a time so the GEMM wrapper can split each product
/// (batches smaller than the pool, called from outside a rayon worker).
/// Images per block of the weight-gradient accumulation (see [`conv2d_backward`]).
const DW_BLOCK: usize = 4;

fn images_in_parallel(n: usize) -> bool {
    rayon::current_thread_index().is_some() || n >= rayon::current_num_threads()
}

/// Per-split state of the backward pass: column scratch, `dcol` scratch and the
/// accumulated weight gradient `(Cout, k)`.
struct BackState<T> {
    col: Vec<T>,
    dcol: Vec<T>,
    dw: Option<Array2<T>>,
}

/// Conv2d backward: the gradients w.r.t. the input (`need_dx`) and the weight (`need_dw`)
/// given the output gradient `dy (N, Cout, Ho, Wo)`. One pass over the images (rayon): the
/// weight gradient is accumulated per split and summed; the input gradient is col2im of
/// `W^T dY` per image.
pub fn conv2d_backward<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    dy: ArrayView4<T>,
    p: &Conv2dParams,
    need_dx: bool,
    need_dw: bool,
) -> (Option<Array4<T>>, Option<Array4<T>>) {
    conv2d_backward_act(x, w, dy, p, need_dx, need_dw, false)
}

/// [`conv2d_backward`] of the conv of `relu(x)` when `relu`: the weight gradient reads
/// `relu(x)`, and the input gradient is masked by `x > 0`.
pub fn conv2d_backward_act<T: Float>(
    x: ArrayView4<T>,
    w: ArrayView4<T>,
    dy: ArrayView4<T>,
    p: &Conv2dParams,
    need_dx: bool,
    need_dw: bool,
    relu: bool,
) -> (Option<Array4<T>>, Option<Array4<T>>) {
    let g = Geom::new(x.dim(), w.dim(), p);
    assert_eq!(
        dy.dim(),
        (g.n, g.cout, g.ho, g.wo),
        "conv2d backward: output gradient {:?} does not fit input {:?} and weight {:?}",
        dy.shape(),
        x.shape(),
        w.shape()
    );
    let x = x.as_standard_layout();
    let xs = x.as_slice().unwrap();
    let wv = w.as_standard_layout();
    let ws = wv.as_slice().unwrap();
    let dy = dy.as_standard_layout();
    let dys = dy.as_slice().unwrap();
    // Without an input gradient, iterate over one dummy element per image.
    let chunk = if need_dx { g.img_in().max(1) } else { 1 };
    let col_len = if g.pointwise || !need_dw {
        0
    } else {
        g.k * g.l
    };
    let dcol_len = if g.pointwise || !need_dx {
        0
    } else {
        g.k * g.l
    };
    let init = || BackState {
        col: vec![T::zero(); col_len],
        dcol: vec![T::zero(); dcol_len],
        dw: need_dw.then(|| Array2::zeros((g.cout, g.k))),
    };
    let image = |mut st: BackState<T>, (ni, dx_img): (usize, &mut [T])| {
        let x_img = &xs[ni * g.img_in()..][..g.img_in()];
        let dy_img = &dys[ni * g.img_out()..][..g.img_out()];
        for gi in 0..g.groups {
            let dyg = &dy_img[gi * g.cout_g * g.l..][..g.cout_g * g.l];
            if let Some(dw) = st.dw.as_mut() {
                let colv: &[T] = if g.pointwise {
                    &x_img[gi * g.k * g.l..][..g.k * g.l]
                } else {
                    im2col(&g, x_img, gi, &mut st.col, relu);
                    &st.col[..]
                };
                let dwg = &mut dw.as_slice_mut().unwrap()[gi * g.cout_g * g.k..][..g.cout_g * g.k];
                let relu_b = relu && g.pointwise;
                matmul_nt(
                    dyg, g.l, g.cout_g, colv, g.l, g.k, g.l, true, dwg, g.k, relu_b,
                );
            }
            if need_dx {
                // W_g^T: element (c, o) of the transpose is w[gi * cout_g + o, c].
                let wg = &ws[gi * g.cout_g * g.k..][..g.cout_g * g.k];
                if g.pointwise {
                    let dxg = &mut dx_img[gi * g.k * g.l..][..g.k * g.l];
                    matmul_rows(wg, 1, g.k, g.k, g.cout_g, dyg, g.l, g.l, dxg, g.l, false);
                } else {
                    let dcol = &mut st.dcol;
                    matmul_rows(wg, 1, g.k, g.k, g.cout_g, dyg, g.l, g.l, dcol, g.l, false);
                    col2im(&g, &st.dcol, gi, dx_img);
                }
            }
        }
        if need_dx && relu {
            dx_img
                .iter_mut()
                .zip(x_img)
                .for_each(|(d, &v)| *d = if v > T::zero() { *d } else { T::zero() });
        }
        st
    };
    // Fixed blocks of images, each accumulated in order, and the block sums added in order:
    // the weight gradient is bit-identical whatever the thread count or scheduling.
    let run_block = |(bi, dxb): (usize, &mut [T])| {
        dxb.chunks_mut(chunk)
            .enumerate()
            .map(|(j, d)| (bi * DW_BLOCK + j, d))
            .fold(init(), image)
            .dw
    };
    let mut partials: Vec<Option<Array2<T>>> = Vec::new();
    let mut run = |dx: &mut [T]| {
        let blocks = dx.chunks_mut(chunk * DW_BLOCK).enumerate();
        partials = if images_in_parallel(g.n) {
            blocks
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(run_block)
                .collect()
        } else {
            blocks.map(run_block).collect()
        };
    };
    let dx = if need_dx && g.pointwise && g.img_in() > 0 {
        // SAFETY: a pointwise conv's input gradient is overwritten whole, image by image
        // and group by group, by `matmul_rows` (zeros when `cout_g == 0`) before the ReLU
        // mask reads it; `col2im` (other convs) adds into its buffer, which stays zeroed,
        // and so does the one placeholder element per image of an empty input.
        unsafe { overwritten(g.n * chunk, run) }
    } else {
        let mut dx = vec![T::zero(); g.n * chunk];
        run(&mut dx);
        dx
    };
    let dw_sum = partials.into_iter().flatten().reduce(|a, b| a + b);
    let dx = need_dx.then(|| Array4::from_shape_vec((g.n, g.cin, g.h, g.w), dx).unwrap());
    let dw = need_dw.then(|| {
        dw_sum
            .unwrap_or_else(|| Array2::zeros((g.cout, g.k)))
            .into_shape_with_order((g.cout, g.cin_g, g.kh, g.kw))
            .unwrap()
    });
    (dx, dw)
}

/// The bias gradient of a conv: `dy (N, C, Ho, Wo)` summed over images and positions.
pub fn conv2d_bias_grad<T: Float>(dy: ArrayView4<T>) -> ndarray::Array1<T> {
    let (n, c, ho, wo) = dy.dim();
    let dy = dy.as_standard_layout();
    let ys = dy.as_slice().unwrap();
    let l = ho * wo;
    let mut out = ndarray::Array1::<T>::zeros(c);
    for ni in 0..n {
        for (ci, o) in out.iter_mut().enumerate() {
            *o += ys[(ni * c + ci) * l..][..l].iter().copied().sum::<T>();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_matches_brute_force() {
        for out in 1..7 {
            for stride in 1..4 {
                for pad in 0..3 {
                    for off in 0..5 {
                        for len in 1..8 {
                            let (lo, hi) = valid_range(out, stride, pad, off, len);
                            let want: Vec<usize> = (0..out)
                                .filter(|&o| {
                                    let i = (o * stride + off) as isize - pad as isize;
                                    i >= 0 && (i as usize) < len
                                })
                                .collect();
                            let got: Vec<usize> = (lo..hi).collect();
                            assert_eq!(got, want, "{out} {stride} {pad} {off} {len}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn out_size_follows_pytorch() {
        assert_eq!(out_size(32, 3, 1, 1, 1), Some(32));
        assert_eq!(out_size(32, 3, 2, 1, 1), Some(16));
        assert_eq!(out_size(7, 3, 2, 2, 2), Some(4));
        assert_eq!(out_size(2, 5, 1, 1, 1), None);
    }

    #[test]
    fn weight_gradient_is_bit_identical_across_thread_counts() {
        use ndarray::Array4;
        let f = |n: usize, seed: usize| {
            Array4::from_shape_fn((n, 3, 6, 5), |(a, b, c, d)| {
                (((a * 131 + b * 31 + c * 7 + d + seed) % 97) as f32 - 48.0) / 13.0
            })
        };
        let x = f(11, 1);
        let w = Array4::from_shape_fn((4, 3, 3, 3), |(a, b, c, d)| {
            ((a * 5 + b * 3 + c * 2 + d) % 7) as f32 / 7.0 - 0.4
        });
        let p = Conv2dParams {
            padding: (1, 1),
            ..Conv2dParams::default()
        };
        let dy = Array4::from_shape_fn((11, 4, 6, 5), |(a, b, c, d)| {
            (((a * 17 + b * 13 + c * 5 + d * 3) % 23) as f32 - 11.0) / 5.0
        });
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| conv2d_backward(x.view(), w.view(), dy.view(), &p, true, true))
        };
        let (dx1, dw1) = run(1);
        for threads in [2, 3] {
            let (dx2, dw2) = run(threads);
            assert_eq!(dw1, dw2, "{threads} threads");
            assert_eq!(dx1, dx2, "{threads} threads");
        }
    }
}

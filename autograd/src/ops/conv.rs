//! 2-D convolution on NCHW tensors: [`Tensor::conv2d`].
//!
//! General convs run per-image im2col + GEMM ([`crate::kernels::cpu::conv`]); depthwise convs
//! (`groups == Cin == Cout`) run a direct loop ([`crate::kernels::cpu::depthwise`]). Both
//! support stride, zero padding (separate for height and width), dilation; the backward rule
//! gives the gradients of input, weight and bias.

use crate::storage::Storage;
use crate::tensor::Tensor;

pub use crate::kernels::cpu::conv::Conv2dParams;

impl Tensor {
    /// 2-D convolution (cross-correlation, as in PyTorch) of an NCHW input.
    ///
    /// * `self`: `(N, Cin, H, W)`; `weight`: `(Cout, Cin / groups, kh, kw)`; `bias`: `(Cout)`.
    /// * Output: `(N, Cout, Ho, Wo)` with
    ///   `Ho = (H + 2 * pad_h - dil_h * (kh - 1) - 1) / stride_h + 1` (likewise `Wo`).
    /// * `groups == Cin == Cout` (depthwise) runs a direct kernel; everything else runs
    ///   per-image im2col + GEMM, in parallel over images.
    ///
    /// Panics naming the input and weight shapes when they do not fit.
    ///
    /// ```
    /// use autograd::{DType, Tensor, ops::conv::Conv2dParams};
    /// let x = Tensor::ones(&[2, 3, 8, 8], DType::F32);
    /// let w = Tensor::ones(&[4, 3, 3, 3], DType::F32);
    /// let y = x.conv2d(&w, None, Conv2dParams::new(2, 1, 1, 1));
    /// assert_eq!(y.shape(), &[2, 4, 4, 4]);
    /// ```
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, params: Conv2dParams) -> Tensor {
        assert!(
            self.ndim() == 4 && weight.ndim() == 4,
            "conv2d: input {:?} and weight {:?} must both be 4-d (N, C, H, W) / (Cout, Cin/groups, kh, kw)",
            self.shape(),
            weight.shape()
        );
        if let Some(b) = bias {
            assert!(
                b.shape() == [weight.shape()[0]],
                "conv2d: bias {:?} does not fit weight {:?} (input {:?})",
                b.shape(),
                weight.shape(),
                self.shape()
            );
        }
        let p = params;
        let out = self
            .storage()
            .conv2d(weight.storage(), bias.map(|b| b.storage()), &p);
        record(out, self, weight, bias, p, false)
    }
}

/// Records a convolution node: `conv2d`, or `relu_conv2d` when `relu` (inputs `x`,
/// `weight` and the optional bias); its backward runs the matching kernel.
fn record(
    out: Storage,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    p: Conv2dParams,
    relu: bool,
) -> Tensor {
    let name = if relu { "relu_conv2d" } else { "conv2d" };
    let mut inputs = vec![x, weight];
    if let Some(b) = bias {
        inputs.push(b);
    }
    Tensor::from_op(
        out,
        &inputs,
        name,
        move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            let need = (
                inp[0].is_tracked(),
                inp[1].is_tracked(),
                inp.len() > 2 && inp[2].is_tracked(),
            );
            let (dx, dw, db) =
                inp[0]
                    .storage()
                    .conv2d_backward(inp[1].storage(), g.storage(), &p, need, relu);
            let mut v = vec![dx.map(Tensor::from_storage), dw.map(Tensor::from_storage)];
            if inp.len() > 2 {
                v.push(db.map(Tensor::from_storage));
            }
            v
        },
    )
}

impl Tensor {
    /// `relu(self).conv2d(weight, bias, params)` as one fused op on the CPU: the ReLU is
    /// applied while the kernels read the input (depthwise: its direct loop; others: the
    /// column matrix or, for 1x1 convs, the products themselves) and its mask while they
    /// write the input gradient, so no ReLU output is stored. On a GPU, the two ops.
    ///
    /// ```
    /// use autograd::{DType, Tensor, ops::conv::Conv2dParams};
    /// let x = Tensor::ones(&[2, 3, 8, 8], DType::F32);
    /// let w = Tensor::ones(&[3, 1, 3, 3], DType::F32);
    /// let y = x.relu_conv2d(&w, None, Conv2dParams::new(1, 1, 1, 3));
    /// assert_eq!(y.shape(), &[2, 3, 8, 8]);
    /// ```
    pub fn relu_conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        params: Conv2dParams,
    ) -> Tensor {
        let p = params;
        if self.ndim() != 4
            || weight.ndim() != 4
            || bias.is_some_and(|b| b.shape() != [weight.shape()[0]])
        {
            return self.relu().conv2d(weight, bias, params);
        }
        let Some(out) = self
            .storage()
            .relu_conv2d(weight.storage(), bias.map(|b| b.storage()), &p)
        else {
            return self.relu().conv2d(weight, bias, params);
        };
        record(out, self, weight, bias, p, true)
    }
}

#[cfg(test)]
mod tests {
    use super::Conv2dParams;
    use crate::Tensor;
    use crate::testing::{assert_close, gradcheck, rand_f64};
    use ndarray::{Array4, Ix4};

    /// Direct 7-loop convolution, the reference for the forward checks.
    fn naive(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Tensor {
        let xa = x
            .array::<f64>()
            .view()
            .into_dimensionality::<Ix4>()
            .unwrap();
        let wa = w
            .array::<f64>()
            .view()
            .into_dimensionality::<Ix4>()
            .unwrap();
        let (n, cin, h, wd) = xa.dim();
        let (cout, cin_g, kh, kw) = wa.dim();
        let cout_g = cout / p.groups;
        let ho = (h + 2 * p.padding.0 - p.dilation.0 * (kh - 1) - 1) / p.stride.0 + 1;
        let wo = (wd + 2 * p.padding.1 - p.dilation.1 * (kw - 1) - 1) / p.stride.1 + 1;
        let bias = b.map(|b| b.to_vec::<f64>());
        let out = Array4::from_shape_fn((n, cout, ho, wo), |(ni, co, oh, ow)| {
            let grp = co / cout_g;
            let mut s = bias.as_ref().map_or(0.0, |b| b[co]);
            for c in 0..cin_g {
                for i in 0..kh {
                    for j in 0..kw {
                        let ih =
                            (oh * p.stride.0 + i * p.dilation.0) as isize - p.padding.0 as isize;
                        let iw =
                            (ow * p.stride.1 + j * p.dilation.1) as isize - p.padding.1 as isize;
                        if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < wd {
                            s += wa[[co, c, i, j]]
                                * xa[[ni, grp * cin_g + c, ih as usize, iw as usize]];
                        }
                    }
                }
            }
            s
        });
        let _ = cin;
        Tensor::from_array(out.into_dyn())
    }

    fn params(s: (usize, usize), p: (usize, usize), d: (usize, usize), g: usize) -> Conv2dParams {
        Conv2dParams {
            stride: s,
            padding: p,
            dilation: d,
            groups: g,
        }
    }

    #[test]
    fn conv2d_forward_matches_naive_direct_convolution() {
        // (N, Cin, H, W, Cout, kh, kw, params)
        let cases = [
            (2, 3, 8, 8, 4, 3, 3, params((1, 1), (1, 1), (1, 1), 1)),
            (2, 4, 5, 7, 6, 3, 2, params((2, 1), (1, 2), (1, 1), 2)),
            (1, 4, 9, 11, 4, 3, 3, params((2, 2), (1, 2), (2, 2), 2)),
            (3, 6, 6, 5, 3, 1, 1, params((1, 1), (0, 0), (1, 1), 3)),
            (2, 5, 6, 6, 7, 1, 1, params((1, 1), (0, 0), (1, 1), 1)),
            (2, 3, 7, 7, 2, 1, 1, params((2, 2), (0, 0), (1, 1), 1)),
            (2, 4, 7, 6, 4, 5, 5, params((1, 1), (2, 2), (1, 1), 4)),
            (2, 4, 9, 8, 4, 3, 3, params((2, 2), (2, 1), (2, 2), 4)),
            (1, 2, 4, 4, 3, 5, 3, params((3, 1), (3, 0), (1, 1), 1)),
        ];
        for (k, &(n, cin, h, w, cout, kh, kw, p)) in cases.iter().enumerate() {
            let x = rand_f64(&[n, cin, h, w], 100 + k as u64);
            let wt = rand_f64(&[cout, cin / p.groups, kh, kw], 200 + k as u64);
            let b = rand_f64(&[cout], 300 + k as u64);
            let got = x.conv2d(&wt, Some(&b), p);
            let want = naive(&x, &wt, Some(&b), p);
            assert_close(&got, &want, 1e-12, 1e-12);
            let got = x.conv2d(&wt, None, p);
            assert_close(&got, &naive(&x, &wt, None, p), 1e-12, 1e-12);
            // f32 agrees with f64.
            let got32 =
                x.to_dtype(crate::DType::F32)
                    .conv2d(&wt.to_dtype(crate::DType::F32), None, p);
            assert_close(&got32, &want.sub(&b.reshape(&[1, cout, 1, 1])), 1e-4, 1e-4);
        }
    }

    #[test]
    fn gradcheck_conv2d_stride_padding_dilation_groups_odd_sizes() {
        let p = params((2, 2), (1, 2), (2, 2), 2);
        let x = rand_f64(&[2, 4, 5, 7], 1);
        let w = rand_f64(&[6, 2, 3, 3], 2);
        let b = rand_f64(&[6], 3);
        gradcheck(|t| t[0].conv2d(&t[1], Some(&t[2]), p), &[x, w, b]).unwrap();
    }

    #[test]
    fn gradcheck_conv2d_plain_and_asymmetric() {
        let p = params((1, 2), (1, 0), (1, 1), 1);
        let x = rand_f64(&[2, 3, 6, 5], 4);
        let w = rand_f64(&[2, 3, 3, 2], 5);
        gradcheck(|t| t[0].conv2d(&t[1], None, p), &[x, w]).unwrap();
    }

    #[test]
    fn gradcheck_conv2d_1x1() {
        let x = rand_f64(&[2, 3, 4, 5], 6);
        let w = rand_f64(&[4, 3, 1, 1], 7);
        let b = rand_f64(&[4], 8);
        gradcheck(
            |t| t[0].conv2d(&t[1], Some(&t[2]), Conv2dParams::default()),
            &[x.clone(), w.clone(), b],
        )
        .unwrap();
        // Strided 1x1 (takes the im2col path).
        gradcheck(
            |t| t[0].conv2d(&t[1], None, Conv2dParams::new(2, 0, 1, 1)),
            &[x, w],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_depthwise_3x3_5x5_stride_1_2() {
        for (k, pad) in [(3, 1), (5, 2)] {
            for s in [1, 2] {
                let x = rand_f64(&[2, 3, 7, 6], 10 + k as u64 + s as u64);
                let w = rand_f64(&[3, 1, k, k], 20 + k as u64);
                let b = rand_f64(&[3], 30);
                let p = Conv2dParams::new(s, pad, 1, 3);
                gradcheck(|t| t[0].conv2d(&t[1], Some(&t[2]), p), &[x, w, b])
                    .unwrap_or_else(|e| panic!("k {k} s {s}: {e}"));
            }
        }
        // Dilated depthwise (NASNet's dil-conv) with asymmetric padding.
        let p = params((1, 1), (2, 1), (2, 1), 3);
        gradcheck(
            |t| t[0].conv2d(&t[1], None, p),
            &[rand_f64(&[1, 3, 6, 5], 40), rand_f64(&[3, 1, 3, 3], 41)],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_relu_depthwise_fused() {
        for (k, pad, s, d) in [(3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 1, 2), (5, 2, 1, 1)] {
            let x = rand_f64(&[2, 3, 7, 6], 90 + k as u64 + s as u64);
            let w = rand_f64(&[3, 1, k, k], 91 + k as u64);
            let b = rand_f64(&[3], 92);
            let p = Conv2dParams::new(s, pad, d, 3);
            gradcheck(
                |t| t[0].relu_conv2d(&t[1], Some(&t[2]), p),
                &[x.clone(), w.clone(), b],
            )
            .unwrap_or_else(|e| panic!("k {k} s {s} d {d}: {e}"));
            gradcheck(|t| t[0].relu_conv2d(&t[1], None, p), &[x, w])
                .unwrap_or_else(|e| panic!("k {k} s {s} d {d}: {e}"));
        }
        // Not depthwise: the fused general path (3x3 padded, 1x1 pointwise, 1x1 stride 2,
        // grouped).
        for (cin, cout, k, s, pad, groups) in [
            (3, 2, 3, 1, 1, 1),
            (3, 4, 1, 1, 0, 1),
            (3, 2, 1, 2, 0, 1),
            (4, 2, 1, 2, 1, 1),
            (4, 6, 3, 1, 1, 2),
        ] {
            let p = Conv2dParams::new(s, pad, 1, groups);
            let x = rand_f64(&[2, cin, 5, 4], 93 + k as u64);
            let w = rand_f64(&[cout, cin / groups, k, k], 94 + s as u64);
            gradcheck(|t| t[0].relu_conv2d(&t[1], None, p), &[x, w])
                .unwrap_or_else(|e| panic!("k {k} s {s} groups {groups}: {e}"));
        }
    }

    /// The fused ReLU + conv computes the same bits as the two ops, values and gradients:
    /// general convs (1x1 through the products' ReLU, others through im2col) and depthwise
    /// ones (groups = channels).
    #[test]
    fn relu_conv_fused_is_bit_identical_to_relu_then_conv() {
        use crate::DType;
        let f32v = |t: Tensor| t.to_dtype(DType::F32).detach().requires_grad();
        for (cin, cout, k, s, pad, groups) in [
            (5, 7, 1, 1, 0, 1),
            (5, 7, 1, 2, 0, 1),
            (4, 6, 3, 1, 1, 1),
            (4, 4, 3, 1, 1, 4),
            (4, 4, 5, 2, 2, 4),
        ] {
            let x = f32v(rand_f64(&[3, cin, 9, 8], 98));
            let w = f32v(rand_f64(&[cout, cin / groups, k, k], 99));
            let p = Conv2dParams::new(s, pad, 1, groups);
            let fused = x.relu_conv2d(&w, None, p);
            let plain = x.relu().conv2d(&w, None, p);
            assert_eq!(fused.to_vec::<f32>(), plain.to_vec::<f32>());
            let gy = rand_f64(fused.shape(), 100).to_dtype(DType::F32);
            let gf = fused.mul(&gy).sum().backward();
            let gp = plain.mul(&gy).sum().backward();
            for t in [&x, &w] {
                assert_eq!(
                    gf.get(t).unwrap().to_vec::<f32>(),
                    gp.get(t).unwrap().to_vec::<f32>()
                );
            }
        }
    }

    #[test]
    fn depthwise_forward_matches_naive() {
        for (k, s, pad, d) in [(3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 2, 2), (5, 1, 4, 2)] {
            let p = Conv2dParams::new(s, pad, d, 4);
            let x = rand_f64(&[2, 4, 9, 8], 50 + k as u64);
            let w = rand_f64(&[4, 1, k, k], 60 + s as u64);
            let b = rand_f64(&[4], 70);
            assert_close(
                &x.conv2d(&w, Some(&b), p),
                &naive(&x, &w, Some(&b), p),
                1e-12,
                1e-12,
            );
        }
    }

    #[test]
    fn gradcheck_conv2d_non_contiguous_input() {
        // An NHWC tensor permuted into NCHW (strided view) feeds both kernels.
        let x_nhwc = rand_f64(&[2, 5, 4, 3], 80);
        let w = rand_f64(&[4, 3, 3, 3], 81);
        let wd = rand_f64(&[3, 1, 3, 3], 82);
        gradcheck(
            |t| {
                t[0].permute(&[0, 3, 1, 2])
                    .conv2d(&t[1], None, Conv2dParams::new(1, 1, 1, 1))
            },
            &[x_nhwc.clone(), w],
        )
        .unwrap();
        gradcheck(
            |t| {
                t[0].permute(&[0, 3, 1, 2])
                    .conv2d(&t[1], None, Conv2dParams::new(2, 1, 1, 3))
            },
            &[x_nhwc, wd],
        )
        .unwrap();
    }

    #[test]
    fn single_image_path_matches_batched_path() {
        // N = 1 (< threads) runs one image at a time with the GEMM split across the pool
        // (m*n*k = 64*1024*576 is above the split threshold); N = 3 runs images in parallel.
        let x3 = rand_f64(&[3, 64, 32, 32], 95);
        let w = rand_f64(&[64, 64, 3, 3], 96).mul_scalar(0.1);
        let p = Conv2dParams::new(1, 1, 1, 1);
        let x1 = rand_f64(&[1, 64, 32, 32], 95);
        let y1 = x1.conv2d(&w, None, p);
        let y3 = x3.conv2d(&w, None, p);
        assert_close(
            &y1.reshape(&[64 * 1024]),
            &Tensor::from_vec(y3.to_vec::<f64>()[..64 * 1024].to_vec(), &[64 * 1024]),
            1e-10,
            1e-10,
        );
        // Backward on the sequential path.
        let (xv, wv) = (x1.requires_grad(), w.requires_grad());
        let g = xv.conv2d(&wv, None, p).sum().backward();
        let dw = g.get(&wv).unwrap();
        // The batched path with the other two images masked out must give the same grads.
        let (xb, wb) = (x3.requires_grad(), w.requires_grad());
        let mask = Tensor::from_vec(vec![1.0, 0.0, 0.0], &[3, 1, 1, 1]);
        let gb = xb.conv2d(&wb, None, p).mul(&mask).sum().backward();
        assert_close(dw, gb.get(&wb).unwrap(), 1e-9, 1e-9);
        assert_close(
            &g.get(&xv).unwrap().reshape(&[64 * 1024]),
            &Tensor::from_vec(
                gb.get(&xb).unwrap().to_vec::<f64>()[..64 * 1024].to_vec(),
                &[64 * 1024],
            ),
            1e-10,
            1e-10,
        );
        // And a gradcheck with one image.
        gradcheck(
            |t| t[0].conv2d(&t[1], None, Conv2dParams::new(2, 1, 1, 1)),
            &[rand_f64(&[1, 3, 5, 6], 97), rand_f64(&[4, 3, 3, 3], 98)],
        )
        .unwrap();
    }

    #[test]
    fn conv2d_grads_only_for_tracked_inputs() {
        let x = rand_f64(&[1, 2, 4, 4], 90);
        let w = rand_f64(&[2, 2, 3, 3], 91).requires_grad();
        let g = x
            .conv2d(&w, None, Conv2dParams::new(1, 1, 1, 1))
            .sum()
            .backward();
        assert_eq!(g.get(&w).unwrap().shape(), &[2, 2, 3, 3]);
        assert!(g.get(&x).is_none());
    }

    #[test]
    #[should_panic(expected = "conv2d: input [2, 3, 8, 8] and weight [4, 2, 3, 3]")]
    fn conv2d_mismatch_names_both_shapes() {
        let x = Tensor::zeros(&[2, 3, 8, 8], crate::DType::F32);
        let w = Tensor::zeros(&[4, 2, 3, 3], crate::DType::F32);
        let _ = x.conv2d(&w, None, Conv2dParams::default());
    }
}

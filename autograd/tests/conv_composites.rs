//! Composite gradient checks of the convolutional ops: the NAO/NASNet separable-conv op
//! `relu -> depthwise -> pointwise -> BN(train)`, applied twice, checked end to end (f64,
//! default tolerance) w.r.t. the input and every weight.

use autograd::Tensor;
use autograd::ops::batchnorm::{BatchNormMode, batch_norm};
use autograd::ops::conv::Conv2dParams;
use autograd::testing::{gradcheck, rand_f64};

/// One half of the sep-conv op: relu, depthwise `k x k` conv (stride `s`, "same" padding),
/// pointwise 1x1 conv, batch norm with batch statistics.
fn relu_dw_pw_bn(x: &Tensor, dw: &Tensor, pw: &Tensor, g: &Tensor, b: &Tensor, s: usize) -> Tensor {
    let c = x.shape()[1];
    let k = dw.shape()[2];
    let y = x
        .relu()
        .conv2d(dw, None, Conv2dParams::new(s, k / 2, 1, c))
        .conv2d(pw, None, Conv2dParams::default());
    batch_norm(&y, Some(g), Some(b), None, BatchNormMode::Train, 0.1, 1e-5).output
}

/// NAO's `SepConv(C_in, C_out, k, stride)`: the block twice, the first with the stride and
/// `C_in -> C_in` pointwise, the second stride 1 and `C_in -> C_out`.
fn sep_conv(t: &[Tensor], stride: usize) -> Tensor {
    let h = relu_dw_pw_bn(&t[0], &t[1], &t[2], &t[3], &t[4], stride);
    relu_dw_pw_bn(&h, &t[5], &t[6], &t[7], &t[8], 1)
}

fn inputs(cin: usize, cout: usize, k: usize, seed: u64) -> Vec<Tensor> {
    vec![
        rand_f64(&[2, cin, 7, 6], seed),
        rand_f64(&[cin, 1, k, k], seed + 1),
        rand_f64(&[cin, cin, 1, 1], seed + 2),
        rand_f64(&[cin], seed + 3).add_scalar(1.5),
        rand_f64(&[cin], seed + 4),
        rand_f64(&[cin, 1, k, k], seed + 5),
        rand_f64(&[cout, cin, 1, 1], seed + 6),
        rand_f64(&[cout], seed + 7).add_scalar(1.5),
        rand_f64(&[cout], seed + 8),
    ]
}

// Relu kinks: the pre-activations are continuous random values; a 1e-6 central difference
// crosses a kink only if one lies within 1e-6 of 0, which these seeds do not produce (a
// crossing would show up as an O(1) error, far above the tolerance, not a near miss).

#[test]
fn gradcheck_sep_conv_3x3_stride_1() {
    let xs = inputs(3, 4, 3, 100);
    let r = gradcheck(|t| sep_conv(t, 1), &xs).unwrap();
    assert!(r.elements > 250, "{}", r.elements);
}

#[test]
fn gradcheck_sep_conv_5x5_stride_2() {
    let xs = inputs(3, 5, 5, 200);
    gradcheck(|t| sep_conv(t, 2), &xs).unwrap();
}

#[test]
fn gradcheck_sep_conv_on_non_contiguous_input() {
    // The input arrives NHWC and is permuted into NCHW inside the graph.
    let mut xs = inputs(3, 4, 3, 300);
    xs[0] = rand_f64(&[2, 7, 6, 3], 301);
    gradcheck(
        |t| {
            let mut v = t.to_vec();
            v[0] = t[0].permute(&[0, 3, 1, 2]);
            sep_conv(&v, 1)
        },
        &xs,
    )
    .unwrap();
}

#[test]
fn conv_pool_bn_stem_gradcheck() {
    // A stem-like chain: 3x3 conv with bias -> BN -> relu -> max pool -> avg pool ->
    // global average pool. The max pool sees relu outputs: the only ties are among zeros,
    // which carry no gradient through the relu either way; every other value is distinct.
    let xs = vec![
        rand_f64(&[2, 3, 8, 7], 400),
        rand_f64(&[4, 3, 3, 3], 401),
        rand_f64(&[4], 402),
        rand_f64(&[4], 403).add_scalar(1.5),
        rand_f64(&[4], 404),
    ];
    gradcheck(
        |t| {
            let y = t[0].conv2d(&t[1], Some(&t[2]), Conv2dParams::new(1, 1, 1, 1));
            let y = batch_norm(
                &y,
                Some(&t[3]),
                Some(&t[4]),
                None,
                BatchNormMode::Train,
                0.1,
                1e-5,
            )
            .output
            .relu();
            y.max_pool2d((3, 3), (2, 2), (1, 1))
                .avg_pool2d((3, 3), (1, 1), (1, 1))
                .global_avg_pool()
        },
        &xs,
    )
    .unwrap();
}

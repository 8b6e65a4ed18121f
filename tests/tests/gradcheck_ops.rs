//! The gradient-check suite: every differentiable op of `autograd`, in one place, checked in
//! f64 by central differences (`autograd::testing::gradcheck`: eps 1e-6, error measure
//! `|a - n| / max(1, |a|, |n|)`, tolerance 1e-6) on shapes that exercise broadcasting, odd
//! sizes, non-contiguous (permuted) inputs, padding, stride, dilation and groups.
//!
//! Ops with kinks (relu, abs, clamp, maximum, max over an axis, max-pool) are checked at
//! points chosen away from their kinks (random inputs are spread so that no two compete
//! for a maximum within 1e-6, and relu inputs are pushed away from 0): the same tolerance
//! then holds. Each op file also carries its own, more detailed checks.

use autograd::Tensor;
use autograd::ops::attention::{luong_attention, luong_attention_seq};
use autograd::ops::batchnorm::{BatchNormMode, batch_norm};
use autograd::ops::conv::Conv2dParams;
use autograd::ops::dropout::{drop_path_mask, dropout_mask, locked_dropout_mask};
use autograd::ops::lstm::{LstmWeights, lstm, lstm_cell};
use autograd::testing::{gradcheck, rand_f64};
use nao_tests::rng;

/// A random tensor pushed at least `gap` away from zero (for relu/abs kinks).
fn away_from_zero(shape: &[usize], seed: u64, gap: f64) -> Tensor {
    let x = rand_f64(shape, seed);
    let v: Vec<f64> = x
        .to_vec::<f64>()
        .iter()
        .map(|&a| if a >= 0.0 { a + gap } else { a - gap })
        .collect();
    Tensor::from_vec(v, shape)
}

/// A permuted (non-contiguous) view with the given logical shape.
fn permuted(shape: [usize; 4], seed: u64) -> Tensor {
    // data laid out as (N, H, W, C), viewed as (N, C, H, W)
    rand_f64(&[shape[0], shape[2], shape[3], shape[1]], seed).permute(&[0, 3, 1, 2])
}

#[test]
fn elementwise_with_broadcasting() {
    let a = rand_f64(&[2, 3, 5], 1);
    let b = rand_f64(&[3, 1], 2).add_scalar(2.5);
    let c = rand_f64(&[5], 3);
    gradcheck(
        |x| x[0].add(&x[1]).mul(&x[2]).sub(&x[1]).div(&x[1]),
        &[a.clone(), b, c.clone()],
    )
    .unwrap();
    gradcheck(
        |x| {
            x[0].maximum(&x[1].mul_scalar(0.5))
                .minimum(&x[1].add_scalar(0.7))
        },
        &[a, c],
    )
    .unwrap();
}

#[test]
fn unary_math_and_activations() {
    let x = rand_f64(&[3, 7], 4);
    let pos = x.abs().add_scalar(0.3);
    let kinked = away_from_zero(&[3, 7], 5, 0.05);
    gradcheck(
        |t| {
            t[0].exp()
                .add(&t[0].tanh())
                .add(&t[0].sigmoid())
                .add(&t[0].square())
        },
        &[x],
    )
    .unwrap();
    gradcheck(
        |t| t[0].log().add(&t[0].sqrt()).add(&t[0].powf(1.7)),
        &[pos],
    )
    .unwrap();
    gradcheck(
        |t| t[0].relu().add(&t[0].abs()).add(&t[0].clamp(-0.5, 0.6)),
        &[kinked],
    )
    .unwrap();
}

#[test]
fn matmul_linear_batched() {
    gradcheck(
        |x| x[0].matmul(&x[1]),
        &[rand_f64(&[3, 5], 6), rand_f64(&[5, 4], 7)],
    )
    .unwrap();
    gradcheck(
        |x| x[0].matmul(&x[1]),
        &[rand_f64(&[2, 3, 5], 8), rand_f64(&[2, 5, 4], 9)],
    )
    .unwrap();
    gradcheck(
        |x| x[0].transpose(1, 2).matmul(&x[1]),
        &[rand_f64(&[2, 5, 3], 10), rand_f64(&[5, 4], 11)],
    )
    .unwrap();
    gradcheck(
        |x| x[0].linear(&x[1], Some(&x[2])),
        &[
            rand_f64(&[2, 3, 5], 12),
            rand_f64(&[4, 5], 13),
            rand_f64(&[4], 14),
        ],
    )
    .unwrap();
}

#[test]
fn shape_and_indexing() {
    let a = rand_f64(&[2, 3, 5], 15);
    gradcheck(
        |x| x[0].permute(&[2, 0, 1]).reshape(&[5, 6]).transpose(0, 1),
        &[a.clone()],
    )
    .unwrap();
    gradcheck(|x| x[0].narrow(2, 1, 3).select(0, 1), &[a.clone()]).unwrap();
    gradcheck(
        |x| {
            Tensor::concat(
                &[&x[0], &x[0].transpose(1, 2).transpose(1, 2).mul_scalar(2.0)],
                1,
            )
        },
        &[a.clone()],
    )
    .unwrap();
    gradcheck(|x| Tensor::stack(&[&x[0], &x[0].exp()], 0), &[a.clone()]).unwrap();
    gradcheck(|x| x[0].index_select(2, &[4, 0, 4, 2]), &[a.clone()]).unwrap();
    gradcheck(
        |x| {
            x[0].gather(
                2,
                &[0, 4, 4, 1, 2, 3, 3, 3, 0, 1, 1, 2, 4, 0, 0, 0, 1, 2],
                &[2, 3, 3],
            )
        },
        &[a.clone()],
    )
    .unwrap();
    gradcheck(|x| x[0].pad(&[(0, 1), (2, 0), (1, 1)]), &[a]).unwrap();
}

#[test]
fn reductions() {
    let a = rand_f64(&[3, 4, 5], 16);
    gradcheck(
        |x| {
            x[0].sum_axes(&[0, 2], true)
                .add(&x[0].mean_axes(&[1], true))
        },
        &[a.clone()],
    )
    .unwrap();
    gradcheck(|x| x[0].max_axis(1, false).add(&x[0].mean()), &[a]).unwrap();
}

#[test]
fn softmax_losses() {
    let logits = rand_f64(&[4, 7], 17).mul_scalar(2.0);
    gradcheck(|x| x[0].transpose(0, 1).softmax(0), &[logits.clone()]).unwrap();
    gradcheck(|x| x[0].log_softmax(-1), &[logits.clone()]).unwrap();
    gradcheck(|x| x[0].cross_entropy(&[6, 0, 3, 3]), &[logits.clone()]).unwrap();
    gradcheck(|x| x[0].mse(&x[1]), &[logits, rand_f64(&[4, 7], 18)]).unwrap();
}

#[test]
fn embedding_normalise_dropout() {
    let w = rand_f64(&[9, 4], 19);
    gradcheck(|x| x[0].embedding(&[3, 1, 3, 8, 0, 3], &[2, 3]), &[w]).unwrap();
    gradcheck(|x| x[0].l2_normalize(-1, 1e-12), &[rand_f64(&[3, 5], 20)]).unwrap();
    let mut r = rng(21);
    let mask = dropout_mask(&[3, 5], 0.7, autograd::DType::F64, &mut r);
    let locked = locked_dropout_mask(&[4, 3, 5], 0.6, autograd::DType::F64, &mut r);
    let path = drop_path_mask(&[3, 2, 2, 2], 0.8, autograd::DType::F64, &mut r);
    gradcheck(|x| x[0].mul(&mask), &[rand_f64(&[3, 5], 22)]).unwrap();
    gradcheck(|x| x[0].mul(&locked), &[rand_f64(&[4, 3, 5], 23)]).unwrap();
    gradcheck(|x| x[0].mul(&path), &[rand_f64(&[3, 2, 2, 2], 24)]).unwrap();
}

#[test]
fn convolutions_stride_padding_dilation_groups() {
    let x = permuted([2, 4, 7, 6], 25);
    let p = |s, pad, d, g| Conv2dParams {
        stride: (s, s),
        padding: pad,
        dilation: (d, d),
        groups: g,
    };
    gradcheck(
        |t| t[0].conv2d(&t[1], Some(&t[2]), p(2, (1, 2), 1, 1)),
        &[x.clone(), rand_f64(&[3, 4, 3, 3], 26), rand_f64(&[3], 27)],
    )
    .unwrap();
    gradcheck(
        |t| t[0].conv2d(&t[1], None, p(1, (2, 2), 2, 2)),
        &[x.clone(), rand_f64(&[6, 2, 3, 3], 28)],
    )
    .unwrap();
    gradcheck(
        |t| t[0].conv2d(&t[1], None, p(1, (0, 0), 1, 1)),
        &[x.clone(), rand_f64(&[5, 4, 1, 1], 29)],
    )
    .unwrap();
    // depthwise 3x3 and 5x5, stride 1 and 2
    gradcheck(
        |t| t[0].conv2d(&t[1], None, p(1, (1, 1), 1, 4)),
        &[x.clone(), rand_f64(&[4, 1, 3, 3], 30)],
    )
    .unwrap();
    gradcheck(
        |t| t[0].conv2d(&t[1], None, p(2, (2, 2), 1, 4)),
        &[x, rand_f64(&[4, 1, 5, 5], 31)],
    )
    .unwrap();
}

#[test]
fn pooling() {
    // Distinct, well-separated values: no ties inside any max-pool window.
    let n = 2 * 3 * 7 * 6;
    let mut v: Vec<f64> = (0..n).map(|i| ((i * 37) % n) as f64 / n as f64).collect();
    v.iter_mut()
        .enumerate()
        .for_each(|(i, a)| *a += 1e-3 * (i % 5) as f64);
    let x = Tensor::from_vec(v, &[2, 3, 7, 6]);
    gradcheck(|t| t[0].max_pool2d((3, 3), (2, 2), (1, 1)), &[x.clone()]).unwrap();
    gradcheck(|t| t[0].avg_pool2d((3, 3), (2, 2), (1, 1)), &[x.clone()]).unwrap();
    gradcheck(|t| t[0].avg_pool2d((5, 5), (1, 1), (2, 2)), &[x.clone()]).unwrap();
    gradcheck(|t| t[0].global_avg_pool(), &[x]).unwrap();
}

#[test]
fn batch_norm_modes() {
    let x = permuted([4, 3, 3, 2], 32);
    let (g, b) = (rand_f64(&[3], 33).add_scalar(1.5), rand_f64(&[3], 34));
    let (rm, rv) = (rand_f64(&[3], 35), rand_f64(&[3], 36).abs().add_scalar(0.5));
    for mode in [BatchNormMode::Train, BatchNormMode::BatchStatsAlways] {
        gradcheck(
            |t| batch_norm(&t[0], Some(&t[1]), Some(&t[2]), None, mode, 0.1, 1e-5).output,
            &[x.clone(), g.clone(), b.clone()],
        )
        .unwrap();
    }
    gradcheck(
        |t| {
            batch_norm(
                &t[0],
                Some(&t[1]),
                Some(&t[2]),
                Some((&rm, &rv)),
                BatchNormMode::Eval,
                0.1,
                1e-5,
            )
            .output
        },
        &[x, g.clone(), b.clone()],
    )
    .unwrap();
    gradcheck(
        |t| {
            batch_norm(
                &t[0],
                Some(&t[1]),
                Some(&t[2]),
                None,
                BatchNormMode::Train,
                0.1,
                1e-5,
            )
            .output
        },
        &[rand_f64(&[5, 3], 37), g, b],
    )
    .unwrap();
}

#[test]
fn lstm_over_six_steps_and_attention_over_its_outputs() {
    let (t, b, i, h) = (6, 2, 3, 4);
    let inputs = [
        rand_f64(&[t, b, i], 40),
        rand_f64(&[b, h], 41),
        rand_f64(&[b, h], 42),
        rand_f64(&[4 * h, i], 43),
        rand_f64(&[4 * h, h], 44),
        rand_f64(&[4 * h], 45),
        rand_f64(&[h, h], 46),
        rand_f64(&[h, 2 * h], 47),
        rand_f64(&[b, 3, h], 48),
    ];
    gradcheck(
        |x| {
            let w = LstmWeights {
                w_ih: x[3].clone(),
                w_hh: x[4].clone(),
                bias: x[5].clone(),
            };
            let (out, (hl, cl)) = lstm(&x[0], &x[1], &x[2], &w);
            let memory = out.transpose(0, 1); // (B, T, H), non-contiguous
            let (att, _) = luong_attention_seq(&x[8], &memory, &x[6], &x[7]);
            let (one, _) = luong_attention(&hl, &memory, &x[6], &x[7]);
            let (h2, _) = lstm_cell(&x[0].select(0, 0), &one, &cl, &x[3], &x[4], &x[5]);
            Tensor::concat(&[&att.reshape(&[b, 3 * h]), &h2], 1)
        },
        &inputs,
    )
    .unwrap();
}

/// The suite has teeth: a deliberately wrong backward rule fails it.
#[test]
fn a_wrong_backward_rule_fails_the_check() {
    fn wrong_tanh(x: &Tensor) -> Tensor {
        let y = autograd::no_grad(|| x.tanh());
        Tensor::from_op(
            y.storage().clone(),
            &[x],
            "wrong_tanh",
            |inp: &[Tensor], out: &Tensor, g: &Tensor| {
                // should be g * (1 - out^2); this forgets the square
                vec![Some(
                    g.mul(&out.neg().add_scalar(1.0))
                        .add(&inp[0].mul_scalar(0.0)),
                )]
            },
        )
    }
    let err = gradcheck(|x| wrong_tanh(&x[0]), &[rand_f64(&[5], 50)]).unwrap_err();
    assert!(err.to_string().contains("gradcheck failed"));
}

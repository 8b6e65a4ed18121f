//! The controller's and the child RNN's ops: embedding, the LSTM (gates, cell, layer),
//! Luong attention, L2 normalisation and the highway update.

use crate::harness::{gpu, parity, rand};
use autograd::ops::attention::{luong_attention, luong_attention_seq};
use autograd::ops::highway::{HighwayAct, highway};
use autograd::ops::linear_ce::linear_cross_entropy_masked;
use autograd::ops::lstm::{LstmWeights, lstm, lstm_cell, lstm_gates};

const EW: f64 = 1e-4;
const RED: f64 = 1e-3;

#[test]
fn embedding_with_repeated_ids() {
    let Some(dev) = gpu() else { return };
    let w = rand(&[11, 6], -1.0, 1.0, 70);
    parity("embedding", &dev, &[w], EW, |t| {
        t[0].embedding(&[3, 0, 3, 10, 7, 3], &[2, 3])
    });
}

#[test]
fn lstm_gates_cell_and_layer() {
    let Some(dev) = gpu() else { return };
    let (b, i, h, steps) = (3, 5, 4, 6);
    let pre = rand(&[b, 4 * h], -2.0, 2.0, 71);
    let c = rand(&[b, h], -1.0, 1.0, 72);
    parity("lstm_gates", &dev, &[pre, c.clone()], EW, |t| {
        let (h2, c2) = lstm_gates(&t[0], &t[1]);
        autograd::Tensor::concat(&[&h2, &c2], 1)
    });
    let x = rand(&[b, i], -1.0, 1.0, 73);
    let h0 = rand(&[b, h], -1.0, 1.0, 74);
    let w_ih = rand(&[4 * h, i], -0.5, 0.5, 75);
    let w_hh = rand(&[4 * h, h], -0.5, 0.5, 76);
    let bias = rand(&[4 * h], -0.5, 0.5, 77);
    let ins = [
        x,
        h0.clone(),
        c.clone(),
        w_ih.clone(),
        w_hh.clone(),
        bias.clone(),
    ];
    parity("lstm_cell", &dev, &ins, RED, |t| {
        let (h2, c2) = lstm_cell(&t[0], &t[1], &t[2], &t[3], &t[4], &t[5]);
        h2.add(&c2.mul_scalar(0.5))
    });
    let xs = rand(&[steps, b, i], -1.0, 1.0, 78);
    let ins = [xs, h0, c, w_ih, w_hh, bias];
    parity("lstm layer", &dev, &ins, RED, |t| {
        let w = LstmWeights {
            w_ih: t[3].clone(),
            w_hh: t[4].clone(),
            bias: t[5].clone(),
        };
        let (out, (hl, cl)) = lstm(&t[0], &t[1], &t[2], &w);
        out.sum_axes(&[0], false).add(&hl).add(&cl)
    });
}

#[test]
fn attention() {
    let Some(dev) = gpu() else { return };
    let (b, t, s, h) = (2, 3, 5, 4);
    let q = rand(&[b, t, h], -1.0, 1.0, 80);
    let q1 = rand(&[b, h], -1.0, 1.0, 81);
    let m = rand(&[b, s, h], -1.0, 1.0, 82);
    let w_in = rand(&[h, h], -0.5, 0.5, 83);
    let w_out = rand(&[h, 2 * h], -0.5, 0.5, 84);
    let ins = [q, m.clone(), w_in.clone(), w_out.clone()];
    parity("luong_attention_seq", &dev, &ins, RED, |t| {
        let (o, a) = luong_attention_seq(&t[0], &t[1], &t[2], &t[3]);
        o.sum().add(&a.square().sum())
    });
    parity("luong_attention", &dev, &[q1, m, w_in, w_out], RED, |t| {
        let (o, a) = luong_attention(&t[0], &t[1], &t[2], &t[3]);
        o.sum().add(&a.square().sum())
    });
}

#[test]
fn normalize_and_highway() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[4, 6, 3], -1.0, 1.0, 90);
    parity("l2_normalize", &dev, &[x.clone()], RED, |t| {
        t[0].l2_normalize(1, 1e-12)
    });
    let sp = rand(&[3, 5], -1.0, 1.0, 91);
    let pre = rand(&[3, 10], -1.0, 1.0, 92);
    for act in [
        HighwayAct::Tanh,
        HighwayAct::Relu,
        HighwayAct::Sigmoid,
        HighwayAct::Identity,
    ] {
        parity(
            &format!("highway {act:?}"),
            &dev,
            &[sp.clone(), pre.clone()],
            EW,
            move |t| highway(&t[0], &t[1], act),
        );
    }
}

/// The language model's decoder loss with its locked output dropout folded in: on the GPU
/// the op is composed (`x * mask`, `matmul_t`, bias, `cross_entropy`), on the CPU the
/// masked kernel multiplies only the kept columns.
#[test]
fn linear_cross_entropy_with_a_locked_mask() {
    let Some(dev) = gpu() else { return };
    let (t, g, d, v) = (4, 3, 5, 9);
    let x = rand(&[t * g, d], -1.0, 1.0, 93);
    let w = rand(&[v, d], -1.0, 1.0, 94);
    let b = rand(&[v], -1.0, 1.0, 95);
    // 0 or 2 (keep 1/2), one stream keeping nothing
    let m: Vec<f32> = (0..g * d)
        .map(|i| if i < d || i % 3 == 0 { 0.0 } else { 2.0 })
        .collect();
    let mask = autograd::Tensor::from_vec(m, &[g, d]);
    let labels: Vec<usize> = (0..t * g).map(|i| (i * 5 + 1) % v).collect();
    parity(
        "linear_cross_entropy_masked",
        &dev,
        &[x, w, b, mask],
        RED,
        |t| linear_cross_entropy_masked(&t[0], &t[3].detach(), &t[1], &t[2], &labels),
    );
}

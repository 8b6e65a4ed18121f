//! Gradient checks of the sequence ops composed the way NAO's controller and the RNN
//! language model compose them: an unrolled LSTM, attention over an LSTM's outputs, and
//! NAO's "gradient with respect to the encoder outputs" pattern. All in f64 with the
//! default gradcheck tolerance (1e-6, eps 1e-6).

use autograd::ops::attention::luong_attention_seq;
use autograd::ops::lstm::{LstmWeights, lstm, lstm_cell_composed};
use autograd::testing::{assert_close, gradcheck, rand_f64};
use autograd::{DType, Tensor};

/// Odd sizes throughout: T steps, batch B, input I, hidden H.
const T: usize = 6;
const B: usize = 3;
const I: usize = 5;
const H: usize = 4;

fn lstm_inputs(seed: u64) -> Vec<Tensor> {
    vec![
        rand_f64(&[T, B, I], seed),
        rand_f64(&[B, H], seed + 1),
        rand_f64(&[B, H], seed + 2),
        rand_f64(&[4 * H, I], seed + 3),
        rand_f64(&[4 * H, H], seed + 4),
        rand_f64(&[4 * H], seed + 5),
    ]
}

fn weights(x: &[Tensor]) -> LstmWeights {
    LstmWeights {
        w_ih: x[3].clone(),
        w_hh: x[4].clone(),
        bias: x[5].clone(),
    }
}

/// The unrolled layer's outputs, h_T and c_T in one tensor, so all three are checked.
fn lstm_all(x: &[Tensor]) -> Tensor {
    let (out, (h, c)) = lstm(&x[0], &x[1], &x[2], &weights(x));
    let hc = Tensor::stack(&[&h, &c.mul_scalar(0.5)], 0);
    Tensor::concat(&[&out, &hc], 0)
}

#[test]
fn gradcheck_lstm_unrolled_six_steps_wrt_x_h0_c0_and_weights() {
    let r = gradcheck(lstm_all, &lstm_inputs(10)).unwrap();
    assert_eq!(r.elements, T * B * I + 2 * B * H + 4 * H * (I + H + 1));
}

#[test]
fn lstm_unrolled_matches_step_by_step_composed_cell() {
    let inp = lstm_inputs(20);
    let vars: Vec<Tensor> = inp.iter().map(|t| t.requires_grad()).collect();
    let wsum = rand_f64(&[T + 2, B, H], 21);

    let fused = lstm_all(&vars);
    let g1 = fused.mul(&wsum).sum().backward();

    let (mut h, mut c) = (vars[1].clone(), vars[2].clone());
    let mut outs = Vec::new();
    for t in 0..T {
        let (h2, c2) =
            lstm_cell_composed(&vars[0].select(0, t), &h, &c, &vars[3], &vars[4], &vars[5]);
        outs.push(h2.clone());
        h = h2;
        c = c2;
    }
    let mut all: Vec<&Tensor> = outs.iter().collect();
    let half_c = c.mul_scalar(0.5);
    all.push(&h);
    all.push(&half_c);
    let reference = Tensor::stack(&all, 0);
    let g2 = reference.mul(&wsum).sum().backward();

    assert_close(&fused, &reference, 1e-14, 1e-12);
    for v in &vars {
        assert_close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-13, 1e-11);
    }
}

#[test]
fn gradcheck_attention_over_lstm_outputs_wrt_everything() {
    // Encoder LSTM over 5 steps; its outputs (T, B, H) -> memory (B, T, H) through a
    // transpose (non-contiguous); a decoder query of 3 steps; attention weights.
    let (t, b, i, h) = (5, 2, 3, 3);
    let inputs = vec![
        rand_f64(&[t, b, i], 30),
        rand_f64(&[b, h], 31),
        rand_f64(&[b, h], 32),
        rand_f64(&[4 * h, i], 33),
        rand_f64(&[4 * h, h], 34),
        rand_f64(&[4 * h], 35),
        rand_f64(&[b, 3, h], 36),
        rand_f64(&[h, h], 37),
        rand_f64(&[h, 2 * h], 38),
    ];
    gradcheck(
        |x| {
            let (enc, _) = lstm(&x[0], &x[1], &x[2], &weights(x));
            let memory = enc.transpose(0, 1);
            let (out, w) = luong_attention_seq(&x[6], &memory, &x[7], &x[8]);
            Tensor::concat(&[&out, &w], 2)
        },
        &inputs,
    )
    .unwrap();
}

/// NAO's performance-predictor head on the encoder outputs `o (T, B, H)`:
/// `sigmoid(W2 relu(W1 normalize(mean_t(normalize(o_t))) + b1) + b2)`, `(B, 1)`.
fn nao_head(o: &Tensor, w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor) -> Tensor {
    let z = o
        .l2_normalize(-1, 1e-12)
        .mean_axes(&[0], false)
        .l2_normalize(-1, 1e-12);
    z.linear(w1, Some(b1)).relu().linear(w2, Some(b2)).sigmoid()
}

fn head_params() -> Vec<Tensor> {
    vec![
        rand_f64(&[7, H], 40),
        rand_f64(&[7], 41),
        rand_f64(&[1, 7], 42),
        rand_f64(&[1], 43),
    ]
}

#[test]
fn gradcheck_nao_head_wrt_lstm_outputs() {
    let o = rand_f64(&[T, B, H], 44);
    let p = head_params();
    // Away from relu kinks: every pre-activation of the relu is at least 0.005 from 0, far
    // beyond the 1e-6 finite-difference step.
    let z = o
        .l2_normalize(-1, 1e-12)
        .mean_axes(&[0], false)
        .l2_normalize(-1, 1e-12);
    let pre = z.linear(&p[0], Some(&p[1])).to_vec::<f64>();
    assert!(pre.iter().all(|v| v.abs() > 0.005), "{pre:?}");
    let mut inputs = vec![o];
    inputs.extend(p);
    gradcheck(|x| nao_head(&x[0], &x[1], &x[2], &x[3], &x[4]), &inputs).unwrap();
}

#[test]
fn retained_gradient_of_lstm_outputs_equals_gradient_with_outputs_as_leaf() {
    let inp: Vec<Tensor> = lstm_inputs(50).iter().map(|t| t.requires_grad()).collect();
    let p = head_params();
    let (o, _) = lstm(&inp[0], &inp[1], &inp[2], &weights(&inp));
    o.retain_grad();
    let grads = nao_head(&o, &p[0], &p[1], &p[2], &p[3]).sum().backward();
    let through_graph = grads.get(&o).expect("retained gradient of o").clone();
    assert!(grads.get(&inp[0]).is_some() && grads.get(&inp[3]).is_some());

    let leaf = o.detach().requires_grad();
    let g_leaf = nao_head(&leaf, &p[0], &p[1], &p[2], &p[3]).sum().backward();
    assert_close(&through_graph, g_leaf.get(&leaf).unwrap(), 1e-15, 1e-13);

    // ... and that gradient is right (finite differences with o as the input).
    let z = leaf
        .l2_normalize(-1, 1e-12)
        .mean_axes(&[0], false)
        .l2_normalize(-1, 1e-12);
    let pre = z.linear(&p[0], Some(&p[1])).to_vec::<f64>();
    assert!(
        pre.iter().all(|v| v.abs() > 0.005),
        "near a relu kink: {pre:?}"
    );
    gradcheck(
        |x| nao_head(&x[0], &p[0], &p[1], &p[2], &p[3]).sum(),
        &[o.detach()],
    )
    .unwrap();
}

#[test]
fn lstm_runs_in_f32() {
    let inp: Vec<Tensor> = lstm_inputs(60)
        .iter()
        .map(|t| t.to_dtype(DType::F32))
        .collect();
    let (out, (h, _)) = lstm(&inp[0], &inp[1], &inp[2], &weights(&inp));
    assert_eq!(out.shape(), &[T, B, H]);
    assert_eq!(out.select(0, T - 1).to_vec::<f32>(), h.to_vec::<f32>());
    let out64 = lstm(
        &lstm_inputs(60)[0],
        &lstm_inputs(60)[1],
        &lstm_inputs(60)[2],
        &weights(&lstm_inputs(60)),
    )
    .0;
    assert_close(&out.to_dtype(DType::F64), &out64, 1e-5, 1e-5);
}

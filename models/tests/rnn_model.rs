//! The child RNN language model against spec 8.1: the cell formula (against an independent
//! composed reference), tied weights, initialisation, locked masks, TAR, detached hidden
//! state, reproducibility.

use autograd::nn::Module;
use autograd::ops::dropout::dropout_mask;
use autograd::ops::highway::{HighwayAct, highway_composed};
use autograd::testing::{assert_close, rand_f64};
use autograd::{DType, Tensor};
use models::rnn::cell::highway_act;
use models::rnn::{CellMasks, HighwayCell, RnnConfig, RnnLanguageModel};
use models::space::rnn::RnnCell;
use models::space::{RnnSpace, SearchSpace};
use ndarray::Array2;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

fn arch(text: &str) -> RnnCell {
    let s = RnnSpace;
    s.decode(&s.from_text(text).unwrap()).unwrap()
}

const NAO: &str = "0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2";
const PEER: &str = "0 0 1 1 0 3 3 3 1 3 5 2 4 3 6 0 8 0 1 2 7 3";

fn small_cfg(vocab: usize) -> RnnConfig {
    RnnConfig {
        emb: 6,
        hidden: 6,
        vocab,
        dropout: 0.3,
        dropouth: 0.2,
        dropoutx: 0.25,
        dropouti: 0.2,
        dropoute: 0.1,
        tar_beta: 1e-3,
    }
}

/// Spec 8.1 written out step by step with primitive ops.
fn reference_cell(
    cell: &HighwayCell,
    xs: &Tensor,
    h0: &Tensor,
    mx: &Tensor,
    mh: &Tensor,
) -> Tensor {
    let p = cell.params();
    let (w0, ws) = (p[0].get(), &p[1..]);
    let mut h = h0.clone();
    let mut outs = vec![];
    for t in 0..xs.shape()[0] {
        let xh = Tensor::concat(&[&xs.select(0, t).mul(mx), &h.mul(mh)], 1);
        let mut states = vec![highway_composed(&h, &xh.matmul(&w0), HighwayAct::Tanh)];
        for (i, n) in cell.arch().nodes.iter().enumerate() {
            let sp = states[n.pred].clone();
            let pre = sp.mul(mh).matmul(&ws[i].get());
            states.push(highway_composed(&sp, &pre, highway_act(n.act)));
        }
        let mut sum = states[1].clone();
        for s in &states[2..] {
            sum = &sum + s;
        }
        h = sum.mul_scalar(1.0 / 11.0);
        outs.push(h.clone());
    }
    let refs: Vec<&Tensor> = outs.iter().collect();
    Tensor::stack(&refs, 0)
}

#[test]
fn cell_matches_the_spec_formula() {
    for a in [NAO, PEER] {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let cell = HighwayCell::new("rnn", &arch(a), 5, 4, &mut rng);
        cell.to_dtype(DType::F64);
        let (t, b) = (4, 3);
        let xs = rand_f64(&[t, b, 5], 1);
        let h0 = rand_f64(&[b, 4], 2);
        let mx = dropout_mask(&[b, 5], 0.6, DType::F64, &mut rng);
        let mh = dropout_mask(&[b, 4], 0.7, DType::F64, &mut rng);
        let masks = CellMasks {
            x: Some(mx.clone()),
            h: Some(mh.clone()),
        };
        let (hs, last) = cell.forward(&xs, &h0, &masks);
        let want = reference_cell(&cell, &xs, &h0, &mx, &mh);
        assert_close(&hs, &want, 1e-12, 1e-12);
        assert_close(&last, &want.select(0, t - 1), 1e-12, 1e-12);
    }
}

#[test]
fn parameters_are_tied_named_and_initialised_within_0_04() {
    let cfg = small_cfg(11);
    let lm = RnnLanguageModel::new(&arch(NAO), &cfg, &mut Pcg64Mcg::seed_from_u64(0));
    let names: Vec<String> = lm.params().iter().map(|p| p.name().to_string()).collect();
    assert_eq!(names[..3], ["encoder.weight", "decoder.bias", "rnn.w0"]);
    assert_eq!(names.last().unwrap(), "rnn.w11");
    // one (V, emb) matrix serves both embedding and softmax
    assert_eq!(lm.num_params(), 11 * 6 + 11 + 12 * 12 + 11 * 6 * 12);
    for p in lm.params() {
        let v = p.get().to_vec::<f64>();
        if p.name() == "decoder.bias" {
            assert!(v.iter().all(|&x| x == 0.0));
        } else {
            assert!(v.iter().all(|&x| x.abs() <= 0.04), "{}", p.name());
            assert!(v.iter().any(|&x| x.abs() > 0.03), "{}", p.name());
        }
    }
    // the softmax uses the embedding: its gradient has a decoder part even for rows that
    // are never looked up as inputs
    let ids = Array2::from_elem((2, 2), 1u32);
    let tgt = Array2::from_elem((2, 2), 2u32);
    let out = lm.forward(ids.view(), tgt.view(), &lm.init_hidden(2), None);
    let g = out.loss.backward();
    let ge = g.get(&lm.params()[0].get()).unwrap().to_vec::<f64>();
    assert!(ge[2 * 6..3 * 6].iter().any(|&x| x != 0.0));
}

#[test]
fn masks_are_locked_shapes_and_reproducible() {
    let cfg = small_cfg(11);
    let lm = RnnLanguageModel::new(&arch(NAO), &cfg, &mut Pcg64Mcg::seed_from_u64(0));
    let m = lm.sample_masks(3, &mut Pcg64Mcg::seed_from_u64(4));
    assert_eq!(m.emb_rows.as_ref().unwrap().shape(), &[11, 1]);
    for t in [&m.input, &m.x, &m.h, &m.output] {
        assert_eq!(t.as_ref().unwrap().shape(), &[3, 6]);
    }
    let m2 = lm.sample_masks(3, &mut Pcg64Mcg::seed_from_u64(4));
    assert_eq!(
        m.h.as_ref().unwrap().to_vec::<f32>(),
        m2.h.as_ref().unwrap().to_vec::<f32>()
    );
    // no dropout configured: nothing drawn
    let cfg0 = RnnConfig {
        dropout: 0.0,
        dropouth: 0.0,
        dropoutx: 0.0,
        dropouti: 0.0,
        dropoute: 0.0,
        ..cfg
    };
    let lm0 = RnnLanguageModel::new(&arch(NAO), &cfg0, &mut Pcg64Mcg::seed_from_u64(0));
    let m0 = lm0.sample_masks(3, &mut Pcg64Mcg::seed_from_u64(4));
    assert!(m0.input.is_none() && m0.h.is_none() && m0.output.is_none());
}

#[test]
fn tar_is_added_in_training_only_and_hidden_is_detached() {
    let cfg = RnnConfig {
        tar_beta: 2.0,
        ..small_cfg(11)
    };
    let lm = RnnLanguageModel::new(&arch(PEER), &cfg, &mut Pcg64Mcg::seed_from_u64(0));
    let ids = Array2::from_shape_fn((5, 3), |(t, b)| ((t * 3 + b) % 11) as u32);
    let tgt = Array2::from_shape_fn((5, 3), |(t, b)| ((t * 3 + b + 1) % 11) as u32);
    let h0 = lm.init_hidden(3);
    let eval = lm.forward(ids.view(), tgt.view(), &h0, None);
    assert_eq!(eval.loss.item(), eval.nll.item());
    assert!(!eval.hidden.is_tracked());
    let masks = lm.sample_masks(3, &mut Pcg64Mcg::seed_from_u64(1));
    let train = lm.forward_with_masks(ids.view(), tgt.view(), &h0, Some(&masks));
    assert!(train.loss.item() > train.nll.item());
    assert!(!train.hidden.is_tracked());
    // logits agree with the loss
    let (logits, h) = lm.logits(ids.view(), &h0, None);
    assert_eq!(logits.shape(), &[15, 11]);
    let labels: Vec<usize> = tgt.iter().map(|&i| i as usize).collect();
    assert!((logits.cross_entropy(&labels).item() - eval.nll.item()).abs() < 1e-6);
    assert_eq!(h.to_vec::<f32>(), eval.hidden.to_vec::<f32>());
}

#[test]
fn same_seed_same_loss_bit_for_bit() {
    let cfg = small_cfg(11);
    let ids = Array2::from_shape_fn((4, 2), |(t, b)| ((t + 5 * b) % 11) as u32);
    let tgt = Array2::from_shape_fn((4, 2), |(t, b)| ((t + 5 * b + 1) % 11) as u32);
    let run = || {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let lm = RnnLanguageModel::new(&arch(NAO), &cfg, &mut rng);
        let out = lm.forward(ids.view(), tgt.view(), &lm.init_hidden(2), Some(&mut rng));
        (out.loss.item(), out.hidden.to_vec::<f32>())
    };
    assert_eq!(run(), run());
}

#[test]
#[should_panic(expected = "emb (6) must equal hidden (8)")]
fn untied_sizes_are_rejected() {
    let cfg = RnnConfig {
        hidden: 8,
        ..small_cfg(11)
    };
    let _ = RnnLanguageModel::new(&arch(NAO), &cfg, &mut Pcg64Mcg::seed_from_u64(0));
}

#[test]
fn presets_follow_the_spec() {
    let s = RnnConfig::ptb_search();
    assert_eq!(
        (
            s.dropout, s.dropouth, s.dropoutx, s.dropouti, s.dropoute, s.tar_beta
        ),
        (0.75, 0.25, 0.75, 0.2, 0.0, 1e-3)
    );
    assert_eq!(RnnConfig::preset("ptb-final").unwrap().emb, 850);
    assert!(RnnConfig::preset("nope").is_none());
}

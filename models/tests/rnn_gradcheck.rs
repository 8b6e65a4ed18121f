//! Gradient checks (f64) of the child RNN: the whole highway cell w.r.t. its parameters,
//! its inputs and its initial hidden state, and the whole small language-model loss
//! (fixed dropout masks, TAR on) w.r.t. every parameter.

use autograd::DType;
use autograd::nn::Module;
use autograd::ops::dropout::dropout_mask;
use autograd::testing::{GradcheckOptions, gradcheck, gradcheck_params, rand_f64};
use models::rnn::{CellMasks, HighwayCell, RnnConfig, RnnLanguageModel};
use models::space::RnnSpace;
use models::space::rnn::{Activation, RnnCell};
use ndarray::Array2;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// The PyTorch peer's architecture (workload D): all four activations appear.
fn peer_arch() -> RnnCell {
    let s = RnnSpace;
    s.decode(
        &s.from_flat(&[
            0, 0, 1, 1, 0, 3, 3, 3, 1, 3, 5, 2, 4, 3, 6, 0, 8, 0, 1, 2, 7, 3,
        ])
        .unwrap(),
    )
    .unwrap()
}

#[test]
fn the_checked_architecture_uses_every_activation() {
    let arch = peer_arch();
    for a in Activation::ALL {
        assert!(arch.nodes.iter().any(|n| n.act == a), "{a} missing");
    }
}

/// Weights scaled up from ±0.04 so that every nonlinearity works away from its linear
/// region (a check at tiny weights would not see much of sigmoid/tanh curvature).
fn cell_f64(emb: usize, hid: usize) -> HighwayCell {
    let mut rng = Pcg64Mcg::seed_from_u64(5);
    let cell = HighwayCell::new("rnn", &peer_arch(), emb, hid, &mut rng);
    cell.to_dtype(DType::F64);
    for p in cell.params() {
        p.set(autograd::no_grad(|| p.get().mul_scalar(20.0)));
    }
    cell
}

fn masks(b: usize, emb: usize, hid: usize) -> CellMasks {
    let mut rng = Pcg64Mcg::seed_from_u64(9);
    CellMasks {
        x: Some(dropout_mask(&[b, emb], 0.7, DType::F64, &mut rng)),
        h: Some(dropout_mask(&[b, hid], 0.8, DType::F64, &mut rng)),
    }
}

#[test]
fn gradcheck_whole_cell_wrt_all_parameters() {
    let (t, b, e, h) = (3, 2, 3, 4);
    let cell = cell_f64(e, h);
    let m = masks(b, e, h);
    let xs = rand_f64(&[t, b, e], 1);
    let h0 = rand_f64(&[b, h], 2);
    let w = rand_f64(&[t, b, h], 3);
    let r = gradcheck_params(
        || {
            let (hs, last) = cell.forward(&xs, &h0, &m);
            &hs.mul(&w).sum() + &last.square().sum()
        },
        &cell.params(),
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(r.elements, (e + h) * 2 * h + 11 * h * 2 * h);
}

#[test]
fn gradcheck_whole_cell_wrt_inputs_and_initial_hidden() {
    let (t, b, e, h) = (3, 2, 3, 4);
    let cell = cell_f64(e, h);
    let m = masks(b, e, h);
    gradcheck(
        |x| cell.forward(&x[0], &x[1], &m).0,
        &[rand_f64(&[t, b, e], 1), rand_f64(&[b, h], 2)],
    )
    .unwrap();
    // and without masks (evaluation mode)
    gradcheck(
        |x| cell.forward(&x[0], &x[1], &CellMasks::default()).1,
        &[rand_f64(&[t, b, e], 4), rand_f64(&[b, h], 5)],
    )
    .unwrap();
}

#[test]
fn gradcheck_whole_language_model_loss_with_fixed_masks() {
    let cfg = RnnConfig {
        emb: 4,
        hidden: 4,
        vocab: 7,
        dropout: 0.3,
        dropouth: 0.2,
        dropoutx: 0.25,
        dropouti: 0.2,
        dropoute: 0.3,
        tar_beta: 0.5,
    };
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let lm = RnnLanguageModel::new(&peer_arch(), &cfg, &mut rng);
    lm.to_dtype(DType::F64);
    for p in lm.params() {
        let v = autograd::no_grad(|| p.get().mul_scalar(10.0).add_scalar(0.01));
        p.set(v);
    }
    let (t, b) = (3, 2);
    let masks = lm.sample_masks(b, &mut Pcg64Mcg::seed_from_u64(2));
    assert!(masks.emb_rows.is_some() && masks.output.is_some());
    let ids = Array2::from_shape_fn((t, b), |(i, j)| ((3 * i + 2 * j) % 7) as u32);
    let tgt = Array2::from_shape_fn((t, b), |(i, j)| ((5 * i + j + 1) % 7) as u32);
    let h0 = rand_f64(&[b, 4], 8);
    let r = gradcheck_params(
        || {
            let out = lm.forward_with_masks(ids.view(), tgt.view(), &h0, Some(&masks));
            out.loss
        },
        &lm.params(),
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(r.elements, lm.num_params());
}

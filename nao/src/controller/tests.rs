//! Controller tests: sizes against the PyTorch peer, the whole loss by finite differences,
//! determinism, learning, and generation.

use super::*;
use autograd::testing::{GradcheckOptions, gradcheck_params};
use models::space::SpaceKind;
use rand::SeedableRng;

fn cnn_ws() -> ControllerConfig {
    ControllerConfig::for_space(space(SpaceKind::CnnWs).as_ref())
}

/// The peer (`shared/bench/peers/nao_controller.py`, config A) has 279,533 parameters;
/// PyTorch's LSTMs carry two bias vectors (b_ih, b_hh) where ours carry their sum, so we
/// have 2 x 4H = 768 fewer.
#[test]
fn parameter_count_matches_the_pytorch_peer() {
    let c = Controller::new(SpaceKind::CnnWs, cnn_ws(), DType::F32, 0);
    assert_eq!(c.num_params(), 279_533 - 2 * 4 * 96);
}

/// The whole controller loss (encoder, predictor, decoder with attention, MSE + CE) in f64
/// on a tiny configuration, w.r.t. every parameter, by central differences.
#[test]
fn gradcheck_whole_controller_loss_tiny_config() {
    let cfg = ControllerConfig {
        vocab: 12,
        seq_len: 40,
        tokens_per_step: 2,
        emb: 3,
        hidden: 6,
        mlp_layers: 2,
        mlp_hidden: 5,
        mlp_dropout: 0.0,
        lambda: 0.8,
        lr: 1e-3,
        weight_decay: 1e-4,
        grad_clip: 5.0,
        batch_size: 3,
        epochs: 1,
    };
    let c = Controller::new(SpaceKind::CnnWs, cfg, DType::F64, 1);
    let s = space(SpaceKind::CnnWs);
    let mut rng = Pcg64Mcg::seed_from_u64(2);
    let archs: Vec<Arch> = (0..3).map(|_| s.sample(&mut rng)).collect();
    let labels = vec![0.2, 0.9, 0.5];
    let params = c.params();
    let report = gradcheck_params(
        || c.loss(&archs, &labels, None).0,
        &params,
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(report.elements, c.num_params());
}

fn train_small(seed: u64) -> (Vec<StepLoss>, Vec<f64>) {
    let mut cfg = cnn_ws();
    cfg.batch_size = 20;
    let mut c = Controller::new(SpaceKind::CnnWs, cfg, DType::F32, seed);
    let s = space(SpaceKind::CnnWs);
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    // label: fraction of sep-conv ops (a learnable function of the tokens)
    let data: Vec<(Arch, f64)> = (0..60)
        .map(|_| {
            let a = s.sample(&mut rng);
            let conv = a
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|&&t| t == 7 || t == 8)
                .count();
            (a, conv as f64 / 20.0)
        })
        .collect();
    let hist = c.train(&data, 30, &mut rng, |_, _| {});
    let preds = c.predict(&data.iter().map(|d| d.0.clone()).collect::<Vec<_>>());
    (hist, preds)
}

#[test]
fn training_is_deterministic_and_lowers_the_loss() {
    let (h1, p1) = train_small(5);
    let (h2, p2) = train_small(5);
    assert_eq!(h1, h2);
    assert_eq!(p1, p2);
    assert!(
        h1.last().unwrap().total < 0.6 * h1[0].total,
        "{:?} -> {:?}",
        h1[0],
        h1.last()
    );
}

#[test]
fn generation_moves_toward_higher_predictions_and_yields_valid_new_archs() {
    let mut cfg = cnn_ws();
    cfg.batch_size = 50;
    let mut c = Controller::new(SpaceKind::CnnWs, cfg, DType::F32, 3);
    let s = space(SpaceKind::CnnWs);
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    let data: Vec<(Arch, f64)> = (0..100)
        .map(|_| {
            let a = s.sample(&mut rng);
            let conv = a
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|&&t| t == 7 || t == 8)
                .count();
            (a, conv as f64 / 20.0)
        })
        .collect();
    c.train(&data, 60, &mut rng, |_, _| {});
    let seeds: Vec<Arch> = data.iter().take(20).map(|d| d.0.clone()).collect();
    let seen: HashSet<Arch> = data.iter().map(|d| s.canonical(&d.0)).collect();
    let new = c.generate(&seeds, 20, &seen, 20);
    assert!(!new.is_empty());
    for (a, eta) in &new {
        s.validate(a).unwrap();
        assert!(!seen.contains(&s.canonical(a)));
        assert!(*eta >= 1.0);
    }
    let before: f64 = c.predict(&seeds).iter().sum::<f64>() / seeds.len() as f64;
    let archs: Vec<Arch> = new.iter().map(|x| x.0.clone()).collect();
    let after: f64 = c.predict(&archs).iter().sum::<f64>() / archs.len() as f64;
    assert!(
        after > before,
        "generated archs should be predicted better: {before} -> {after}"
    );
}

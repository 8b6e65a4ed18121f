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
    gradcheck_tiny(PredictorInput::Mean);
}

/// As above, with the predictor reading the concatenated encoder outputs.
#[test]
fn gradcheck_whole_controller_loss_concat_predictor_input() {
    gradcheck_tiny(PredictorInput::Concat);
}

fn gradcheck_tiny(predictor_input: PredictorInput) {
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
        rank_weight: 0.5,
        predictor_input,
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

/// The hinge ranking loss by hand: labels (0.1, 0.5, 0.9), predictions (0.2, 0.25, 0.1).
/// Ordered pairs with distinct labels: 6. sign(y_i - y_j)(p_i - p_j) per unordered pair:
/// (0,1): (-1)(-0.05) = 0.05 -> 0.05 loss; (0,2): (-1)(0.1) = -0.1 -> 0.2; (1,2): (-1)(0.15)
/// = -0.15 -> 0.25; each counted twice: 2 * 0.5 / 6.
#[test]
fn rank_loss_values_and_gradient() {
    let pred = Tensor::from_vec(vec![0.2f64, 0.25, 0.1], &[3]);
    let l = rank_loss(&pred, &[0.1, 0.5, 0.9]).unwrap().item();
    assert!((l - 1.0 / 6.0).abs() < 1e-12, "{l}");
    // perfectly ordered with margins above RANK_MARGIN: no loss
    let ok = Tensor::from_vec(vec![0.0f64, 0.5, 1.0], &[3]);
    assert_eq!(rank_loss(&ok, &[0.1, 0.5, 0.9]).unwrap().item(), 0.0);
    // equal labels make no pair
    assert!(rank_loss(&ok, &[0.3, 0.3, 0.3]).is_none());
    let x = Tensor::from_vec(vec![0.2f64, 0.25, 0.1, 0.7], &[4]).requires_grad();
    autograd::testing::gradcheck(|t| rank_loss(&t[0], &[0.1, 0.5, 0.9, 0.2]).unwrap(), &[x])
        .unwrap();
}

/// With `rank_weight`, the joint loss is the spec's loss plus the weighted ranking loss.
#[test]
fn rank_weight_adds_the_ranking_loss() {
    let s = space(SpaceKind::Nb201);
    let mut cfg = ControllerConfig::for_space(s.as_ref());
    cfg.mlp_dropout = 0.0;
    let plain = Controller::new(SpaceKind::Nb201, cfg.clone(), DType::F64, 4);
    cfg.rank_weight = 2.0;
    let ranked = Controller::new(SpaceKind::Nb201, cfg, DType::F64, 4);
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let archs: Vec<Arch> = (0..8).map(|_| s.sample(&mut rng)).collect();
    let labels: Vec<f64> = (0..8).map(|i| i as f64 / 7.0).collect();
    let (_, a) = plain.loss(&archs, &labels, None);
    let (_, b) = ranked.loss(&archs, &labels, None);
    assert_eq!(a.rank, 0.0);
    assert!(b.rank > 0.0);
    assert!(
        (b.total - (a.total + 2.0 * b.rank)).abs() < 1e-12,
        "{a:?} {b:?}"
    );
}

/// An ensemble predicts the mean of its members, reports their spread, saves and loads
/// every member, and generates from each.
#[test]
fn ensemble_surrogate_averages_members_and_round_trips() {
    use crate::search::Surrogate;
    let s = space(SpaceKind::Nb201);
    let opts = SurrogateOptions {
        epochs: 5,
        ensemble: 3,
        rank_weight: 0.5,
        noise: 0.2,
        temperature: 0.5,
        eta_step: 0.5,
        fresh: false,
        predictor_input: PredictorInput::Concat,
    };
    let mut sur = ControllerSurrogate::with_options(SpaceKind::Nb201, &opts);
    let mut rng = Pcg64Mcg::seed_from_u64(2);
    let data: Vec<(Arch, f64)> = (0..30)
        .map(|i| (s.canonical(&s.sample(&mut rng)), i as f64 / 29.0))
        .collect();
    sur.fit(&data, &mut rng);
    let archs: Vec<Arch> = data.iter().map(|d| d.0.clone()).collect();
    let spread = sur.predict_spread(&archs);
    let members: Vec<Vec<f64>> = sur.members.iter().map(|c| c.predict(&archs)).collect();
    assert_eq!(members.len(), 3);
    for (i, (m, sd)) in spread.iter().enumerate() {
        let mean = members.iter().map(|p| p[i]).sum::<f64>() / 3.0;
        assert!((m - mean).abs() < 1e-12);
        assert!(*sd >= 0.0);
    }
    assert!(spread.iter().any(|p| p.1 > 0.0), "members should differ");
    assert_eq!(
        sur.predict(&archs),
        spread.iter().map(|p| p.0).collect::<Vec<_>>()
    );
    // each member contributes to generation
    let seen: HashSet<Arch> = archs.iter().cloned().collect();
    let generated = sur.generate(&archs[..5], 30, &seen, 10, 0, None, &mut rng);
    assert!(!generated.is_empty());
    let canon: HashSet<Arch> = generated.iter().map(|g| s.canonical(&g.0)).collect();
    assert_eq!(canon.len(), generated.len(), "no duplicates");
    // save / load restores every member exactly
    let dir = tempfile::tempdir().unwrap();
    sur.save(dir.path()).unwrap();
    let mut back = ControllerSurrogate::with_options(SpaceKind::Nb201, &opts);
    back.load(dir.path()).unwrap();
    assert_eq!(back.predict_spread(&archs), spread);
    let single = ControllerSurrogate::with_options(
        SpaceKind::Nb201,
        &SurrogateOptions {
            ensemble: 1,
            ..opts
        },
    );
    let mut single = single;
    assert!(single.load(dir.path()).is_err(), "member count must match");
}

/// `fresh` draws new initial weights at every fit; without it the controllers continue.
#[test]
fn fresh_reinitialises_every_fit() {
    use crate::search::Surrogate;
    let s = space(SpaceKind::Nb201);
    let mut rng = Pcg64Mcg::seed_from_u64(5);
    let data: Vec<(Arch, f64)> = (0..10)
        .map(|i| (s.canonical(&s.sample(&mut rng)), i as f64 / 9.0))
        .collect();
    for fresh in [false, true] {
        let mut sur = ControllerSurrogate::with_options(
            SpaceKind::Nb201,
            &SurrogateOptions {
                fresh,
                ..SurrogateOptions::spec(2)
            },
        );
        sur.fit(&data, &mut rng);
        let first = sur.init_seeds.clone();
        sur.fit(&data, &mut rng);
        assert_eq!(sur.init_seeds != first, fresh, "fresh = {fresh}");
    }
}

/// Sampling the decoder (`temperature` > 0) proposes new architectures around seeds that
/// greedy decoding of a small move only reconstructs, and it is repeatable from the same
/// generator.
#[test]
fn decoder_sampling_proposes_around_the_seeds() {
    let s = space(SpaceKind::Nb201);
    let mut rng = Pcg64Mcg::seed_from_u64(4);
    let archs: Vec<Arch> = (0..30).map(|_| s.canonical(&s.sample(&mut rng))).collect();
    let labels: Vec<f64> = (0..30).map(|i| i as f64 / 29.0).collect();
    let data: Vec<(Arch, f64)> = archs.iter().cloned().zip(labels).collect();
    let mut c = Controller::new(
        SpaceKind::Nb201,
        ControllerConfig::for_space(s.as_ref()),
        DType::F32,
        1,
    );
    c.train(&data, 150, &mut rng, |_, _| {});
    let seeds = &archs[..10];
    let seen: HashSet<Arch> = archs.iter().map(|a| s.canonical(a)).collect();
    let small = |temperature| Generation {
        max_eta: 0.1,
        eta_step: 0.1,
        temperature,
        ..Generation::spec(0.1)
    };
    let greedy = c.generate_with(seeds, 100, &seen, &small(0.0), Some(&mut rng.clone()));
    let draw = |seed| {
        c.generate_with(
            seeds,
            100,
            &seen,
            &small(2.0),
            Some(&mut Pcg64Mcg::seed_from_u64(seed)),
        )
    };
    let sampled = draw(9);
    assert!(
        sampled.len() > greedy.len(),
        "sampled {} new, greedy {}",
        sampled.len(),
        greedy.len()
    );
    assert_eq!(draw(9), sampled);
    assert_ne!(draw(10), sampled);
}

/// A trust radius keeps only architectures decoded within that many tokens of their seed;
/// without it, generation reaches further.
#[test]
fn trust_radius_keeps_generation_near_the_seeds() {
    use crate::search::diagnostics::hamming;
    let s = space(SpaceKind::Nb201);
    let mut rng = Pcg64Mcg::seed_from_u64(6);
    let archs: Vec<Arch> = (0..30).map(|_| s.canonical(&s.sample(&mut rng))).collect();
    let data: Vec<(Arch, f64)> = archs
        .iter()
        .cloned()
        .zip((0..30).map(|i| i as f64 / 29.0))
        .collect();
    let cfg = ControllerConfig::for_space(s.as_ref());
    let mut c = Controller::new(SpaceKind::Nb201, cfg, DType::F32, 2);
    c.train(&data, 100, &mut rng, |_, _| {});
    let seeds = &archs[..10];
    let seen: HashSet<Arch> = archs.iter().cloned().collect();
    let farthest = |radius| {
        let how = Generation {
            temperature: 2.0,
            radius,
            ..Generation::spec(20.0)
        };
        let mut r = Pcg64Mcg::seed_from_u64(3);
        let found = c.generate_with(seeds, 40, &seen, &how, Some(&mut r));
        assert!(!found.is_empty(), "radius {radius}: nothing generated");
        found
            .iter()
            .map(|(a, _)| {
                let a = s.canonical(a);
                seeds.iter().map(|x| hamming(x, &a)).min().unwrap()
            })
            .max()
            .unwrap()
    };
    assert!(farthest(1) <= 1);
    assert!(farthest(0) > 1);
}

/// Pre-training lowers the reconstruction loss of unlabelled architectures, moves the
/// encoder and decoder, and leaves every predictor parameter (and its optimiser state:
/// none is created) exactly as initialised.
#[test]
fn pretrain_trains_the_autoencoder_only() {
    let s = space(SpaceKind::Nb201);
    let mut cfg = ControllerConfig::for_space(s.as_ref());
    cfg.batch_size = 20;
    let mut c = Controller::new(SpaceKind::Nb201, cfg, DType::F32, 3);
    let mut rng = Pcg64Mcg::seed_from_u64(4);
    let archs: Vec<Arch> = (0..60).map(|_| s.canonical(&s.sample(&mut rng))).collect();
    let snapshot =
        |ps: Vec<Param>| -> Vec<Vec<f32>> { ps.iter().map(|p| p.get().to_vec()).collect() };
    let pred_before = snapshot(c.predictor.params());
    let enc_before = snapshot(c.encoder.params());
    let dec_before = snapshot(c.decoder.params());
    let history = c.pretrain(&archs, 30, &mut rng, |_, _| {});
    assert_eq!(history.len(), 30);
    assert!(history.iter().all(|l| l.mse == 0.0 && l.ce == l.total));
    assert!(
        history[29].ce < 0.5 * history[0].ce,
        "reconstruction loss {} -> {}",
        history[0].ce,
        history[29].ce
    );
    assert_eq!(snapshot(c.predictor.params()), pred_before);
    assert_ne!(snapshot(c.encoder.params()), enc_before);
    assert_ne!(snapshot(c.decoder.params()), dec_before);
    let names: Vec<String> = c
        .predictor
        .params()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let state = c.optimizer_ref().state();
    assert!(names.iter().all(|n| !state.params.contains_key(n)));
}

/// With `predictor_input: concat` the predictor's first layer reads every step's output
/// (`steps * hidden` inputs), so its prediction depends on which step holds what; the
/// embedding (a mean over steps) does not. Generation still moves the outputs along the
/// prediction's gradient and yields valid new architectures.
#[test]
fn concat_predictor_reads_every_step_in_order() {
    let s = space(SpaceKind::Nb201);
    let mut cfg = ControllerConfig::for_space(s.as_ref());
    let mean = Controller::new(SpaceKind::Nb201, cfg.clone(), DType::F32, 7);
    cfg.predictor_input = PredictorInput::Concat;
    let concat = Controller::new(SpaceKind::Nb201, cfg.clone(), DType::F32, 7);
    let first = |c: &Controller| c.predictor.params()[0].get().shape().to_vec();
    assert_eq!(first(&mean), vec![cfg.mlp_hidden, cfg.hidden]);
    assert_eq!(first(&concat), vec![cfg.mlp_hidden, cfg.hidden * 6]);
    // reversing the steps of the encoder outputs keeps the mean, not the concatenation
    let enc = no_grad(|| {
        concat
            .encoder
            .forward(&[s.sample(&mut Pcg64Mcg::seed_from_u64(1))])
    });
    let rev: Vec<Tensor> = (0..6).rev().map(|i| enc.outputs.narrow(1, i, 1)).collect();
    let reversed = Tensor::concat(&rev.iter().collect::<Vec<_>>(), 1);
    let p = |c: &Controller, o: &Tensor| -> f64 {
        no_grad(|| {
            c.predictor
                .forward(&c.predictor_input(o, &encoder::embed(o)), None)
                .to_vec::<f64>()[0]
        })
    };
    assert_eq!(p(&mean, &enc.outputs), p(&mean, &reversed));
    assert_ne!(p(&concat, &enc.outputs), p(&concat, &reversed));
    let mut rng = Pcg64Mcg::seed_from_u64(2);
    let data: Vec<(Arch, f64)> = (0..30)
        .map(|i| (s.canonical(&s.sample(&mut rng)), i as f64 / 29.0))
        .collect();
    let mut c = concat;
    c.train(&data, 5, &mut rng, |_, _| {});
    let seeds: Vec<Arch> = data.iter().take(5).map(|d| d.0.clone()).collect();
    let seen: HashSet<Arch> = data.iter().map(|d| d.0.clone()).collect();
    let new = c.generate(&seeds, 5, &seen, 20);
    assert!(!new.is_empty());
    for (a, _) in &new {
        assert!(s.validate(a).is_ok() && !seen.contains(&s.canonical(a)));
    }
}

//! The child-CNN trainer on synthetic images: it learns, reports per epoch, is
//! reproducible from its seed, stops with an error on divergence; and the real-CIFAR
//! evidence (ignored by default; needs NAO_DATA_DIR).

use std::sync::Arc;

use datasets::{ChannelStats, synthetic};
use models::cnn::CnnConfig;
use models::space::{CnnSpace, SearchSpace, SpaceKind};
use models::train::{Recipe, TrainData, TrainError, train_cnn};

const ARCH: &str =
    "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 | 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";

fn tiny() -> CnnConfig {
    CnnConfig {
        space: SpaceKind::CnnWs,
        n_cells: 1,
        channels: 4,
        classes: 10,
        dropout_keep: 1.0,
        drop_path_keep: 1.0,
        aux_head: false,
    }
}

fn data(n: usize) -> TrainData {
    let set = Arc::new(synthetic::synthetic_images(n, 1));
    TrainData {
        train: set.clone(),
        eval: Arc::new(synthetic::synthetic_images(100, 2)),
        stats: ChannelStats::compute(&set),
    }
}

fn recipe(epochs: usize) -> Recipe {
    let mut r = Recipe::preset("smoke").unwrap().with_constant_lr(0.05);
    r.epochs = epochs;
    r.batch_size = 32;
    r
}

#[test]
fn learns_synthetic_images_and_reports_every_epoch() {
    let tokens = CnnSpace::WS.from_text(ARCH).unwrap();
    let (_, rep) = train_cnn(&tokens, &tiny(), &recipe(3), &data(320), 0, false).unwrap();
    assert_eq!(rep.epochs.len(), 3);
    assert!(
        rep.epochs[2].train_loss < rep.epochs[0].train_loss,
        "{:?}",
        rep.epochs
    );
    assert!(
        rep.final_eval_acc > 0.3,
        "eval accuracy {}",
        rep.final_eval_acc
    );
    let json = serde_json::to_string(&rep).unwrap();
    assert!(json.contains("\"recipe\"") && json.contains("\"smoke\""));
}

#[test]
fn same_seed_same_run_with_every_regulariser_on() {
    let tokens = CnnSpace::WS.from_text(ARCH).unwrap();
    let mut r = recipe(1);
    r.dropout_keep = 0.7;
    r.drop_path_keep = 0.6;
    r.cutout = Some(8);
    r.aux_weight = 0.4;
    let d = data(64);
    let a = train_cnn(&tokens, &tiny(), &r, &d, 9, false).unwrap().1;
    let b = train_cnn(&tokens, &tiny(), &r, &d, 9, false).unwrap().1;
    assert_eq!(a.epochs[0].train_loss, b.epochs[0].train_loss);
    assert_eq!(a.epochs[0].eval_acc, b.epochs[0].eval_acc);
    assert!(a.config.aux_head);
    let c = train_cnn(&tokens, &tiny(), &r, &d, 10, false).unwrap().1;
    assert_ne!(a.epochs[0].train_loss, c.epochs[0].train_loss);
}

#[test]
fn a_huge_learning_rate_stops_with_a_divergence_error() {
    let tokens = CnnSpace::WS.from_text(ARCH).unwrap();
    let mut r = recipe(3).with_constant_lr(1e6);
    r.grad_clip = None;
    let err = train_cnn(&tokens, &tiny(), &r, &data(320), 0, false).unwrap_err();
    match &err {
        TrainError::Diverged { loss, .. } => assert!(!loss.is_finite()),
        other => panic!("expected divergence, got {other}"),
    }
    assert!(err.to_string().contains("diverged"), "{err}");
}

#[test]
fn bad_setups_are_errors() {
    let tokens = CnnSpace::WS.from_text(ARCH).unwrap();
    let mut r = recipe(1);
    r.batch_size = 1000;
    assert!(matches!(
        train_cnn(&tokens, &tiny(), &r, &data(64), 0, false),
        Err(TrainError::Setup(_))
    ));
    assert!(matches!(
        train_cnn(&tokens[..10], &tiny(), &recipe(1), &data(64), 0, false),
        Err(TrainError::Arch(_))
    ));
}

/// Real CIFAR-10: N = 1, F = 8, 2 epochs on a 5,000-image subset; dev accuracy must be well
/// above chance (0.1). Run: `NAO_DATA_DIR=... cargo test --release -p models --test
/// cnn_train -- --ignored`.
#[test]
#[ignore = "trains on real CIFAR-10 for a few minutes; needs NAO_DATA_DIR"]
fn real_cifar_small_child_beats_chance() {
    let Ok(dir) = std::env::var("NAO_DATA_DIR") else {
        eprintln!("skipped: NAO_DATA_DIR not set");
        return;
    };
    let cifar = datasets::Cifar::cifar10(std::path::Path::new(&dir), &Default::default()).unwrap();
    let (train, dev) = cifar.train.split_dev(5000, 0).unwrap();
    let idx: Vec<usize> = (0..5000).collect();
    let d = TrainData {
        train: Arc::new(train.subset(&idx).unwrap()),
        eval: Arc::new(dev.subset(&(0..2000).collect::<Vec<_>>()).unwrap()),
        stats: ChannelStats::CIFAR10,
    };
    let cfg = CnnConfig {
        channels: 8,
        ..tiny()
    };
    let mut r = Recipe::preset("smoke").unwrap();
    r.epochs = 2;
    let tokens = CnnSpace::WS.from_text(ARCH).unwrap();
    let (_, rep) = train_cnn(&tokens, &cfg, &r, &d, 0, true).unwrap();
    assert!(
        rep.final_eval_acc > 0.25,
        "dev accuracy {}",
        rep.final_eval_acc
    );
}

/// `train_cnn_observed` hands over each epoch as it finishes, the same numbers the report
/// ends with, and trains exactly as `train_cnn` does.
#[test]
fn observed_training_reports_each_epoch_as_it_ends() {
    let tokens = CnnSpace::WS.from_text(ARCH).unwrap();
    let mut seen = Vec::new();
    let (_, rep) = models::train::train_cnn_observed(
        &tokens,
        &tiny(),
        &recipe(2),
        &data(96),
        5,
        false,
        &mut |e| seen.push(e.clone()),
    )
    .unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen, rep.epochs);
    let (_, plain) = train_cnn(&tokens, &tiny(), &recipe(2), &data(96), 5, false).unwrap();
    assert_eq!(
        plain
            .epochs
            .iter()
            .map(|e| e.train_loss)
            .collect::<Vec<_>>(),
        rep.epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>()
    );
}

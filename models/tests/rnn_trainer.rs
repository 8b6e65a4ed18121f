//! The PTB trainer on a small synthetic corpus: it learns, it is reproducible, presets
//! follow the spec, and a diverging run stops with an error that says so.

use models::rnn::RnnConfig;
use models::space::rnn::RnnCell;
use models::space::{RnnSpace, SearchSpace};
use models::train::ptb_recipe::PtbRecipe;
use models::train::rnn_trainer::{RnnReport, TrainError, train_rnn};

fn arch() -> RnnCell {
    let s = RnnSpace;
    s.decode(
        &s.from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2")
            .unwrap(),
    )
    .unwrap()
}

/// A corpus with strong sequential structure: a handful of fixed sentences in a
/// pseudo-random order.
fn corpus() -> datasets::Corpus {
    let sents = [
        "the cat sat on the mat",
        "a dog ran in the park",
        "the bird sang a song",
        "my cat ate the fish",
    ];
    let text = |n: usize, seed: usize| -> String {
        (0..n)
            .map(|i| sents[(i * 7 + seed + i / 3) % 4])
            .collect::<Vec<_>>()
            .join("\n")
    };
    datasets::Corpus::from_texts(&text(400, 0), &text(60, 1), &text(60, 2)).unwrap()
}

fn small_cfg() -> RnnConfig {
    RnnConfig {
        emb: 16,
        hidden: 16,
        ..RnnConfig::smoke(0)
    }
}

fn recipe(epochs: usize) -> PtbRecipe {
    PtbRecipe {
        batch: 8,
        eval_batch: 4,
        bptt: 10,
        epochs,
        max_train_windows: None,
        max_valid_windows: None,
        ..PtbRecipe::ptb_final()
    }
}

fn strip_times(mut r: RnnReport) -> RnnReport {
    r.epochs.iter_mut().for_each(|e| e.seconds = 0.0);
    r
}

#[test]
fn learns_the_synthetic_corpus_and_is_reproducible() {
    let c = corpus();
    let v = c.vocab.len() as f64;
    let r = train_rnn(&arch(), &small_cfg(), &recipe(4), &c, 3, false).unwrap();
    assert_eq!(r.epochs.len(), 4);
    let first = r.epochs[0].valid_ppl;
    let last = r.epochs.last().unwrap().valid_ppl;
    assert!(last < first && last < v / 2.0, "{:?}", r.epochs);
    assert!(r.epochs.iter().all(|e| e.train_loss.is_finite()));
    assert_eq!(
        r.best_valid_ppl,
        r.epochs
            .iter()
            .map(|e| e.valid_ppl)
            .fold(f64::INFINITY, f64::min)
    );
    let r2 = train_rnn(&arch(), &small_cfg(), &recipe(4), &c, 3, false).unwrap();
    assert_eq!(strip_times(r.clone()), strip_times(r2));
    let r3 = train_rnn(&arch(), &small_cfg(), &recipe(4), &c, 4, false).unwrap();
    assert_ne!(strip_times(r), strip_times(r3));
}

#[test]
fn a_diverging_run_stops_with_an_error_naming_the_loss() {
    let rec = PtbRecipe {
        lr: 1e30,
        clip: None,
        ..recipe(3)
    };
    let err = train_rnn(&arch(), &small_cfg(), &rec, &corpus(), 0, false).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("diverged") && (msg.contains("NaN") || msg.contains("inf")),
        "{msg}"
    );
}

#[test]
fn invalid_recipe_and_config_are_errors() {
    let bad = PtbRecipe {
        batch: 0,
        ..recipe(1)
    };
    let e = train_rnn(&arch(), &small_cfg(), &bad, &corpus(), 0, false).unwrap_err();
    assert!(e.to_string().contains("batch"), "{e}");
    let untied = RnnConfig {
        hidden: 17,
        ..small_cfg()
    };
    let e = train_rnn(&arch(), &untied, &recipe(1), &corpus(), 0, false).unwrap_err();
    assert!(e.to_string().contains("tied"), "{e}");
}

#[test]
fn recipe_presets_follow_the_spec() {
    let s = PtbRecipe::preset("ptb-search").unwrap();
    assert_eq!(
        (
            s.lr,
            s.clip,
            s.weight_decay,
            s.bptt,
            s.batch,
            s.eval_batch,
            s.epochs,
            s.asgd
        ),
        (0.25, Some(10.0), 5e-7, 35, 256, 256, 1000, false)
    );
    let f = PtbRecipe::preset("ptb-final").unwrap();
    assert_eq!(
        (
            f.lr,
            f.clip,
            f.weight_decay,
            f.batch,
            f.epochs,
            f.asgd,
            f.nonmono
        ),
        (20.0, Some(0.25), 8e-7, 64, 4000, true, 5)
    );
    for name in PtbRecipe::PRESETS {
        let r = PtbRecipe::preset(name).unwrap();
        r.validate().unwrap();
        let back: PtbRecipe = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
    assert!(PtbRecipe::preset("nope").is_none());
}

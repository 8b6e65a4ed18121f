//! Real PTB (reads `NAO_DATA_DIR`; prints "skipped" when unset): a small child RNN
//! (emb = hid = 64) trained for 300 windows must bring validation perplexity far below
//! the vocabulary size.

use models::rnn::RnnConfig;
use models::space::{RnnSpace, SearchSpace};
use models::train::ptb_recipe::PtbRecipe;
use models::train::rnn_trainer::train_rnn;

#[test]
fn small_rnn_learns_ptb() {
    let Some(dir) = std::env::var_os("NAO_DATA_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("skipped: NAO_DATA_DIR not set");
        return;
    };
    let corpus = datasets::Corpus::ptb(std::path::Path::new(&dir)).unwrap();
    assert_eq!(corpus.vocab.len(), 10_000);
    let s = RnnSpace;
    let arch = s
        .decode(
            &s.from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2")
                .unwrap(),
        )
        .unwrap();
    let r = train_rnn(
        &arch,
        &RnnConfig::smoke(10_000),
        &PtbRecipe::smoke(),
        &corpus,
        0,
        true,
    )
    .unwrap();
    for e in &r.epochs {
        eprintln!(
            "epoch {}: train ppl {:.1}, valid ppl {:.1} ({:.1}s)",
            e.epoch, e.train_ppl, e.valid_ppl, e.seconds
        );
    }
    let ppl: Vec<f64> = r.epochs.iter().map(|e| e.valid_ppl).collect();
    assert!(ppl.windows(2).all(|w| w[1] < w[0]), "{ppl:?}");
    assert!(*ppl.last().unwrap() < 1000.0, "{ppl:?}");
}

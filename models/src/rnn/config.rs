//! [`RnnConfig`]: the sizes and regularisation of the child RNN language model, with the
//! spec's PTB presets (spec 8.2 search, 8.3 final training).

use serde::{Deserialize, Serialize};

/// Sizes and regularisation of a [`crate::rnn::RnnLanguageModel`].
///
/// Dropout fields are *drop* probabilities (as in the PyTorch recipes): `0.75` keeps a
/// quarter of the units.
///
/// ```
/// use models::rnn::RnnConfig;
/// let c = RnnConfig::ptb_search();
/// assert_eq!((c.emb, c.hidden, c.vocab), (300, 300, 10_000));
/// assert_eq!(RnnConfig::ptb_final().hidden, 850);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RnnConfig {
    /// Embedding size (equals `hidden`: the embedding is tied to the softmax weights).
    pub emb: usize,
    /// Hidden (state) size.
    pub hidden: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Locked dropout on the cell outputs before the decoder.
    pub dropout: f64,
    /// Variational dropout on `h[t-1]` and on every state fed to a node's weights.
    pub dropouth: f64,
    /// Variational dropout on `x[t]` where it enters the cell.
    pub dropoutx: f64,
    /// Locked dropout on the embeddings.
    pub dropouti: f64,
    /// Word-level dropout: whole rows of the embedding matrix.
    pub dropoute: f64,
    /// Temporal activation regularisation `β · mean((h[t] - h[t-1])²)`.
    pub tar_beta: f64,
}

impl RnnConfig {
    /// Spec 8.2 (NAO-WS PTB search): emb = hid = 300, dropouts 0.75 / 0.25 / 0.75 / 0.2 / 0
    /// (output / h / x / input / embedding), β = 1e-3, vocab 10,000.
    pub fn ptb_search() -> RnnConfig {
        RnnConfig {
            emb: 300,
            hidden: 300,
            vocab: 10_000,
            dropout: 0.75,
            dropouth: 0.25,
            dropoutx: 0.75,
            dropouti: 0.2,
            dropoute: 0.0,
            tar_beta: 1e-3,
        }
    }

    /// Spec 8.3 (final PTB training, DARTS recipe): emb = hid = 850, same dropouts and β.
    pub fn ptb_final() -> RnnConfig {
        RnnConfig {
            emb: 850,
            hidden: 850,
            ..RnnConfig::ptb_search()
        }
    }

    /// A small model for smoke runs and tests: emb = hid = 64, light dropouts.
    pub fn smoke(vocab: usize) -> RnnConfig {
        RnnConfig {
            emb: 64,
            hidden: 64,
            vocab,
            dropout: 0.2,
            dropouth: 0.1,
            dropoutx: 0.1,
            dropouti: 0.1,
            dropoute: 0.0,
            tar_beta: 1e-3,
        }
    }

    /// A preset by name: `ptb-search`, `ptb-final` or `smoke` (vocab 10,000).
    pub fn preset(name: &str) -> Option<RnnConfig> {
        match name {
            "ptb-search" => Some(RnnConfig::ptb_search()),
            "ptb-final" => Some(RnnConfig::ptb_final()),
            "smoke" => Some(RnnConfig::smoke(10_000)),
            _ => None,
        }
    }

    /// The same config with another vocabulary size (the corpus decides it).
    pub fn with_vocab(self, vocab: usize) -> RnnConfig {
        RnnConfig { vocab, ..self }
    }

    /// Checks that sizes are positive, `emb == hidden` (tied weights) and every dropout is
    /// in `[0, 1)`; the error says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.emb == 0 || self.hidden == 0 || self.vocab == 0 {
            return Err(format!(
                "emb ({}), hidden ({}) and vocab ({}) must be positive",
                self.emb, self.hidden, self.vocab
            ));
        }
        if self.emb != self.hidden {
            return Err(format!(
                "emb ({}) must equal hidden ({}): the embedding is tied to the softmax weights",
                self.emb, self.hidden
            ));
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("dropouth", self.dropouth),
            ("dropoutx", self.dropoutx),
            ("dropouti", self.dropouti),
            ("dropoute", self.dropoute),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} = {p} must be in [0, 1)"));
            }
        }
        if !self.tar_beta.is_finite() || self.tar_beta < 0.0 {
            return Err(format!("tar_beta = {} must be >= 0", self.tar_beta));
        }
        Ok(())
    }
}

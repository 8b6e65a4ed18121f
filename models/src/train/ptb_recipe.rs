//! [`PtbRecipe`]: how a child RNN language model is trained on PTB, as serde data, with
//! the spec's presets (8.2 search, 8.3 final training) and a quick smoke recipe.

use serde::{Deserialize, Serialize};

/// A PTB training recipe (AWD-LSTM / DARTS style): SGD with a constant learning rate
/// scaled per window by `seq_len / bptt`, gradient clipping, weight decay, random BPTT
/// lengths, and optionally the switch to averaged SGD (ASGD) when validation stalls.
///
/// ```
/// use models::train::ptb_recipe::PtbRecipe;
/// let r = PtbRecipe::preset("ptb-final").unwrap();
/// assert_eq!((r.lr, r.batch, r.nonmono, r.asgd), (20.0, 64, 5, true));
/// let json = serde_json::to_string(&r).unwrap();
/// assert_eq!(serde_json::from_str::<PtbRecipe>(&json).unwrap(), r);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtbRecipe {
    /// Base SGD learning rate (multiplied by `seq_len / bptt` for each window).
    pub lr: f64,
    /// Clip the global gradient norm to this (`None`: no clipping).
    pub clip: Option<f64>,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
    /// Nominal BPTT length.
    pub bptt: usize,
    /// Draw window lengths around `bptt` (AWD-LSTM); `false`: fixed `bptt`.
    pub random_bptt: bool,
    /// Training batch size (parallel streams).
    pub batch: usize,
    /// Validation batch size.
    pub eval_batch: usize,
    /// Epochs (passes over the training stream).
    pub epochs: usize,
    /// Switch to averaged SGD when validation is worse than the best of all but the last
    /// `nonmono` evaluations.
    pub asgd: bool,
    /// The non-monotone window of the ASGD switch (5 in AWD-LSTM/DARTS).
    pub nonmono: usize,
    /// Stop each epoch after this many training windows (`None`: the whole stream).
    pub max_train_windows: Option<usize>,
    /// Evaluate on at most this many validation windows (`None`: the whole stream).
    pub max_valid_windows: Option<usize>,
}

impl PtbRecipe {
    /// Spec 8.2 (NAO-WS search child training): SGD lr 0.25 (constant), clip 10, wd 5e-7,
    /// bptt 35 (random lengths), batch 256, eval batch 256, 1000 epochs, no ASGD.
    pub fn ptb_search() -> PtbRecipe {
        PtbRecipe {
            lr: 0.25,
            clip: Some(10.0),
            weight_decay: 5e-7,
            bptt: 35,
            random_bptt: true,
            batch: 256,
            eval_batch: 256,
            epochs: 1000,
            asgd: false,
            nonmono: 5,
            max_train_windows: None,
            max_valid_windows: None,
        }
    }

    /// Spec 8.3 (final PTB training, DARTS recipe): SGD lr 20, clip 0.25, wd 8e-7, bptt 35
    /// (random lengths), batch 64, eval batch 10, 4000 epochs, ASGD with nonmono 5.
    pub fn ptb_final() -> PtbRecipe {
        PtbRecipe {
            lr: 20.0,
            clip: Some(0.25),
            weight_decay: 8e-7,
            bptt: 35,
            random_bptt: true,
            batch: 64,
            eval_batch: 10,
            epochs: 4000,
            asgd: true,
            nonmono: 5,
            max_train_windows: None,
            max_valid_windows: None,
        }
    }

    /// A few minutes on a laptop: the final recipe's optimiser with batch 32, bptt 20,
    /// 3 epochs of 100 windows, validation on 50 windows.
    pub fn smoke() -> PtbRecipe {
        PtbRecipe {
            batch: 32,
            eval_batch: 32,
            bptt: 20,
            epochs: 3,
            max_train_windows: Some(100),
            max_valid_windows: Some(50),
            ..PtbRecipe::ptb_final()
        }
    }

    /// A preset by name: `ptb-search`, `ptb-final` or `smoke`.
    pub fn preset(name: &str) -> Option<PtbRecipe> {
        match name {
            "ptb-search" => Some(PtbRecipe::ptb_search()),
            "ptb-final" => Some(PtbRecipe::ptb_final()),
            "smoke" => Some(PtbRecipe::smoke()),
            _ => None,
        }
    }

    /// The preset names.
    pub const PRESETS: [&'static str; 3] = ["ptb-search", "ptb-final", "smoke"];

    /// Checks the numbers; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("lr = {} must be positive", self.lr));
        }
        if let Some(c) = self.clip
            && !(c.is_finite() && c > 0.0)
        {
            return Err(format!("clip = {c} must be positive"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!("weight_decay = {} must be >= 0", self.weight_decay));
        }
        for (name, v) in [
            ("bptt", self.bptt),
            ("batch", self.batch),
            ("eval_batch", self.eval_batch),
            ("nonmono", self.nonmono),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

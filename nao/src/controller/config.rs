//! Controller sizes and training settings (spec 3.5), per search space.

use models::space::{SearchSpace, SpaceKind};
use serde::{Deserialize, Serialize};

/// Sizes of the encoder, predictor and decoder, and how the controller trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// Token values, `<sos>` included.
    pub vocab: usize,
    /// Tokens per architecture (the decoder length).
    pub seq_len: usize,
    /// Tokens grouped into one encoder step (one CNN branch, one RNN node).
    pub tokens_per_step: usize,
    /// Token embedding width of the encoder; `emb * tokens_per_step == hidden`.
    pub emb: usize,
    /// LSTM width of encoder and decoder.
    pub hidden: usize,
    /// Hidden layers of the predictor MLP.
    pub mlp_layers: usize,
    /// Width of each predictor hidden layer.
    pub mlp_hidden: usize,
    /// Dropout probability after each predictor hidden layer (training only).
    pub mlp_dropout: f64,
    /// Weight of the prediction loss: `lambda * MSE + (1 - lambda) * CE`.
    pub lambda: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam L2 weight decay.
    pub weight_decay: f64,
    /// Clip gradients to this global norm.
    pub grad_clip: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Epochs per training round.
    pub epochs: usize,
    /// Weight of the pairwise ranking loss added to the joint loss (0 = off, the spec):
    /// `+ rank_weight * mean over ordered pairs of max(0, RANK_MARGIN - sign(y_i - y_j)
    /// (p_i - p_j))`, the hinge ranking loss of GATES (Ning et al., ECCV 2020).
    #[serde(default)]
    pub rank_weight: f64,
    /// What the predictor reads: the architecture embedding (the spec: the normalised mean
    /// of the normalised encoder outputs) or all the normalised encoder outputs side by
    /// side (`steps * hidden` wide), which keeps which step holds what.
    #[serde(default)]
    pub predictor_input: PredictorInput,
}

/// What the predictor MLP reads ([`ControllerConfig::predictor_input`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorInput {
    /// The architecture embedding (spec 3.2).
    #[default]
    Mean,
    /// The normalised encoder outputs of every step, concatenated.
    Concat,
}

/// Margin of the pairwise hinge ranking loss, in normalised-label units.
pub const RANK_MARGIN: f64 = 0.1;

impl ControllerConfig {
    /// The spec's sizes for a space: CNN as "CIFAR-10 WS (PT-V1 defaults)" (emb 48, hidden 96,
    /// MLP 3 x 200, dropout 0.1), RNN as "PTB WS" (MLP 4 x 200, no dropout); NB201 uses the CNN
    /// settings with one token per step (emb 96).
    pub fn for_space(space: &dyn SearchSpace) -> ControllerConfig {
        let hidden = 96;
        let tps = space.tokens_per_step();
        let (mlp_layers, mlp_dropout) = match space.kind() {
            SpaceKind::Rnn => (4, 0.0),
            _ => (3, 0.1),
        };
        ControllerConfig {
            vocab: space.vocab_size(),
            seq_len: space.seq_len(),
            tokens_per_step: tps,
            emb: hidden / tps,
            hidden,
            mlp_layers,
            mlp_hidden: 200,
            mlp_dropout,
            lambda: 0.8,
            lr: 1e-3,
            weight_decay: 1e-4,
            grad_clip: 5.0,
            batch_size: 100,
            epochs: 1000,
            rank_weight: 0.0,
            predictor_input: PredictorInput::Mean,
        }
    }

    /// Number of encoder steps (`seq_len / tokens_per_step`).
    pub fn enc_steps(&self) -> usize {
        self.seq_len / self.tokens_per_step
    }
}

//! The settings of a NAO-WS run ([`super::ws`]): the loop's ([`WsConfig`]) and the run
//! directory's `config.json` ([`WsSearchConfig`]). Apart from the loop so that its report
//! ([`super::ws_report`]) does not import the loop that calls it.

use models::space::SpaceKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::nao_config::{LabelScale, NaoConfig};

/// Settings of the NAO-WS loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsConfig {
    /// Controller and generation settings: `initial` is the pool size, `per_round` the
    /// new architectures per generation, `top_k` the seeds, `max_eta`, `surrogate`,
    /// `labels`, ... as in NAO.
    pub nao: NaoConfig,
    /// Epochs of shared-weight training in all.
    pub epochs: usize,
    /// Epochs between evaluations of the pool (spec: 30 of 150, so 5 evaluations and 4
    /// generations).
    pub eval_every: usize,
}

impl WsConfig {
    /// The controller settings the `--ws` presets use: the paper's Algorithm 1
    /// ([`NaoConfig::paper`], min-max labels) with a pool of `pool`, `per_round` new
    /// architectures a round from the top `top_k`, steps up to `max_eta`, the given
    /// `surrogate` and 64 reconstruction samples.
    pub fn preset_nao(
        pool: usize,
        per_round: usize,
        top_k: usize,
        max_eta: usize,
        surrogate: &str,
    ) -> NaoConfig {
        NaoConfig {
            initial: pool,
            per_round,
            top_k,
            max_eta,
            recon_sample: 64,
            surrogate: surrogate.into(),
            labels: LabelScale::MinMax,
            ..NaoConfig::paper(0)
        }
    }

    /// Rounds (evaluations of the pool): `ceil(epochs / eval_every)`.
    pub fn rounds(&self) -> usize {
        self.epochs.div_ceil(self.eval_every.max(1))
    }

    /// Checks the numbers; the error names the setting.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.epochs == 0 || self.eval_every == 0 {
            return Err(format!(
                "epochs ({}) and eval_every ({}) must be positive",
                self.epochs, self.eval_every
            ));
        }
        if self.nao.initial < 2 {
            return Err(format!(
                "the pool (nao.initial) needs at least 2 architectures, got {}",
                self.nao.initial
            ));
        }
        if self.nao.per_round >= self.nao.initial {
            return Err(format!(
                "per_round ({}) must be smaller than the pool ({})",
                self.nao.per_round, self.nao.initial
            ));
        }
        Ok(())
    }
}

/// `config.json` of a NAO-WS run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsSearchConfig {
    /// The search space.
    pub space: SpaceKind,
    /// The loop's settings.
    pub ws: WsConfig,
    /// The seed of the run's generator.
    pub seed: u64,
    /// What the shared weights are (from [`SharedWeights::describe`](super::ws::SharedWeights::describe) plus the caller's
    /// settings); compared on `--resume`.
    pub shared: Value,
}

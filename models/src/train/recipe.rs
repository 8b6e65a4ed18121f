//! [`Recipe`]: how a child CNN is trained, as data (spec 6.3).

use autograd::optim::schedule::{Constant, CosineAnnealing, CosineWarmRestarts, LrSchedule};
use autograd::optim::{Optimizer, Sgd};
use serde::{Deserialize, Serialize};

/// The optimiser of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerSpec {
    /// SGD with (optionally Nesterov) momentum and L2 weight decay (added to the gradient,
    /// equivalent to TF's `wd * sum ||w||^2 / 2` over all variables, BN included).
    Sgd {
        /// Momentum factor.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// Weight decay coefficient.
        weight_decay: f64,
    },
}

impl OptimizerSpec {
    /// A fresh optimiser starting at learning rate `lr`.
    pub fn build(&self, lr: f64) -> Box<dyn Optimizer> {
        match *self {
            OptimizerSpec::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => Box::new(
                Sgd::new(lr)
                    .with_momentum(momentum)
                    .with_nesterov(nesterov)
                    .with_weight_decay(weight_decay),
            ),
        }
    }
}

/// A training recipe: everything about how a child network is trained, none of what it is.
///
/// The learning-rate schedule is indexed by **epoch** (the rate is set at the start of each
/// epoch, as both reference implementations do). Augmentation is always pad 4 + random crop
/// + horizontal flip, plus cutout when `cutout` is set.
///
/// ```
/// use models::train::Recipe;
/// let r = Recipe::preset("nao-final").unwrap();
/// assert_eq!((r.epochs, r.batch_size, r.cutout, r.aux_weight), (600, 128, Some(16), 0.4));
/// let json = serde_json::to_string(&r).unwrap();
/// assert_eq!(serde_json::from_str::<Recipe>(&json).unwrap(), r);
/// assert!(Recipe::preset("nope").unwrap_err().contains("smoke"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// The preset's name (or anything for a custom recipe).
    pub name: String,
    /// Where the numbers come from (the spec row).
    pub source: String,
    /// Optimiser.
    pub optimizer: OptimizerSpec,
    /// Learning rate per epoch.
    pub lr_schedule: LrSchedule,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per mini-batch.
    pub batch_size: usize,
    /// Clip gradients to this global L2 norm (`None`: no clipping).
    pub grad_clip: Option<f64>,
    /// Cutout square side (`None`: no cutout).
    pub cutout: Option<usize>,
    /// Weight of the auxiliary head's loss (0 = no auxiliary head).
    pub aux_weight: f64,
    /// Drop-path keep probability of the last cell (1 = off).
    pub drop_path_keep: f64,
    /// Keep probability of the dropout before the classifier (1 = off).
    pub dropout_keep: f64,
}

/// The names [`Recipe::preset`] knows.
pub const PRESETS: [&str; 7] = [
    "nao-search",
    "nao-final",
    "nao-final-c100",
    "nao-ws-final",
    "naonet-a-36",
    "workload-c",
    "smoke",
];

fn sgd(momentum: f64, nesterov: bool, weight_decay: f64) -> OptimizerSpec {
    OptimizerSpec::Sgd {
        momentum,
        nesterov,
        weight_decay,
    }
}

fn cosine(lr_max: f64, lr_min: f64, total: usize) -> LrSchedule {
    LrSchedule::Cosine(CosineAnnealing {
        lr_max,
        lr_min,
        total,
    })
}

impl Recipe {
    /// A named preset (see [`PRESETS`]); the error lists the known names.
    ///
    /// * `nao-search`: spec 6.3 "[TF-NAO] search": 25 epochs, batch 128, SGD momentum 0.9,
    ///   cosine 0.024 -> 0 with period 100 epochs (only the first quarter used), wd 5e-4,
    ///   drop-path keep 0.7, no dropout, aux head 0.4, no cutout, clip 5.
    /// * `nao-final`: "[TF-NAO] final CIFAR-10": 600 epochs, batch 128, cosine 0.024 -> 0
    ///   over 600, wd 5e-4, drop-path 0.7, dropout keep 0.6, aux 0.4, cutout 16, clip 5.
    /// * `nao-final-c100`: "[TF-NAO] final CIFAR-100" (the paper's transfer of the found
    ///   cell): as `nao-final` but drop-path keep 0.6 and dropout keep 0.8 (the network:
    ///   N = 6, F = 128, 100 classes).
    /// * `nao-ws-final`: "[TF-WS] NAONet-WS final": 630 epochs, batch 144, Nesterov 0.9,
    ///   warm restarts 0.05 -> 1e-4 (T_0 10, T_mul 2), wd 2e-4, drop-path 0.6, dropout keep
    ///   0.8, aux 0.4, no cutout, clip 5.
    /// * `naonet-a-36`: "[PT-V1] NAONet-A-36": 600 epochs, batch 128, cosine 0.025 -> 0,
    ///   wd 3e-4, drop-path 0.8, dropout keep 0.6, aux 0.4, cutout 16, clip 5.
    /// * `workload-c`: the peer's workload C (`nasnet_child.py`, [PT-V1] `train_cifar.py`
    ///   defaults): lr 0.025 cosine, momentum 0.9, wd 3e-4, clip 5, dropout keep 0.6,
    ///   drop-path 0.8, no aux, batch 64; 600 epochs.
    /// * `smoke`: not from the paper: 2 epochs, batch 64, cosine 0.05 -> 0, momentum 0.9,
    ///   wd 3e-4, clip 5, no dropout, no drop-path, no aux, no cutout (quick checks).
    pub fn preset(name: &str) -> Result<Recipe, String> {
        let r = |source: &str,
                 optimizer,
                 lr_schedule,
                 epochs,
                 batch_size,
                 cutout,
                 aux_weight,
                 drop_path_keep,
                 dropout_keep| Recipe {
            name: name.to_string(),
            source: source.to_string(),
            optimizer,
            lr_schedule,
            epochs,
            batch_size,
            grad_clip: Some(5.0),
            cutout,
            aux_weight,
            drop_path_keep,
            dropout_keep,
        };
        Ok(match name {
            "nao-search" => r(
                "spec 6.3 [TF-NAO] search",
                sgd(0.9, false, 5e-4),
                cosine(0.024, 0.0, 100),
                25,
                128,
                None,
                0.4,
                0.7,
                1.0,
            ),
            "nao-final" => r(
                "spec 6.3 [TF-NAO] final CIFAR-10",
                sgd(0.9, false, 5e-4),
                cosine(0.024, 0.0, 600),
                600,
                128,
                Some(16),
                0.4,
                0.7,
                0.6,
            ),
            "nao-final-c100" => r(
                "spec 6.3 [TF-NAO] final CIFAR-100",
                sgd(0.9, false, 5e-4),
                cosine(0.024, 0.0, 600),
                600,
                128,
                Some(16),
                0.4,
                0.6,
                0.8,
            ),
            "nao-ws-final" => r(
                "spec 6.3 [TF-WS] NAONet-WS final",
                sgd(0.9, true, 2e-4),
                LrSchedule::WarmRestarts(CosineWarmRestarts {
                    lr_max: 0.05,
                    lr_min: 1e-4,
                    t0: 10,
                    t_mul: 2,
                }),
                630,
                144,
                None,
                0.4,
                0.6,
                0.8,
            ),
            "naonet-a-36" => r(
                "spec 6.3 [PT-V1] NAONet-A-36",
                sgd(0.9, false, 3e-4),
                cosine(0.025, 0.0, 600),
                600,
                128,
                Some(16),
                0.4,
                0.8,
                0.6,
            ),
            "workload-c" => r(
                "bench peer nasnet_child.py ([PT-V1] train_cifar.py defaults)",
                sgd(0.9, false, 3e-4),
                cosine(0.025, 0.0, 600),
                600,
                64,
                None,
                0.0,
                0.8,
                0.6,
            ),
            "smoke" => r(
                "none (quick checks)",
                sgd(0.9, false, 3e-4),
                cosine(0.05, 0.0, 2),
                2,
                64,
                None,
                0.0,
                1.0,
                1.0,
            ),
            other => {
                return Err(format!(
                    "unknown recipe '{other}'; presets are {}",
                    PRESETS.join(", ")
                ));
            }
        })
    }

    /// The same recipe with a constant learning rate `lr` (for experiments and tests).
    pub fn with_constant_lr(mut self, lr: f64) -> Recipe {
        self.lr_schedule = LrSchedule::Constant(Constant { lr });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::optim::Schedule;

    #[test]
    fn every_preset_builds_and_round_trips() {
        for name in PRESETS {
            let r = Recipe::preset(name).unwrap();
            assert_eq!(r.name, name);
            let back: Recipe = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back, r);
            assert!(r.lr_schedule.lr(0) > 0.0);
            let _ = r.optimizer.build(r.lr_schedule.lr(0));
        }
        let ws = Recipe::preset("nao-ws-final").unwrap();
        assert!((ws.lr_schedule.lr(10) - 0.05).abs() < 1e-12);
    }
}

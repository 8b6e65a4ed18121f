//! The controller as the NAO search's [`Surrogate`].

use super::{Controller, ControllerConfig};
use crate::search::surrogate::{FitStats, Surrogate, SurrogateError};
use autograd::nn::{Module, load_params, save_params};
use autograd::optim::Optimizer;
use autograd::{DType, Device};
use models::space::{Arch, SpaceKind, space};
use rand::RngExt;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// A [`Controller`] created on the first [`fit`](Surrogate::fit), with its initial weights
/// drawn from the search's generator, and trained for `epochs` each round (continuing from
/// the previous round's weights and optimiser state, as NAO-WS does).
///
/// The controller lives on the surrogate's device: by default the process's training
/// device ([`models::train::device::training_device`], which the CLI's `--device` sets), so
/// `--device cuda` trains the controller on the GPU as well as the child networks.
pub struct ControllerSurrogate {
    kind: SpaceKind,
    cfg: ControllerConfig,
    controller: Option<Controller>,
    init_seed: u64,
    device: Device,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    init_seed: u64,
    initialised: bool,
}

impl ControllerSurrogate {
    /// A surrogate for `kind` that trains `epochs` per round.
    pub fn new(kind: SpaceKind, epochs: usize) -> ControllerSurrogate {
        let mut cfg = ControllerConfig::for_space(space(kind).as_ref());
        cfg.epochs = epochs;
        ControllerSurrogate {
            kind,
            cfg,
            controller: None,
            init_seed: 0,
            device: models::train::device::training_device(),
        }
    }

    /// The same surrogate with its controller on `device` instead.
    pub fn with_device(mut self, device: Device) -> ControllerSurrogate {
        self.device = device;
        self
    }

    /// A fresh controller with initial weights from `seed`, on the CPU (parameters and
    /// optimiser state load there; [`Self::to_device`] moves it).
    fn build(&self, seed: u64) -> Controller {
        Controller::new(self.kind, self.cfg.clone(), DType::F32, seed)
    }

    /// Moves `c` to the surrogate's device (an f32 controller onto a device that was opened
    /// fails only for a broken device).
    fn to_device(&self, c: Controller) -> Controller {
        c.to_device(&self.device)
            .unwrap_or_else(|e| panic!("moving the controller to {}: {e}", self.device));
        c
    }

    fn controller(&self) -> &Controller {
        self.controller
            .as_ref()
            .expect("the controller is created by the first fit")
    }
}

impl Surrogate for ControllerSurrogate {
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "name": "nao", "controller": self.cfg })
    }

    fn fit(&mut self, data: &[(Arch, f64)], rng: &mut Pcg64Mcg) -> FitStats {
        if self.controller.is_none() {
            self.init_seed = rng.random();
            self.controller = Some(self.to_device(self.build(self.init_seed)));
        }
        let c = self.controller.as_mut().unwrap();
        let history = c.train(data, self.cfg.epochs, rng, |_, _| {});
        history
            .last()
            .map(|l| FitStats {
                mse: l.mse,
                ce: l.ce,
            })
            .unwrap_or_default()
    }

    fn predict(&self, archs: &[Arch]) -> Vec<f64> {
        self.controller().predict(archs)
    }

    fn reconstruct(&self, archs: &[Arch]) -> Vec<Arch> {
        self.controller().reconstruct(archs)
    }

    fn generate(
        &self,
        seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        max_eta: usize,
    ) -> Vec<(Arch, f64)> {
        self.controller().generate(seeds, how_many, seen, max_eta)
    }

    fn save(&self, dir: &Path) -> Result<(), SurrogateError> {
        let meta = Meta {
            init_seed: self.init_seed,
            initialised: self.controller.is_some(),
        };
        std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta)?)?;
        if let Some(c) = &self.controller {
            save_params(dir.join("controller.params"), &c.params())?;
            c.optimizer_ref()
                .save_state_file(&dir.join("optimizer.state"))?;
        }
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<(), SurrogateError> {
        let meta: Meta = serde_json::from_slice(&std::fs::read(dir.join("meta.json"))?)?;
        self.init_seed = meta.init_seed;
        if !meta.initialised {
            self.controller = None;
            return Ok(());
        }
        let mut c = self.build(meta.init_seed);
        let params = c.params();
        load_params(dir.join("controller.params"), &params)?;
        c.optimizer()
            .load_state_file(&dir.join("optimizer.state"), &params)?;
        self.controller = Some(self.to_device(c));
        Ok(())
    }
}

//! The controller as the NAO search's [`Surrogate`].

use super::{Controller, ControllerConfig, Generation, PredictorInput};
use crate::search::surrogate::{FitStats, Surrogate, SurrogateError};
use autograd::nn::{Module, load_params, save_params};
use autograd::optim::Optimizer;
use autograd::{DType, Device};
use models::space::{Arch, SpaceKind, space};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// How the controller surrogate is built and trained (the `surrogate` part of NAO's
/// settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurrogateOptions {
    /// Controller training epochs per round.
    pub epochs: usize,
    /// Controllers in the ensemble (1 = the spec's single controller). Each has its own
    /// initial weights and shuffles; predictions are their mean (and their spread the
    /// uncertainty); each moves the seeds along its own predictor's gradient and decodes
    /// with its own decoder.
    pub ensemble: usize,
    /// Weight of the pairwise hinge ranking loss (0 = off, the spec).
    pub rank_weight: f64,
    /// Noise added to each gradient step in generation
    /// ([`Controller::move_and_decode_with`]; 0 = the spec).
    pub noise: f64,
    /// Sampling temperature of the decoder in generation
    /// ([`Controller::move_and_decode_with`]; 0 = greedy, the spec).
    #[serde(default)]
    pub temperature: f64,
    /// Step-size increment of generation ([`Controller::generate_with`]; 1 = the spec).
    pub eta_step: f64,
    /// Re-initialise the controllers (new weights from the run's generator, fresh
    /// optimiser) at every [`fit`](Surrogate::fit) instead of continuing training.
    pub fresh: bool,
    /// What the predictor reads ([`ControllerConfig::predictor_input`]).
    #[serde(default)]
    pub predictor_input: PredictorInput,
}

impl SurrogateOptions {
    /// The spec's single controller, trained `epochs` per round, without ranking loss.
    pub fn spec(epochs: usize) -> SurrogateOptions {
        SurrogateOptions {
            epochs,
            ensemble: 1,
            rank_weight: 0.0,
            noise: 0.0,
            temperature: 0.0,
            eta_step: 1.0,
            fresh: false,
            predictor_input: PredictorInput::Mean,
        }
    }
}

/// An ensemble of [`Controller`]s (one, as the spec, by default) created on the first
/// [`fit`](Surrogate::fit), with initial weights drawn from the search's generator, and
/// trained for `epochs` each round (continuing from the previous round's weights and
/// optimiser state, as NAO-WS does).
///
/// The controllers live on the surrogate's device: the CPU unless [`Self::with_device`]
/// names another. There is no process-wide device: a search passes the one the CLI's
/// `--device` opened ([`crate::search::surrogate::build_surrogate`]), so `--device cuda`
/// trains the controller on the GPU as well as the child networks.
pub struct ControllerSurrogate {
    kind: SpaceKind,
    cfg: ControllerConfig,
    ensemble: usize,
    noise: f64,
    temperature: f64,
    eta_step: f64,
    fresh: bool,
    pub(crate) members: Vec<Controller>,
    pub(crate) init_seeds: Vec<u64>,
    device: Device,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    /// The first member's seed (the only one before ensembles existed).
    init_seed: u64,
    initialised: bool,
    /// Every member's seed.
    #[serde(default)]
    pub(crate) init_seeds: Vec<u64>,
}

/// Parameter and optimiser file names of ensemble member `i` (member 0 keeps the names of
/// single-controller checkpoints).
fn member_files(i: usize) -> (String, String) {
    if i == 0 {
        ("controller.params".into(), "optimizer.state".into())
    } else {
        (
            format!("controller-{i}.params"),
            format!("optimizer-{i}.state"),
        )
    }
}

impl ControllerSurrogate {
    /// A single controller for `kind` that trains `epochs` per round, on the CPU
    /// ([`Self::with_device`] for another device).
    pub fn new(kind: SpaceKind, epochs: usize) -> ControllerSurrogate {
        Self::with_options(kind, &SurrogateOptions::spec(epochs))
    }

    /// A surrogate for `kind` as `opts` say, on the CPU ([`Self::with_device`] for another
    /// device).
    pub fn with_options(kind: SpaceKind, opts: &SurrogateOptions) -> ControllerSurrogate {
        let mut cfg = ControllerConfig::for_space(space(kind).as_ref());
        cfg.epochs = opts.epochs;
        cfg.rank_weight = opts.rank_weight;
        cfg.predictor_input = opts.predictor_input;
        ControllerSurrogate {
            kind,
            cfg,
            ensemble: opts.ensemble.max(1),
            noise: opts.noise,
            temperature: opts.temperature,
            eta_step: opts.eta_step,
            fresh: opts.fresh,
            members: Vec::new(),
            init_seeds: Vec::new(),
            device: Device::Cpu,
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

    /// Creates the controllers (initial weights from seeds drawn from `rng`) unless they
    /// exist.
    fn create_members(&mut self, rng: &mut Pcg64Mcg) {
        if self.members.is_empty() {
            self.init_seeds = (0..self.ensemble).map(|_| rng.random()).collect();
            self.members = self
                .init_seeds
                .iter()
                .map(|&s| self.to_device(self.build(s)))
                .collect();
        }
    }

    fn first(&self) -> &Controller {
        self.members
            .first()
            .expect("the controller is created by the first fit")
    }
}

/// One generator per member, drawn in order from the run's: the members train in parallel
/// and the result does not depend on the thread count.
fn member_rngs(n: usize, rng: &mut Pcg64Mcg) -> Vec<Pcg64Mcg> {
    (0..n)
        .map(|_| Pcg64Mcg::seed_from_u64(rng.random()))
        .collect()
}

impl Surrogate for ControllerSurrogate {
    fn temperature(&self) -> Option<f64> {
        Some(self.temperature)
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "name": "nao",
            "ensemble": self.ensemble,
            "noise": self.noise,
            "temperature": self.temperature,
            "eta_step": self.eta_step,
            "fresh": self.fresh,
            "controller": self.cfg,
        })
    }

    fn fit(&mut self, data: &[(Arch, f64)], rng: &mut Pcg64Mcg) -> FitStats {
        self.fit_epochs(data, self.cfg.epochs, rng)
    }

    fn pretrain(&mut self, archs: &[Arch], epochs: usize, rng: &mut Pcg64Mcg) {
        self.create_members(rng);
        let mut rngs = member_rngs(self.members.len(), rng);
        self.members
            .par_iter_mut()
            .zip(rngs.par_iter_mut())
            .for_each(|(c, r)| {
                c.pretrain(archs, epochs, r, |_, _| {});
            });
    }

    fn fit_epochs(&mut self, data: &[(Arch, f64)], epochs: usize, rng: &mut Pcg64Mcg) -> FitStats {
        if self.fresh {
            self.members.clear();
        }
        self.create_members(rng);
        let mut rngs = member_rngs(self.members.len(), rng);
        let last: Vec<FitStats> = self
            .members
            .par_iter_mut()
            .zip(rngs.par_iter_mut())
            .map(|(c, r)| {
                let history = c.train(data, epochs, r, |_, _| {});
                history
                    .last()
                    .map(|l| FitStats {
                        mse: l.mse,
                        ce: l.ce,
                    })
                    .unwrap_or_default()
            })
            .collect();
        let n = last.len() as f64;
        FitStats {
            mse: last.iter().map(|s| s.mse).sum::<f64>() / n,
            ce: last.iter().map(|s| s.ce).sum::<f64>() / n,
        }
    }

    fn predict(&self, archs: &[Arch]) -> Vec<f64> {
        self.predict_spread(archs)
            .into_iter()
            .map(|p| p.0)
            .collect()
    }

    fn predict_spread(&self, archs: &[Arch]) -> Vec<(f64, f64)> {
        let all: Vec<Vec<f64>> = self.members.iter().map(|c| c.predict(archs)).collect();
        let n = all.len() as f64;
        (0..archs.len())
            .map(|i| {
                let mean = all.iter().map(|p| p[i]).sum::<f64>() / n;
                let var = all.iter().map(|p| (p[i] - mean).powi(2)).sum::<f64>() / n;
                (mean, var.sqrt())
            })
            .collect()
    }

    fn reconstruct(&self, archs: &[Arch]) -> Vec<Arch> {
        self.first().reconstruct(archs)
    }

    /// Each member generates from the seeds along its own predictor's gradient (with the
    /// configured noise and the call's temperature, or the configured one; each member from its own generator drawn from `rng`); their
    /// outputs are interleaved (member 0's first, member 1's first, ...) and de-duplicated
    /// by canonical form, up to `how_many`.
    fn generate(
        &self,
        seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        max_eta: usize,
        radius: usize,
        temperature: Option<f64>,
        rng: &mut Pcg64Mcg,
    ) -> Vec<(Arch, f64)> {
        let rngs = member_rngs(self.members.len(), rng);
        let how = Generation {
            max_eta: max_eta as f64,
            eta_step: self.eta_step,
            noise: self.noise,
            temperature: temperature.unwrap_or(self.temperature),
            radius,
        };
        let lists: Vec<Vec<(Arch, f64)>> = self
            .members
            .par_iter()
            .zip(rngs)
            .map(|(c, mut r)| c.generate_with(seeds, how_many, seen, &how, Some(&mut r)))
            .collect();
        let space = self.first().space();
        let mut taken = HashSet::new();
        let mut out = Vec::new();
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            for list in &lists {
                if out.len() >= how_many {
                    return out;
                }
                if let Some((a, eta)) = list.get(i)
                    && taken.insert(space.canonical(a))
                {
                    out.push((a.clone(), *eta));
                }
            }
        }
        out
    }

    fn save(&self, dir: &Path) -> Result<(), SurrogateError> {
        let meta = Meta {
            init_seed: self.init_seeds.first().copied().unwrap_or(0),
            initialised: !self.members.is_empty(),
            init_seeds: self.init_seeds.clone(),
        };
        std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta)?)?;
        for (i, c) in self.members.iter().enumerate() {
            let (params, opt) = member_files(i);
            save_params(dir.join(params), &c.params())?;
            c.optimizer_ref().save_state_file(&dir.join(opt))?;
        }
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<(), SurrogateError> {
        let meta: Meta = serde_json::from_slice(&std::fs::read(dir.join("meta.json"))?)?;
        self.members.clear();
        if !meta.initialised {
            self.init_seeds.clear();
            return Ok(());
        }
        self.init_seeds = if meta.init_seeds.is_empty() {
            vec![meta.init_seed]
        } else {
            meta.init_seeds
        };
        if self.init_seeds.len() != self.ensemble {
            return Err(format!(
                "the checkpoint holds {} controllers, the settings ask for {}",
                self.init_seeds.len(),
                self.ensemble
            )
            .into());
        }
        for (i, &seed) in self.init_seeds.iter().enumerate() {
            let mut c = self.build(seed);
            let params = c.params();
            let (pf, of) = member_files(i);
            load_params(dir.join(pf), &params)?;
            c.optimizer().load_state_file(&dir.join(of), &params)?;
            self.members.push(self.to_device(c));
        }
        Ok(())
    }
}

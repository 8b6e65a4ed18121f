//! What the NAO search needs from its controller, and a cheap linear stand-in.
//!
//! The real controller (encoder, predictor, decoder; `crate::controller`) implements
//! [`Surrogate`]. [`LinearSurrogate`] is a deterministic baseline with the same interface,
//! used by the tests and available on the command line as `--surrogate linear`: a ridge
//! regression on one-hot tokens (one weight per position and token) whose "decoder" is
//! perfect (it reconstructs every input exactly) and whose generation moves each seed
//! `eta` greedy token changes up the fitted weights (a seed the model finds optimal gets the
//! `eta` least harmful changes instead, so generation keeps exploring around it).

use std::collections::HashSet;
use std::path::Path;

use models::space::{Arch, SearchSpace, SpaceKind, space};

use super::diagnostics::hamming;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// Errors of [`Surrogate::save`] and [`Surrogate::load`]; any error converts into it
/// (`io::Error`, `anyhow::Error`, strings) with `?` or `.into()`.
pub type SurrogateError = Box<dyn std::error::Error + Send + Sync>;

/// Training losses after [`Surrogate::fit`], for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FitStats {
    /// Final predictor loss (mean squared error on the normalised labels).
    pub mse: f64,
    /// Final reconstruction loss (decoder cross-entropy per token); 0 when there is no decoder.
    pub ce: f64,
}

/// What the NAO search needs from its controller (the real one lives in `crate::controller`).
///
/// All methods must be deterministic given the state and the `rng` passed in, and
/// [`save`](Self::save) / [`load`](Self::load) must restore the state exactly: a resumed run
/// then makes the same decisions as an uninterrupted one.
pub trait Surrogate {
    /// A short description of the surrogate and its settings, for `config.json`.
    fn describe(&self) -> serde_json::Value;

    /// Trains on (architecture, normalised label in [0, 1], higher is better) pairs for the
    /// configured epochs, continuing from the current state; returns the final losses.
    fn fit(&mut self, data: &[(Arch, f64)], rng: &mut Pcg64Mcg) -> FitStats;

    /// As [`fit`](Self::fit), for `epochs` instead of the configured epochs (a surrogate
    /// without epochs ignores it).
    fn fit_epochs(&mut self, data: &[(Arch, f64)], _epochs: usize, rng: &mut Pcg64Mcg) -> FitStats {
        self.fit(data, rng)
    }

    /// Unsupervised pre-training on unlabelled architectures for `epochs` (the
    /// controller's autoencoder: [`Controller::pretrain`](crate::controller::Controller::pretrain));
    /// surrogates without an unsupervised part ignore it.
    fn pretrain(&mut self, _archs: &[Arch], _epochs: usize, _rng: &mut Pcg64Mcg) {}

    /// Predicted normalised labels.
    fn predict(&self, archs: &[Arch]) -> Vec<f64>;

    /// Predicted normalised labels with an uncertainty (an ensemble's spread); a single
    /// model says 0.
    fn predict_spread(&self, archs: &[Arch]) -> Vec<(f64, f64)> {
        self.predict(archs).into_iter().map(|p| (p, 0.0)).collect()
    }

    /// Encodes and decodes each architecture (greedy, masked); a perfect autoencoder returns
    /// its input.
    fn reconstruct(&self, archs: &[Arch]) -> Vec<Arch>;

    /// Up to `how_many` new valid architectures whose canonical forms
    /// ([`SearchSpace::canonical`]) are neither in `seen` (which holds canonical forms) nor
    /// among each other, found from `seeds` with a global step size eta = 1, 2, ... up to
    /// `max_eta` (one pass over all seeds per eta; the controller's settings may refine the
    /// schedule and sample the decoder: [`Generation`](crate::controller::Generation)); each
    /// with the eta that produced it. With `radius` > 0, only architectures within `radius`
    /// tokens of their own seed (canonical forms) are kept: a trust region. `temperature`
    /// overrides the decoder's configured sampling temperature for this call (0 = greedy;
    /// `None` = the configured one, [`temperature`](Self::temperature); NAO's round passes a
    /// cooler one when the trust region falls short); surrogates that do not sample ignore
    /// it. Random choices (if the surrogate makes any) come from `rng`.
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        max_eta: usize,
        radius: usize,
        temperature: Option<f64>,
        rng: &mut Pcg64Mcg,
    ) -> Vec<(Arch, f64)>;

    /// The decoder's configured sampling temperature (0 = greedy); `None` when this
    /// surrogate does not sample (then [`generate`](Self::generate) ignores its
    /// `temperature`).
    fn temperature(&self) -> Option<f64> {
        None
    }

    /// Writes all state (weights, optimiser) into the existing, empty directory `dir`.
    fn save(&self, dir: &Path) -> Result<(), SurrogateError>;

    /// Restores the state written by [`save`](Self::save).
    fn load(&mut self, dir: &Path) -> Result<(), SurrogateError>;
}

/// Controller training epochs per round for `--surrogate nao`.
pub const DEFAULT_CONTROLLER_EPOCHS: usize = 200;

/// Builds NAO's surrogate as `config` says: `config.surrogate` names it (`nao`, the
/// controller with [`DEFAULT_CONTROLLER_EPOCHS`] epochs per round; `nao:EPOCHS`; or
/// `linear`); the controller's ensemble size, ranking-loss weight and generation settings come
/// from the same settings. The controller lives on `device`.
pub fn build_surrogate(
    config: &super::NaoConfig,
    space: SpaceKind,
    device: &autograd::Device,
) -> Result<Box<dyn Surrogate>, String> {
    let controller = |epochs: usize| -> Box<dyn Surrogate> {
        Box::new(
            crate::controller::ControllerSurrogate::with_options(
                space,
                &crate::controller::SurrogateOptions {
                    epochs,
                    ensemble: config.ensemble,
                    rank_weight: config.rank_weight,
                    noise: config.noise,
                    temperature: config.temperature,
                    eta_step: config.eta_step,
                    fresh: config.fresh,
                    predictor_input: config.predictor_input,
                },
            )
            .with_device(device.clone()),
        )
    };
    match config.surrogate.as_str() {
        "linear" => Ok(Box::new(LinearSurrogate::new(space, 1.0))),
        "nao" => Ok(controller(DEFAULT_CONTROLLER_EPOCHS)),
        other => match other
            .strip_prefix("nao:")
            .and_then(|e| e.parse::<usize>().ok())
        {
            Some(epochs) if epochs > 0 => Ok(controller(epochs)),
            _ => Err(format!(
                "unknown surrogate `{other}`; known: nao (the controller, {DEFAULT_CONTROLLER_EPOCHS} epochs per round), nao:EPOCHS, linear"
            )),
        },
    }
}

/// Ridge regression on one-hot tokens (see the module docs). Deterministic; ignores `rng`.
#[derive(Debug)]
pub struct LinearSurrogate {
    space: Box<dyn SearchSpace>,
    /// Ridge penalty.
    ridge: f64,
    state: LinearState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct LinearState {
    /// `weights[pos * vocab + token]` as `f64::to_bits` (exact in JSON).
    weights: Vec<u64>,
    bias: u64,
    fits: usize,
}

impl LinearSurrogate {
    /// An unfitted model (predicts 0) for `kind` with ridge penalty `ridge` (> 0).
    pub fn new(kind: SpaceKind, ridge: f64) -> Self {
        let space = space(kind);
        let n = space.seq_len() * space.vocab_size();
        LinearSurrogate {
            space,
            ridge,
            state: LinearState {
                weights: vec![0f64.to_bits(); n],
                bias: 0f64.to_bits(),
                fits: 0,
            },
        }
    }

    fn w(&self, pos: usize, tok: usize) -> f64 {
        f64::from_bits(self.state.weights[pos * self.space.vocab_size() + tok])
    }

    fn score(&self, arch: &[usize]) -> f64 {
        f64::from_bits(self.state.bias)
            + arch
                .iter()
                .enumerate()
                .map(|(p, &t)| self.w(p, t))
                .sum::<f64>()
    }

    /// The seed moved by up to `eta` greedy token changes, largest predicted gain first
    /// (one change per position, to its best other token; ties broken by position). Only
    /// improving changes are made while there are any; a seed without one gets its `eta`
    /// least harmful changes.
    fn step(&self, seed: &[usize], eta: usize) -> Arch {
        let mut changes: Vec<(f64, usize, usize)> = Vec::new();
        for (p, &cur) in seed.iter().enumerate() {
            let best = self
                .space
                .allowed(p)
                .filter(|&t| t != cur)
                .map(|t| (self.w(p, t) - self.w(p, cur), t))
                .fold(None::<(f64, usize)>, |acc, x| match acc {
                    Some(a) if a.0 >= x.0 => Some(a),
                    _ => Some(x),
                });
            if let Some((gain, t)) = best {
                changes.push((gain, p, t));
            }
        }
        changes.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let improving = changes.iter().filter(|c| c.0 > 0.0).count();
        // Improving changes first; once a seed has none left, the least harmful ones (a
        // model-guided local search around a seed the model thinks is optimal).
        let take = if improving > 0 {
            eta.min(improving)
        } else {
            eta
        };
        let mut out = seed.to_vec();
        for &(_, p, t) in changes.iter().take(take) {
            out[p] = t;
        }
        out
    }
}

/// Solves `a x = b` for symmetric positive definite `a` (n x n, row-major) by Cholesky.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        let d = d.max(1e-300).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    b
}

impl Surrogate for LinearSurrogate {
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"kind": "linear", "ridge": self.ridge})
    }

    fn fit(&mut self, data: &[(Arch, f64)], _rng: &mut Pcg64Mcg) -> FitStats {
        if data.is_empty() {
            return FitStats::default();
        }
        let v = self.space.vocab_size();
        let n = self.space.seq_len() * v;
        let m = data.len() as f64;
        let ybar = data.iter().map(|d| d.1).sum::<f64>() / m;
        let mut xbar = vec![0.0; n];
        for (arch, _) in data {
            for (p, &t) in arch.iter().enumerate() {
                xbar[p * v + t] += 1.0 / m;
            }
        }
        // Normal equations on centred features: (Xc'Xc + ridge I) w = Xc'(y - ybar).
        let mut a = vec![0.0; n * n];
        let mut b = vec![0.0; n];
        let mut x = vec![0.0; n];
        for (arch, y) in data {
            x.iter_mut().zip(&xbar).for_each(|(xi, m)| *xi = -m);
            for (p, &t) in arch.iter().enumerate() {
                x[p * v + t] += 1.0;
            }
            for i in 0..n {
                if x[i] == 0.0 {
                    continue;
                }
                b[i] += x[i] * (y - ybar);
                for j in 0..n {
                    a[i * n + j] += x[i] * x[j];
                }
            }
        }
        for i in 0..n {
            a[i * n + i] += self.ridge;
        }
        let w = solve_spd(a, b, n);
        let bias = ybar - w.iter().zip(&xbar).map(|(w, x)| w * x).sum::<f64>();
        self.state.weights = w.iter().map(|w| w.to_bits()).collect();
        self.state.bias = bias.to_bits();
        self.state.fits += 1;
        let mse = data
            .iter()
            .map(|(a, y)| (self.score(a) - y).powi(2))
            .sum::<f64>()
            / m;
        FitStats { mse, ce: 0.0 }
    }

    fn predict(&self, archs: &[Arch]) -> Vec<f64> {
        archs.iter().map(|a| self.score(a)).collect()
    }

    fn reconstruct(&self, archs: &[Arch]) -> Vec<Arch> {
        archs.to_vec()
    }

    fn generate(
        &self,
        seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        max_eta: usize,
        radius: usize,
        _temperature: Option<f64>,
        _rng: &mut Pcg64Mcg,
    ) -> Vec<(Arch, f64)> {
        let mut out = Vec::new();
        let mut taken: HashSet<Arch> = HashSet::new();
        for eta in 1..=max_eta {
            for seed in seeds {
                if out.len() >= how_many {
                    return out;
                }
                let cand = self.step(seed, eta);
                let key = self.space.canonical(&cand);
                let near = radius == 0 || hamming(&key, &self.space.canonical(seed)) <= radius;
                if near && !seen.contains(&key) && taken.insert(key) {
                    out.push((cand, eta as f64));
                }
            }
        }
        out
    }

    fn save(&self, dir: &Path) -> Result<(), SurrogateError> {
        let json = serde_json::to_vec(&self.state)?;
        std::fs::write(dir.join("linear.json"), json)?;
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<(), SurrogateError> {
        let state: LinearState = serde_json::from_slice(&std::fs::read(dir.join("linear.json"))?)?;
        if state.weights.len() != self.state.weights.len() {
            return Err(format!(
                "linear surrogate: {} weights saved, {} expected",
                state.weights.len(),
                self.state.weights.len()
            )
            .into());
        }
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn data(n: usize) -> Vec<(Arch, f64)> {
        let s = space(SpaceKind::Nb201);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        (0..n)
            .map(|_| {
                let a = s.sample(&mut rng);
                // label: count of conv3x3 (token 4) edges, normalised
                let y = a.iter().filter(|&&t| t == 4).count() as f64 / 6.0;
                (a, y)
            })
            .collect()
    }

    #[test]
    fn fits_a_linear_function_and_generates_improvements() {
        let mut s = LinearSurrogate::new(SpaceKind::Nb201, 1e-3);
        let mut rng = Pcg64Mcg::seed_from_u64(0);
        let d = data(200);
        let stats = s.fit(&d, &mut rng);
        assert!(stats.mse < 1e-4, "{stats:?}");
        let preds = s.predict(&d.iter().map(|x| x.0.clone()).collect::<Vec<_>>());
        assert!((preds[0] - d[0].1).abs() < 0.02);
        let seeds = vec![vec![2; 6]]; // all skip: every edge live, canonical = itself
        let generated = s.generate(&seeds, 10, &HashSet::new(), 10, 0, None, &mut rng);
        assert_eq!(generated.len(), 6); // eta 1..=6 give 1..=6 conv3x3 edges; then saturated
        assert_eq!(generated[0].1, 1.0);
        assert_eq!(generated.last().unwrap().0, vec![4; 6]);
        let seen: HashSet<Arch> = generated
            .iter()
            .map(|g| space(SpaceKind::Nb201).canonical(&g.0))
            .collect();
        assert!(
            s.generate(&seeds, 10, &seen, 10, 0, None, &mut rng)
                .is_empty()
        );
        // A trust radius of 2 keeps the steps that change at most two edges.
        let near = s.generate(&seeds, 10, &HashSet::new(), 10, 2, None, &mut rng);
        assert_eq!(near.len(), 2, "{near:?}");
        assert!(
            near.iter()
                .all(|(a, _)| a.iter().filter(|&&t| t != 2).count() <= 2)
        );
        assert_eq!(near[1].0.iter().filter(|&&t| t == 4).count(), 2);
    }

    #[test]
    fn save_load_is_exact() {
        let mut s = LinearSurrogate::new(SpaceKind::Nb201, 0.5);
        s.fit(&data(50), &mut Pcg64Mcg::seed_from_u64(0));
        let dir = tempfile::tempdir().unwrap();
        s.save(dir.path()).unwrap();
        let mut t = LinearSurrogate::new(SpaceKind::Nb201, 0.5);
        t.load(dir.path()).unwrap();
        assert_eq!(s.state, t.state);
        assert!(
            LinearSurrogate::new(SpaceKind::Cnn, 0.5)
                .load(dir.path())
                .is_err()
        );
    }
}

//! [`PtbSharedWeights`]: the PTB [`RnnSupernet`] and its [`SupernetTrainer`] as the NAO-WS
//! loop's [`SharedWeights`] (spec 8.2): every minibatch trains the path of one pool
//! architecture, every pool architecture is scored by the negative validation NLL of its
//! path on one random chunk (higher is better).
//!
//! The loop counts epochs as [`SharedWeights::steps_per_epoch`] steps, the nominal number
//! of BPTT windows in the training stream; with random window lengths the trainer's own
//! passes over the stream end a few windows earlier or later, and the trainer starts its
//! next pass (zero hidden state) when its stream ends.

use std::path::Path;

use autograd::nn::Module;
use datasets::Corpus;
use models::rnn::{RnnConfig, RnnSupernet};
use models::space::{Arch, RnnSpace};
use models::train::ptb_recipe::PtbRecipe;
use models::train::supernet_trainer::SupernetTrainer;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::search::surrogate::SurrogateError;
use crate::search::ws::SharedWeights;

/// How a pool architecture is scored: the mean validation NLL of its path over `chunks`
/// random 35-step chunks of the validation stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChunkScoring {
    /// Chunks per score (spec 8.2: 1).
    pub chunks: usize,
    /// `false` (spec 8.2): each score draws its own chunks. `true`: every architecture
    /// scored between the same two training steps gets the same chunks (drawn from the
    /// run's seed and the step count), so the pool is compared on equal text instead of
    /// each cell on a chunk of its own difficulty.
    pub shared: bool,
}

impl Default for ChunkScoring {
    /// Spec 8.2: one chunk per score, drawn for each architecture.
    fn default() -> Self {
        ChunkScoring {
            chunks: 1,
            shared: false,
        }
    }
}

/// The PTB supernet, its optimiser and its position in the training stream.
pub struct PtbSharedWeights {
    config: RnnConfig,
    recipe: PtbRecipe,
    trainer: SupernetTrainer,
    scoring: ChunkScoring,
    seed: u64,
}

impl PtbSharedWeights {
    /// A supernet of `config` (vocabulary taken from `corpus`; initial weights from a
    /// generator seeded from `seed`) trained with `recipe` (spec 8.2:
    /// [`PtbRecipe::ptb_search`]) on `corpus`; dropout masks and window lengths also come
    /// from `seed`.
    pub fn new(
        config: &RnnConfig,
        recipe: &PtbRecipe,
        corpus: &Corpus,
        seed: u64,
    ) -> Result<PtbSharedWeights, SurrogateError> {
        let config = config.with_vocab(corpus.vocab.len());
        config.validate()?;
        let mut init = Pcg64Mcg::seed_from_u64(seed ^ 0x7074_625f_7773);
        let net = RnnSupernet::new(&config, &mut init);
        let trainer = SupernetTrainer::new(net, recipe, corpus, seed)?;
        Ok(PtbSharedWeights {
            config,
            recipe: recipe.clone(),
            trainer,
            scoring: ChunkScoring::default(),
            seed,
        })
    }

    /// The same, scoring as `scoring` says (default: [`ChunkScoring::default`]).
    pub fn with_scoring(self, scoring: ChunkScoring) -> PtbSharedWeights {
        PtbSharedWeights { scoring, ..self }
    }

    /// The trainer (and through it the supernet).
    pub fn trainer(&self) -> &SupernetTrainer {
        &self.trainer
    }

    fn cell(arch: &Arch) -> Result<models::space::rnn::RnnCell, SurrogateError> {
        Ok(RnnSpace.decode(arch)?)
    }
}

impl SharedWeights for PtbSharedWeights {
    fn describe(&self) -> Value {
        json!({
            "supernet": self.config,
            "recipe": self.recipe,
            "params": self.trainer.net().num_params(),
            "scoring": self.scoring,
        })
    }

    fn steps_per_epoch(&self) -> usize {
        self.trainer.windows_per_epoch()
    }

    /// Trains the path of `arch` on the next window; the loss returned is the window's
    /// NLL. The trainer draws its dropout masks from its own (saved) generator, so `rng`
    /// is not used.
    fn train_step(&mut self, arch: &Arch, _rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError> {
        let cell = Self::cell(arch)?;
        Ok(self.trainer.train_step(&cell)?.nll)
    }

    /// Minus the mean validation NLL of the path over [`ChunkScoring::chunks`] chunks
    /// drawn over the whole validation stream ([`SupernetTrainer::score_at`]): from `rng`,
    /// or, when [`ChunkScoring::shared`], from the seed and the training step count (the
    /// same chunks for every architecture scored between two training steps; `rng` is
    /// then not used).
    fn score(&mut self, arch: &Arch, rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError> {
        let cell = Self::cell(arch)?;
        let n = self.scoring.chunks.max(1);
        let starts = self.trainer.score_starts();
        let mut shared = Pcg64Mcg::seed_from_u64(
            self.seed ^ 0x6368_756e_6b73 ^ self.trainer.steps().wrapping_mul(0x9e37_79b9),
        );
        let draw = if self.scoring.shared {
            &mut shared
        } else {
            rng
        };
        let total: f64 = (0..n)
            .map(|_| {
                let start = draw.random_range(0..starts);
                self.trainer.score_at(&cell, start)
            })
            .sum();
        Ok(-total / n as f64)
    }

    fn save(&self, dir: &Path) -> Result<(), SurrogateError> {
        Ok(self.trainer.save(dir)?)
    }

    fn load(&mut self, dir: &Path) -> Result<(), SurrogateError> {
        Ok(self.trainer.load(dir)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::nao::NaoConfig;
    use crate::search::surrogate::LinearSurrogate;
    use crate::search::ws::{WsConfig, WsRunOptions, WsSearchConfig, run_ws};
    use models::space::SpaceKind;

    fn corpus() -> Corpus {
        let text: String = (0..300)
            .map(|i| format!("w{} w{} w{}\n", i % 7, (i * 3) % 11, i % 5))
            .collect();
        let valid: String = (0..80)
            .map(|i| format!("w{} w{} w{}\n", (i * i) % 7, (i * 5 + 1) % 11, (i * 3) % 5))
            .collect();
        Corpus::from_texts(&text, &valid, &valid).unwrap()
    }

    fn shared() -> PtbSharedWeights {
        let cfg = RnnConfig {
            emb: 4,
            hidden: 4,
            ..RnnConfig::smoke(1)
        };
        let recipe = PtbRecipe {
            batch: 4,
            eval_batch: 4,
            bptt: 5,
            max_train_windows: Some(3),
            ..PtbRecipe::ptb_search()
        };
        PtbSharedWeights::new(&cfg, &recipe, &corpus(), 3).unwrap()
    }

    fn config() -> WsSearchConfig {
        WsSearchConfig {
            space: SpaceKind::Rnn,
            ws: WsConfig {
                nao: NaoConfig {
                    initial: 4,
                    per_round: 2,
                    top_k: 3,
                    max_eta: 5,
                    surrogate: "linear".into(),
                    ..NaoConfig::paper(0)
                },
                epochs: 2,
                eval_every: 1,
            },
            seed: 11,
            shared: json!("ptb-test"),
        }
    }

    /// The PTB shared weights, failing at the `crash_at`-th call of `train_step` or
    /// `score` (a stand-in for kill -9).
    struct Crashing {
        inner: PtbSharedWeights,
        calls: usize,
        crash_at: Option<usize>,
    }

    impl Crashing {
        fn tick(&mut self) -> Result<(), SurrogateError> {
            self.calls += 1;
            if Some(self.calls) == self.crash_at {
                return Err("simulated crash".into());
            }
            Ok(())
        }
    }

    impl SharedWeights for Crashing {
        fn describe(&self) -> Value {
            self.inner.describe()
        }
        fn steps_per_epoch(&self) -> usize {
            self.inner.steps_per_epoch()
        }
        fn train_step(&mut self, arch: &Arch, rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError> {
            self.tick()?;
            self.inner.train_step(arch, rng)
        }
        fn score(&mut self, arch: &Arch, rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError> {
            self.tick()?;
            self.inner.score(arch, rng)
        }
        fn save(&self, dir: &Path) -> Result<(), SurrogateError> {
            self.inner.save(dir)
        }
        fn load(&mut self, dir: &Path) -> Result<(), SurrogateError> {
            self.inner.load(dir)
        }
    }

    fn run_with(dir: &Path, crash_at: Option<usize>, resume: bool) -> crate::error::Result<()> {
        let mut sw = Crashing {
            inner: shared(),
            calls: 0,
            crash_at,
        };
        let mut s = LinearSurrogate::new(SpaceKind::Rnn, 1.0);
        let opts = WsRunOptions {
            resume,
            progress: false,
        };
        run_ws(dir, &config(), &mut sw, &mut s, opts).map(|_| ())
    }

    fn run(dir: &Path) -> crate::error::Result<()> {
        run_with(dir, None, false)
    }

    /// A run that dies in round 2's training, resumed, writes the bytes of the run that
    /// never died.
    #[test]
    fn a_crashed_run_resumes_to_the_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        run(a.path()).unwrap();
        // 3 training steps + 4 scores in round 1, then round 2's second step
        assert!(run_with(b.path(), Some(9), false).is_err());
        run_with(b.path(), None, true).unwrap();
        for f in ["archs.jsonl", "rounds.jsonl", "result.json"] {
            let (x, y) = (
                std::fs::read_to_string(a.path().join(f)).unwrap(),
                std::fs::read_to_string(b.path().join(f)).unwrap(),
            );
            assert_eq!(x, y, "{f} differs");
        }
    }

    /// The NAO-WS loop over the PTB supernet: two runs with the same seed write the same
    /// bytes, and every pool member got a finite score.
    #[test]
    fn the_ws_loop_runs_on_the_supernet_and_is_reproducible() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        run(a.path()).unwrap();
        run(b.path()).unwrap();
        for f in ["archs.jsonl", "rounds.jsonl", "result.json"] {
            let (x, y) = (
                std::fs::read_to_string(a.path().join(f)).unwrap(),
                std::fs::read_to_string(b.path().join(f)).unwrap(),
            );
            assert_eq!(x, y, "{f} differs");
        }
        let archs = std::fs::read_to_string(a.path().join("archs.jsonl")).unwrap();
        assert!(archs.lines().count() >= 4, "{archs}");
        assert!(!archs.contains("NaN"), "{archs}");
    }

    #[test]
    fn scores_are_minus_the_validation_nll() {
        let mut sw = shared();
        let arch = RnnSpace
            .from_flat(&[
                0, 1, 0, 1, 1, 1, 3, 0, 4, 1, 4, 1, 5, 1, 1, 1, 7, 1, 1, 1, 1, 2,
            ])
            .unwrap();
        let cell = RnnSpace.decode(&arch).unwrap();
        let mut r1 = Pcg64Mcg::seed_from_u64(1);
        let mut r2 = Pcg64Mcg::seed_from_u64(1);
        let s = sw.score(&arch, &mut r1).unwrap();
        assert_eq!(s, -sw.trainer().score(&cell, &mut r2));
        // near-uniform at initialisation: NLL about ln(vocab)
        assert!(
            s < 0.0 && (s + (sw.config.vocab as f64).ln()).abs() < 0.5,
            "{s}"
        );
    }

    /// Shared chunks: two scores of one architecture between the same training steps are
    /// equal and use no draw of `rng`; after a step the chunks change. Several chunks
    /// drawn per architecture average [`SupernetTrainer::score_at`] over the draws.
    #[test]
    fn chunk_scoring_shared_and_averaged() {
        let arch = RnnSpace
            .from_flat(&[
                0, 1, 0, 1, 1, 1, 3, 0, 4, 1, 4, 1, 5, 1, 1, 1, 7, 1, 1, 1, 1, 2,
            ])
            .unwrap();
        let cell = RnnSpace.decode(&arch).unwrap();
        let mut sw = shared().with_scoring(ChunkScoring {
            chunks: 3,
            shared: true,
        });
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        let before = rng.clone();
        let a = sw.score(&arch, &mut rng).unwrap();
        assert_eq!(sw.score(&arch, &mut rng).unwrap(), a);
        assert_eq!(
            rng, before,
            "shared chunks draw nothing from the loop's generator"
        );
        sw.train_step(&arch, &mut rng).unwrap();
        assert_ne!(sw.score(&arch, &mut rng).unwrap(), a);

        let mut own = shared().with_scoring(ChunkScoring {
            chunks: 2,
            shared: false,
        });
        let (mut r1, mut r2) = (Pcg64Mcg::seed_from_u64(9), Pcg64Mcg::seed_from_u64(9));
        let s = own.score(&arch, &mut r1).unwrap();
        let starts = own.trainer().score_starts();
        let mean = (0..2)
            .map(|_| own.trainer().score_at(&cell, r2.random_range(0..starts)))
            .sum::<f64>()
            / 2.0;
        assert_eq!(s, -mean);
    }
}

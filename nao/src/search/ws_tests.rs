//! Tests of the NAO-WS loop with toy shared weights: same seed = same bytes, and a run
//! that crashes anywhere (mid-training, mid-scoring) continues with `resume` to exactly the
//! bytes of an uninterrupted run.

use super::surrogate::LinearSurrogate;
use super::ws::*;
use crate::search::nao::NaoConfig;
use models::space::{Arch, SpaceKind};
use rand::RngExt;
use rand_pcg::Pcg64Mcg;
use serde_json::{Value, json};
use std::path::Path;

/// "Weights": one number per token value, nudged by each step towards the step's tokens;
/// a score is the weights' sum over the architecture plus dev noise. Fails on call
/// `crash_at` (counting train steps and scores together) to simulate a kill.
struct Toy {
    w: Vec<f64>,
    calls: usize,
    crash_at: Option<usize>,
}

impl Toy {
    fn new(crash_at: Option<usize>) -> Toy {
        Toy {
            w: vec![0.0; 32],
            calls: 0,
            crash_at,
        }
    }
    fn tick(&mut self) -> Result<(), super::surrogate::SurrogateError> {
        self.calls += 1;
        if Some(self.calls) == self.crash_at {
            return Err("simulated crash".into());
        }
        Ok(())
    }
}

impl SharedWeights for Toy {
    fn describe(&self) -> Value {
        json!("toy")
    }
    fn steps_per_epoch(&self) -> usize {
        5
    }
    fn train_step(
        &mut self,
        arch: &Arch,
        rng: &mut Pcg64Mcg,
    ) -> Result<f64, super::surrogate::SurrogateError> {
        self.tick()?;
        for (i, &t) in arch.iter().enumerate() {
            self.w[t % 32] += 0.01 * ((i % 3) as f64 - 1.0) + rng.random_range(0.0..0.001);
        }
        Ok(self.w.iter().sum())
    }
    fn score(
        &mut self,
        arch: &Arch,
        rng: &mut Pcg64Mcg,
    ) -> Result<f64, super::surrogate::SurrogateError> {
        self.tick()?;
        Ok(arch.iter().map(|&t| self.w[t % 32]).sum::<f64>() + rng.random_range(0.0..0.01))
    }
    fn save(&self, dir: &Path) -> Result<(), super::surrogate::SurrogateError> {
        std::fs::write(dir.join("w.json"), serde_json::to_string(&self.w)?)?;
        Ok(())
    }
    fn load(&mut self, dir: &Path) -> Result<(), super::surrogate::SurrogateError> {
        self.w = serde_json::from_str(&std::fs::read_to_string(dir.join("w.json"))?)?;
        Ok(())
    }
}

fn config() -> WsSearchConfig {
    WsSearchConfig {
        space: SpaceKind::CnnWs,
        ws: WsConfig {
            nao: NaoConfig {
                initial: 6,
                per_round: 2,
                top_k: 3,
                max_eta: 5,
                surrogate: "linear".into(),
                ..NaoConfig::paper(0)
            },
            epochs: 5,
            eval_every: 2,
        },
        seed: 7,
        shared: json!("toy"),
    }
}

fn run(dir: &Path, crash_at: Option<usize>, resume: bool) -> crate::error::Result<WsOutcome> {
    let mut toy = Toy::new(crash_at);
    let mut s = LinearSurrogate::new(SpaceKind::CnnWs, 1.0);
    let opts = WsRunOptions {
        resume,
        progress: false,
    };
    run_ws(dir, &config(), &mut toy, &mut s, opts)
}

fn logs(dir: &Path) -> Vec<String> {
    ["archs.jsonl", "rounds.jsonl", "result.json", "report.md"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect()
}

#[test]
fn same_seed_same_bytes_and_the_pool_evolves() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = run(a.path(), None, false).unwrap();
    run(b.path(), None, false).unwrap();
    assert_eq!(logs(a.path()), logs(b.path()));
    // 3 rounds x 6 scores; 2 generations of 2.
    assert_eq!((out.rounds, out.records.len()), (3, 18));
    assert_eq!(out.final_ranked.len(), 6);
    assert!(
        out.final_ranked
            .iter()
            .any(|r| r.source != super::Source::Random)
    );
    let rounds = std::fs::read_to_string(a.path().join("rounds.jsonl")).unwrap();
    assert_eq!(rounds.lines().count(), 3);
    // A second run into the same directory is refused.
    assert!(run(a.path(), None, false).is_err());
}

/// Crashes in the first round's training, in the second round's scoring, in the last
/// round: each resumed run ends with the uninterrupted run's bytes.
#[test]
fn crash_anywhere_then_resume_gives_the_same_run() {
    let whole = tempfile::tempdir().unwrap();
    run(whole.path(), None, false).unwrap();
    // Round 0: 10 steps + 6 scores = calls 1..16; round 1: 17..26 steps, 27..32 scores.
    for crash in [3, 29, 40] {
        let d = tempfile::tempdir().unwrap();
        assert!(
            run(d.path(), Some(crash), false).is_err(),
            "crash at {crash}"
        );
        run(d.path(), None, true).unwrap();
        assert_eq!(logs(d.path()), logs(whole.path()), "crash at call {crash}");
    }
}

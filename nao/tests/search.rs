//! The search algorithms through the library API: budgets, failures, de-duplication, and
//! NAO (with the cheap linear surrogate) against random search on a synthetic table.

use std::collections::HashSet;

use models::space::{Arch, Nb201Space, SearchSpace, SpaceKind};
use nao::evaluator::table::{synthetic_nb201_csv, synthetic_nb201_score};
use nao::evaluator::{EvalFailure, EvalResult, Evaluation, Evaluator, EvaluatorConfig};
use nao::run::{RunOptions, SearchConfig, run_search_with};
use nao::search::compare::{paired_stats, run_seeds};
use nao::search::{AlgoConfig, LinearSurrogate, Status};

/// Scores by the synthetic function; fails on every architecture whose token sum is a
/// multiple of 7; counts calls.
struct Flaky {
    calls: Vec<Arch>,
}

impl Evaluator for Flaky {
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        self.calls.push(arch.clone());
        if arch.iter().sum::<usize>() % 7 == 0 {
            return Err(EvalFailure::error("diverged (test)"));
        }
        Ok(Evaluation {
            score: synthetic_nb201_score(arch),
            metrics: Default::default(),
            extras: None,
        })
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"kind": "flaky"})
    }
}

fn config(algo: &str, budget: usize, seed: u64) -> SearchConfig {
    SearchConfig {
        space: SpaceKind::Nb201,
        algo: AlgoConfig::for_budget(algo, budget).unwrap(),
        budget,
        seed,
        evaluator: EvaluatorConfig::Command {
            argv: vec!["unused".into()],
            metric: "acc".into(),
            timeout_s: 1.0,
        },
        eval_delay_ms: 0,
    }
}

#[test]
fn budget_counts_distinct_canonical_queries_including_failures() {
    for algo in ["nao", "random", "evolution"] {
        let tmp = tempfile::tempdir().unwrap();
        let mut ev = Flaky { calls: Vec::new() };
        let surrogate = Some(Box::new(LinearSurrogate::new(SpaceKind::Nb201, 1.0)) as _);
        let out = run_search_with(
            &tmp.path().join("r"),
            &config(algo, 80, 5),
            &mut ev,
            if algo == "nao" { surrogate } else { None },
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(out.records.len(), 80, "{algo}");
        assert_eq!(
            ev.calls.len(),
            80,
            "{algo}: every query is a new evaluation"
        );
        let canon: HashSet<Arch> = ev.calls.iter().map(|a| Nb201Space.canonical(a)).collect();
        assert_eq!(canon.len(), 80, "{algo}: no canonical duplicate queried");
        let failed = out
            .records
            .iter()
            .filter(|r| r.status == Status::Failed)
            .count();
        assert!(failed > 0, "{algo}: some failures expected");
        assert!(
            out.records
                .iter()
                .filter(|r| r.status == Status::Failed)
                .all(|r| r.score.is_none() && r.error.is_some())
        );
        assert!(out.best.unwrap().score.unwrap() > 50.0);
    }
}

#[test]
fn nao_rounds_have_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    let mut ev = Flaky { calls: Vec::new() };
    run_search_with(
        &dir,
        &config("nao", 60, 1),
        &mut ev,
        Some(Box::new(LinearSurrogate::new(SpaceKind::Nb201, 1.0))),
        &RunOptions::default(),
    )
    .unwrap();
    let rounds: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("rounds.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rounds.len() >= 3);
    let r1 = &rounds[1];
    for k in [
        "train_pairwise_acc",
        "heldout_pairwise_acc",
        "recon_exact",
        "recon_hamming",
        "batch_mean_predicted",
        "batch_mean_measured",
        "eta_counts",
        "top_up",
        "fit_mse",
    ] {
        assert!(r1.get(k).is_some(), "{k} missing in {r1}");
    }
    assert_eq!(r1["recon_exact"], 1.0); // the linear surrogate reconstructs perfectly
    assert!(r1["train_pairwise_acc"].as_f64().unwrap() > 0.7, "{r1}");
    // generated records carry their prediction and step size
    let log = std::fs::read_to_string(dir.join("archs.jsonl")).unwrap();
    let generated: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["source"] == "generated")
        .collect();
    assert!(!generated.is_empty());
    assert!(
        generated
            .iter()
            .all(|r| r["predicted"].is_number() && r["eta"].is_number())
    );
}

#[test]
fn nao_with_linear_surrogate_beats_random_on_the_synthetic_table() {
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("t.csv");
    std::fs::write(&table, synthetic_nb201_csv(0, 0.5)).unwrap();
    let mk = |algo: &str| SearchConfig {
        evaluator: EvaluatorConfig::Table {
            path: table.clone(),
            metric: "valid_acc".into(),
        },
        ..config(algo, 100, 0)
    };
    let nao = run_seeds(&mk("nao"), 0..6, tmp.path(), false).unwrap();
    let random = run_seeds(&mk("random"), 0..6, tmp.path(), false).unwrap();
    let s = paired_stats(&nao, &random);
    eprintln!("{s:?}");
    assert!(s.mean_a > s.mean_b, "{s:?}");
    assert!(s.wins_a >= 4, "{s:?}");
}

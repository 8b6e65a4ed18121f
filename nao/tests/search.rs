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

/// What [`Spy`] saw: the data of every fit and the candidates of every generation.
#[derive(Default)]
struct SpyLog {
    fits: Vec<Vec<Arch>>,
    candidates: Vec<Vec<Arch>>,
}

/// A surrogate whose prediction is the token sum, and whose generation returns the unseen
/// canonical NB201 cells in a fixed order; logs what it is given.
struct Spy(std::rc::Rc<std::cell::RefCell<SpyLog>>);

impl nao::search::Surrogate for Spy {
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"kind": "spy"})
    }
    fn fit(&mut self, data: &[(Arch, f64)], _: &mut rand_pcg::Pcg64Mcg) -> nao::search::FitStats {
        self.0
            .borrow_mut()
            .fits
            .push(data.iter().map(|d| d.0.clone()).collect());
        Default::default()
    }
    fn predict(&self, archs: &[Arch]) -> Vec<f64> {
        archs
            .iter()
            .map(|a| a.iter().sum::<usize>() as f64)
            .collect()
    }
    fn reconstruct(&self, archs: &[Arch]) -> Vec<Arch> {
        archs.to_vec()
    }
    fn generate(
        &self,
        _seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        _max_eta: usize,
    ) -> Vec<(Arch, f64)> {
        let mut out: Vec<Arch> = Vec::new();
        let mut taken = HashSet::new();
        for i in 0..5usize.pow(6) {
            let a: Arch = (0..6).map(|e| i / 5usize.pow(e) % 5 + 1).collect();
            let c = Nb201Space.canonical(&a);
            if out.len() < how_many && !seen.contains(&c) && taken.insert(c.clone()) {
                out.push(c);
            }
        }
        self.0.borrow_mut().candidates.push(out.clone());
        out.into_iter().map(|a| (a, 1.0)).collect()
    }
    fn save(&self, _: &std::path::Path) -> Result<(), nao::search::surrogate::SurrogateError> {
        Ok(())
    }
    fn load(&mut self, _: &std::path::Path) -> Result<(), nao::search::surrogate::SurrogateError> {
        Ok(())
    }
}

fn spy_run(candidates: usize, fit_canonical: bool) -> (SpyLog, Vec<nao::search::Record>) {
    let mut c = config("nao", 30, 3);
    if let AlgoConfig::Nao(n) = &mut c.algo {
        n.initial = 20;
        n.per_round = 5;
        n.candidates = candidates;
        n.fit_canonical = fit_canonical;
    }
    let log = std::rc::Rc::new(std::cell::RefCell::new(SpyLog::default()));
    let tmp = tempfile::tempdir().unwrap();
    let out = run_search_with(
        &tmp.path().join("r"),
        &c,
        &mut Flaky { calls: Vec::new() },
        Some(Box::new(Spy(log.clone()))),
        &RunOptions::default(),
    )
    .unwrap();
    let log = std::rc::Rc::try_unwrap(log).ok().unwrap().into_inner();
    (log, out.records)
}

#[test]
fn nao_candidates_evaluates_the_best_predicted() {
    let (log, records) = spy_run(40, true);
    assert_eq!(log.candidates.len(), 2);
    for (round, cands) in log.candidates.iter().enumerate() {
        assert_eq!(cands.len(), 40, "round {}", round + 1);
        let mut sums: Vec<usize> = cands.iter().map(|a| a.iter().sum()).collect();
        sums.sort_unstable_by(|a, b| b.cmp(a));
        let mut got: Vec<usize> = records
            .iter()
            .filter(|r| r.round == round + 1)
            .map(|r| r.arch.iter().sum())
            .collect();
        got.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(got, sums[..5], "round {}", round + 1);
    }
    // Without candidates, the first generated are evaluated, as the paper does.
    let (log, records) = spy_run(0, true);
    let first: Vec<&Arch> = log.candidates[0].iter().collect();
    let got: Vec<&Arch> = records
        .iter()
        .filter(|r| r.round == 1)
        .map(|r| &r.arch)
        .collect();
    assert_eq!(got, first);
}

#[test]
fn nao_fit_canonical_fits_on_canonical_forms() {
    let (log, records) = spy_run(0, true);
    let raw_differs = records[..20]
        .iter()
        .any(|r| Nb201Space.canonical(&r.arch) != r.arch);
    assert!(
        raw_differs,
        "the random pool should hold non-canonical sequences"
    );
    for fit in &log.fits {
        assert!(fit.iter().all(|a| Nb201Space.canonical(a) == *a));
    }
    let (log, _) = spy_run(0, false);
    assert!(log.fits[0].iter().any(|a| Nb201Space.canonical(a) != *a));
}

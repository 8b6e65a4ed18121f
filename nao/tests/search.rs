//! The search algorithms through the library API: budgets, failures, de-duplication, and
//! NAO (with the cheap linear surrogate) against random search on a synthetic table.

use std::collections::HashSet;

use models::space::{Arch, Nb201Space, SearchSpace, SpaceKind};
use nao::evaluator::table::{synthetic_nb201_csv, synthetic_nb201_score};
use nao::evaluator::{EvalFailure, EvalResult, Evaluation, Evaluator, EvaluatorConfig};
use nao::run::{RunOptions, SearchConfig, run_search_with};
use nao::search::compare::{paired_stats, run_seeds};
use nao::search::{AlgoConfig, LinearSurrogate, Source, Status};

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
    let score = |recs: Vec<Option<nao::search::Record>>| -> Vec<f64> {
        recs.into_iter()
            .map(|r| r.unwrap().score.unwrap())
            .collect()
    };
    let nao = score(run_seeds(&mk("nao"), "nao", 0..6, tmp.path(), false, 2).unwrap());
    let random = score(run_seeds(&mk("random"), "random", 0..6, tmp.path(), false, 1).unwrap());
    let s = paired_stats(&nao, &random);
    eprintln!("{s:?}");
    assert!(s.mean_a > s.mean_b, "{s:?}");
    assert!(s.wins_a >= 4, "{s:?}");
}

/// What [`Spy`] saw: the data of every fit and the candidates of every generation.
#[derive(Default)]
struct SpyLog {
    fits: Vec<Vec<Arch>>,
    /// (data size, epochs) of every `fit_epochs` call.
    extra_fits: Vec<(usize, usize)>,
    /// (architectures, epochs) of every `pretrain` call, and the fits made before it.
    pretrains: Vec<(Vec<Arch>, usize, usize)>,
    candidates: Vec<Vec<Arch>>,
    /// (seed count, trust radius) of every `generate` call.
    generate_calls: Vec<(usize, usize)>,
    /// Generation yields at most this many (0 = no limit).
    limit: usize,
    /// Sampling temperature (`Surrogate::temperature`; `None` = the spy does not sample).
    temperature: Option<f64>,
    /// The temperature every `generate` call sampled at (its argument, else the configured one).
    temperatures: Vec<Option<f64>>,
    /// Generation yields nothing at this temperature or hotter (a decoder that samples
    /// too far from its seeds for the trust region).
    too_hot: Option<f64>,
    /// Generation yields only these (those not in `seen`), when set.
    only: Option<Vec<Arch>>,
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
    fn fit_epochs(
        &mut self,
        data: &[(Arch, f64)],
        epochs: usize,
        _: &mut rand_pcg::Pcg64Mcg,
    ) -> nao::search::FitStats {
        self.0.borrow_mut().extra_fits.push((data.len(), epochs));
        Default::default()
    }
    fn pretrain(&mut self, archs: &[Arch], epochs: usize, _: &mut rand_pcg::Pcg64Mcg) {
        let mut log = self.0.borrow_mut();
        let fits = log.fits.len();
        log.pretrains.push((archs.to_vec(), epochs, fits));
    }
    fn predict(&self, archs: &[Arch]) -> Vec<f64> {
        archs
            .iter()
            .map(|a| a.iter().sum::<usize>() as f64)
            .collect()
    }
    /// Spread: 100 for architectures whose first token is 1 (`none` on edge 1<-0), else 0.
    fn predict_spread(&self, archs: &[Arch]) -> Vec<(f64, f64)> {
        self.predict(archs)
            .into_iter()
            .zip(archs)
            .map(|(p, a)| (p, if a[0] == 1 { 100.0 } else { 0.0 }))
            .collect()
    }
    fn reconstruct(&self, archs: &[Arch]) -> Vec<Arch> {
        archs.to_vec()
    }
    fn temperature(&self) -> Option<f64> {
        self.0.borrow().temperature
    }
    fn generate(
        &self,
        seeds: &[Arch],
        how_many: usize,
        seen: &HashSet<Arch>,
        _max_eta: usize,
        radius: usize,
        temperature: Option<f64>,
        _rng: &mut rand_pcg::Pcg64Mcg,
    ) -> Vec<(Arch, f64)> {
        self.0
            .borrow_mut()
            .generate_calls
            .push((seeds.len(), radius));
        let configured = self.0.borrow().temperature;
        let t = configured.and(temperature.or(configured));
        self.0.borrow_mut().temperatures.push(t);
        if let (Some(t), Some(hot)) = (t, self.0.borrow().too_hot)
            && t >= hot
        {
            return Vec::new();
        }
        let only = self.0.borrow().only.clone();
        if let Some(only) = only {
            let out: Vec<Arch> = only.into_iter().filter(|a| !seen.contains(a)).collect();
            self.0.borrow_mut().candidates.push(out.clone());
            return out.into_iter().map(|a| (a, 1.0)).collect();
        }
        let mut out: Vec<Arch> = Vec::new();
        let mut taken = HashSet::new();
        let limit = self.0.borrow().limit;
        let how_many = if limit > 0 {
            how_many.min(limit)
        } else {
            how_many
        };
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
    spy_run_with(candidates, fit_canonical, 0, |_| {})
}

fn spy_run_with(
    candidates: usize,
    fit_canonical: bool,
    limit: usize,
    tune: impl FnOnce(&mut nao::search::NaoConfig),
) -> (SpyLog, Vec<nao::search::Record>) {
    spy_run_from(
        SpyLog {
            limit,
            ..SpyLog::default()
        },
        candidates,
        fit_canonical,
        tune,
    )
}

fn spy_run_from(
    log: SpyLog,
    candidates: usize,
    fit_canonical: bool,
    tune: impl FnOnce(&mut nao::search::NaoConfig),
) -> (SpyLog, Vec<nao::search::Record>) {
    let mut c = config("nao", 30, 3);
    if let AlgoConfig::Nao(n) = &mut c.algo {
        n.initial = 20;
        n.per_round = 5;
        n.candidates = candidates;
        n.fit_canonical = fit_canonical;
        tune(n);
    }
    let log = std::rc::Rc::new(std::cell::RefCell::new(log));
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

/// `explore` screens by mean + explore * spread: with a large weight every candidate with
/// spread (first token 1) is evaluated before any without; without it, the best predicted.
#[test]
fn nao_explore_screens_by_spread() {
    let (_, plain) = spy_run_with(40, true, 0, |_| {});
    let (log, explored) = spy_run_with(40, true, 0, |n| n.explore = 1.0);
    let round1 = |recs: &[nao::search::Record]| -> Vec<Arch> {
        recs.iter()
            .filter(|r| r.round == 1)
            .map(|r| r.arch.clone())
            .collect()
    };
    let score = |a: &Arch| a.iter().sum::<usize>() as f64 + if a[0] == 1 { 100.0 } else { 0.0 };
    let mut want = log.candidates[0].clone();
    want.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let mut got = round1(&explored);
    got.sort_by(|a, b| score(b).total_cmp(&score(a)));
    assert_eq!(
        got.iter().map(score).collect::<Vec<_>>(),
        want[..5].iter().map(score).collect::<Vec<_>>()
    );
    assert!(got.iter().filter(|a| a[0] == 1).count() >= 4, "{got:?}");
    assert!(
        round1(&plain).iter().all(|a| a[0] != 1),
        "{:?}",
        round1(&plain)
    );
}

/// Without top-ups a round whose generation falls short stays short (and logs no top-up);
/// with them, random architectures fill it, recorded as `top_up`.
#[test]
fn nao_top_up_is_an_option() {
    let (_, with) = spy_run_with(0, true, 2, |n| n.expand_radius = 0);
    let (_, without) = spy_run_with(0, true, 2, |n| {
        n.expand_radius = 0;
        n.top_up = false;
    });
    let count = |recs: &[nao::search::Record], src: Source| {
        recs.iter()
            .filter(|r| r.round == 1 && r.source == src)
            .count()
    };
    assert_eq!(count(&with, Source::Generated), 2);
    assert_eq!(count(&with, Source::TopUp), 3);
    assert_eq!(count(&without, Source::Generated), 2);
    assert_eq!(count(&without, Source::TopUp), 0);
}

/// When generation falls short of the round's quota, the trust region widens before any
/// random top-up: first more seeds (`expand_seeds`), then a larger radius, one token at a
/// time (`expand_radius`), and only as far as the quota needs.
#[test]
fn nao_widens_the_trust_region_when_generation_falls_short() {
    // The spy yields at most 2 per call; rounds ask for 5 from the top 4 within 1 token.
    let (log, recs) = spy_run_with(0, true, 2, |n| {
        n.top_k = 4;
        n.trust_radius = 1;
        n.expand_seeds = 12;
        n.expand_radius = 3;
    });
    assert_eq!(
        log.generate_calls[..3],
        [(4, 1), (12, 1), (12, 2)],
        "{:?}",
        log.generate_calls
    );
    let count = |recs: &[nao::search::Record], src: Source| {
        recs.iter()
            .filter(|r| r.round == 1 && r.source == src)
            .count()
    };
    assert_eq!(count(&recs, Source::Generated), 5);
    assert_eq!(count(&recs, Source::TopUp), 0);
    // Off, one call per round and the rest random.
    let (log, recs) = spy_run_with(0, true, 2, |n| {
        n.top_k = 4;
        n.trust_radius = 1;
        n.expand_radius = 0;
    });
    assert_eq!(log.generate_calls[0], (4, 1));
    assert_eq!(log.generate_calls.len(), 2, "{:?}", log.generate_calls);
    assert_eq!(count(&recs, Source::TopUp), 3);
}

/// `cool_down`: when even the widest trust region yields too few (a decoder sampling too
/// hot for it, as at temperature 4 on the rnn space's 22 tokens), the round samples cooler
/// (halved down to 0.5, then greedy) before topping up; the next round samples at the
/// configured temperature again (the cooler one is an argument of that round's calls only).
#[test]
fn nao_cools_the_decoder_before_topping_up() {
    let hot = |cool_down: bool| {
        spy_run_from(
            SpyLog {
                temperature: Some(4.0),
                too_hot: Some(1.5),
                ..SpyLog::default()
            },
            0,
            true,
            |n| {
                n.top_k = 4;
                n.trust_radius = 1;
                n.expand_radius = 1;
                n.cool_down = cool_down;
            },
        )
    };
    let (log, recs) = hot(true);
    assert_eq!(
        log.generate_calls[..4],
        [(4, 1), (4, 2), (4, 2), (4, 2)],
        "{:?}",
        log.generate_calls
    );
    assert_eq!(
        log.temperatures[..5],
        [Some(4.0), Some(4.0), Some(2.0), Some(1.0), Some(4.0)],
        "cooled within round 1, restored for round 2: {:?}",
        log.temperatures
    );
    let round1 = recs.iter().filter(|r| r.round == 1);
    assert!(round1.clone().all(|r| r.source == Source::Generated));
    assert_eq!(round1.count(), 5);
    // Off: the round is topped up at once.
    let (log, recs) = hot(false);
    assert_eq!(log.generate_calls[..2], [(4, 1), (4, 2)]);
    assert_eq!(log.temperatures[2], Some(4.0));
    let round1 = recs.iter().filter(|r| r.round == 1);
    assert!(round1.clone().all(|r| r.source == Source::TopUp));
}

/// A round's random top-up never repeats a cell generated in the same round (it used to be
/// drawn against the queried cells only, and the repeat was then skipped, leaving the
/// round one short). The first run tops round 1 up entirely and shows which cells the
/// top-up draws; in the second the decoder generates the first of them, so the top-up
/// draws it again from the same generator state and must pass over it.
#[test]
fn nao_top_up_does_not_repeat_a_generated_cell() {
    let run = |only: Option<Vec<Arch>>, too_hot: Option<f64>| {
        spy_run_from(
            SpyLog {
                temperature: Some(4.0),
                too_hot,
                only,
                ..SpyLog::default()
            },
            0,
            true,
            |n| {
                n.top_k = 4;
                n.trust_radius = 1;
                n.expand_radius = 1;
                n.cool_down = false;
            },
        )
    };
    let round1 = |recs: &[nao::search::Record]| -> Vec<nao::search::Record> {
        recs.iter().filter(|r| r.round == 1).cloned().collect()
    };
    let (_, recs) = run(None, Some(1.0));
    let drawn = round1(&recs);
    assert_eq!(drawn.len(), 5);
    assert!(drawn.iter().all(|r| r.source == Source::TopUp));
    let first = Nb201Space.canonical(&drawn[0].arch);
    let (log, recs) = run(Some(vec![first.clone()]), None);
    assert_eq!(log.candidates[0], vec![first.clone()]);
    let got = round1(&recs);
    assert_eq!(got.len(), 5, "round 1 is one short: {got:?}");
    assert_eq!(got[0].source, Source::Generated);
    assert_eq!(Nb201Space.canonical(&got[0].arch), first);
    assert!(got[1..].iter().all(|r| r.source == Source::TopUp));
    let forms: HashSet<Arch> = got.iter().map(|r| Nb201Space.canonical(&r.arch)).collect();
    assert_eq!(forms.len(), 5);
    // The top-up passed over the generated cell and took the next four drawn.
    let want: Vec<Arch> = drawn[1..5]
        .iter()
        .map(|r| Nb201Space.canonical(&r.arch))
        .collect();
    let top: Vec<Arch> = got[1..]
        .iter()
        .map(|r| Nb201Space.canonical(&r.arch))
        .collect();
    assert_eq!(top, want);
}

/// `focus`: the round's first `focus` cells are the best predicted of what the decoder
/// proposed around the top seed alone; the rest of the round comes from the top `top_k`,
/// chosen among their proposals and the top seed's other ones.
#[test]
fn nao_focus_fills_its_slots_from_the_best_cell_alone() {
    let sums = |archs: &[Arch]| -> Vec<usize> { archs.iter().map(|a| a.iter().sum()).collect() };
    let best_first = |mut v: Vec<usize>| {
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    };
    let (log, recs) = spy_run_with(12, true, 0, |n| {
        n.top_k = 4;
        n.trust_radius = 1;
        n.focus = 2;
    });
    assert_eq!(
        log.generate_calls[..2],
        [(1, 1), (4, 1)],
        "{:?}",
        log.generate_calls
    );
    // The top seed is asked for the screening's ratio of its slots: 2 x 12 / 5, rounded up.
    assert_eq!(log.candidates[0].len(), 5);
    let round1: Vec<usize> = recs
        .iter()
        .filter(|r| r.round == 1)
        .map(|r| r.arch.iter().sum())
        .collect();
    assert_eq!(round1.len(), 5);
    let near = best_first(sums(&log.candidates[0]));
    assert_eq!(
        round1[..2],
        near[..2],
        "focus slots: the top seed's best predicted"
    );
    let mut rest = near[2..].to_vec();
    rest.extend(sums(&log.candidates[1]));
    assert_eq!(
        round1[2..],
        best_first(rest)[..3],
        "the others compete for the rest"
    );
    // Off: the first call uses the top_k seeds.
    let (log, _) = spy_run_with(12, true, 0, |n| {
        n.top_k = 4;
        n.trust_radius = 1;
    });
    assert_eq!(log.generate_calls[0], (4, 1));
}

/// `draws`: generation passes again over the same seeds and radius while candidates are
/// short, before the region is widened or topped up.
#[test]
fn nao_draws_pass_again_before_widening() {
    let (log, recs) = spy_run_with(0, true, 2, |n| {
        n.top_k = 4;
        n.trust_radius = 1;
        n.expand_radius = 1;
        n.draws = 2;
    });
    assert_eq!(
        log.generate_calls[..3],
        [(4, 1), (4, 1), (4, 2)],
        "{:?}",
        log.generate_calls
    );
    let round1 = recs.iter().filter(|r| r.round == 1);
    assert!(round1.clone().all(|r| r.source == Source::Generated));
    assert_eq!(round1.count(), 5);
}

/// Pseudo-labels: after each round's fit, the surrogate trains `pseudo_epochs` more on the
/// pool plus `pseudo` unqueried architectures; none of them is queried.
#[test]
fn nao_pseudo_labels_extend_the_training_set() {
    let (log, recs) = spy_run_with(0, true, 0, |n| {
        n.pseudo = 50;
        n.pseudo_epochs = 7;
    });
    assert_eq!(log.extra_fits.len(), log.fits.len());
    for (fit, extra) in log.fits.iter().zip(&log.extra_fits) {
        assert_eq!(*extra, (fit.len() + 50, 7));
    }
    assert_eq!(
        recs.len(),
        30,
        "pseudo-labelled architectures are not queried"
    );
    let (log, _) = spy_run_with(0, true, 0, |_| {});
    assert!(log.extra_fits.is_empty());
}

/// Pre-training: once, before the first fit, on `pretrain` random canonical architectures
/// for `pretrain_epochs`; none of them is queried. Off by default.
#[test]
fn nao_pretrains_once_before_the_first_fit() {
    let (log, recs) = spy_run_with(0, true, 0, |n| {
        n.pretrain = 40;
        n.pretrain_epochs = 3;
    });
    assert_eq!(log.pretrains.len(), 1);
    let (archs, epochs, fits_before) = &log.pretrains[0];
    assert_eq!((archs.len(), *epochs, *fits_before), (40, 3, 0));
    let s = models::space::space(models::space::SpaceKind::Nb201);
    assert!(archs.iter().all(|a| *a == s.canonical(a)));
    assert!(log.fits.len() > 1);
    assert_eq!(recs.len(), 30, "pre-training architectures are not queried");
    let (log, _) = spy_run_with(0, true, 0, |_| {});
    assert!(log.pretrains.is_empty());
}

/// Local search climbs: every move goes to a better neighbour, each round evaluates one
/// neighbourhood (one-token changes of the current architecture), and it restarts at local
/// optima; the budget holds.
#[test]
fn local_search_climbs_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_search_with(
        &tmp.path().join("r"),
        &config("local", 120, 2),
        &mut Flaky { calls: Vec::new() },
        None,
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(out.records.len(), 120);
    let rounds: Vec<serde_json::Value> = std::fs::read_to_string(tmp.path().join("r/rounds.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut moves = 0;
    for r in out.records.iter().filter(|r| r.source == Source::Mutation) {
        let parent = &out.records[r.parent.unwrap()];
        let diff = parent
            .arch
            .iter()
            .zip(&r.arch)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(diff, 1, "a neighbour differs in one token");
    }
    for w in rounds.windows(2) {
        if let (Some(a), Some(b)) = (w[0]["current"].as_u64(), w[1]["current"].as_u64())
            && a != b
        {
            moves += 1;
            let (sa, sb) = (
                out.records[a as usize].score.unwrap(),
                out.records[b as usize].score.unwrap(),
            );
            assert!(sb > sa, "a move must improve: {sa} -> {sb}");
        }
    }
    assert!(moves >= 1, "{rounds:?}");
    assert!(rounds.last().unwrap()["restarts"].as_u64().unwrap() >= 1);
}

/// With a table, each NAO round measures the predictor on the table's fixed reference
/// sample, and that does not change what the search queries.
#[test]
fn nao_reference_diagnostics_do_not_change_the_search() {
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("t.csv");
    std::fs::write(&table, synthetic_nb201_csv(0, 0.5)).unwrap();
    let run = |reference: usize, dir: &str| {
        let mut c = SearchConfig {
            evaluator: EvaluatorConfig::Table {
                path: table.clone(),
                metric: "valid_acc".into(),
            },
            ..config("nao", 40, 0)
        };
        if let AlgoConfig::Nao(n) = &mut c.algo {
            n.surrogate = "linear".into();
            n.reference = reference;
        }
        nao::run::run_search(&tmp.path().join(dir), &c, &RunOptions::default()).unwrap();
        let rounds: Vec<serde_json::Value> =
            std::fs::read_to_string(tmp.path().join(dir).join("rounds.jsonl"))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        let archs = std::fs::read_to_string(tmp.path().join(dir).join("archs.jsonl")).unwrap();
        (rounds, archs)
    };
    let (with, a1) = run(300, "a");
    let (without, a2) = run(0, "b");
    assert_eq!(a1, a2, "the reference sample must not influence the search");
    let tau = with[1]["reference_kendall_tau"].as_f64().unwrap();
    assert!(tau > 0.3 && tau <= 1.0, "{tau}");
    assert!(with[1]["reference_pairwise_acc"].as_f64().unwrap() > 0.5);
    assert!(without[1]["reference_kendall_tau"].is_null());
}

//! NAO against random search on the real NAS-Bench-201 12-epoch table (reads
//! `NAO_DATA_DIR/nb201/nb201_12epoch.csv`; CI links it there; prints "skipped" without it).
//!
//! Five fixed seeds at a budget of 100 with the default settings: NAO's mean best
//! validation accuracy must beat random search's on the same seeds, and the test accuracy
//! of the cells they chose too. A regression in the controller, its training or the
//! search loop shows here on real data, where the synthetic table hid one before.

use std::path::PathBuf;

use models::space::SpaceKind;
use nao::evaluator::EvaluatorConfig;
use nao::evaluator::table::TableEvaluator;
use nao::run::SearchConfig;
use nao::search::AlgoConfig;
use nao::search::compare::run_seeds;

fn table() -> Option<PathBuf> {
    let dir = std::env::var_os("NAO_DATA_DIR").filter(|d| !d.is_empty())?;
    let p = PathBuf::from(dir).join("nb201").join("nb201_12epoch.csv");
    p.is_file().then_some(p)
}

#[test]
fn nao_beats_random_search_on_the_real_12_epoch_table() {
    let Some(path) = table() else {
        eprintln!("skipped: NAO_DATA_DIR/nb201/nb201_12epoch.csv not found");
        return;
    };
    let metric = "cifar10_valid_val_acc_12ep";
    let mk = |algo: &str| SearchConfig {
        space: SpaceKind::Nb201,
        algo: AlgoConfig::for_budget(algo, 100).unwrap(),
        budget: 100,
        seed: 0,
        evaluator: EvaluatorConfig::Table {
            path: path.clone(),
            metric: metric.into(),
        },
        eval_delay_ms: 0,
    };
    let tmp = tempfile::tempdir().unwrap();
    let nao = run_seeds(&mk("nao"), "nao", 0..5, tmp.path(), false, 2).unwrap();
    let random = run_seeds(&mk("random"), "random", 0..5, tmp.path(), false, 1).unwrap();
    let space = models::space::space(SpaceKind::Nb201);
    let t = TableEvaluator::from_csv(&path, space.as_ref(), metric).unwrap();
    let test = t.column_values("cifar10_test_acc_12ep").unwrap();
    let summarise = |recs: &[Option<nao::search::Record>]| -> (f64, f64) {
        let n = recs.len() as f64;
        let val = recs
            .iter()
            .map(|r| r.as_ref().unwrap().score.unwrap())
            .sum::<f64>()
            / n;
        let tst = recs
            .iter()
            .map(|r| test[&r.as_ref().unwrap().arch])
            .sum::<f64>()
            / n;
        (val, tst)
    };
    let (nv, nt) = summarise(&nao);
    let (rv, rt) = summarise(&random);
    eprintln!("nao: val {nv:.3} test {nt:.3}; random: val {rv:.3} test {rt:.3}");
    assert!(nv > rv, "NAO val {nv} <= random {rv}");
    assert!(nt > rt, "NAO test {nt} <= random {rt}");
}

//! `nao search` and `nao compare`: the evaluator and algorithm settings from the flags, one
//! search run, and the side-by-side comparison over seeds with its Markdown table.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use models::space::SpaceKind;
use nao::evaluator::EvaluatorConfig;
use nao::run::atomic::write_atomic;
use nao::run::{RunOptions, SearchConfig, read_config, report, run_search};
use nao::search::AlgoConfig;
use nao::search::compare::{paired_stats, run_seeds_on};

use super::args::{AlgoArgs, CompareArgs, EvalArgs, GlobalArgs, SearchArgs};

pub(super) fn evaluator_config(e: &EvalArgs) -> Result<(SpaceKind, EvaluatorConfig, usize)> {
    let kind = e
        .space
        .context("--space is required (nb201, cnn-ws, cnn, rnn)")?;
    let metric = e
        .metric
        .clone()
        .context("--metric is required (the column or key to maximise)")?;
    if metric.to_lowercase().contains("test") && !e.allow_test_metric {
        bail!(
            "--metric `{metric}` looks like a test-set column: searching on it leaks the test set into the result. Search on a validation column and report the test column (nao compare --report-metric), or pass --allow-test-metric if this is really meant"
        );
    }
    let budget = e
        .budget
        .context("--budget is required (number of architectures to query)")?;
    if budget == 0 {
        bail!("--budget must be at least 1");
    }
    let ev = match (&e.table, e.command.is_empty()) {
        (Some(t), true) => {
            let path = std::fs::canonicalize(t)
                .with_context(|| format!("cannot find the table {}", t.display()))?;
            EvaluatorConfig::Table { path, metric }
        }
        (None, false) => EvaluatorConfig::Command {
            argv: e.command.clone(),
            metric,
            timeout_s: e.timeout_s,
        },
        (Some(_), false) => bail!("give either --table or a command after `--`, not both"),
        (None, true) => bail!("no evaluator: give --table FILE.csv or a command after `--`"),
    };
    Ok((kind, ev, budget))
}

pub(super) fn algo_config(name: &str, budget: usize, a: &AlgoArgs) -> Result<AlgoConfig> {
    let name = if name == "nao" && a.variant == "paper" {
        "nao-paper"
    } else {
        name
    };
    let mut c = AlgoConfig::for_budget(name, budget).map_err(anyhow::Error::msg)?;
    match &mut c {
        AlgoConfig::Nao(n) => {
            if a.surrogate != "nao" || name == "nao" {
                n.surrogate = a.surrogate.clone();
            }
            if let Some(v) = a.initial {
                n.initial = v;
            }
            if let Some(v) = a.per_round {
                n.per_round = v.max(1);
            }
            if let Some(v) = a.top_k {
                n.top_k = v.max(1);
            }
            if let Some(v) = a.max_eta {
                n.max_eta = v;
            }
            if let Some(v) = a.candidates {
                n.candidates = v;
            }
            if a.fit_raw {
                n.fit_canonical = false;
            }
            if let Some(v) = a.ensemble {
                n.ensemble = v.max(1);
            }
            if let Some(v) = a.rank_weight {
                n.rank_weight = v;
            }
            if let Some(v) = &a.labels {
                n.labels = match v.as_str() {
                    "rank" => nao::search::nao::LabelScale::Rank,
                    _ => nao::search::nao::LabelScale::MinMax,
                };
            }
            if let Some(v) = a.explore {
                n.explore = v;
            }
            if let Some(v) = a.noise {
                n.noise = v;
            }
            if let Some(v) = a.temperature {
                if v.is_nan() || v < 0.0 {
                    bail!("--temperature must be 0 (greedy) or positive, got {v}");
                }
                n.temperature = v;
            }
            if let Some(v) = a.trust_radius {
                n.trust_radius = v;
            }
            if let Some(v) = a.expand_seeds {
                n.expand_seeds = v;
            }
            if let Some(v) = a.expand_radius {
                n.expand_radius = v;
            }
            if let Some(v) = a.draws {
                if v == 0 {
                    bail!("--draws must be at least 1");
                }
                n.draws = v;
            }
            if let Some(v) = a.focus {
                n.focus = v;
            }
            if let Some(v) = a.eta_step {
                if v.is_nan() || v <= 0.0 {
                    bail!("--eta-step must be positive, got {v}");
                }
                n.eta_step = v;
            }
            if a.fresh {
                n.fresh = true;
            }
            if let Some(v) = a.pseudo {
                n.pseudo = v;
            }
            if let Some(v) = a.pseudo_epochs {
                n.pseudo_epochs = v;
            }
            if let Some(v) = &a.predictor_input {
                n.predictor_input = match v.as_str() {
                    "concat" => nao::controller::PredictorInput::Concat,
                    _ => nao::controller::PredictorInput::Mean,
                };
            }
            if let Some(v) = a.pretrain {
                n.pretrain = v;
            }
            if let Some(v) = a.pretrain_epochs {
                n.pretrain_epochs = v;
            }
            if a.no_top_up {
                n.top_up = false;
            }
            if a.no_cool_down {
                n.cool_down = false;
            }
            if let Some(v) = a.reference {
                n.reference = v;
            }
        }
        AlgoConfig::Evolution(e) => {
            if let Some(v) = a.population {
                e.population = v.max(1);
                e.per_round = e.population;
                e.sample = (e.population / 4).max(3).min(e.population);
            }
            if let Some(v) = a.sample {
                e.sample = v.max(1);
            }
        }
        AlgoConfig::Random(_) | AlgoConfig::Local(_) => {}
    }
    Ok(c)
}

pub(super) fn search(a: SearchArgs, global: &GlobalArgs) -> Result<i32> {
    // Bars on a terminal, plain lines otherwise.
    let progress = true;
    let config = if a.resume {
        read_config(&a.out)
            .with_context(|| format!("--resume: {} holds no run to continue", a.out.display()))?
    } else {
        let (space, evaluator, budget) = evaluator_config(&a.eval)?;
        SearchConfig {
            space,
            algo: algo_config(&a.algo, budget, &a.algo_args)?,
            budget,
            seed: a.seed,
            evaluator,
            eval_delay_ms: a.eval_delay_ms,
        }
    };
    let outcome = run_search(
        &a.out,
        &config,
        &RunOptions {
            resume: a.resume,
            progress,
            executor: a.executor.config(global)?,
            device: global.training_device.clone(),
        },
    )
    .with_context(|| format!("search in {}", a.out.display()))?;
    print!("{}", report::summary(&config, &outcome.records));
    if outcome.replayed > 0 {
        println!("({} evaluations replayed from the log)", outcome.replayed);
    }
    println!("wrote {}", a.out.join("report.md").display());
    if outcome.records.iter().all(|r| r.score.is_none()) {
        eprintln!(
            "error: no evaluation succeeded ({} failed); the reasons are in {}",
            outcome.records.len(),
            a.out.join("archs.jsonl").display()
        );
        return Ok(1);
    }
    Ok(0)
}

pub(super) fn compare(a: CompareArgs, device: &autograd::Device) -> Result<i32> {
    let progress = std::io::stderr().is_terminal() && a.jobs <= 1;
    let (space, evaluator, budget) = evaluator_config(&a.eval)?;
    // Read the table once up front so that errors show before any run starts.
    let best_possible = evaluator.build(space, device)?.best_possible();
    let report_values = match (&a.report_metric, &evaluator) {
        (None, _) => None,
        (Some(col), EvaluatorConfig::Table { path, metric }) => {
            let s = models::space::space(space);
            let t = nao::evaluator::table::TableEvaluator::from_csv(path, s.as_ref(), metric)?;
            Some((col.clone(), t.column_values(col)?))
        }
        (Some(_), _) => bail!("--report-metric needs a --table"),
    };
    let mut results: Vec<AlgoResults> = Vec::new();
    for name in &a.algos {
        let config = SearchConfig {
            space,
            algo: algo_config(name, budget, &a.algo_args)?,
            budget,
            seed: 0,
            evaluator: evaluator.clone(),
            eval_delay_ms: 0,
        };
        let seeds = a.first_seed..a.first_seed + a.seeds;
        eprintln!("running {name} for seeds {seeds:?}");
        let best = run_seeds_on(&config, name, seeds, &a.out, progress, a.jobs, device)?;
        let scores: Vec<f64> = best
            .iter()
            .map(|r| r.as_ref().and_then(|r| r.score).unwrap_or(f64::NAN))
            .collect();
        let reported = report_values.as_ref().map(|(col, values)| {
            best.iter()
                .map(|r| {
                    r.as_ref()
                        .and_then(|r| values.get(&r.arch).copied())
                        .unwrap_or_else(|| {
                            eprintln!("warning: no `{col}` for a chosen architecture");
                            f64::NAN
                        })
                })
                .collect()
        });
        results.push((name.clone(), scores, reported));
    }
    let table = compare_table(&a, budget, evaluator.metric(), best_possible, &results);
    print!("{table}");
    let pairs: Vec<serde_json::Value> = results
        .iter()
        .skip(1)
        .map(|(other, ob, orep)| {
            let (first, fb, frep) = &results[0];
            serde_json::json!({
                "a": first,
                "b": other,
                "search_metric": paired_stats(fb, ob),
                "report_metric": frep.as_ref().zip(orep.as_ref()).map(|(x, y)| paired_stats(x, y)),
            })
        })
        .collect();
    let out = serde_json::json!({
        "budget": budget,
        "seeds": a.seeds,
        "first_seed": a.first_seed,
        "metric": evaluator.metric(),
        "report_metric": a.report_metric,
        "best_possible": best_possible,
        "best_per_seed": results.iter().map(|(n, b, _)| (n.clone(), serde_json::json!(b))).collect::<serde_json::Map<_, _>>(),
        "reported_per_seed": results.iter().filter_map(|(n, _, r)| r.as_ref().map(|r| (n.clone(), serde_json::json!(r)))).collect::<serde_json::Map<_, _>>(),
        "pairs": pairs,
    });
    std::fs::create_dir_all(&a.out)?;
    nao::run::atomic::write_json_atomic(&a.out.join("compare.json"), &out)?;
    write_atomic(&a.out.join("compare.md"), table.as_bytes())?;
    println!(
        "wrote {} and compare.md",
        a.out.join("compare.json").display()
    );
    Ok(0)
}

/// One algorithm's results in `nao compare`: its name, the best searched score per seed and
/// (with `--report-metric`) the chosen cells' reported values.
type AlgoResults = (String, Vec<f64>, Option<Vec<f64>>);

/// The comparison as a Markdown table: per algorithm mean +- std of the search metric and
/// (if any) of the report metric, and the first algorithm against each other one on the
/// report metric (else the search metric): wins-losses-ties and exact p-values.
fn compare_table(
    a: &CompareArgs,
    budget: usize,
    metric: &str,
    best_possible: Option<f64>,
    results: &[AlgoResults],
) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let judged = a.report_metric.as_deref().unwrap_or(metric);
    let _ = writeln!(
        t,
        "budget {budget}, seeds {}..{}, search on `{metric}`{}",
        a.first_seed,
        a.first_seed + a.seeds,
        a.report_metric
            .as_ref()
            .map(|r| format!(", chosen cell judged by `{r}`"))
            .unwrap_or_default()
    );
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| algorithm | {metric} (searched) | {judged} | vs {}: W-L-T | sign p | Wilcoxon p |",
        results.first().map_or("", |r| r.0.as_str())
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    let first = results.first();
    for (name, scores, rep) in results {
        let s = paired_stats(scores, scores);
        let judged_vals = rep.as_ref().unwrap_or(scores);
        let r = paired_stats(judged_vals, judged_vals);
        let vs = match first {
            Some((fname, fs, frep)) if fname != name => {
                let fj = frep.as_ref().unwrap_or(fs);
                let p = paired_stats(fj, judged_vals);
                format!(
                    "{}-{}-{} | {:.2e} | {:.2e}",
                    p.wins_a, p.wins_b, p.ties, p.sign_test_p, p.wilcoxon_p
                )
            }
            _ => "- | - | -".into(),
        };
        let _ = writeln!(
            t,
            "| {name} | {:.2} +- {:.2} | {:.2} +- {:.2} | {vs} |",
            s.mean_a, s.std_a, r.mean_a, r.std_a
        );
    }
    if let Some(bp) = best_possible {
        let _ = writeln!(t, "\nbest `{metric}` in the table: {bp:.2}");
    }
    t
}

//! `result.json`, the pictures and `report.md` of a run directory.

use std::fmt::Write as _;
use std::path::Path;

use models::space::space;
use serde_json::{Value, json};

use super::atomic::{read_lines, write_atomic, write_json_atomic};
use super::{Manifest, SearchConfig, read_json, svg};
use crate::error::Result;
use crate::search::{Record, ranked};

/// How many best architectures are drawn and listed.
pub const TOP: usize = 5;

/// The contents of `result.json`: the best architecture with every metric the evaluator
/// reported (for a table: the `--metric` column only) and the top architectures.
pub fn result_json(config: &SearchConfig, records: &[Record]) -> Value {
    let top = ranked(records);
    let entry = |r: &Record| {
        json!({
            "index": r.index,
            "round": r.round,
            "arch": r.text,
            "tokens": r.arch,
            "score": r.score,
            "metrics": r.metrics,
        })
    };
    json!({
        "space": config.space,
        "algo": config.algo.name(),
        "seed": config.seed,
        "budget": config.budget,
        "metric": config.evaluator.metric(),
        "evaluations": records.len(),
        "failed": records.iter().filter(|r| r.score.is_none()).count(),
        "best": top.first().map(|r| entry(r)),
        "top": top.iter().take(TOP).map(|r| entry(r)).collect::<Vec<_>>(),
    })
}

fn f(x: &Value) -> String {
    match x {
        Value::Number(n) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if v.fract() == 0.0 && v.abs() < 1e9 {
                format!("{v}")
            } else {
                format!("{v:.4}")
            }
        }
        Value::Null => "-".into(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}:{}", f(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// A few lines for the terminal: what ran and the best architecture.
pub fn summary(config: &SearchConfig, records: &[Record]) -> String {
    let mut s = format!(
        "{} on {} (seed {}, budget {}): {} evaluations, {} failed\n",
        config.algo.name(),
        config.space,
        config.seed,
        config.budget,
        records.len(),
        records.iter().filter(|r| r.score.is_none()).count()
    );
    match ranked(records).first() {
        Some(b) => {
            let _ = writeln!(
                s,
                "best {} = {} (evaluation {}, round {}): {}",
                config.evaluator.metric(),
                b.score.unwrap_or(f64::NAN),
                b.index,
                b.round,
                b.text
            );
        }
        None => s.push_str("no successful evaluation\n"),
    }
    s
}

/// Writes `result.json`, `best-1.svg`..., `curve.svg` and `report.md` into `dir`.
pub fn write_outputs(dir: &Path, config: &SearchConfig, records: &[Record]) -> Result<()> {
    write_json_atomic(&dir.join("result.json"), &result_json(config, records))?;
    let sp = space(config.space);
    let top = ranked(records);
    for (i, r) in top.iter().take(TOP).enumerate() {
        write_atomic(
            &dir.join(format!("best-{}.svg", i + 1)),
            sp.to_svg(&r.arch).as_bytes(),
        )?;
    }
    let metric = config.evaluator.metric();
    let title = format!(
        "{} on {}, seed {}: {metric} per evaluation",
        config.algo.name(),
        config.space,
        config.seed
    );
    write_atomic(
        &dir.join("curve.svg"),
        svg::search_curve(records, metric, &title).as_bytes(),
    )?;

    let rounds: Vec<Value> = read_lines(&dir.join("rounds.jsonl"))?
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let manifest: Option<Manifest> = read_json(&dir.join("manifest.json")).ok();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Search report: {} on {}\n",
        config.algo.name(),
        config.space
    );
    let _ = writeln!(
        md,
        "{}",
        summary(config, records).trim_end().replace('\n', "  \n")
    );
    md.push('\n');
    let _ = writeln!(md, "## What ran\n");
    let _ = writeln!(md, "| setting | value |\n|---|---|");
    let _ = writeln!(
        md,
        "| algorithm | `{}` |",
        serde_json::to_string(&config.algo).unwrap_or_default()
    );
    let _ = writeln!(md, "| space | {} |", config.space);
    let _ = writeln!(md, "| budget | {} distinct architectures |", config.budget);
    let _ = writeln!(md, "| seed | {} |", config.seed);
    let _ = writeln!(
        md,
        "| evaluator | `{}` |",
        serde_json::to_string(&config.evaluator).unwrap_or_default()
    );
    if let Some(m) = &manifest {
        let _ = writeln!(
            md,
            "| status | {} ({} invocation(s), {} evaluations replayed on resume) |",
            m.status, m.invocations, m.replayed_evaluations
        );
        let _ = writeln!(
            md,
            "| started / ended | {} / {} |",
            m.start_time,
            m.end_time.as_deref().unwrap_or("-")
        );
        let _ = writeln!(md, "| wall time | {:.1} s |", m.wall_time_s);
        let _ = writeln!(
            md,
            "| host | {} ({} cpus), commit {} |",
            m.hostname.as_deref().unwrap_or("?"),
            m.cpu_count,
            m.git_commit.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(md, "\n## Best architectures\n");
    let _ = writeln!(
        md,
        "| rank | {metric} | evaluation | round | architecture | cell |\n|---|---|---|---|---|---|"
    );
    for (i, r) in top.iter().take(TOP).enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | `{}` | [best-{}.svg](best-{}.svg) |",
            i + 1,
            r.score.map_or("-".into(), |s| format!("{s}")),
            r.index,
            r.round,
            r.text.replace('|', "\\|"),
            i + 1,
            i + 1
        );
    }
    let _ = writeln!(md, "\n## Search curve\n\n![search curve](curve.svg)\n");
    let _ = writeln!(md, "## Rounds\n");
    let cols = [
        "round",
        "evaluations",
        "new",
        "failed",
        "best",
        "train_pairwise_acc",
        "heldout_pairwise_acc",
        "heldout_kendall_tau",
        "reference_kendall_tau",
        "reference_pairwise_acc",
        "recon_exact",
        "recon_hamming",
        "batch_mean_predicted",
        "batch_mean_measured",
        "generated",
        "top_up",
        "eta_mean",
        "eta_max",
        "fit_mse",
    ];
    let present: Vec<&str> = cols
        .iter()
        .copied()
        .filter(|c| rounds.iter().any(|r| !r[*c].is_null()))
        .collect();
    if !present.is_empty() {
        let _ = writeln!(md, "| {} |", present.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(present.len()));
        for r in &rounds {
            let row: Vec<String> = present.iter().map(|c| f(&r[*c])).collect();
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        let _ = writeln!(
            md,
            "\n`heldout_pairwise_acc`: the predictor's pairwise accuracy on the round's newly \
             generated architectures, predicted before they were evaluated; `train_pairwise_acc`: \
             on the training pool; `recon_*`: decoder reconstruction on a sample of the pool; \
             `batch_mean_predicted` vs `batch_mean_measured`: the generated batch (paper Fig. 2); \
             `top_up`: random architectures added when generation fell short; \
             `reference_*`: Kendall tau and pairwise accuracy of the predictor on the table's \
             fixed reference sample (`reference_n` cells, never queried) after the round's fit."
        );
    }
    if let Some(plot) = svg::predictor_quality(&rounds) {
        write_atomic(&dir.join("predictor.svg"), plot.as_bytes())?;
        let _ = writeln!(
            md,
            "\n## Predictor quality per round\n\n![predictor quality](predictor.svg)\n"
        );
    }
    write_atomic(&dir.join("report.md"), md.as_bytes())
}

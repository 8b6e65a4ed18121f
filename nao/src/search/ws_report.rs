//! `result.json`, the pictures and `report.md` of a NAO-WS run directory ([`super::ws`]).

use std::fmt::Write as _;
use std::path::Path;

use models::space::space;
use serde_json::{Value, json};

use super::Record;
use super::ws_config::WsSearchConfig;
use crate::error::Result;
use crate::run::atomic::{read_lines, write_atomic, write_json_atomic};
use crate::run::svg;

/// How many of the final pool's best are drawn and listed.
pub const TOP: usize = 5;

fn entry(r: &Record) -> Value {
    json!({
        "index": r.index,
        "round": r.round,
        "born": r.metrics.get("born"),
        "source": r.source,
        "arch": r.text,
        "tokens": r.arch,
        "score": r.score,
    })
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e9 => format!("{x}"),
        Some(x) => format!("{x:.4}"),
        None => "-".into(),
    }
}

/// Writes `result.json` (the final pool's best and top [`TOP`]), `best-1.svg`...,
/// `curve.svg` and `report.md` into `dir`. `final_ranked` is the last round's scores,
/// best first.
pub fn write_outputs(
    dir: &Path,
    config: &WsSearchConfig,
    records: &[Record],
    final_ranked: &[Record],
) -> Result<()> {
    let sp = space(config.space);
    write_json_atomic(
        &dir.join("result.json"),
        &json!({
            "space": config.space,
            "algo": "nao-ws",
            "seed": config.seed,
            "scores": records.len(),
            "best": final_ranked.first().map(entry),
            "top": final_ranked.iter().take(TOP).map(entry).collect::<Vec<_>>(),
        }),
    )?;
    for (i, r) in final_ranked.iter().take(TOP).enumerate() {
        write_atomic(
            &dir.join(format!("best-{}.svg", i + 1)),
            sp.to_svg(&r.arch).as_bytes(),
        )?;
    }
    write_atomic(&dir.join("curve.svg"), curve(records).as_bytes())?;
    let rounds: Vec<Value> = read_lines(&dir.join("rounds.jsonl"))?
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ws = &config.ws;
    let mut md = format!(
        "# NAO-WS on {}\n\nSeed {}. Pool of {} architectures; shared weights trained {} epochs, the pool scored every {} epochs ({} rounds); after each round but the last the controller (`{}`) is refitted warm on the pool, generates up to {} new architectures from the top {} (step sizes up to {}), and they replace the worst.\n\nShared weights: `{}`\n\n",
        config.space,
        config.seed,
        ws.nao.initial,
        ws.epochs,
        ws.eval_every,
        ws.rounds(),
        ws.nao.surrogate,
        ws.nao.per_round,
        ws.nao.top_k,
        ws.nao.max_eta,
        config.shared
    );
    md += "## Final pool: best architectures\n\n| rank | score | joined in round | source | architecture | cell |\n|---|---|---|---|---|---|\n";
    for (i, r) in final_ranked.iter().take(TOP).enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:?} | `{}` | [best-{}.svg](best-{}.svg) |",
            i + 1,
            num(&json!(r.score)),
            num(r.metrics.get("born").unwrap_or(&Value::Null)),
            r.source,
            r.text,
            i + 1,
            i + 1
        );
    }
    md += "\n## Rounds\n\n`stability` is Kendall tau between the scores of the architectures that stayed in the pool, this round against the previous one; `held-out pairwise` the controller's pairwise accuracy on the architectures it generated for this round (predicted before scoring).\n\n| round | epochs | train loss | pool mean | best | stability | held-out pairwise | controller pairwise (fit) | generated | top-up |\n|---|---|---|---|---|---|---|---|---|---|\n";
    for r in &rounds {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            num(&r["round"]),
            num(&r["epochs_done"]),
            num(&r["train_loss"]),
            num(&r["pool_mean"]),
            num(&r["best"]),
            num(&r["stability_kendall_tau"]),
            num(&r["heldout_pairwise_acc"]),
            num(&r["train_pairwise_acc"]),
            num(&r["generated"]),
            num(&r["top_up"]),
        );
    }
    md += "\n## Scores\n\n![every score by evaluation](curve.svg)\n";
    write_atomic(&dir.join("report.md"), md.as_bytes())
}

/// The curve picture of a NAO-WS run: every score by evaluation index.
pub(crate) fn curve(records: &[Record]) -> String {
    svg::search_curve(records, "supernet score", "NAO-WS: pool scores per round")
}

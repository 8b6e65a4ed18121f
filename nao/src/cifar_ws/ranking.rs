//! Does sharing rank well? (issue 12, part 4): a few architectures of the search's final pool
//! train stand-alone with a short recipe and are scored on the dev split; their dev
//! accuracies are compared with the supernet's scores of them (Kendall tau, a table and
//! `OUT/ranking.svg`).
//!
//! **Which architectures**: evenly spaced ranks of the final pool ordered by supernet score
//! (best, worst, and the ranks between them at equal steps; [`pick`]). The best `k` alone
//! would only test whether the supernet orders the cells it already likes, a narrow band of
//! scores where noise dominates; spread over the pool's range, the study asks whether the
//! supernet's ordering holds over the range it actually uses to choose.
//!
//! `OUT/ranking.json` ([`RankingReport`]) is rewritten atomically after each trained
//! architecture; a resumed run keeps the rows already there (same pool rank, same
//! architecture) and trains only the rest. Every training's seed derives from the run's seed
//! and the cell ([`arch_seed`]).

use std::fmt::Write as _;
use std::path::Path;

use models::cnn::CnnConfig;
use models::train::cnn_trainer::{TrainData, train_cnn_on};
use models::train::recipe::Recipe;
use serde::{Deserialize, Serialize};

use crate::cifar::io_err;
use crate::error::{Error, Result};
use crate::evaluator::train::arch_seed;
use crate::run::atomic::write_atomic;
use crate::run::svg::{Frame, Side, dotted_line, esc, fmt_tick, ticks};
use crate::search::Record;
use crate::search::diagnostics::kendall_tau;

/// One architecture trained stand-alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingRow {
    /// Its rank in the final pool by supernet score (1 = the best).
    pub pool_rank: usize,
    /// Tokens.
    pub arch: Vec<usize>,
    /// Text form.
    pub text: String,
    /// The supernet's score of it in the last round (dev accuracy with the shared
    /// weights, percent).
    pub supernet_score: f64,
    /// Dev accuracy after the stand-alone training (percent).
    pub dev_acc: f64,
    /// Trainable parameters of the stand-alone network.
    pub params: usize,
    /// Wall time of the training, seconds.
    pub seconds: f64,
}

/// `OUT/ranking.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RankingReport {
    /// Architectures in the final pool.
    pub pool: usize,
    /// How the trained ones were chosen.
    pub selection: String,
    /// Trained so far, in pool-rank order.
    pub rows: Vec<RankingRow>,
    /// Kendall tau between `supernet_score` and `dev_acc` over `rows` (null with fewer than
    /// two rows, or when either is constant).
    pub kendall_tau: Option<f64>,
}

/// Where and how the ranking study trains.
pub struct RankingSpec<'a> {
    /// The command's output directory (`ranking.json`, `ranking.svg`).
    pub out: &'a Path,
    /// The stand-alone network.
    pub child: &'a CnnConfig,
    /// Its short recipe.
    pub recipe: &'a Recipe,
    /// Train images, and the dev images it is scored on.
    pub data: &'a TrainData,
    /// The run's seed.
    pub seed: u64,
    /// Show each training's progress bar.
    pub progress: bool,
    /// Where to train.
    pub device: &'a autograd::Device,
}

/// Positions (0-based, into a pool of `n` ordered best first) of `k` evenly spaced ranks:
/// the best, the worst and equal steps between (`i (n - 1) / (k - 1)`, rounded down); all
/// `n` when `k >= n`.
pub fn pick(n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    match k {
        0 => Vec::new(),
        1 => vec![0],
        _ => (0..k).map(|i| i * (n - 1) / (k - 1)).collect(),
    }
}

/// What `selection` in `ranking.json` says.
pub fn selection_text(n: usize, k: usize) -> String {
    format!(
        "{} of the final pool's {n} architectures at evenly spaced ranks by supernet score (the best, the worst and equal steps between: ranks {}), not the top {}: the study covers the range of scores the search chose from",
        k.min(n),
        pick(n, k)
            .iter()
            .map(|i| (i + 1).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        k.min(n)
    )
}

/// Trains the chosen architectures of `final_ranked` (the last round's records, best first)
/// that `report` does not hold yet, rewriting `ranking.json` and `ranking.svg` after each.
/// `report` is what [`load`] returned.
pub fn run_ranking(
    spec: &RankingSpec,
    report: &mut RankingReport,
    final_ranked: &[Record],
    k: usize,
) -> Result<()> {
    let n = final_ranked.len();
    report.pool = n;
    report.selection = selection_text(n, k);
    let chosen = pick(n, k);
    // Keep only rows that are still among the chosen (a resume of the same run: all).
    report.rows.retain(|row| {
        chosen
            .iter()
            .any(|&i| i + 1 == row.pool_rank && final_ranked[i].arch == row.arch)
    });
    for (j, &i) in chosen.iter().enumerate() {
        let rec = &final_ranked[i];
        if report.rows.iter().any(|r| r.pool_rank == i + 1) {
            continue;
        }
        eprintln!(
            "ranking study {}/{}: stand-alone training of pool rank {} of {n} (supernet score {:.2}%): {}",
            j + 1,
            chosen.len(),
            i + 1,
            rec.score.unwrap_or(f64::NAN),
            rec.text
        );
        let start = std::time::Instant::now();
        let (_, tr) = train_cnn_on(
            &rec.arch,
            spec.child,
            spec.recipe,
            spec.data,
            arch_seed(spec.seed ^ 0x4a4e_4b00, &rec.arch),
            spec.progress,
            spec.device,
        )
        .map_err(|e| {
            Error::Config(format!(
                "ranking study, stand-alone training of pool rank {}: {e}",
                i + 1
            ))
        })?;
        report.rows.push(RankingRow {
            pool_rank: i + 1,
            arch: rec.arch.clone(),
            text: rec.text.clone(),
            supernet_score: rec.score.unwrap_or(f64::NAN),
            dev_acc: tr.final_eval_acc * 100.0,
            params: tr.params,
            seconds: start.elapsed().as_secs_f64(),
        });
        report.rows.sort_by_key(|r| r.pool_rank);
        save(spec.out, report)?;
    }
    save(spec.out, report)
}

/// `OUT/ranking.json` when `resume` and it exists, else an empty report.
pub fn load(out: &Path, resume: bool) -> Result<RankingReport> {
    let path = out.join("ranking.json");
    match std::fs::read(&path) {
        Ok(b) if resume => serde_json::from_slice(&b).map_err(|e| io_err(&path, e)),
        _ => Ok(RankingReport::default()),
    }
}

/// Updates `kendall_tau` and writes `ranking.json` and `ranking.svg` atomically.
fn save(out: &Path, report: &mut RankingReport) -> Result<()> {
    let (s, d): (Vec<f64>, Vec<f64>) = report
        .rows
        .iter()
        .map(|r| (r.supernet_score, r.dev_acc))
        .unzip();
    report.kendall_tau = if s.len() >= 2 {
        kendall_tau(&d, &s)
    } else {
        None
    };
    let path = out.join("ranking.json");
    write_atomic(
        &path,
        serde_json::to_string_pretty(report)
            .expect("serialisable")
            .as_bytes(),
    )?;
    write_atomic(&out.join("ranking.svg"), scatter(report).as_bytes())
}

/// Padded axis range of `xs` (at least 1 point wide).
fn range(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 100.0);
    }
    if hi - lo < 1.0 {
        let mid = (hi + lo) / 2.0;
        (lo, hi) = (mid - 0.5, mid + 0.5);
    }
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

/// `ranking.svg`: stand-alone dev accuracy against supernet score, one dot per trained
/// architecture, labelled with its pool rank.
pub fn scatter(report: &RankingReport) -> String {
    let f = Frame::new(640.0, 480.0, (70.0, 30.0, 40.0, 60.0));
    let (xlo, xhi) = range(report.rows.iter().map(|r| r.supernet_score));
    let (ylo, yhi) = range(report.rows.iter().map(|r| r.dev_acc));
    let xs = |x: f64| f.ml + f.pw() * (x - xlo) / (xhi - xlo);
    let ys = |y: f64| f.mt + f.ph() * (1.0 - (y - ylo) / (yhi - ylo));
    let tau = report
        .kendall_tau
        .map_or("n/a".to_string(), |t| format!("{t:.3}"));
    let mut o = f.open(&format!(
        "Supernet score vs stand-alone dev accuracy (Kendall tau {tau}, n = {})",
        report.rows.len()
    ));
    o += &f.axes(false);
    for t in ticks(ylo, yhi) {
        o += &f.y_tick(ys(t), &fmt_tick(t), Side::Left, true);
    }
    for t in ticks(xlo, xhi) {
        o += &f.x_tick(xs(t), &fmt_tick(t));
    }
    o += &f.titles(
        "supernet score (dev accuracy with shared weights, %)",
        Some("stand-alone dev accuracy (%)"),
    );
    for r in &report.rows {
        if !(r.supernet_score.is_finite() && r.dev_acc.is_finite()) {
            continue;
        }
        let (x, y) = (xs(r.supernet_score), ys(r.dev_acc));
        o += &dotted_line(&[(x, y)], "#1f77b4");
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\">{}</text>",
            x + 5.0,
            y - 5.0,
            esc(&format!("#{}", r.pool_rank))
        );
    }
    o += "</svg>\n";
    o
}

/// The `report.md` section.
pub fn section(report: &RankingReport, about: &str) -> String {
    let mut md = format!(
        "\n## Does sharing rank well?\n\n{about}\n\nChosen: {}.\n\nKendall tau (supernet score against stand-alone dev accuracy, {} architectures): **{}**.\n\n| pool rank | architecture | supernet score | stand-alone dev acc | params | training |\n|---|---|---|---|---|---|\n",
        report.selection,
        report.rows.len(),
        report
            .kendall_tau
            .map_or("n/a".to_string(), |t| format!("{t:.3}"))
    );
    for r in &report.rows {
        let _ = writeln!(
            md,
            "| {} | `{}` | {:.2}% | {:.2}% | {} | {:.0} s |",
            r.pool_rank, r.text, r.supernet_score, r.dev_acc, r.params, r.seconds
        );
    }
    md += "\n![supernet score against stand-alone dev accuracy](ranking.svg)\n";
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_evenly_spaced_and_distinct() {
        assert_eq!(pick(60, 8), vec![0, 8, 16, 25, 33, 42, 50, 59]);
        assert_eq!(pick(8, 3), vec![0, 3, 7]);
        assert_eq!(pick(3, 8), vec![0, 1, 2]);
        assert_eq!(pick(5, 1), vec![0]);
        assert!(pick(0, 8).is_empty());
    }

    #[test]
    fn the_plot_and_tau_follow_the_rows() {
        let row = |rank, s, d| RankingRow {
            pool_rank: rank,
            arch: vec![rank],
            text: format!("a{rank}"),
            supernet_score: s,
            dev_acc: d,
            params: 10,
            seconds: 1.0,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut r = RankingReport {
            rows: vec![row(1, 30.0, 40.0), row(2, 20.0, 35.0), row(3, 10.0, 36.0)],
            ..Default::default()
        };
        save(dir.path(), &mut r).unwrap();
        assert!((r.kendall_tau.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let svg = std::fs::read_to_string(dir.path().join("ranking.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<circle").count(), 3);
        let back = load(dir.path(), true).unwrap();
        assert_eq!(back, r);
        assert_eq!(load(dir.path(), false).unwrap(), RankingReport::default());
    }
}

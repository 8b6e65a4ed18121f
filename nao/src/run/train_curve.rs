//! Training curves of one network: the per-epoch numbers as JSON lines
//! (`{"epoch", "lr", "train_loss", "train_acc", "eval_acc", "seconds"}`, epochs counted
//! from 1, accuracies as fractions) and drawn as an SVG: training loss on the left axis,
//! training and held-out accuracy on the right one.

use std::path::{Path, PathBuf};

use models::train::cnn_trainer::EpochReport;
use serde_json::json;

use super::atomic::{JsonlAppender, write_atomic};
use super::svg::{Frame, Side, dotted_line, ticks};
use crate::error::Result;

fn line(e: &EpochReport) -> serde_json::Value {
    json!({
        "epoch": e.epoch + 1,
        "lr": e.lr,
        "train_loss": e.train_loss,
        "train_acc": e.train_acc,
        "eval_acc": e.eval_acc,
        "seconds": e.seconds,
    })
}

/// One JSON line per epoch.
pub fn curve_jsonl(epochs: &[EpochReport]) -> String {
    epochs.iter().map(|e| line(e).to_string() + "\n").collect()
}

/// `DIR/STEM-curve.jsonl` written while a network trains: it starts empty and gets each
/// epoch's line as the epoch ends (fsynced), so that a long training can be watched and a
/// crash keeps the epochs done; [`LiveCurve::finish`] then draws the SVG.
#[derive(Debug)]
pub struct LiveCurve {
    dir: PathBuf,
    stem: String,
    log: JsonlAppender,
    error: Option<crate::error::Error>,
}

impl LiveCurve {
    /// Starts (or restarts, emptying it) `DIR/STEM-curve.jsonl`.
    pub fn start(dir: &Path, stem: &str) -> Result<LiveCurve> {
        let path = dir.join(format!("{stem}-curve.jsonl"));
        write_atomic(&path, b"")?;
        Ok(LiveCurve {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            log: JsonlAppender::open(&path)?,
            error: None,
        })
    }

    /// Appends one finished epoch (a write error is kept and returned by `finish`).
    pub fn epoch(&mut self, e: &EpochReport) {
        if self.error.is_none()
            && let Err(err) = self.log.append(&line(e))
        {
            self.error = Some(err);
        }
    }

    /// Draws the curves of the finished training (see [`write_curves`]); returns the
    /// JSONL's and the SVG's paths.
    pub fn finish(
        self,
        epochs: &[EpochReport],
        title: &str,
        eval: &str,
    ) -> Result<(PathBuf, PathBuf)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        write_curves(&self.dir, &self.stem, epochs, title, eval)
    }
}

/// The curves as an SVG: `eval` names the held-out set ("dev", "test").
pub fn curve_svg(epochs: &[EpochReport], title: &str, eval: &str) -> String {
    let f = Frame::new(760.0, 420.0, (70.0, 190.0, 40.0, 55.0));
    let (ml, mt, pw, ph) = (f.ml, f.mt, f.pw(), f.ph());
    let n = epochs.len().max(1);
    let loss_hi = epochs
        .iter()
        .map(|e| e.train_loss)
        .filter(|l| l.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.05;
    let x = |i: usize| {
        if n == 1 {
            ml + pw / 2.0
        } else {
            ml + pw * i as f64 / (n - 1) as f64
        }
    };
    let y_loss = |l: f64| mt + ph * (1.0 - (l / loss_hi).clamp(0.0, 1.0));
    let y_acc = |a: f64| mt + ph * (1.0 - a.clamp(0.0, 1.0));
    let mut o = f.open(title) + &f.axes(true);
    for t in ticks(0.0, loss_hi) {
        let label = ((t * 1e4).round() / 1e4).to_string();
        o += &f.y_tick(y_loss(t), &label, Side::Left, false);
    }
    for t in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] {
        let label = format!("{}%", (t * 100.0) as u32);
        o += &f.y_tick(y_acc(t), &label, Side::Right, true);
    }
    for t in ticks(1.0, n as f64) {
        if t.fract() == 0.0 {
            o += &f.x_tick(x(t as usize - 1), &(t as usize).to_string());
        }
    }
    o += &f.titles("epoch", Some("training loss"));
    let eval_name = if eval == "test" {
        "test accuracy"
    } else {
        "dev accuracy"
    };
    // (name, colour, value, on the loss axis)
    type Series<'a> = (&'a str, &'a str, fn(&EpochReport) -> f64, bool);
    let series: [Series; 3] = [
        ("training loss", "#d62728", |e| e.train_loss, true),
        ("training accuracy", "#1f77b4", |e| e.train_acc, false),
        (eval_name, "#2ca02c", |e| e.eval_acc, false),
    ];
    for (k, (name, colour, value, loss_axis)) in series.iter().enumerate() {
        let y = |e: &EpochReport| {
            if *loss_axis {
                y_loss(value(e))
            } else {
                y_acc(value(e))
            }
        };
        let pts: Vec<(f64, f64)> = epochs
            .iter()
            .enumerate()
            .map(|(i, e)| (x(i), y(e)))
            .collect();
        o += &dotted_line(&pts, colour);
        o += &f.legend_line(k, 45.0, colour, name);
    }
    o += "</svg>\n";
    o
}

/// Writes `DIR/STEM-curve.jsonl` and `DIR/STEM-curve.svg`; returns their paths.
pub fn write_curves(
    dir: &Path,
    stem: &str,
    epochs: &[EpochReport],
    title: &str,
    eval: &str,
) -> Result<(PathBuf, PathBuf)> {
    let jsonl = dir.join(format!("{stem}-curve.jsonl"));
    let svg = dir.join(format!("{stem}-curve.svg"));
    write_atomic(&jsonl, curve_jsonl(epochs).as_bytes())?;
    write_atomic(&svg, curve_svg(epochs, title, eval).as_bytes())?;
    Ok((jsonl, svg))
}

/// `(DIR, NAME)` of `DIR/NAME.json`: where [`write_beside`] and a [`LiveCurve`] for it write.
pub fn beside(report_path: &Path) -> (PathBuf, String) {
    let dir = report_path.parent().unwrap_or(Path::new("")).to_path_buf();
    let stem = report_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "train".into());
    (dir, stem)
}

/// For `nao train --out DIR/NAME.json`: the cell drawing `DIR/NAME-cell.svg` and the curves
/// `DIR/NAME-curve.jsonl` and `.svg` beside the report; returns the drawing's and the
/// curve picture's paths.
pub fn write_beside(
    report_path: &Path,
    cell_svg: &str,
    report: &models::train::cnn_trainer::TrainReport,
) -> Result<(PathBuf, PathBuf)> {
    let (dir, stem) = beside(report_path);
    let dir = dir.as_path();
    let cell = dir.join(format!("{stem}-cell.svg"));
    write_atomic(&cell, cell_svg.as_bytes())?;
    let title = format!(
        "{} epochs, N={}, F={}, {} classes",
        report.epochs.len(),
        report.config.n_cells,
        report.config.channels,
        report.config.classes
    );
    let (_, svg) = write_curves(dir, &stem, &report.epochs, &title, "dev")?;
    Ok((cell, svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(n: usize) -> Vec<EpochReport> {
        (0..n)
            .map(|i| EpochReport {
                epoch: i,
                lr: 0.05,
                train_loss: 2.3 - 0.3 * i as f64,
                train_acc: 0.1 + 0.1 * i as f64,
                eval_acc: 0.1 + 0.08 * i as f64,
                seconds: 1.5,
            })
            .collect()
    }

    #[test]
    fn jsonl_has_one_line_per_epoch_counted_from_one() {
        let text = curve_jsonl(&epochs(3));
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["epoch"], 1);
        assert_eq!(lines[2]["epoch"], 3);
        assert!((lines[2]["eval_acc"].as_f64().unwrap() - 0.26).abs() < 1e-12);
    }

    #[test]
    fn live_curve_has_each_epoch_on_disk_as_it_ends() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("best-curve.jsonl");
        std::fs::write(&path, "stale\n").unwrap();
        let mut live = LiveCurve::start(d.path(), "best").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "",
            "restarted empty"
        );
        let e = epochs(3);
        live.epoch(&e[0]);
        live.epoch(&e[1]);
        // Two epochs done: two lines on disk already (a crash now keeps them).
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            curve_jsonl(&e[..2])
        );
        live.epoch(&e[2]);
        let (jsonl, svg) = live.finish(&e, "t", "test").unwrap();
        assert_eq!(std::fs::read_to_string(jsonl).unwrap(), curve_jsonl(&e));
        assert!(std::fs::read_to_string(svg).unwrap().starts_with("<svg"));
    }

    #[test]
    fn svg_draws_three_series_and_survives_one_epoch() {
        let s = curve_svg(&epochs(5), "best <cell>", "test");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<polyline").count(), 3);
        assert!(s.contains("test accuracy") && s.contains("best &lt;cell&gt;"));
        let one = curve_svg(&epochs(1), "x", "dev");
        assert_eq!(one.matches("<polyline").count(), 0);
        assert_eq!(one.matches("<circle").count(), 3);
        assert!(one.contains("dev accuracy"));
        assert!(curve_svg(&[], "empty", "dev").ends_with("</svg>\n"));
    }
}

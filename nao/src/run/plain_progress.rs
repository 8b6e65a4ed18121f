//! Progress for nobody's terminal: when stderr is not a terminal (a log file, a Slurm job)
//! progress bars hide themselves, so a run instead prints one plain line per finished
//! evaluation and per finished round: what finished, its score, the best so far, the
//! elapsed time and an estimate of the remaining time.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::search::Record;

/// `12.3s`, `4m05s`, `2h07m`.
///
/// ```
/// use std::time::Duration;
/// use nao::run::plain_progress::short_duration;
/// assert_eq!(short_duration(Duration::from_millis(12_340)), "12.3s");
/// assert_eq!(short_duration(Duration::from_secs(245)), "4m05s");
/// assert_eq!(short_duration(Duration::from_secs(7620)), "2h07m");
/// ```
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{}h{:02}m", (s / 3600.0) as u64, (s % 3600.0 / 60.0) as u64)
    }
}

/// Counts finished steps of a run and formats their lines.
#[derive(Debug)]
pub struct PlainProgress {
    what: String,
    total: usize,
    start: Instant,
    /// Steps already done when this invocation started (a resumed run).
    done_before: usize,
    done: Cell<usize>,
    best: Cell<Option<f64>>,
}

impl PlainProgress {
    /// A run of `total` steps named `what` (e.g. "search"), `done` of them finished
    /// before this invocation with best score `best`.
    pub fn new(what: &str, total: usize, done: usize, best: Option<f64>) -> Self {
        PlainProgress {
            what: what.into(),
            total,
            start: Instant::now(),
            done_before: done,
            done: Cell::new(done),
            best: Cell::new(best),
        }
    }

    /// `elapsed 1m02s | remaining ~3m10s`, the remaining time extrapolated from the steps
    /// finished in this invocation.
    fn times(&self) -> String {
        let elapsed = self.start.elapsed();
        let done_now = self.done.get().saturating_sub(self.done_before);
        let left = self.total.saturating_sub(self.done.get());
        let remaining = if left == 0 {
            "0s".to_string()
        } else if done_now == 0 {
            "?".to_string()
        } else {
            format!(
                "~{}",
                short_duration(elapsed.mul_f64(left as f64 / done_now as f64))
            )
        };
        format!(
            "elapsed {} | remaining {remaining}",
            short_duration(elapsed)
        )
    }

    fn best_text(&self) -> String {
        self.best
            .get()
            .map_or("best -".into(), |b| format!("best {b:.4}"))
    }

    /// Counts a finished evaluation and returns its line.
    pub fn evaluation(&self, rec: &Record) -> String {
        self.done.set(self.done.get() + 1);
        if let Some(s) = rec.score
            && self.best.get().is_none_or(|b| s > b)
        {
            self.best.set(Some(s));
        }
        let outcome = match (rec.score, &rec.error) {
            (Some(s), _) => format!("score {s:.4}"),
            (None, Some(e)) => {
                let msg: String = e.message.chars().take(100).collect();
                format!("failed ({}: {msg})", format!("{:?}", e.kind).to_lowercase())
            }
            (None, None) => "failed".into(),
        };
        format!(
            "[{}] evaluation {}/{} (round {}): {outcome} | {} | {}",
            self.what,
            self.done.get(),
            self.total,
            rec.round,
            self.best_text(),
            self.times()
        )
    }

    /// The line of a finished round.
    pub fn round(&self, round: usize) -> String {
        format!(
            "[{}] round {round} finished: {}/{} evaluated | {} | {}",
            self.what,
            self.done.get(),
            self.total,
            self.best_text(),
            self.times()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{Source, Status};

    fn rec(score: Option<f64>) -> Record {
        Record {
            index: 0,
            round: 1,
            source: Source::Random,
            text: "x".into(),
            arch: vec![0],
            canonical: vec![0],
            status: if score.is_some() {
                Status::Ok
            } else {
                Status::Failed
            },
            error: None,
            score,
            metrics: Default::default(),
            extras: None,
            predicted: None,
            eta: None,
            parent: None,
        }
    }

    #[test]
    fn lines_say_what_finished_the_best_and_the_times() {
        let p = PlainProgress::new("search", 4, 1, Some(50.0));
        let l = p.evaluation(&rec(Some(40.0)));
        assert!(
            l.starts_with(
                "[search] evaluation 2/4 (round 1): score 40.0000 | best 50.0000 | elapsed "
            ),
            "{l}"
        );
        assert!(l.contains("| remaining ~"), "{l}");
        let l = p.evaluation(&rec(Some(60.0)));
        assert!(l.contains("3/4") && l.contains("best 60.0000"), "{l}");
        let l = p.evaluation(&rec(None));
        assert!(
            l.contains("4/4 (round 1): failed") && l.contains("remaining 0s"),
            "{l}"
        );
        let l = p.round(1);
        assert!(
            l.starts_with("[search] round 1 finished: 4/4 evaluated | best 60.0000"),
            "{l}"
        );
    }
}

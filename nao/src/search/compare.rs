//! Comparing search algorithms over seeds: best-found scores and paired statistics.
//!
//! [`run_seeds`] runs one configuration for seeds `0..k` (each in its own run directory
//! `OUT/<algo>/seed-<s>`, reused when already finished and resumed when interrupted) and
//! returns the best record found per seed. [`paired_stats`] compares two algorithms on the
//! same seeds: means, standard deviations, wins, an exact two-sided sign test and an exact
//! two-sided Wilcoxon signed-rank test. `nao compare` drives both.

use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::Record;
use super::diagnostics::{mean, std_dev};
use crate::error::Result;
use crate::run::{RunOptions, SearchConfig, read_config, read_records, run_search};

/// Runs `base` (its seed replaced) for each seed in `seeds`, in `out/<label>/seed-<s>`, and
/// returns the best record found per seed (`None` when a run found nothing). Finished runs
/// with the same settings are reused; interrupted ones resume. `jobs` runs go at once (each
/// run is deterministic on its own, so the results do not depend on `jobs`). On the CPU;
/// [`run_seeds_on`] takes the device.
pub fn run_seeds(
    base: &SearchConfig,
    label: &str,
    seeds: Range<u64>,
    out: &Path,
    progress: bool,
    jobs: usize,
) -> Result<Vec<Option<Record>>> {
    run_seeds_on(
        base,
        label,
        seeds,
        out,
        progress,
        jobs,
        &autograd::Device::Cpu,
    )
}

/// [`run_seeds`] with the runs' children and controllers on `device`.
pub fn run_seeds_on(
    base: &SearchConfig,
    label: &str,
    seeds: Range<u64>,
    out: &Path,
    progress: bool,
    jobs: usize,
    device: &autograd::Device,
) -> Result<Vec<Option<Record>>> {
    let seeds: Vec<u64> = seeds.collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Option<Record>>>>> =
        Mutex::new((0..seeds.len()).map(|_| None).collect());
    let one = |seed: u64| -> Result<Option<Record>> {
        let mut config = base.clone();
        config.seed = seed;
        let dir = out.join(label).join(format!("seed-{seed}"));
        let records =
            if dir.join("result.json").exists() && read_config(&dir).is_ok_and(|c| c == config) {
                read_records(&dir)?.0
            } else {
                let resume = dir.join("config.json").exists();
                let opts = RunOptions {
                    device: device.clone(),
                    ..RunOptions::inline(resume, progress)
                };
                run_search(&dir, &config, &opts)?.records
            };
        Ok(super::best_of(&records).cloned())
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, seeds.len().max(1)) {
            scope.spawn(|| {
                autograd::inherit_denormal_mode();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= seeds.len() {
                        break;
                    }
                    let r = one(seeds[i]);
                    results.lock().expect("no thread panicked")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no thread panicked")
        .into_iter()
        .map(|r| r.expect("every seed ran"))
        .collect()
}

/// Paired comparison of algorithm A against B on the same seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedStats {
    /// Number of pairs.
    pub n: usize,
    /// Mean of A.
    pub mean_a: f64,
    /// Sample standard deviation of A.
    pub std_a: f64,
    /// Mean of B.
    pub mean_b: f64,
    /// Sample standard deviation of B.
    pub std_b: f64,
    /// Seeds where A found a better score than B.
    pub wins_a: usize,
    /// Seeds where B found a better score than A.
    pub wins_b: usize,
    /// Seeds where both found the same.
    pub ties: usize,
    /// Exact two-sided sign test (ties dropped).
    pub sign_test_p: f64,
    /// Exact two-sided Wilcoxon signed-rank test (zero differences dropped, average ranks for
    /// tied magnitudes).
    pub wilcoxon_p: f64,
}

/// Compares paired samples `a` and `b` (see [`PairedStats`]).
///
/// # Panics
/// If the lengths differ.
pub fn paired_stats(a: &[f64], b: &[f64]) -> PairedStats {
    assert_eq!(a.len(), b.len(), "paired samples differ in length");
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let wins_a = diffs.iter().filter(|d| **d > 0.0).count();
    let wins_b = diffs.iter().filter(|d| **d < 0.0).count();
    PairedStats {
        n: a.len(),
        mean_a: mean(a).unwrap_or(f64::NAN),
        std_a: std_dev(a).unwrap_or(f64::NAN),
        mean_b: mean(b).unwrap_or(f64::NAN),
        std_b: std_dev(b).unwrap_or(f64::NAN),
        wins_a,
        wins_b,
        ties: a.len() - wins_a - wins_b,
        sign_test_p: sign_test_p(wins_a, wins_b),
        wilcoxon_p: wilcoxon_p(&diffs),
    }
}

/// Exact two-sided sign test p-value for `k` successes against `m` failures.
pub fn sign_test_p(k: usize, m: usize) -> f64 {
    let n = k + m;
    if n == 0 {
        return 1.0;
    }
    let lo = k.min(m);
    // P(X <= lo) for X ~ Binomial(n, 1/2), summed in log space.
    let mut log_c = 0.0; // log C(n, 0)
    let mut tail = 0.0;
    for i in 0..=lo {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (log_c - n as f64 * std::f64::consts::LN_2).exp();
    }
    (2.0 * tail).min(1.0)
}

/// Exact two-sided Wilcoxon signed-rank p-value of the differences `d` (zeros dropped).
pub fn wilcoxon_p(d: &[f64]) -> f64 {
    let mut nz: Vec<f64> = d
        .iter()
        .copied()
        .filter(|x| *x != 0.0 && x.is_finite())
        .collect();
    let n = nz.len();
    if n == 0 {
        return 1.0;
    }
    nz.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    // Doubled average ranks (integers).
    let mut r2 = vec![0usize; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && nz[j + 1].abs() == nz[i].abs() {
            j += 1;
        }
        for r in r2.iter_mut().take(j + 1).skip(i) {
            *r = i + j + 2; // 2 * mean of ranks i+1..=j+1
        }
        i = j + 1;
    }
    let w: usize = nz
        .iter()
        .zip(&r2)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let total: usize = r2.iter().sum();
    // dp[s] = probability that the positive doubled-rank sum is s under H0.
    let mut dp = vec![0.0f64; total + 1];
    dp[0] = 1.0;
    for &r in &r2 {
        for s in (0..=total).rev() {
            let from = if s >= r { dp[s - r] } else { 0.0 };
            dp[s] = 0.5 * dp[s] + 0.5 * from;
        }
    }
    let le: f64 = dp[..=w].iter().sum();
    let ge: f64 = dp[w..].iter().sum();
    (2.0 * le.min(ge)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_test_values() {
        assert_eq!(sign_test_p(0, 0), 1.0);
        // 10 wins of 10: 2 / 1024
        assert!((sign_test_p(10, 0) - 2.0 / 1024.0).abs() < 1e-12);
        // 8 of 10: 2 * (1 + 10 + 45) / 1024
        assert!((sign_test_p(8, 2) - 112.0 / 1024.0).abs() < 1e-12);
        assert_eq!(sign_test_p(5, 5), 1.0);
    }

    #[test]
    fn wilcoxon_values() {
        // all 10 positive, distinct: the most extreme of 2^10 outcomes on each side
        let d: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((wilcoxon_p(&d) - 2.0 / 1024.0).abs() < 1e-12);
        // symmetric: p = 1
        assert_eq!(wilcoxon_p(&[1.0, -1.0]), 1.0);
        // n = 5 with W+ = 13 of 15 (only -2 negative): P(W+ >= 13) = 3/32 -> p = 6/32
        assert!((wilcoxon_p(&[1.0, -2.0, 3.0, 4.0, 5.0]) - 6.0 / 32.0).abs() < 1e-12);
        assert_eq!(wilcoxon_p(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn paired_stats_counts() {
        let s = paired_stats(&[3.0, 2.0, 5.0], &[1.0, 2.0, 4.0]);
        assert_eq!((s.wins_a, s.wins_b, s.ties, s.n), (2, 0, 1, 3));
        assert!((s.mean_a - 10.0 / 3.0).abs() < 1e-12);
        assert!((s.sign_test_p - 0.5).abs() < 1e-12);
    }
}

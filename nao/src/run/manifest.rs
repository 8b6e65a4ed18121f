//! `manifest.json`: where, when and how a run ran ([`Manifest`]), and the host facts it
//! records.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// `manifest.json`: where, when and how a run ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The run's seed.
    pub seed: u64,
    /// This crate's version.
    pub crate_version: String,
    /// `git rev-parse HEAD` of the working directory, when available.
    pub git_commit: Option<String>,
    /// The host's name, when available.
    pub hostname: Option<String>,
    /// Logical CPUs available.
    pub cpu_count: usize,
    /// When the run first started (UTC, ISO 8601).
    pub start_time: String,
    /// When it last ended (UTC, ISO 8601).
    pub end_time: Option<String>,
    /// Wall time summed over all invocations, seconds.
    pub wall_time_s: f64,
    /// `running`, `finished` or `failed: ...`.
    pub status: String,
    /// How many times the run was started (1 + resumptions).
    pub invocations: usize,
    /// Evaluations answered from the log on resumption, over all resumptions.
    pub replayed_evaluations: usize,
}

impl Manifest {
    /// The manifest of a run starting now with `seed` (status `running`, one invocation).
    pub fn starting(seed: u64) -> Manifest {
        Manifest {
            seed,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git_commit(),
            hostname: hostname(),
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
            start_time: now_iso(),
            end_time: None,
            wall_time_s: 0.0,
            status: "running".into(),
            invocations: 1,
            replayed_evaluations: 0,
        }
    }
}

/// Current UTC time as ISO 8601 (`2026-01-31T12:00:00Z`).
pub fn now_iso() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `git rev-parse HEAD` in the working directory, else in the crate's source tree.
fn git_commit() -> Option<String> {
    let rev = |dir: Option<&str>| {
        let mut c = std::process::Command::new("git");
        if let Some(d) = dir {
            c.args(["-C", d]);
        }
        let out = c
            .args(["rev-parse", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    rev(None).or_else(|| rev(Some(env!("CARGO_MANIFEST_DIR"))))
}

pub(crate) fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            let out = std::process::Command::new("hostname").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
        })
}

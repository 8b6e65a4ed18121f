//! External command: an evaluator that runs a program per architecture.
//!
//! The architecture's text form is substituted for every `{arch}` in the arguments; when no
//! argument contains `{arch}`, the text is written to the program's stdin (followed by a
//! newline) instead. The program prints one JSON object on stdout (the last non-empty line
//! that parses as a JSON object is used, so logging before it is fine); the value under
//! the metric key is the score. A non-zero exit, output that is not a JSON object, a missing
//! or non-numeric metric and running past the time limit (the child is killed) are failed
//! evaluations, and the search goes on.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use models::space::{Arch, SearchSpace};
use serde_json::{Map, Value, json};

use super::{EvalFailure, EvalResult, Evaluation, Evaluator, FailureKind};

/// Runs `argv` per architecture (see the module docs).
#[derive(Debug)]
pub struct CommandEvaluator {
    /// Program and arguments; `{arch}` is replaced by the architecture's text.
    pub argv: Vec<String>,
    /// The key of the score in the JSON output.
    pub metric: String,
    /// Time limit per evaluation.
    pub timeout: Duration,
    /// The space, for the text form.
    pub space: Box<dyn SearchSpace>,
}

/// The last `n` characters of `s`, for error messages.
fn tail(s: &str, n: usize) -> String {
    let s = s.trim();
    let count = s.chars().count();
    if count <= n {
        s.to_string()
    } else {
        format!("...{}", s.chars().skip(count - n).collect::<String>())
    }
}

impl CommandEvaluator {
    fn run(&self, text: &str) -> Result<Map<String, Value>, EvalFailure> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| EvalFailure::error("empty command"))?;
        let uses_arg = self.argv.iter().any(|a| a.contains("{arch}"));
        let mut child = Command::new(program)
            .args(args.iter().map(|a| a.replace("{arch}", text)))
            .stdin(if uses_arg {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EvalFailure::error(format!("cannot start {program:?}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits without reading stdin makes this fail: not our problem.
            let _ = stdin.write_all(format!("{text}\n").as_bytes());
        }
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let out_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    // Grandchildren may hold the pipes open: do not wait for the readers.
                    return Err(EvalFailure {
                        kind: FailureKind::Timeout,
                        message: format!(
                            "killed after the time limit of {:.1}s",
                            self.timeout.as_secs_f64()
                        ),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(EvalFailure::error(format!("waiting for the command: {e}"))),
            }
        };
        let stdout = out_thread.join().unwrap_or_default();
        let stderr = err_thread.join().unwrap_or_default();
        if !status.success() {
            return Err(EvalFailure::error(format!(
                "the command exited with {status}; stderr: {}",
                tail(&stderr, 300)
            )));
        }
        stdout
            .lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .find_map(|l| match serde_json::from_str::<Value>(l.trim()) {
                Ok(Value::Object(m)) => Some(m),
                _ => None,
            })
            .ok_or_else(|| {
                EvalFailure::error(format!(
                    "no JSON object on stdout; stdout: {}",
                    tail(&stdout, 300)
                ))
            })
    }
}

impl Evaluator for CommandEvaluator {
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        let metrics = self.run(&self.space.to_text(arch))?;
        let score = match metrics.get(&self.metric) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            Some(other) => {
                return Err(EvalFailure::error(format!(
                    "metric `{}` is {other}, not a number",
                    self.metric
                )));
            }
            None => {
                let keys: Vec<&str> = metrics.keys().map(String::as_str).collect();
                return Err(EvalFailure::error(format!(
                    "metric `{}` missing from the output; keys: {}",
                    self.metric,
                    keys.join(", ")
                )));
            }
        };
        if !score.is_finite() {
            return Err(EvalFailure {
                kind: FailureKind::Diverged,
                message: format!("metric `{}` is not finite", self.metric),
            });
        }
        Ok(Evaluation {
            score,
            metrics,
            extras: None,
        })
    }

    fn describe(&self) -> Value {
        json!({
            "kind": "command",
            "argv": self.argv,
            "metric": self.metric,
            "timeout_s": self.timeout.as_secs_f64(),
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use models::space::Nb201Space;

    fn sh(script: &str, timeout_ms: u64) -> CommandEvaluator {
        CommandEvaluator {
            argv: vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                "sh".into(),
                "{arch}".into(),
            ],
            metric: "acc".into(),
            timeout: Duration::from_millis(timeout_ms),
            space: Box::new(Nb201Space),
        }
    }

    const ARCH: [usize; 6] = [4, 2, 1, 5, 3, 2];

    #[test]
    fn reads_metric_from_json_and_substitutes_arch() {
        let mut ev = sh(
            r#"echo "log line"; echo "{\"acc\": 91.5, \"len\": ${#1}}""#,
            5000,
        );
        let e = ev.evaluate(&ARCH.to_vec()).unwrap();
        assert_eq!(e.score, 91.5);
        let text_len = Nb201Space.to_text(&ARCH).len() as u64;
        assert_eq!(e.metrics["len"], json!(text_len));
    }

    #[test]
    fn arch_on_stdin_when_not_in_argv() {
        let mut ev = CommandEvaluator {
            argv: vec!["sh".into(), "-c".into(), r#"read a; case "$a" in "|nor_conv_3x3~0|"*) echo '{"acc": 1}';; *) echo '{"acc": 0}';; esac"#.into()],
            ..sh("", 5000)
        };
        assert_eq!(ev.evaluate(&ARCH.to_vec()).unwrap().score, 1.0);
    }

    #[test]
    fn failures_are_values() {
        let a = ARCH.to_vec();
        let e = sh("echo oops >&2; exit 3", 5000).evaluate(&a).unwrap_err();
        assert!(
            e.message.contains("oops") && e.kind == FailureKind::Error,
            "{e}"
        );
        let e = sh("echo not json", 5000).evaluate(&a).unwrap_err();
        assert!(e.message.contains("no JSON object"), "{e}");
        let e = sh(r#"echo '{"loss": 1}'"#, 5000).evaluate(&a).unwrap_err();
        assert!(
            e.message.contains("missing") && e.message.contains("loss"),
            "{e}"
        );
        let e = sh(r#"echo '{"acc": "high"}'"#, 5000)
            .evaluate(&a)
            .unwrap_err();
        assert!(e.message.contains("not a number"), "{e}");
        let start = Instant::now();
        let e = sh("exec sleep 10", 200).evaluate(&a).unwrap_err();
        assert_eq!(e.kind, FailureKind::Timeout);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

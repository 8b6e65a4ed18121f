//! Learning-rate schedules: a [`Schedule`] maps a step (or epoch) index, counted from 0, to
//! a learning rate, which the training loop hands to [`crate::optim::Optimizer::set_lr`].
//! Schedules are plain data (serde), so a training recipe can name one in a config file:
//!
//! ```
//! use autograd::optim::schedule::{LrSchedule, Schedule};
//! let s: LrSchedule = serde_json::from_str(
//!     r#"{"kind": "warm_restarts", "lr_max": 0.05, "lr_min": 0.0, "t0": 10, "t_mul": 2}"#,
//! ).unwrap();
//! assert_eq!(s.lr(0), 0.05);
//! assert_eq!(s.lr(10), 0.05); // first restart
//! assert_eq!(s.lr(30), 0.05); // second restart, after a cycle of 20
//! assert!((s.lr(5) - 0.025).abs() < 1e-12);
//! ```

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// A learning rate for every step.
pub trait Schedule {
    /// The learning rate at step `step` (0-based).
    fn lr(&self, step: usize) -> f64;
}

/// The same learning rate at every step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constant {
    /// The learning rate.
    pub lr: f64,
}

impl Schedule for Constant {
    fn lr(&self, _step: usize) -> f64 {
        self.lr
    }
}

fn cosine(lr_max: f64, lr_min: f64, t: usize, period: usize) -> f64 {
    lr_min + (lr_max - lr_min) * (1.0 + (PI * t as f64 / period as f64).cos()) / 2.0
}

/// Cosine annealing from `lr_max` at step 0 to `lr_min` at step `total` (like PyTorch's
/// `CosineAnnealingLR` with `T_max = total`, `eta_min = lr_min`):
/// `lr(t) = lr_min + (lr_max - lr_min) * (1 + cos(pi * t / total)) / 2`, and `lr_min` for
/// every step after `total` (PyTorch would climb back up; training past the end of a
/// schedule is more likely a mistake than a wish for a second cycle).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineAnnealing {
    /// The learning rate at step 0.
    pub lr_max: f64,
    /// The learning rate at step `total` and after.
    pub lr_min: f64,
    /// The length of the schedule in steps (> 0).
    pub total: usize,
}

impl Schedule for CosineAnnealing {
    fn lr(&self, step: usize) -> f64 {
        assert!(self.total > 0, "CosineAnnealing: total must be positive");
        cosine(self.lr_max, self.lr_min, step.min(self.total), self.total)
    }
}

/// Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter; PyTorch's
/// `CosineAnnealingWarmRestarts`): the first cycle lasts `t0` steps, each later one `t_mul`
/// times longer than the one before; within a cycle of length `T_i`, at position `t_cur`,
/// `lr = lr_min + (lr_max - lr_min) * (1 + cos(pi * t_cur / T_i)) / 2`, so the rate jumps
/// back to `lr_max` at every restart. NAO's weight-sharing search uses `t0 = 10, t_mul = 2`:
/// restarts at steps 10, 30, 70, 150, ...
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineWarmRestarts {
    /// The learning rate at the start of every cycle.
    pub lr_max: f64,
    /// The floor the rate anneals towards.
    pub lr_min: f64,
    /// The length of the first cycle (> 0).
    pub t0: usize,
    /// How many times longer each cycle is than the previous one (>= 1).
    pub t_mul: usize,
}

impl CosineWarmRestarts {
    /// `(t_cur, T_i)`: the position within the current cycle and that cycle's length.
    pub fn cycle(&self, step: usize) -> (usize, usize) {
        assert!(
            self.t0 > 0 && self.t_mul >= 1,
            "CosineWarmRestarts: needs t0 > 0 and t_mul >= 1, got t0 = {}, t_mul = {}",
            self.t0,
            self.t_mul
        );
        if self.t_mul == 1 {
            return (step % self.t0, self.t0);
        }
        let (mut t, mut len) = (step, self.t0);
        while t >= len {
            t -= len;
            len *= self.t_mul;
        }
        (t, len)
    }
}

impl Schedule for CosineWarmRestarts {
    fn lr(&self, step: usize) -> f64 {
        let (t, len) = self.cycle(step);
        cosine(self.lr_max, self.lr_min, t, len)
    }
}

/// Any of the schedules, tagged by `"kind"` (`"constant"`, `"cosine"`, `"warm_restarts"`)
/// for configuration files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// [`Constant`].
    Constant(Constant),
    /// [`CosineAnnealing`].
    Cosine(CosineAnnealing),
    /// [`CosineWarmRestarts`].
    WarmRestarts(CosineWarmRestarts),
}

impl Schedule for LrSchedule {
    fn lr(&self, step: usize) -> f64 {
        match self {
            LrSchedule::Constant(s) => s.lr(step),
            LrSchedule::Cosine(s) => s.lr(step),
            LrSchedule::WarmRestarts(s) => s.lr(step),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn cosine_annealing_by_hand() {
        let s = CosineAnnealing {
            lr_max: 0.1,
            lr_min: 0.001,
            total: 4,
        };
        close(s.lr(0), 0.1);
        // t = 1: cos(pi/4) = sqrt(2)/2
        close(s.lr(1), 0.001 + 0.099 * (1.0 + 0.5f64.sqrt()) / 2.0);
        close(s.lr(2), 0.001 + 0.099 / 2.0);
        close(s.lr(3), 0.001 + 0.099 * (1.0 - 0.5f64.sqrt()) / 2.0);
        close(s.lr(4), 0.001);
        close(s.lr(100), 0.001);
    }

    #[test]
    fn warm_restarts_nao_ws_boundaries() {
        let s = CosineWarmRestarts {
            lr_max: 0.05,
            lr_min: 0.0,
            t0: 10,
            t_mul: 2,
        };
        assert_eq!(s.cycle(0), (0, 10));
        assert_eq!(s.cycle(9), (9, 10));
        assert_eq!(s.cycle(10), (0, 20));
        assert_eq!(s.cycle(29), (19, 20));
        assert_eq!(s.cycle(30), (0, 40));
        assert_eq!(s.cycle(69), (39, 40));
        assert_eq!(s.cycle(70), (0, 80));
        assert_eq!(s.cycle(150), (0, 160));
        for restart in [0, 10, 30, 70, 150] {
            close(s.lr(restart), 0.05);
        }
        // halfway through each cycle the rate is halfway
        for mid in [5, 20, 50, 110] {
            close(s.lr(mid), 0.025);
        }
        // the last step of the first cycle: cos(0.9 pi)
        close(s.lr(9), 0.05 * (1.0 + (0.9 * PI).cos()) / 2.0);
        // a quarter into the third cycle (length 40): cos(pi/4)
        close(s.lr(40), 0.05 * (1.0 + 0.5f64.sqrt()) / 2.0);
    }

    #[test]
    fn warm_restarts_with_equal_cycles() {
        let s = CosineWarmRestarts {
            lr_max: 1.0,
            lr_min: 0.5,
            t0: 3,
            t_mul: 1,
        };
        close(s.lr(3), 1.0);
        close(s.lr(6), 1.0);
        close(s.lr(4), s.lr(1));
        close(s.lr(1), 0.5 + 0.5 * (1.0 + (PI / 3.0).cos()) / 2.0);
    }

    #[test]
    fn schedules_are_data() {
        let all = [
            LrSchedule::Constant(Constant { lr: 0.3 }),
            LrSchedule::Cosine(CosineAnnealing {
                lr_max: 1.0,
                lr_min: 0.0,
                total: 10,
            }),
            LrSchedule::WarmRestarts(CosineWarmRestarts {
                lr_max: 1.0,
                lr_min: 0.1,
                t0: 2,
                t_mul: 3,
            }),
        ];
        for s in all {
            let json = serde_json::to_string(&s).unwrap();
            let back: LrSchedule = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s, "{json}");
        }
        let c: LrSchedule =
            serde_json::from_str(r#"{"kind":"cosine","lr_max":1.0,"lr_min":0.0,"total":2}"#)
                .unwrap();
        close(c.lr(1), 0.5);
        close(LrSchedule::Constant(Constant { lr: 0.3 }).lr(99), 0.3);
    }
}

//! [`CnnConfig`]: the size and regularisation of a child CNN.

use serde::{Deserialize, Serialize};

use crate::space::{CnnSpace, SpaceKind};

/// What a child CNN looks like apart from its cells: which space its architecture comes
/// from, how many cells and channels, the classifier, and its dropout settings.
///
/// ```
/// use models::cnn::CnnConfig;
/// let c = CnnConfig::workload_c();
/// assert_eq!((c.n_cells, c.channels, c.classes), (2, 16, 10));
/// let json = serde_json::to_string(&c).unwrap();
/// assert!(json.contains("\"space\":\"cnn-ws\""));
/// assert_eq!(serde_json::from_str::<CnnConfig>(&json).unwrap(), c);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CnnConfig {
    /// `cnn-ws` (5 ops) or `cnn` (11 ops).
    pub space: SpaceKind,
    /// N: normal cells per stage (3N + 2 cells in all).
    pub n_cells: usize,
    /// F: channels of the first stage (the stem has 3F; stages have F, 2F, 4F per node).
    pub channels: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Keep probability of the dropout before the classifier (1 = off).
    pub dropout_keep: f64,
    /// Drop-path keep probability `p` of the last cell (1 = off); see spec 6.2.
    pub drop_path_keep: f64,
    /// Build the auxiliary head after the second reduction cell.
    pub aux_head: bool,
}

impl CnnConfig {
    /// The PyTorch peer's workload C child: `cnn-ws`, N = 2, F = 16, 10 classes, dropout
    /// keep 0.6, drop-path keep 0.8, no auxiliary head.
    pub fn workload_c() -> CnnConfig {
        CnnConfig {
            space: SpaceKind::CnnWs,
            n_cells: 2,
            channels: 16,
            classes: 10,
            dropout_keep: 0.6,
            drop_path_keep: 0.8,
            aux_head: false,
        }
    }

    /// The cell space of [`CnnConfig::space`]; panics naming it if it is not a CNN space.
    pub fn cnn_space(&self) -> CnnSpace {
        match self.space {
            SpaceKind::CnnWs => CnnSpace::WS,
            SpaceKind::Cnn => CnnSpace::FULL,
            other => panic!("CnnConfig: space {other} is not a CNN space (cnn-ws or cnn)"),
        }
    }

    /// Total number of cells, `3N + 2`.
    pub fn total_cells(&self) -> usize {
        3 * self.n_cells + 2
    }

    /// Indices of the two reduction cells, `N` and `2N + 1`.
    pub fn reduction_cells(&self) -> [usize; 2] {
        [self.n_cells, 2 * self.n_cells + 1]
    }

    /// Checks the sizes and probabilities; the error says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.space, SpaceKind::CnnWs | SpaceKind::Cnn) {
            return Err(format!("space {} is not a CNN space", self.space));
        }
        if self.n_cells == 0 || self.channels == 0 || self.classes == 0 {
            return Err(format!(
                "n_cells ({}), channels ({}) and classes ({}) must be positive",
                self.n_cells, self.channels, self.classes
            ));
        }
        for (what, p) in [
            ("dropout_keep", self.dropout_keep),
            ("drop_path_keep", self.drop_path_keep),
        ] {
            if !(p > 0.0 && p <= 1.0) {
                return Err(format!("{what} must be in (0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

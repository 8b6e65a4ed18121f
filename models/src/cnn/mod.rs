//! The child CNN of the CNN search spaces (spec section 6): a NASNet-style network of
//! `3N + 2` cells built from a [`CnnArch`](crate::space::cnn::CnnArch), laid out exactly
//! like the PyTorch peer's `NASNetworkCIFAR` (`shared/bench/peers/cnn_cells.py`), so that
//! parameter shapes and counts agree with it.
//!
//! * [`ops`]: the cell ops, all in ReLU-conv-BN order.
//! * [`reduce`]: factorized reduce and the calibration of cell inputs.
//! * [`relu_conv_bn`]: ReLU, conv, BN, the block both of those are built from.
//! * [`cell`]: one cell (nodes = sum of two branches, drop-path, loose-end concatenation).
//! * [`network`]: [`CnnNetwork`] (stem, cells, optional auxiliary head, classifier).
//! * [`config`]: the configuration, [`CnnConfig`].
//! * [`drop_path`]: the per-example drop-path factors (the node sum with drop-path is
//!   one op, `autograd::ops::scaled_sum::scaled_sum`).
//! * [`supernet`]: the NAO-WS weight-sharing supernet, [`supernet::Supernet`].
//!
//! Forward passes take a [`Mode`]: which batch-norm statistics to use and, when training, the
//! generator that draws the dropout and drop-path masks plus the training progress that
//! schedules drop-path.
//!
//! ```
//! use autograd::{DType, Tensor};
//! use autograd::nn::Module;
//! use models::cnn::{CnnConfig, CnnNetwork, Mode};
//! use rand::SeedableRng;
//! let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
//! let cfg = CnnConfig { n_cells: 1, channels: 4, ..CnnConfig::workload_c() };
//! let net = CnnNetwork::from_flat(
//!     "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4",
//!     &cfg,
//!     &mut rng,
//! )
//! .unwrap();
//! let x = Tensor::zeros(&[2, 3, 32, 32], DType::F32);
//! let out = net.forward(&x, &mut Mode::train(&mut rng, 0.5));
//! assert_eq!(out.logits.shape(), &[2, 10]);
//! let eval = autograd::no_grad(|| net.forward(&x, &mut Mode::eval()));
//! assert!(eval.aux_logits.is_none());
//! ```

/// The PyTorch peers' pinned architecture (`shared/bench/peers`: CONV_ARCH then
/// REDUC_ARCH, 40 integers in the flat text form): the cell of the CNN benches and of the
/// profiling examples, so that their numbers compare with the peers'.
pub const PEER_ARCH: &str =
    "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";

pub mod cell;
pub mod config;
pub mod drop_path;
pub mod network;
pub mod ops;
pub mod reduce;
pub mod relu_conv_bn;
pub mod supernet;

pub use cell::Cell;
pub use config::CnnConfig;
pub use network::{CnnNetwork, CnnOutput};

use autograd::ops::batchnorm::BatchNormMode;
use rand_pcg::Pcg64Mcg;

/// How a forward pass runs.
///
/// * [`Mode::train`]: batch statistics (running statistics updated), dropout and drop-path
///   masks drawn from the generator, drop-path scheduled by `progress = step / total_steps`.
/// * [`Mode::eval`]: running statistics, no dropout, no drop-path.
/// * [`Mode::train_deterministic`]: batch statistics with running updates but no random
///   masks (for gradient checks).
pub struct Mode<'a> {
    /// Which statistics batch norm uses.
    pub bn: BatchNormMode,
    /// The generator for dropout and drop-path masks; `None` turns both off.
    pub rng: Option<&'a mut Pcg64Mcg>,
    /// Training progress in `[0, 1]` (`step / total_steps`), for the drop-path schedule.
    pub progress: f64,
}

impl<'a> Mode<'a> {
    /// Training: batch statistics, masks from `rng`, drop-path at `progress`.
    pub fn train(rng: &'a mut Pcg64Mcg, progress: f64) -> Mode<'a> {
        Mode {
            bn: BatchNormMode::Train,
            rng: Some(rng),
            progress,
        }
    }

    /// Evaluation: running statistics, nothing random.
    pub fn eval() -> Mode<'static> {
        Mode {
            bn: BatchNormMode::Eval,
            rng: None,
            progress: 0.0,
        }
    }

    /// Batch statistics (running ones updated) without dropout or drop-path.
    pub fn train_deterministic() -> Mode<'static> {
        Mode {
            bn: BatchNormMode::Train,
            rng: None,
            progress: 0.0,
        }
    }

    /// True when batch norm uses batch statistics and updates its running statistics.
    pub fn is_training(&self) -> bool {
        self.bn == BatchNormMode::Train
    }
}

/// The drop-path keep probability of cell `cell` (0-based) of `total` at training progress
/// `progress` (spec 6.2): `keep_l = 1 - (cell + 1) / total * (1 - p)`, then
/// `keep = 1 - min(1, progress) * (1 - keep_l)`.
///
/// ```
/// use models::cnn::drop_path_keep;
/// assert_eq!(drop_path_keep(0.8, 7, 8, 0.0), 1.0);
/// assert!((drop_path_keep(0.8, 7, 8, 1.0) - 0.8).abs() < 1e-12);
/// assert!((drop_path_keep(0.8, 3, 8, 0.5) - 0.95).abs() < 1e-12);
/// ```
pub fn drop_path_keep(p: f64, cell: usize, total: usize, progress: f64) -> f64 {
    let keep_l = 1.0 - (cell + 1) as f64 / total as f64 * (1.0 - p);
    1.0 - progress.clamp(0.0, 1.0) * (1.0 - keep_l)
}

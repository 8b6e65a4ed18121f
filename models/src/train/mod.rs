//! Training recipes ([`recipe`]) and the child-CNN trainer ([`cnn_trainer`]).
//!
//! A [`Recipe`] is plain serde data (optimiser, learning-rate schedule, epochs, batch size,
//! regularisation), so a run's configuration file can record exactly how a child was
//! trained; named presets follow the rows of spec section 6.3.

pub mod cnn_trainer;
pub mod recipe;

pub use cnn_trainer::{EpochReport, TrainData, TrainError, TrainReport, evaluate, train_cnn};
pub use recipe::{OptimizerSpec, Recipe};

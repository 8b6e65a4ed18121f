//! Neural Architecture Optimization: the search loop, its evaluators, run directories.
//!
//! * [`evaluator`]: the [`Evaluator`](evaluator::Evaluator) trait and the table-lookup and
//!   external-command evaluators;
//! * [`search`]: NAO (Algorithm 1) over a [`Surrogate`](search::Surrogate), random search,
//!   regularised evolution, the per-round diagnostics, multi-seed comparison;
//! * [`controller`]: the NAO controller (encoder, predictor, decoder) and its generation;
//! * [`run`]: run directories (config, manifest, logs, checkpoints, resumption, reports);
//! * [`data`]: the CIFAR datasets the commands train on, fetched when missing.

pub mod arch_arg;
pub mod cifar;
pub mod cifar_ws;
pub mod controller;
pub mod data;
pub mod error;
pub mod evaluator;
pub mod executor;
pub mod final_rows;
pub mod ptb;
pub mod ptb_ws;
pub mod run;
pub mod search;
pub mod train_cnn;
pub mod train_lm;

pub use error::{Error, Result};

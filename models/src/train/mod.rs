//! Training recipes and loops for child networks: CNN recipes ([`recipe`]) and trainer
//! ([`cnn_trainer`]); the PTB recipe ([`ptb_recipe`]) and RNN trainer ([`rnn_trainer`]);
//! the weight-sharing RNN supernet's trainer ([`supernet_trainer`]).
//!
//! A [`Recipe`] is plain serde data (optimiser, learning-rate schedule, epochs, batch size,
//! regularisation), so a run's configuration file can record exactly how a child was
//! trained; named presets follow the rows of spec section 6.3.

pub mod cnn_trainer;
pub mod lm_parts;
pub mod lm_session;
pub mod ptb_recipe;
pub mod recipe;
pub mod rnn_trainer;
pub mod supernet_trainer;

pub use cnn_trainer::{
    EpochReport, TrainData, TrainError, TrainReport, evaluate, train_cnn, train_cnn_observed,
    train_cnn_observed_on, train_cnn_on,
};
pub use recipe::{OptimizerSpec, Recipe};

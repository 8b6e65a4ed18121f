//! Training recipes and loops for child networks.

pub mod ptb_recipe;
pub mod rnn_trainer;

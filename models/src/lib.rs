//! models

pub mod rnn;
pub mod space;
pub mod train;

//! # models
//!
//! What NAO searches over and what it trains:
//! * [`space`]: the four search spaces (token layouts, masks, sampling, canonical forms,
//!   text/JSON, drawings);
//! * [`cnn`]: child CNNs built from a `cnn-ws`/`cnn` architecture (spec 6);
//! * [`rnn`]: the child RNN language model built from an `rnn` architecture (spec 8);
//! * [`train`]: training recipes as data, and the CNN and PTB trainers.

pub mod cnn;
pub mod rnn;
pub mod space;
pub mod train;

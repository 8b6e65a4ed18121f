//! The child RNN language model of the `rnn` space (spec section 8): a recurrent highway
//! cell built from an [`crate::space::rnn::RnnCell`] ([`cell`]), the language model around
//! it with tied embedding/softmax weights and AWD-LSTM dropouts ([`model`]), and its
//! sizes and presets ([`config`]). The softmax decoder and its loss are one blocked op,
//! [`autograd::ops::linear_ce::linear_cross_entropy`]. The weight-sharing supernet of the space is [`supernet`]. The PTB
//! training loop is [`crate::train::rnn_trainer`].

pub mod cell;
pub mod config;
pub mod model;
pub mod supernet;

pub use cell::{CellMasks, HighwayCell, INIT_RANGE};
pub use config::RnnConfig;
pub use model::{DropoutMasks, LmStep, RnnLanguageModel};
pub use supernet::RnnSupernet;

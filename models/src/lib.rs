//! models

pub mod cnn;
pub mod space;
pub mod train;

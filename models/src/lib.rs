//! models

pub mod space;

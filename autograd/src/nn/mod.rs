//! Building blocks for models: named parameters ([`Param`]), the [`Module`] trait,
//! seeded initialisers ([`init`]), layers ([`Linear`]) and the parameter file format
//! ([`serialize`]).
//!
//! Parameters are named hierarchically with dots (`"encoder.lstm.w_ih"`). Layers take their
//! full name when they are built (`Linear::new("encoder.fc", ..)` owns
//! `"encoder.fc.weight"` and `"encoder.fc.bias"`); [`join`] builds such names and
//! [`prefixed`] renames a child's parameters when a module is composed without knowing
//! where it sits. Names are what parameter files and optimiser state are keyed by, so they
//! must be unique within a model ([`check_unique`]).

pub mod batchnorm;
pub mod conv;
pub mod embedding;
pub mod init;
pub mod linear;
pub mod lstm;
pub mod module;
pub mod param;
pub mod serialize;

pub use batchnorm::BatchNorm2d;
pub use conv::Conv2d;
pub use embedding::Embedding;
pub use linear::Linear;
pub use lstm::Lstm;
pub use module::{Module, join, prefixed};
pub use param::Param;
pub use param::check_unique;
pub use serialize::{load_params, save_params};

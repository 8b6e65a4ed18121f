//! Compute kernels, apart from the autodiff graph.

pub mod cpu;
pub mod cuda;

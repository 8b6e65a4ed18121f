//! Compute kernels, apart from the autodiff graph.

pub mod cpu;

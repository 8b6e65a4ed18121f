//! Differentiable ops, one family per file. Each op is a method on [`crate::Tensor`] (or a
//! function here) with its backward rule next to it and its gradient check in the file's
//! tests. Start reading at `elementwise.rs`.

pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod matmul;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod unary;

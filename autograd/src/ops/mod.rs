//! Differentiable ops, one family per file. Each op is a method on [`crate::Tensor`] (or a
//! function here) with its backward rule next to it and its gradient check in the file's
//! tests. Start reading at `elementwise.rs`.

pub mod attention;
pub mod batchnorm;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod highway;
pub mod index;
pub mod lstm;
pub mod matmul;
pub mod normalize;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;

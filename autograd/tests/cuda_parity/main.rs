//! GPU parity: every op's forward and backward on random f32 inputs, on the CPU and on CUDA
//! device 0, compared elementwise.
//!
//! Tolerance: `|gpu - cpu| <= rtol * (|cpu| + mean|cpu|)` per element, with `rtol` stated per
//! test: 1e-4 for elementwise ops, 1e-3 for reductions, GEMM, convolutions and the ops built
//! on them (the GPU sums in another order). The gradients are those of `sum(y * w)` for a
//! seeded random weighting `w` of the output, so every output element matters.
//!
//! Without a GPU (no `cuda` feature, no NVIDIA driver, or no device) each test prints
//! `skipped: no CUDA device (<error>)` and passes; with `OPS_CUDA_REQUIRE_GPU=1` (set by
//! `ops-cuda/tools/gpu-check.sh`) a missing device fails instead.

mod cnn_ops;
mod core_ops;
mod harness;
mod rnn_ops;

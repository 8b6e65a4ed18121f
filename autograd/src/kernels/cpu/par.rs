//! When CPU work is split across rayon's pool: every size threshold, in one place.
//!
//! Below a threshold the work runs on the calling thread (a rayon task costs a few
//! microseconds). Splitting never changes results: the parallel paths split independent
//! outputs, or sum fixed blocks in a fixed order. The values were tuned on the 2-core
//! CI-class machine; change them here, and rerun the criterion benches.

/// Elementwise maps and broadcasting zips (`ops::elementwise`) and strided gathers
/// (`index_select`) with at least this many output elements run in parallel.
pub const ELEMENTWISE_MIN: usize = 1 << 16;

/// Chunk length of a parallel in-place slice map (the vectorised `exp`, `tanh`, `sigmoid`).
pub const ELEMENTWISE_CHUNK: usize = ELEMENTWISE_MIN / 4;

/// Per-lane kernels (softmax, log-softmax, cross-entropy rows; `kernels::cpu::lanes`) over at
/// least this many elements run in parallel.
pub const LANES_MIN: usize = 1 << 15;

/// Matrix products (`gemm`, `packed_gemm`) with at least this many multiply-adds split the
/// rows of `C` across the pool.
pub const GEMM_MIN_FLOPS: usize = 1 << 22;

/// Packed-panel products (`packed_gemm::par_rows`) split the rows of `C` only when `C` has
/// at least this many rows (and [`GEMM_MIN_FLOPS`] multiply-adds).
pub const PACKED_GEMM_MIN_ROWS: usize = 16;

/// Batched matrix products (`kernels::cpu::matmul`, more than one product) with at least
/// this many multiply-adds in all run their products in parallel, one per task.
pub const BATCHED_MATMUL_MIN_FLOPS: usize = 1 << 20;

/// LSTM sequences (`lstm_seq::row_chunk`: the LSTM layers and the graph-free greedy
/// decoder) split their batch across the pool when the recurrence has at least this many
/// multiply-adds (`T * batch * 4H * H`) and the batch at least [`LSTM_SEQ_MIN_BATCH`] rows.
pub const LSTM_SEQ_MIN_FLOPS: usize = 1 << 22;

/// The fewest batch rows an LSTM sequence splits across the pool (see
/// [`LSTM_SEQ_MIN_FLOPS`]).
pub const LSTM_SEQ_MIN_BATCH: usize = 16;

/// Highway-cell batches (`kernels::cpu::highway`) with fewer elements than this run on the
/// calling thread.
pub const HIGHWAY_MIN: usize = 1 << 14;

/// Gradient sums in place (`graph.rs`, fan-out) run in chunks of this many elements, in
/// parallel from two chunks up.
pub const GRAD_SUM_CHUNK: usize = 1 << 15;

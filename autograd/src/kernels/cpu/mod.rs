//! CPU kernels: plain functions on ndarray views, apart from the graph. They are also the
//! reference that CUDA kernels are tested against.

pub mod gemm;

pub use gemm::gemm;
pub mod batchnorm;
pub mod concat;
pub mod conv;
pub mod conv_gemm;
pub mod denormals;
pub mod depthwise;
pub mod elementwise;
pub mod fastmath;
pub mod gather_scatter;
pub mod heap;
pub mod highway;
pub mod lanes;
pub mod layout;
pub mod linear_ce;
pub mod lstm_gates;
pub mod lstm_seq;
pub mod matmul;
pub mod packed_gemm;
pub mod par;
pub mod pool;
pub mod scaled_sum;
pub mod simd;
pub mod uninit;

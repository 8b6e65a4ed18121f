//! # autograd
//!
//! Reverse-mode automatic differentiation over n-dimensional tensors, written to be read.
//!
//! * [`Tensor`]: a cheap-to-clone handle to an immutable graph node (its numbers, dtype,
//!   device, and how it was computed). Ids grow monotonically, so a node's id is larger
//!   than its inputs'.
//! * [`Tensor::backward`] walks the graph in descending id order and returns
//!   [`Gradients`] for every variable ([`Tensor::requires_grad`]) and every intermediate
//!   marked with [`Tensor::retain_grad`] — NAO takes gradients with respect to encoder
//!   outputs this way.
//! * Ops live in [`ops`], one family per file, each with its backward rule and gradient
//!   check; CPU kernels live apart in [`kernels::cpu`].
//! * [`testing::gradcheck`] proves derivatives by central differences in f64.
//! * [`retain_freed_memory`] is the heap policy a training program chooses at startup
//!   (glibc keeps freed tensor buffers for reuse); the library never sets it itself.
//! * [`flush_denormals`] likewise: the float mode (subnormals read and written as zero,
//!   on every computing thread) a training program chooses at startup.
//! * [`configure_training_process`] makes both choices in one call (what the `nao`
//!   binary, the benchmarks and the training examples do first thing).
//!
//! ```
//! use autograd::{DType, Tensor};
//! let w = Tensor::from_vec(vec![0.5f32, -1.0, 2.0], &[3, 1]).requires_grad();
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
//! let loss = x.matmul(&w).tanh().sum();
//! let grads = loss.backward();
//! assert_eq!(grads.get(&w).unwrap().shape(), &[3, 1]);
//! # let _ = DType::F32;
//! ```

pub mod device;
pub mod dtype;
pub mod error;
pub mod grad_mode;
pub mod graph;
pub mod kernels;
pub mod ops;
pub mod storage;
pub mod tensor;
pub mod testing;

pub use device::Device;
pub use dtype::{DType, Float};
pub use error::Error;
pub use graph::{Backward, Gradients, NoGradGuard, is_grad_enabled, no_grad};
pub use kernels::cpu::denormals::{flush_denormals, inherit_denormal_mode};
pub use kernels::cpu::heap::retain_freed_memory;
pub use storage::Storage;
pub use tensor::{Tensor, TensorId};
pub mod nn;
pub mod optim;
pub use nn::{Module, Param};
pub use optim::Optimizer;

/// The process-wide choices of a program that trains, made once at startup: freed tensor
/// buffers kept for the next step ([`retain_freed_memory`]) and subnormal floats flushed
/// to zero on every computing thread ([`flush_denormals`]). Neither changes what is
/// computed beyond subnormal results becoming zero; each has its own opt-out
/// (`AUTOGRAD_KEEP_HEAP=0`, `AUTOGRAD_FLUSH_DENORMALS=0`). Returns whether the flush took
/// effect.
pub fn configure_training_process() -> bool {
    retain_freed_memory();
    flush_denormals()
}

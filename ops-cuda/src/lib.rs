//! `ops-cuda`: a library of CUDA kernels for `autograd` (no graph, no autodiff).
//!
//! * Kernels are CUDA C in `ops-cuda/kernels/*.cu`, compiled to PTX (ISA 8.4, `sm_80`) by
//!   `tools/gen_ptx.py` with NVRTC from PyPI, committed under `kernels/ptx/`, embedded with
//!   `include_str!` and loaded lazily, one module per file, the first time a kernel of that
//!   file is launched.
//! * [`CudaDevice`] is a cheap, cloneable handle: context, one stream, the module cache and a
//!   size-bucketed buffer pool. [`CudaBuffer`] is device memory of `f32` (or `i32`) elements;
//!   dropping it returns the memory to the pool without synchronising.
//! * The launch wrappers in [`kernels`] check shapes, allocate outputs from the pool and
//!   enqueue work on the device's stream; reading a buffer back ([`CudaBuffer::to_vec`])
//!   synchronises.
//!
//! * The driver (`libcuda.so.1`) is loaded at run time, the first time a device is asked for
//!   (`driver.rs`, dlopen through `libloading`): a binary built with `--features cuda` starts
//!   and runs on the CPU on a machine without the NVIDIA driver, and `CudaDevice::new` then
//!   returns [`CudaError::NoDriver`] naming the library and the fix.
//!
//! The crate always builds, with or without the `cuda` feature, and needs no CUDA installation
//! to build either way. Without the feature it carries no driver code, [`CudaDevice::new`]
//! returns [`CudaError::NotCompiled`], and every wrapper still type-checks (it cannot be
//! reached, because no device can be made), so `autograd` needs no `cfg`.

mod buffer;
mod device;
#[cfg(feature = "cuda")]
mod driver;
mod error;
pub mod kernels;
pub mod ptx;
pub mod shape;
pub mod testing;

pub use buffer::{CudaBuffer, DeviceScalar};
pub use device::{CudaDevice, PoolStats, device_count};
#[cfg(feature = "cuda")]
pub use driver::{DRIVER_LIBRARIES, DRIVER_SYMBOLS, driver_version};
pub use error::{CudaError, DriverError};

/// The driver's CUDA version (e.g. 13000 for CUDA 13.0); without the `cuda` feature always
/// [`CudaError::NotCompiled`].
#[cfg(not(feature = "cuda"))]
pub fn driver_version() -> Result<u32, CudaError> {
    Err(CudaError::NotCompiled)
}

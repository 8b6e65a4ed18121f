//! [`CudaDevice`]: one context, one stream, the lazily loaded PTX modules and a buffer pool.

use std::fmt;
use std::sync::Arc;

use crate::CudaError;
use crate::ptx::PtxModule;

/// Pool statistics (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes allocated from the driver and not yet freed (in use plus cached).
    pub reserved: usize,
    /// Bytes held by the pool for reuse.
    pub cached: usize,
    /// Number of `cuMemAlloc` calls so far.
    pub driver_allocs: usize,
}

/// A handle to one CUDA device (context, stream, loaded modules, buffer pool).
///
/// Cloning is cheap (an `Arc`); clones share everything. Two handles are equal when they
/// name the same ordinal. All work is enqueued on the device's single non-blocking stream, in
/// call order; methods that return host data synchronise it. Every method first makes the
/// device's context current on the calling thread, so a handle can move between threads.
///
/// Without the `cuda` feature this type cannot be constructed.
#[derive(Clone)]
pub struct CudaDevice {
    pub(crate) inner: Arc<backend::Inner>,
}

impl PartialEq for CudaDevice {
    fn eq(&self, other: &Self) -> bool {
        self.ordinal() == other.ordinal()
    }
}

impl Eq for CudaDevice {}

impl fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaDevice")
            .field("ordinal", &self.ordinal())
            .field("name", &self.name())
            .finish()
    }
}

/// Number of CUDA devices the driver sees (an error when the driver is missing or fails).
pub fn device_count() -> Result<usize, CudaError> {
    backend::device_count()
}

/// A launch configuration: grid and block dimensions and dynamic shared memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaunchCfg {
    pub grid: (u32, u32, u32),
    pub block: u32,
    pub shared: u32,
}

impl LaunchCfg {
    /// A grid-stride 1-D launch over `n` elements with 256 threads per block.
    pub fn linear(n: usize) -> Self {
        let blocks = n.div_ceil(256).clamp(1, 1 << 20) as u32;
        LaunchCfg {
            grid: (blocks, 1, 1),
            block: 256,
            shared: 0,
        }
    }

    /// One block per row (`rows` capped; the kernels loop), `threads` per block.
    pub fn rows(rows: usize, threads: u32, shared: u32) -> Self {
        LaunchCfg {
            grid: (rows.clamp(1, 1 << 20) as u32, 1, 1),
            block: threads,
            shared,
        }
    }
}

/// Threads per block for a per-row reduction over `len` elements: a power of two in [32, max].
pub(crate) fn reduction_threads(len: usize, max: u32) -> u32 {
    (len.next_power_of_two() as u32).clamp(32, max)
}

/// A value passed to a kernel by pointer (`cuLaunchKernel`'s `kernelParams`).
///
/// # Safety
/// The type's bytes must be exactly what the kernel parameter expects (`#[repr(C)]`, plain data).
pub(crate) unsafe trait KernelArg {
    fn as_arg_ptr(&self) -> *mut std::ffi::c_void {
        self as *const Self as *mut std::ffi::c_void
    }
}

unsafe impl KernelArg for i32 {}
unsafe impl KernelArg for u32 {}
unsafe impl KernelArg for i64 {}
unsafe impl KernelArg for u64 {}
unsafe impl KernelArg for f32 {}

impl CudaDevice {
    /// Opens device `ordinal`: initialises the driver, retains the device's primary context
    /// and creates a non-blocking stream.
    ///
    /// ```
    /// match ops_cuda::CudaDevice::new(0) {
    ///     Ok(dev) => assert_eq!(dev.ordinal(), 0),
    ///     Err(e) => println!("no GPU here: {e}"),
    /// }
    /// ```
    pub fn new(ordinal: usize) -> Result<Self, CudaError> {
        Ok(CudaDevice {
            inner: Arc::new(backend::Inner::new(ordinal)?),
        })
    }

    /// The device's ordinal (0 for the first GPU).
    pub fn ordinal(&self) -> usize {
        self.inner.ordinal()
    }

    /// The device's name as the driver reports it (e.g. "NVIDIA H100 80GB HBM3").
    pub fn name(&self) -> String {
        self.inner.name()
    }

    /// Waits until all work enqueued on the device's stream has finished.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.inner.synchronize()
    }

    /// Pool statistics.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool_stats()
    }

    /// Synchronises, then frees every cached (unused) pool allocation.
    pub fn empty_cache(&self) -> Result<(), CudaError> {
        self.inner.empty_cache()
    }

    /// Loads every PTX module now (normally they load on first use), so that a driver too old
    /// for the PTX ISA fails here with a named module.
    pub fn preload_modules(&self) -> Result<(), CudaError> {
        for m in PtxModule::ALL {
            self.inner.ensure_module(m)?;
        }
        Ok(())
    }

    /// Enqueues kernel `func` of `module` with `args` on the stream.
    ///
    /// # Safety
    /// `args` must match the kernel's parameter list in number, order and type, and every
    /// pointer must be valid for what the kernel reads and writes.
    pub(crate) unsafe fn launch(
        &self,
        module: PtxModule,
        func: &'static str,
        cfg: LaunchCfg,
        args: &[&dyn KernelArg],
    ) -> Result<(), CudaError> {
        let ptrs: Vec<*mut std::ffi::c_void> = args.iter().map(|a| a.as_arg_ptr()).collect();
        unsafe { self.inner.launch(module, func, cfg, &ptrs) }
    }
}

#[cfg(feature = "cuda")]
mod backend {
    use std::collections::HashMap;
    use std::ffi::c_void;
    use std::sync::Mutex;

    use cust::context::{Context, CurrentContext};
    use cust::device::Device;
    use cust::module::Module;
    use cust::stream::{Stream, StreamFlags};
    use cust::sys as raw;

    use super::{LaunchCfg, PoolStats};
    use crate::CudaError;
    use crate::error::DriverResultExt;
    use crate::ptx::PtxModule;

    fn check(r: raw::CUresult, call: &'static str) -> Result<(), CudaError> {
        if r == raw::cudaError_enum::CUDA_SUCCESS {
            Ok(())
        } else {
            Err(CudaError::Driver {
                call,
                source: crate::DriverError {
                    code: r as u32,
                    name: format!("{r:?}"),
                },
            })
        }
    }

    #[derive(Default)]
    struct Pool {
        free: HashMap<usize, Vec<raw::CUdeviceptr>>,
        stats: PoolStats,
    }

    /// Field order is drop order: modules and the stream go before the context.
    pub(crate) struct Inner {
        ordinal: usize,
        name: String,
        modules: Mutex<Vec<Option<Module>>>,
        pool: Mutex<Pool>,
        stream: Stream,
        ctx: Context,
    }

    pub(crate) fn device_count() -> Result<usize, CudaError> {
        cust::init(cust::CudaFlags::empty()).map_err(|e| CudaError::NoDevice {
            reason: format!("cuInit failed: {}", crate::DriverError::from(e)),
        })?;
        Device::num_devices()
            .map(|n| n as usize)
            .call("cuDeviceGetCount")
    }

    /// Size classes 2^k and 3*2^(k-1) (at most 1/3 wasted), at least 512 bytes.
    pub(crate) fn bucket(bytes: usize) -> usize {
        let b = bytes.max(512);
        let p = b.next_power_of_two();
        let three_quarters = p / 4 * 3;
        if b <= three_quarters {
            three_quarters
        } else {
            p
        }
    }

    impl Inner {
        pub(crate) fn new(ordinal: usize) -> Result<Self, CudaError> {
            let count = device_count()?;
            if ordinal >= count {
                return Err(CudaError::NoDevice {
                    reason: format!(
                        "ordinal {ordinal} requested, the driver sees {count} device(s)"
                    ),
                });
            }
            let device = Device::get_device(ordinal as u32).call("cuDeviceGet")?;
            let name = device.name().call("cuDeviceGetName")?;
            let ctx = Context::new(device).call("cuDevicePrimaryCtxRetain")?;
            CurrentContext::set_current(&ctx).call("cuCtxSetCurrent")?;
            let stream = Stream::new(StreamFlags::NON_BLOCKING, None).call("cuStreamCreate")?;
            Ok(Inner {
                ordinal,
                name,
                modules: Mutex::new(PtxModule::ALL.iter().map(|_| None).collect()),
                pool: Mutex::new(Pool::default()),
                stream,
                ctx,
            })
        }

        pub(crate) fn ordinal(&self) -> usize {
            self.ordinal
        }

        pub(crate) fn name(&self) -> String {
            self.name.clone()
        }

        fn make_current(&self) -> Result<(), CudaError> {
            CurrentContext::set_current(&self.ctx).call("cuCtxSetCurrent")
        }

        pub(crate) fn synchronize(&self) -> Result<(), CudaError> {
            self.make_current()?;
            self.stream.synchronize().call("cuStreamSynchronize")
        }

        pub(crate) fn pool_stats(&self) -> PoolStats {
            self.pool.lock().unwrap().stats
        }

        pub(crate) fn empty_cache(&self) -> Result<(), CudaError> {
            self.synchronize()?;
            let mut pool = self.pool.lock().unwrap();
            let free = std::mem::take(&mut pool.free);
            for (size, ptrs) in free {
                for p in ptrs {
                    check(unsafe { raw::cuMemFree_v2(p) }, "cuMemFree")?;
                    pool.stats.reserved -= size;
                    pool.stats.cached -= size;
                }
            }
            Ok(())
        }

        /// Device memory of at least `bytes` bytes from the pool (uninitialised). Returns the
        /// pointer and the bucket size to give back.
        pub(crate) fn alloc(&self, bytes: usize) -> Result<(u64, usize), CudaError> {
            self.make_current()?;
            let size = bucket(bytes);
            {
                let mut pool = self.pool.lock().unwrap();
                if let Some(p) = pool.free.get_mut(&size).and_then(Vec::pop) {
                    pool.stats.cached -= size;
                    return Ok((p, size));
                }
            }
            let mut p: raw::CUdeviceptr = 0;
            let mut r = unsafe { raw::cuMemAlloc_v2(&mut p, size) };
            if r == raw::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
                self.empty_cache()?;
                r = unsafe { raw::cuMemAlloc_v2(&mut p, size) };
            }
            check(r, "cuMemAlloc")?;
            let mut pool = self.pool.lock().unwrap();
            pool.stats.reserved += size;
            pool.stats.driver_allocs += 1;
            Ok((p, size))
        }

        /// Returns an allocation to the pool. Stream order makes this safe without a sync:
        /// any later use of the memory is enqueued after the work that used it before.
        pub(crate) fn release(&self, ptr: u64, size: usize) {
            let mut pool = self.pool.lock().unwrap();
            pool.stats.cached += size;
            pool.free.entry(size).or_default().push(ptr);
        }

        pub(crate) fn htod(&self, dst: u64, src: *const u8, bytes: usize) -> Result<(), CudaError> {
            self.make_current()?;
            check(
                unsafe {
                    raw::cuMemcpyHtoDAsync_v2(
                        dst,
                        src as *const c_void,
                        bytes,
                        self.stream.as_inner(),
                    )
                },
                "cuMemcpyHtoDAsync",
            )?;
            // Pageable source: the driver has staged it when the call returns, but wait anyway
            // so that the caller may free or reuse `src` at once whatever the memory kind.
            self.stream.synchronize().call("cuStreamSynchronize")
        }

        pub(crate) fn dtoh(&self, dst: *mut u8, src: u64, bytes: usize) -> Result<(), CudaError> {
            self.make_current()?;
            check(
                unsafe {
                    raw::cuMemcpyDtoHAsync_v2(
                        dst as *mut c_void,
                        src,
                        bytes,
                        self.stream.as_inner(),
                    )
                },
                "cuMemcpyDtoHAsync",
            )?;
            self.stream.synchronize().call("cuStreamSynchronize")
        }

        pub(crate) fn dtod(&self, dst: u64, src: u64, bytes: usize) -> Result<(), CudaError> {
            self.make_current()?;
            check(
                unsafe { raw::cuMemcpyDtoDAsync_v2(dst, src, bytes, self.stream.as_inner()) },
                "cuMemcpyDtoDAsync",
            )
        }

        pub(crate) fn memset_u32(
            &self,
            dst: u64,
            value: u32,
            words: usize,
        ) -> Result<(), CudaError> {
            self.make_current()?;
            check(
                unsafe { raw::cuMemsetD32Async(dst, value, words, self.stream.as_inner()) },
                "cuMemsetD32Async",
            )
        }

        pub(crate) fn ensure_module(&self, m: PtxModule) -> Result<(), CudaError> {
            self.make_current()?;
            let mut mods = self.modules.lock().unwrap();
            if mods[m.index()].is_none() {
                mods[m.index()] = Some(Module::from_ptx(m.ptx(), &[]).call("cuModuleLoadData")?);
            }
            Ok(())
        }

        pub(crate) unsafe fn launch(
            &self,
            module: PtxModule,
            func: &'static str,
            cfg: LaunchCfg,
            args: &[*mut c_void],
        ) -> Result<(), CudaError> {
            self.ensure_module(module)?;
            let mods = self.modules.lock().unwrap();
            let m = mods[module.index()].as_ref().expect("module loaded above");
            let f = m.get_function(func).call("cuModuleGetFunction")?;
            let stream = &self.stream;
            unsafe {
                stream
                    .launch(&f, cfg.grid, (cfg.block, 1, 1), cfg.shared, args)
                    .call("cuLaunchKernel")
            }
        }
    }

    impl Drop for Inner {
        fn drop(&mut self) {
            if self.make_current().is_ok() {
                let _ = self.stream.synchronize();
                let pool = self.pool.get_mut().unwrap();
                for ptrs in pool.free.values() {
                    for &p in ptrs {
                        unsafe { raw::cuMemFree_v2(p) };
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn buckets_waste_at_most_a_third() {
            assert_eq!(super::bucket(1), 512);
            assert_eq!(super::bucket(1000), 1024);
            assert_eq!(super::bucket(1025), 1536);
            assert_eq!(super::bucket(1537), 2048);
            for b in [600usize, 5000, 1 << 20, 3_000_000, 123_456_789] {
                let s = super::bucket(b);
                assert!(s >= b && s * 3 <= b * 4 + 1536, "{b} -> {s}");
            }
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod backend {
    use std::ffi::c_void;

    use super::{LaunchCfg, PoolStats};
    use crate::CudaError;
    use crate::ptx::PtxModule;

    /// Uninhabited: without the `cuda` feature no device exists, so none of the methods
    /// below can be called.
    pub(crate) enum Inner {}

    pub(crate) fn device_count() -> Result<usize, CudaError> {
        Err(CudaError::NotCompiled)
    }

    impl Inner {
        pub(crate) fn new(_ordinal: usize) -> Result<Self, CudaError> {
            Err(CudaError::NotCompiled)
        }
        pub(crate) fn ordinal(&self) -> usize {
            match *self {}
        }
        pub(crate) fn name(&self) -> String {
            match *self {}
        }
        pub(crate) fn synchronize(&self) -> Result<(), CudaError> {
            match *self {}
        }
        pub(crate) fn pool_stats(&self) -> PoolStats {
            match *self {}
        }
        pub(crate) fn empty_cache(&self) -> Result<(), CudaError> {
            match *self {}
        }
        pub(crate) fn alloc(&self, _bytes: usize) -> Result<(u64, usize), CudaError> {
            match *self {}
        }
        pub(crate) fn release(&self, _ptr: u64, _size: usize) {
            match *self {}
        }
        pub(crate) fn htod(
            &self,
            _dst: u64,
            _src: *const u8,
            _bytes: usize,
        ) -> Result<(), CudaError> {
            match *self {}
        }
        pub(crate) fn dtoh(
            &self,
            _dst: *mut u8,
            _src: u64,
            _bytes: usize,
        ) -> Result<(), CudaError> {
            match *self {}
        }
        pub(crate) fn dtod(&self, _dst: u64, _src: u64, _bytes: usize) -> Result<(), CudaError> {
            match *self {}
        }
        pub(crate) fn memset_u32(
            &self,
            _dst: u64,
            _value: u32,
            _words: usize,
        ) -> Result<(), CudaError> {
            match *self {}
        }
        pub(crate) fn ensure_module(&self, _m: PtxModule) -> Result<(), CudaError> {
            match *self {}
        }
        pub(crate) unsafe fn launch(
            &self,
            _module: PtxModule,
            _func: &'static str,
            _cfg: LaunchCfg,
            _args: &[*mut c_void],
        ) -> Result<(), CudaError> {
            match *self {}
        }
    }
}

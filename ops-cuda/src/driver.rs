//! The CUDA driver API, loaded at run time: `libcuda.so.1` is opened with `dlopen` the first
//! time a device is asked for, never at program start.
//!
//! A binary built with `--features cuda` therefore starts on any machine, with or without the
//! NVIDIA driver (a cluster's login node, a CI runner): only `--device cuda` needs the driver,
//! and when it is missing [`api`] says so, naming the library and the fix. This is how cudarc
//! loads the driver; cust (which this crate used before) links `-lcuda` at build time, so its
//! binaries failed in the loader with `error while loading shared libraries: libcuda.so.1`.
//!
//! Only the entry points this crate calls are loaded ([`DRIVER_SYMBOLS`]), each by its exact
//! versioned name (`cuMemAlloc_v2`, ...), the names the driver has exported since CUDA 4.0.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;

use libloading::Library;

use crate::{CudaError, DriverError};

/// `CUresult`: 0 is success, anything else an error code.
pub(crate) type CuResult = c_int;
/// `CUdevice`: a device ordinal as the driver numbers it.
pub(crate) type CuDevice = c_int;
/// `CUdeviceptr`: a device address.
pub(crate) type CuDevicePtr = u64;
/// `CUcontext`, `CUstream`, `CUmodule`, `CUfunction`: opaque driver handles.
pub(crate) type CuHandle = *mut c_void;

/// `CU_STREAM_NON_BLOCKING`: the stream does not synchronise with the legacy default stream.
pub(crate) const STREAM_NON_BLOCKING: c_uint = 1;
/// `CUDA_ERROR_OUT_OF_MEMORY`.
pub(crate) const ERROR_OUT_OF_MEMORY: CuResult = 2;

/// The file names tried, in order, when the driver is loaded.
#[cfg(not(windows))]
pub const DRIVER_LIBRARIES: &[&str] = &["libcuda.so.1", "libcuda.so"];
/// The file names tried, in order, when the driver is loaded.
#[cfg(windows)]
pub const DRIVER_LIBRARIES: &[&str] = &["nvcuda.dll"];

macro_rules! driver_api {
    ($( $name:ident ( $( $arg:ty ),* ); )*) => {
        /// The loaded driver: one function pointer per entry point this crate calls.
        #[allow(non_snake_case)]
        pub(crate) struct Api {
            $( pub(crate) $name: unsafe extern "C" fn( $( $arg ),* ) -> CuResult, )*
            /// Keeps the library mapped for as long as the pointers above are used (forever:
            /// the `Api` lives in a `static`).
            _lib: Library,
        }

        /// Every driver entry point this crate loads, by its exported name. A library that
        /// lacks one of them is refused with the missing name.
        pub const DRIVER_SYMBOLS: &[&str] = &[$( stringify!($name) ),*];

        impl Api {
            /// Looks every entry point up in `lib`.
            ///
            /// # Safety
            /// `lib` must be a CUDA driver, whose functions have the signatures declared here.
            #[allow(non_snake_case)]
            unsafe fn load(lib: Library) -> Result<Api, String> {
                $(
                    let $name = unsafe {
                        *lib.get::<unsafe extern "C" fn( $( $arg ),* ) -> CuResult>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                        .map_err(|e| format!("{}: {}", stringify!($name), innermost(&e)))?
                    };
                )*
                Ok(Api { $( $name, )* _lib: lib })
            }
        }
    };
}

driver_api! {
    cuInit(c_uint);
    cuDriverGetVersion(*mut c_int);
    cuGetErrorName(CuResult, *mut *const c_char);
    cuDeviceGetCount(*mut c_int);
    cuDeviceGet(*mut CuDevice, c_int);
    cuDeviceGetName(*mut c_char, c_int, CuDevice);
    cuDevicePrimaryCtxRetain(*mut CuHandle, CuDevice);
    cuDevicePrimaryCtxRelease_v2(CuDevice);
    cuCtxSetCurrent(CuHandle);
    cuStreamCreate(*mut CuHandle, c_uint);
    cuStreamDestroy_v2(CuHandle);
    cuStreamSynchronize(CuHandle);
    cuMemAlloc_v2(*mut CuDevicePtr, usize);
    cuMemFree_v2(CuDevicePtr);
    cuMemcpyHtoDAsync_v2(CuDevicePtr, *const c_void, usize, CuHandle);
    cuMemcpyDtoHAsync_v2(*mut c_void, CuDevicePtr, usize, CuHandle);
    cuMemcpyDtoDAsync_v2(CuDevicePtr, CuDevicePtr, usize, CuHandle);
    cuMemsetD32Async(CuDevicePtr, c_uint, usize, CuHandle);
    cuModuleLoadData(*mut CuHandle, *const c_void);
    cuModuleUnload(CuHandle);
    cuModuleGetFunction(*mut CuHandle, CuHandle, *const c_char);
    cuLaunchKernel(
        CuHandle, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, CuHandle,
        *mut *mut c_void, *mut *mut c_void
    );
}

/// The driver, loaded and initialised (`cuInit(0)`) on first use; the outcome, success or
/// failure, is kept for the life of the process.
///
/// Errors: [`CudaError::NoDriver`] when no library of [`DRIVER_LIBRARIES`] loads or one lacks
/// an entry point, [`CudaError::NoDevice`] when `cuInit` fails (a driver without a usable GPU).
pub(crate) fn api() -> Result<&'static Api, CudaError> {
    static API: OnceLock<Result<Api, CudaError>> = OnceLock::new();
    API.get_or_init(load_and_init)
        .as_ref()
        .map_err(Clone::clone)
}

fn load_and_init() -> Result<Api, CudaError> {
    let mut failures = Vec::new();
    let mut loaded = None;
    for name in DRIVER_LIBRARIES {
        // SAFETY: loading the NVIDIA driver runs its initialisers, which have no preconditions.
        match unsafe { Library::new(*name) } {
            Ok(lib) => {
                loaded = Some((*name, lib));
                break;
            }
            // dlerror's text (the innermost cause) names the file and what went wrong.
            Err(e) => failures.push(innermost(&e)),
        }
    }
    let Some((name, lib)) = loaded else {
        return Err(CudaError::NoDriver {
            reason: failures.join("; "),
        });
    };
    // SAFETY: a library named like the driver is taken to be the driver.
    let api = unsafe { Api::load(lib) }.map_err(|missing| CudaError::NoDriver {
        reason: format!("{name} lacks the entry point {missing}"),
    })?;
    // SAFETY: cuInit takes a flags word that must be 0.
    let r = unsafe { (api.cuInit)(0) };
    if r != 0 {
        return Err(CudaError::NoDevice {
            reason: format!("cuInit failed: {}", driver_error(Some(&api), r)),
        });
    }
    Ok(api)
}

/// The innermost cause of an error (libloading keeps dlerror's text in the source).
fn innermost(e: &dyn std::error::Error) -> String {
    let mut e = e;
    while let Some(cause) = e.source() {
        e = cause;
    }
    e.to_string()
}

/// Turns a non-zero `CUresult` into a [`CudaError::Driver`] naming `call`.
pub(crate) fn check(r: CuResult, call: &'static str) -> Result<(), CudaError> {
    if r == 0 {
        Ok(())
    } else {
        Err(CudaError::Driver {
            call,
            source: driver_error(api().ok(), r),
        })
    }
}

/// The code and its name: from the table below for the codes this crate expects, else from
/// the driver's `cuGetErrorName`, else `CUDA_ERROR_<code>`.
fn driver_error(api: Option<&Api>, r: CuResult) -> DriverError {
    let name = known_error_name(r)
        .map(str::to_string)
        .or_else(|| {
            let api = api?;
            let mut p: *const c_char = std::ptr::null();
            // SAFETY: cuGetErrorName writes a pointer to a static string, or fails.
            let ok = unsafe { (api.cuGetErrorName)(r, &mut p) } == 0 && !p.is_null();
            // SAFETY: on success `p` is a NUL-terminated static string owned by the driver.
            ok.then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| format!("CUDA_ERROR_{r}"));
    DriverError {
        code: r as u32,
        name,
    }
}

/// Names of the `CUresult` codes a user of this crate is likely to meet (from `cuda.h`).
fn known_error_name(r: CuResult) -> Option<&'static str> {
    Some(match r {
        1 => "CUDA_ERROR_INVALID_VALUE",
        2 => "CUDA_ERROR_OUT_OF_MEMORY",
        3 => "CUDA_ERROR_NOT_INITIALIZED",
        4 => "CUDA_ERROR_DEINITIALIZED",
        34 => "CUDA_ERROR_STUB_LIBRARY",
        35 => "CUDA_ERROR_INSUFFICIENT_DRIVER",
        100 => "CUDA_ERROR_NO_DEVICE",
        101 => "CUDA_ERROR_INVALID_DEVICE",
        200 => "CUDA_ERROR_INVALID_IMAGE",
        201 => "CUDA_ERROR_INVALID_CONTEXT",
        209 => "CUDA_ERROR_NO_BINARY_FOR_GPU",
        218 => "CUDA_ERROR_INVALID_PTX",
        222 => "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        400 => "CUDA_ERROR_INVALID_HANDLE",
        500 => "CUDA_ERROR_NOT_FOUND",
        700 => "CUDA_ERROR_ILLEGAL_ADDRESS",
        701 => "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        702 => "CUDA_ERROR_LAUNCH_TIMEOUT",
        719 => "CUDA_ERROR_LAUNCH_FAILED",
        999 => "CUDA_ERROR_UNKNOWN",
        _ => return None,
    })
}

/// The driver's CUDA version (e.g. 13000 for CUDA 13.0), or why it cannot be had.
pub fn driver_version() -> Result<u32, CudaError> {
    let api = api()?;
    let mut v: c_int = 0;
    // SAFETY: writes one int.
    check(
        unsafe { (api.cuDriverGetVersion)(&mut v) },
        "cuDriverGetVersion",
    )?;
    Ok(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_unique_versioned_driver_names() {
        let mut names = DRIVER_SYMBOLS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DRIVER_SYMBOLS.len());
        assert!(DRIVER_SYMBOLS.iter().all(|s| s.starts_with("cu")));
        // The unversioned names are the pre-CUDA-4 ABI (32-bit device pointers).
        for s in [
            "cuMemAlloc",
            "cuMemFree",
            "cuMemcpyHtoDAsync",
            "cuStreamDestroy",
        ] {
            assert!(!DRIVER_SYMBOLS.contains(&s), "{s} must be loaded as {s}_v2");
        }
    }

    #[test]
    fn error_names_come_from_the_table_without_a_driver() {
        assert_eq!(driver_error(None, 100).name, "CUDA_ERROR_NO_DEVICE");
        assert_eq!(
            driver_error(None, 100).to_string(),
            "CUDA_ERROR_NO_DEVICE (CUresult 100)"
        );
        assert_eq!(driver_error(None, 12345).name, "CUDA_ERROR_12345");
    }

    /// On a machine without the driver (this crate's CI), asking for a device names the
    /// library that is missing and the fix; with a driver, the same call succeeds or reports
    /// the driver's own error.
    #[test]
    fn a_missing_driver_is_a_clear_error_not_a_loader_failure() {
        match api() {
            Ok(_) => {
                let v = driver_version().expect("a loaded driver reports its version");
                assert!(v >= 4000, "driver version {v}");
                eprintln!("driver loaded: CUDA {}.{}", v / 1000, v % 1000 / 10);
            }
            Err(CudaError::NoDriver { reason }) => {
                assert!(reason.contains(DRIVER_LIBRARIES[0]), "{reason}");
                let msg = CudaError::NoDriver { reason }.to_string();
                assert!(
                    msg.contains("NVIDIA driver") && msg.contains("--device cpu"),
                    "{msg}"
                );
            }
            Err(CudaError::NoDevice { reason }) => assert!(reason.contains("cuInit"), "{reason}"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

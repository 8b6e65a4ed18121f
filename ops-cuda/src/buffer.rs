//! [`CudaBuffer`]: device memory of 4-byte elements, returned to the device's pool on drop.

use std::fmt;
use std::marker::PhantomData;

use crate::device::KernelArg;
use crate::{CudaDevice, CudaError};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
    impl Sealed for u32 {}
}

/// Element types a [`CudaBuffer`] can hold: `f32` (data), `i32` (indices, labels, argmax)
/// and `u32`. All are 4 bytes, plain data.
pub trait DeviceScalar:
    sealed::Sealed + Copy + Default + Send + Sync + fmt::Debug + 'static
{
    /// The element's bit pattern (for `cuMemsetD32`).
    fn to_bits(self) -> u32;
}

impl DeviceScalar for f32 {
    fn to_bits(self) -> u32 {
        f32::to_bits(self)
    }
}
impl DeviceScalar for i32 {
    fn to_bits(self) -> u32 {
        self as u32
    }
}
impl DeviceScalar for u32 {
    fn to_bits(self) -> u32 {
        self
    }
}

/// Device memory holding `len` elements of `T` (default `f32`), contiguous.
///
/// Allocated from the device's size-bucketed pool (possibly larger than needed; the tail is
/// never read); dropping it hands the memory back to the pool without synchronising (stream
/// order keeps reuse safe). The buffer keeps its device alive.
pub struct CudaBuffer<T: DeviceScalar = f32> {
    dev: CudaDevice,
    ptr: u64,
    len: usize,
    bucket: usize,
    _t: PhantomData<T>,
}

impl<T: DeviceScalar> fmt::Debug for CudaBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaBuffer")
            .field("device", &self.dev.ordinal())
            .field("len", &self.len)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: DeviceScalar> Drop for CudaBuffer<T> {
    fn drop(&mut self) {
        if self.bucket > 0 {
            self.dev.inner.release(self.ptr, self.bucket);
        }
    }
}

/// A raw device address passed to a kernel (`T*` in CUDA C).
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub(crate) struct DevPtr(pub u64);
// SAFETY: a 64-bit device address, which is what a pointer kernel parameter holds.
unsafe impl KernelArg for DevPtr {}

impl<T: DeviceScalar> CudaBuffer<T> {
    /// `len` uninitialised elements on `dev` (a kernel must write them before they are read).
    pub fn uninit(dev: &CudaDevice, len: usize) -> Result<Self, CudaError> {
        let bytes = len.checked_mul(4).ok_or_else(|| {
            CudaError::shape("CudaBuffer::uninit", format!("len {len} overflows"))
        })?;
        if bytes == 0 {
            return Ok(CudaBuffer {
                dev: dev.clone(),
                ptr: 0,
                len: 0,
                bucket: 0,
                _t: PhantomData,
            });
        }
        let (ptr, bucket) = dev.inner.alloc(bytes)?;
        Ok(CudaBuffer {
            dev: dev.clone(),
            ptr,
            len,
            bucket,
            _t: PhantomData,
        })
    }

    /// `len` elements set to `value`.
    pub fn filled(dev: &CudaDevice, len: usize, value: T) -> Result<Self, CudaError> {
        let b = Self::uninit(dev, len)?;
        if len > 0 {
            dev.inner.memset_u32(b.ptr, value.to_bits(), len)?;
        }
        Ok(b)
    }

    /// `len` zeros.
    pub fn zeros(dev: &CudaDevice, len: usize) -> Result<Self, CudaError> {
        Self::filled(dev, len, T::default())
    }

    /// A copy of `data` on `dev` (waits until the copy is done).
    pub fn from_slice(dev: &CudaDevice, data: &[T]) -> Result<Self, CudaError> {
        let b = Self::uninit(dev, data.len())?;
        if !data.is_empty() {
            dev.inner
                .htod(b.ptr, data.as_ptr() as *const u8, data.len() * 4)?;
        }
        Ok(b)
    }

    /// Overwrites the buffer with `data` (same length).
    pub fn copy_from_slice(&mut self, data: &[T]) -> Result<(), CudaError> {
        if data.len() != self.len {
            return Err(CudaError::shape(
                "CudaBuffer::copy_from_slice",
                format!("buffer has {} elements, slice {}", self.len, data.len()),
            ));
        }
        if self.len > 0 {
            self.dev
                .inner
                .htod(self.ptr, data.as_ptr() as *const u8, self.len * 4)?;
        }
        Ok(())
    }

    /// Copies the buffer to the host, after all work enqueued before it.
    pub fn to_vec(&self) -> Result<Vec<T>, CudaError> {
        let mut v = vec![T::default(); self.len];
        if self.len > 0 {
            self.dev
                .inner
                .dtoh(v.as_mut_ptr() as *mut u8, self.ptr, self.len * 4)?;
        }
        Ok(v)
    }

    /// A device-side copy (enqueued; no host synchronisation).
    pub fn try_clone(&self) -> Result<Self, CudaError> {
        let b = Self::uninit(&self.dev, self.len)?;
        if self.len > 0 {
            self.dev.inner.dtod(b.ptr, self.ptr, self.len * 4)?;
        }
        Ok(b)
    }

    /// Copies `src[src_offset..src_offset+len]` into `self[dst_offset..]` on the device.
    pub fn copy_within_from(
        &mut self,
        dst_offset: usize,
        src: &CudaBuffer<T>,
        src_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        same_device("CudaBuffer::copy_within_from", &self.dev, &src.dev)?;
        if dst_offset + len > self.len || src_offset + len > src.len {
            return Err(CudaError::shape(
                "CudaBuffer::copy_within_from",
                format!(
                    "range out of bounds: dst {dst_offset}+{len} of {}, src {src_offset}+{len} of {}",
                    self.len, src.len
                ),
            ));
        }
        if len > 0 {
            self.dev.inner.dtod(
                self.ptr + 4 * dst_offset as u64,
                src.ptr + 4 * src_offset as u64,
                len * 4,
            )?;
        }
        Ok(())
    }

    /// Sets every element to `value` (enqueued).
    pub fn fill(&mut self, value: T) -> Result<(), CudaError> {
        if self.len > 0 {
            self.dev
                .inner
                .memset_u32(self.ptr, value.to_bits(), self.len)?;
        }
        Ok(())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device the memory lives on.
    pub fn device(&self) -> &CudaDevice {
        &self.dev
    }

    /// The raw device address (`CUdeviceptr`); 0 for an empty buffer.
    pub fn device_ptr(&self) -> u64 {
        self.ptr
    }

    pub(crate) fn arg(&self) -> DevPtr {
        DevPtr(self.ptr)
    }

    /// The address of element `offset` (no bounds check; callers check).
    pub(crate) fn arg_at(&self, offset: usize) -> DevPtr {
        DevPtr(self.ptr + 4 * offset as u64)
    }
}

pub(crate) fn same_device(
    op: &'static str,
    a: &CudaDevice,
    b: &CudaDevice,
) -> Result<(), CudaError> {
    if a == b {
        Ok(())
    } else {
        Err(CudaError::DeviceMismatch {
            op,
            a: a.ordinal(),
            b: b.ordinal(),
        })
    }
}

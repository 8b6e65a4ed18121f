//! Where a tensor lives: the CPU, or a CUDA device through `ops-cuda`.

/// A compute device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Device {
    /// Host memory, CPU kernels (ndarray + rayon).
    #[default]
    Cpu,
    /// A CUDA GPU (needs `ops-cuda` built with feature `cuda`).
    Cuda(ops_cuda::CudaDevice),
}

impl Device {
    /// Opens CUDA device `ordinal`; errors clearly when CUDA support is not compiled in or no
    /// GPU is present.
    pub fn cuda(ordinal: usize) -> Result<Device, ops_cuda::CudaError> {
        ops_cuda::CudaDevice::new(ordinal).map(Device::Cuda)
    }

    /// Parses `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Result<Device, crate::error::Error> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::cuda(0)?),
            _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(n) => Ok(Device::cuda(n)?),
                None => Err(crate::error::Error::BadDevice(s.to_string())),
            },
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(d) => write!(f, "cuda:{}", d.ordinal()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_without_support_is_a_clear_error() {
        // Without the `cuda` feature: "not compiled in"; with it on a machine without the
        // driver: "no NVIDIA driver"; with a driver but no GPU: "no CUDA device found".
        if let Err(e) = Device::parse("cuda") {
            let e = e.to_string();
            assert!(
                e.contains("CUDA support not compiled in")
                    || e.contains("no NVIDIA driver")
                    || e.contains("no CUDA device"),
                "{e}"
            );
        }
        assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
        assert!(
            Device::parse("tpu")
                .unwrap_err()
                .to_string()
                .contains("tpu")
        );
    }
}

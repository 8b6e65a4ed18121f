//! Counter-based randomness (`kernels/random.cu`, Philox4x32-10): element `i` of a call
//! draws `uniform(seed, offset + i)` (see [`crate::philox`], its CPU twin), so results depend
//! only on `(seed, offset)`, never on the launch. Advance `offset` by `n` between calls that
//! share a seed.

use super::check_buf;
use crate::device::LaunchCfg;
use crate::philox::dropout_scale;
use crate::ptx::PtxModule;
use crate::shape::to_i32;
use crate::{CudaBuffer, CudaDevice, CudaError};

/// `n` uniform numbers in `[lo, hi)`.
pub fn rand_uniform(
    dev: &CudaDevice,
    n: usize,
    lo: f32,
    hi: f32,
    seed: u64,
    offset: u64,
) -> Result<CudaBuffer, CudaError> {
    let out = CudaBuffer::uninit(dev, n)?;
    if n > 0 {
        let ni = to_i32("rand_uniform", "n", n)?;
        unsafe {
            dev.launch(
                PtxModule::Random,
                "rand_uniform",
                LaunchCfg::linear(n),
                &[&out.arg(), &ni, &seed, &offset, &lo, &hi],
            )?;
        }
    }
    Ok(out)
}

/// `n` values: `scale` with probability `keep_prob`, else 0. Drop-path uses one value per
/// sample with `keep_prob = 1 - p`, `scale = 1 / keep_prob`, broadcast over `(c, h, w)`.
pub fn bernoulli_mask(
    dev: &CudaDevice,
    n: usize,
    keep_prob: f32,
    scale: f32,
    seed: u64,
    offset: u64,
) -> Result<CudaBuffer, CudaError> {
    let out = CudaBuffer::uninit(dev, n)?;
    if n > 0 {
        let ni = to_i32("bernoulli_mask", "n", n)?;
        unsafe {
            dev.launch(
                PtxModule::Random,
                "bernoulli_mask",
                LaunchCfg::linear(n),
                &[&out.arg(), &ni, &seed, &offset, &keep_prob, &scale],
            )?;
        }
    }
    Ok(out)
}

/// Inverted dropout: returns `(y, mask)` with `mask = 1/(1-p)` where kept (probability
/// `1 - p`), else 0, and `y = x * mask`; the backward is `dy * mask`.
pub fn dropout_forward(
    dev: &CudaDevice,
    x: &CudaBuffer,
    p: f32,
    seed: u64,
    offset: u64,
) -> Result<(CudaBuffer, CudaBuffer), CudaError> {
    const OP: &str = "dropout_forward";
    if !(0.0..=1.0).contains(&p) {
        return Err(CudaError::shape(OP, format!("p = {p} outside [0, 1]")));
    }
    let n = x.len();
    check_buf(OP, "x", dev, x, n)?;
    let y = CudaBuffer::uninit(dev, n)?;
    let mask = CudaBuffer::uninit(dev, n)?;
    if n > 0 {
        let ni = to_i32(OP, "n", n)?;
        let scale = dropout_scale(p);
        unsafe {
            dev.launch(
                PtxModule::Random,
                "dropout_forward",
                LaunchCfg::linear(n),
                &[
                    &y.arg(),
                    &mask.arg(),
                    &x.arg(),
                    &ni,
                    &seed,
                    &offset,
                    &p,
                    &scale,
                ],
            )?;
        }
    }
    Ok((y, mask))
}

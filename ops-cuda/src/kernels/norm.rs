//! Batch normalisation over `(n, c, hw)` (`kernels/norm.cu`); `hw = 1` for `(n, c)` inputs.
//! Statistics are per channel over `n * hw` values; training normalises with the biased
//! variance and updates running statistics with the unbiased one.

use super::{NULL, check_buf};
use crate::device::{LaunchCfg, reduction_threads};
use crate::ptx::PtxModule;
use crate::shape::to_i32;
use crate::{CudaBuffer, CudaDevice, CudaError};

/// Per-channel statistics saved by the training forward pass for the backward pass.
#[derive(Debug)]
pub struct BatchNormSaved {
    /// Batch mean (c).
    pub mean: CudaBuffer,
    /// `1 / sqrt(var + eps)` (c).
    pub invstd: CudaBuffer,
}

/// Gradients of batch normalisation.
#[derive(Debug)]
pub struct BatchNormGrads {
    /// `(n, c, hw)`.
    pub dx: CudaBuffer,
    /// `(c)`; `None` when there is no `gamma`.
    pub dgamma: Option<CudaBuffer>,
    /// `(c)`; `None` when there is no `gamma`.
    pub dbeta: Option<CudaBuffer>,
}

fn dims(op: &'static str, n: usize, c: usize, hw: usize) -> Result<(i32, i32, i32), CudaError> {
    Ok((
        to_i32(op, "n", n)?,
        to_i32(op, "c", c)?,
        to_i32(op, "hw", hw)?,
    ))
}

/// Training forward. `gamma`/`beta` (c) are optional (affine = false); `running`
/// `(mean, var)` (c each) is updated in place when given:
/// `running = (1 - momentum) * running + momentum * batch_stat`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_train(
    dev: &CudaDevice,
    x: &CudaBuffer,
    gamma: Option<&CudaBuffer>,
    beta: Option<&CudaBuffer>,
    running: Option<(&mut CudaBuffer, &mut CudaBuffer)>,
    (n, c, hw): (usize, usize, usize),
    eps: f32,
    momentum: f32,
) -> Result<(CudaBuffer, BatchNormSaved), CudaError> {
    const OP: &str = "batch_norm_forward_train";
    check_buf(OP, "x", dev, x, n * c * hw)?;
    for (b, what) in [(gamma, "gamma"), (beta, "beta")] {
        if let Some(b) = b {
            check_buf(OP, what, dev, b, c)?;
        }
    }
    let (rm, rv) = match running {
        Some((m, v)) => {
            check_buf(OP, "running_mean", dev, m, c)?;
            check_buf(OP, "running_var", dev, v, c)?;
            (m.arg(), v.arg())
        }
        None => (NULL, NULL),
    };
    let y = CudaBuffer::uninit(dev, n * c * hw)?;
    let mean = CudaBuffer::uninit(dev, c)?;
    let invstd = CudaBuffer::uninit(dev, c)?;
    let (ni, ci, hwi) = dims(OP, n, c, hw)?;
    if n * hw == 0 {
        return Err(CudaError::shape(OP, "no values per channel"));
    }
    if c > 0 {
        let g = gamma.map_or(NULL, |b| b.arg());
        let bt = beta.map_or(NULL, |b| b.arg());
        unsafe {
            dev.launch(
                PtxModule::Norm,
                "bn_forward_train",
                LaunchCfg {
                    grid: (c as u32, 1, 1),
                    block: reduction_threads(n * hw, 512),
                    shared: 0,
                },
                &[
                    &y.arg(),
                    &mean.arg(),
                    &invstd.arg(),
                    &rm,
                    &rv,
                    &x.arg(),
                    &g,
                    &bt,
                    &ni,
                    &ci,
                    &hwi,
                    &eps,
                    &momentum,
                ],
            )?;
        }
    }
    Ok((y, BatchNormSaved { mean, invstd }))
}

/// Evaluation forward with running statistics.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_eval(
    dev: &CudaDevice,
    x: &CudaBuffer,
    gamma: Option<&CudaBuffer>,
    beta: Option<&CudaBuffer>,
    running_mean: &CudaBuffer,
    running_var: &CudaBuffer,
    (n, c, hw): (usize, usize, usize),
    eps: f32,
) -> Result<CudaBuffer, CudaError> {
    const OP: &str = "batch_norm_forward_eval";
    check_buf(OP, "x", dev, x, n * c * hw)?;
    check_buf(OP, "running_mean", dev, running_mean, c)?;
    check_buf(OP, "running_var", dev, running_var, c)?;
    for (b, what) in [(gamma, "gamma"), (beta, "beta")] {
        if let Some(b) = b {
            check_buf(OP, what, dev, b, c)?;
        }
    }
    let y = CudaBuffer::uninit(dev, n * c * hw)?;
    let (ni, ci, hwi) = dims(OP, n, c, hw)?;
    if n * c * hw > 0 {
        let g = gamma.map_or(NULL, |b| b.arg());
        let bt = beta.map_or(NULL, |b| b.arg());
        unsafe {
            dev.launch(
                PtxModule::Norm,
                "bn_forward_eval",
                LaunchCfg::linear(n * c * hw),
                &[
                    &y.arg(),
                    &x.arg(),
                    &running_mean.arg(),
                    &running_var.arg(),
                    &g,
                    &bt,
                    &ni,
                    &ci,
                    &hwi,
                    &eps,
                ],
            )?;
        }
    }
    Ok(y)
}

/// Training backward from `dy`, the forward input `x` and the saved statistics.
pub fn batch_norm_backward(
    dev: &CudaDevice,
    dy: &CudaBuffer,
    x: &CudaBuffer,
    saved: &BatchNormSaved,
    gamma: Option<&CudaBuffer>,
    (n, c, hw): (usize, usize, usize),
) -> Result<BatchNormGrads, CudaError> {
    const OP: &str = "batch_norm_backward";
    check_buf(OP, "dy", dev, dy, n * c * hw)?;
    check_buf(OP, "x", dev, x, n * c * hw)?;
    check_buf(OP, "saved.mean", dev, &saved.mean, c)?;
    check_buf(OP, "saved.invstd", dev, &saved.invstd, c)?;
    if let Some(g) = gamma {
        check_buf(OP, "gamma", dev, g, c)?;
    }
    let dx = CudaBuffer::uninit(dev, n * c * hw)?;
    let (dgamma, dbeta) = if gamma.is_some() {
        (
            Some(CudaBuffer::uninit(dev, c)?),
            Some(CudaBuffer::uninit(dev, c)?),
        )
    } else {
        (None, None)
    };
    let (ni, ci, hwi) = dims(OP, n, c, hw)?;
    if c > 0 && n * hw > 0 {
        let g = gamma.map_or(NULL, |b| b.arg());
        let dg = dgamma.as_ref().map_or(NULL, |b| b.arg());
        let db = dbeta.as_ref().map_or(NULL, |b| b.arg());
        unsafe {
            dev.launch(
                PtxModule::Norm,
                "bn_backward",
                LaunchCfg {
                    grid: (c as u32, 1, 1),
                    block: reduction_threads(n * hw, 512),
                    shared: 0,
                },
                &[
                    &dx.arg(),
                    &dg,
                    &db,
                    &dy.arg(),
                    &x.arg(),
                    &saved.mean.arg(),
                    &saved.invstd.arg(),
                    &g,
                    &ni,
                    &ci,
                    &hwi,
                ],
            )?;
        }
    }
    Ok(BatchNormGrads { dx, dgamma, dbeta })
}

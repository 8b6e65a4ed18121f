//! [`BatchNorm2d`]: batch normalisation over the channels of `(N, C, H, W)` (or `(N, C)`)
//! inputs, keeping its running statistics as buffers.

use crate::dtype::DType;
use crate::nn::module::{Module, join};
use crate::nn::param::Param;
use crate::ops::batchnorm::{BatchNormMode, batch_norm};
use crate::tensor::Tensor;

/// Batch norm with trainable `gamma`/`beta` (`"{name}.weight"`/`"{name}.bias"`, ones and
/// zeros) and running statistics as buffers (`"{name}.running_mean"`/`"{name}.running_var"`,
/// zeros and ones), PyTorch's defaults: momentum 0.1, eps 1e-5.
///
/// In [`BatchNormMode::Train`] the forward pass normalises with batch statistics and writes
/// the updated running statistics back into the buffers; [`BatchNormMode::Eval`] uses the
/// running statistics; [`BatchNormMode::BatchStatsAlways`] uses batch statistics and
/// leaves the buffers alone.
///
/// ```
/// use autograd::{DType, Tensor};
/// use autograd::nn::{BatchNorm2d, Module};
/// use autograd::ops::batchnorm::BatchNormMode;
/// let bn = BatchNorm2d::new("bn", 2);
/// let x = Tensor::from_vec(vec![1.0f32, 3.0, 10.0, 20.0], &[2, 2, 1, 1]);
/// let y = bn.forward(&x, BatchNormMode::Train);
/// assert_eq!(y.shape(), &[2, 2, 1, 1]);
/// // running mean = 0.9 * 0 + 0.1 * batch mean
/// assert_eq!(bn.running_mean.get().to_vec::<f32>(), vec![0.55, 1.15]);
/// assert_eq!(bn.num_params(), 4); // gamma and beta; running stats are buffers
/// ```
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    /// Scale `(C)`, named `"{name}.weight"`.
    pub gamma: Param,
    /// Shift `(C)`, named `"{name}.bias"`.
    pub beta: Param,
    /// Running mean buffer `(C)`.
    pub running_mean: Param,
    /// Running (unbiased) variance buffer `(C)`.
    pub running_var: Param,
    /// Weight of the batch statistics in the running update (0.1).
    pub momentum: f64,
    /// Added to the variance (1e-5).
    pub eps: f64,
}

impl BatchNorm2d {
    /// A layer named `name` over `channels` channels, f32.
    pub fn new(name: &str, channels: usize) -> BatchNorm2d {
        assert!(
            channels > 0,
            "BatchNorm2d '{name}': needs at least one channel"
        );
        BatchNorm2d {
            gamma: Param::new(join(name, "weight"), Tensor::ones(&[channels], DType::F32)),
            beta: Param::new(join(name, "bias"), Tensor::zeros(&[channels], DType::F32)),
            running_mean: Param::buffer(
                join(name, "running_mean"),
                Tensor::zeros(&[channels], DType::F32),
            ),
            running_var: Param::buffer(
                join(name, "running_var"),
                Tensor::ones(&[channels], DType::F32),
            ),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    /// The number of channels.
    pub fn channels(&self) -> usize {
        self.gamma.shape()[0]
    }

    /// Normalises `x` in `mode`; in `Train` mode the running statistics are updated.
    pub fn forward(&self, x: &Tensor, mode: BatchNormMode) -> Tensor {
        let (rm, rv) = (self.running_mean.get(), self.running_var.get());
        let out = batch_norm(
            x,
            Some(&self.gamma.get()),
            Some(&self.beta.get()),
            Some((&rm, &rv)),
            mode,
            self.momentum,
            self.eps,
        );
        if let (Some(m), Some(v)) = (out.running_mean, out.running_var) {
            self.running_mean.set(m);
            self.running_var.set(v);
        }
        out.output
    }
}

impl Module for BatchNorm2d {
    fn params(&self) -> Vec<Param> {
        vec![
            self.gamma.clone(),
            self.beta.clone(),
            self.running_mean.clone(),
            self.running_var.clone(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GradcheckOptions, gradcheck_params, rand_f64};

    #[test]
    fn eval_uses_running_stats_and_leaves_them() {
        let bn = BatchNorm2d::new("bn", 1);
        bn.running_mean.set(Tensor::from_vec(vec![2.0f32], &[1]));
        bn.running_var.set(Tensor::from_vec(vec![4.0f32], &[1]));
        let y = bn.forward(
            &Tensor::from_vec(vec![4.0f32], &[1, 1, 1, 1]),
            BatchNormMode::Eval,
        );
        assert!((y.item() - 2.0 / (4.0f64 + 1e-5).sqrt()).abs() < 1e-5);
        assert_eq!(bn.running_mean.get().to_vec::<f32>(), vec![2.0]);
        let _ = bn.forward(
            &rand_f64(&[3, 1, 2, 2], 0).to_dtype(DType::F32),
            BatchNormMode::BatchStatsAlways,
        );
        assert_eq!(bn.running_mean.get().to_vec::<f32>(), vec![2.0]);
    }

    #[test]
    fn gradcheck_train_mode() {
        let bn = BatchNorm2d::new("bn", 3);
        bn.to_dtype(DType::F64);
        bn.gamma.set(rand_f64(&[3], 1));
        bn.beta.set(rand_f64(&[3], 2));
        let x = rand_f64(&[2, 3, 2, 2], 3);
        let w = rand_f64(&[2, 3, 2, 2], 4);
        gradcheck_params(
            || bn.forward(&x, BatchNormMode::Train).mul(&w).sum(),
            &bn.params(),
            GradcheckOptions::default(),
        )
        .unwrap();
    }
}

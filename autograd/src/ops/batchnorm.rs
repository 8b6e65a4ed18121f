//! Batch normalisation over the channel axis of `(N, C, H, W)` or `(N, C)` inputs:
//! [`batch_norm`], with three [`BatchNormMode`]s.
//!
//! Running statistics are plain tensors that the CALLER keeps: pass the current ones in, and
//! in [`BatchNormMode::Train`] the updated ones come back in [`BatchNormOutput`] as new
//! constant tensors (PyTorch's convention: `new = (1 - momentum) * old + momentum * batch`,
//! with the unbiased batch variance). Normalisation itself uses the biased variance.
//!
//! The backward rule is the full batch-statistics formula (the gradient flows through the
//! mean and variance) in `Train`/`BatchStatsAlways`, and the plain affine rule in `Eval`.
//! Kernels: [`crate::kernels::cpu::batchnorm`], fused per channel.

use crate::storage::{BatchNormForward, bn_layout};
use crate::tensor::Tensor;
use std::sync::Arc;

pub use crate::storage::BatchNormMode;

/// What [`batch_norm`] returns.
#[derive(Debug, Clone)]
pub struct BatchNormOutput {
    /// The normalised (and scaled/shifted) tensor, same shape as the input.
    pub output: Tensor,
    /// Updated running mean `(C)` (only in `Train` with running statistics given).
    pub running_mean: Option<Tensor>,
    /// Updated running variance `(C)` (only in `Train` with running statistics given).
    pub running_var: Option<Tensor>,
}

fn check_channel(what: &str, t: Option<&Tensor>, x: &Tensor) {
    if let Some(t) = t {
        assert!(
            t.shape() == [x.shape()[1]],
            "batch_norm: {what} {:?} does not fit input {:?} (want [C])",
            t.shape(),
            x.shape()
        );
    }
}

/// Batch norm of `x` (`(N, C, H, W)` or `(N, C)`) per channel:
/// `y = gamma * (x - mean) / sqrt(var + eps) + beta`.
///
/// * `gamma`, `beta`: optional `(C)` affine parameters (`None` = affine off: 1 and 0).
/// * `running`: optional `(mean, var)` running statistics, each `(C)`; required in `Eval`.
/// * `momentum`: weight of the batch statistics in the running update (PyTorch: 0.1).
///
/// ```
/// use autograd::Tensor;
/// use autograd::ops::batchnorm::{BatchNormMode, batch_norm};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 5.0], &[2, 2]);
/// let (rm, rv) = (Tensor::zeros(&[2], x.dtype()), Tensor::ones(&[2], x.dtype()));
/// let out = batch_norm(&x, None, None, Some((&rm, &rv)), BatchNormMode::Train, 0.1, 1e-5);
/// assert!((out.output.to_vec::<f32>()[0] + 1.0).abs() < 1e-3);
/// // Caller keeps the new running statistics: 0.9 * 0 + 0.1 * mean.
/// assert_eq!(out.running_mean.unwrap().to_vec::<f32>(), vec![0.2, 0.35]);
/// ```
pub fn batch_norm(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running: Option<(&Tensor, &Tensor)>,
    mode: BatchNormMode,
    momentum: f64,
    eps: f64,
) -> BatchNormOutput {
    bn_layout(x.shape());
    check_channel("gamma", gamma, x);
    check_channel("beta", beta, x);
    check_channel("running mean", running.map(|r| r.0), x);
    check_channel("running var", running.map(|r| r.1), x);
    let Some(BatchNormForward {
        output,
        running: new_running,
        saved,
    }) = x.storage().batch_norm(
        gamma.map(Tensor::storage),
        beta.map(Tensor::storage),
        running.map(|(m, v)| (m.storage(), v.storage())),
        mode,
        momentum,
        eps,
    )
    else {
        return eval_composed(x, gamma, beta, running, eps);
    };
    let (running_mean, running_var) = match new_running {
        Some((m, v)) => (Some(Tensor::from_storage(m)), Some(Tensor::from_storage(v))),
        None => (None, None),
    };
    let mut inputs = vec![x];
    inputs.extend(gamma);
    inputs.extend(beta);
    let (has_gamma, has_beta) = (gamma.is_some(), beta.is_some());
    let saved = Arc::new(saved);
    let output = Tensor::from_op(
        output,
        &inputs,
        "batch_norm",
        move |inp: &[Tensor], _: &Tensor, dy: &Tensor| {
            let gamma = has_gamma.then(|| &inp[1]);
            let beta = has_beta.then(|| &inp[inp.len() - 1]);
            let need = (
                inp[0].is_tracked(),
                gamma.is_some_and(|g| g.is_tracked()),
                beta.is_some_and(|b| b.is_tracked()),
            );
            let (dx, dgamma, dbeta) = dy.storage().batch_norm_backward(
                inp[0].storage(),
                gamma.map(|g| g.storage()),
                beta.map(|b| b.storage()),
                &saved,
                need,
            );
            let mut grads = vec![dx.map(Tensor::from_storage)];
            if has_gamma {
                grads.push(dgamma.map(Tensor::from_storage));
            }
            if has_beta {
                grads.push(dbeta.map(Tensor::from_storage));
            }
            grads
        },
    );
    BatchNormOutput {
        output,
        running_mean,
        running_var,
    }
}

/// [`batch_norm`] in `Eval` mode where [`crate::Storage::batch_norm`] has no fused kernel
/// (a GPU): composed of elementwise ops, so its gradient comes from theirs.
fn eval_composed(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running: Option<(&Tensor, &Tensor)>,
    eps: f64,
) -> BatchNormOutput {
    let s = x.shape();
    let c = s[1];
    let (rm, rv) = running
        .unwrap_or_else(|| panic!("batch_norm: Eval mode needs running statistics (input {s:?})"));
    let mut cs = vec![1; s.len()];
    cs[1] = c;
    let invstd = rv.detach().add_scalar(eps).powf(-0.5);
    let scale = match gamma {
        Some(g) => g.mul(&invstd),
        None => invstd,
    };
    let mut y = x.sub(&rm.detach().reshape(&cs)).mul(&scale.reshape(&cs));
    if let Some(b) = beta {
        y = y.add(&b.reshape(&cs));
    }
    BatchNormOutput {
        output: y,
        running_mean: None,
        running_var: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchNormMode, batch_norm};
    use crate::Tensor;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    /// Reference batch norm composed from ordinary differentiable ops.
    fn composed(x: &Tensor, g: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let axes: &[isize] = if x.ndim() == 4 { &[0, 2, 3] } else { &[0] };
        let cshape: Vec<usize> = if x.ndim() == 4 {
            vec![1, x.shape()[1], 1, 1]
        } else {
            vec![1, x.shape()[1]]
        };
        let mean = x.mean_axes(axes, true);
        let xc = x.sub(&mean);
        let var = xc.square().mean_axes(axes, true);
        xc.div(&var.add_scalar(eps).sqrt())
            .mul(&g.reshape(&cshape))
            .add(&b.reshape(&cshape))
    }

    #[test]
    fn train_forward_matches_composed_ops_and_updates_running_stats() {
        let x = rand_f64(&[4, 3, 2, 5], 1);
        let g = rand_f64(&[3], 2);
        let b = rand_f64(&[3], 3);
        let rm = rand_f64(&[3], 4);
        let rv = rand_f64(&[3], 5).abs().add_scalar(0.5);
        let out = batch_norm(
            &x,
            Some(&g),
            Some(&b),
            Some((&rm, &rv)),
            BatchNormMode::Train,
            0.1,
            1e-5,
        );
        assert_close(&out.output, &composed(&x, &g, &b, 1e-5), 1e-10, 1e-10);
        let mean = x.mean_axes(&[0, 2, 3], false);
        let var_unbiased = x
            .sub(&x.mean_axes(&[0, 2, 3], true))
            .square()
            .sum_axes(&[0, 2, 3], false)
            .mul_scalar(1.0 / 39.0);
        assert_close(
            out.running_mean.as_ref().unwrap(),
            &rm.mul_scalar(0.9).add(&mean.mul_scalar(0.1)),
            1e-12,
            1e-12,
        );
        assert_close(
            out.running_var.as_ref().unwrap(),
            &rv.mul_scalar(0.9).add(&var_unbiased.mul_scalar(0.1)),
            1e-12,
            1e-12,
        );
        // BatchStatsAlways: same output, no running update.
        let o2 = batch_norm(
            &x,
            Some(&g),
            Some(&b),
            Some((&rm, &rv)),
            BatchNormMode::BatchStatsAlways,
            0.1,
            1e-5,
        );
        assert_close(&o2.output, &out.output, 0.0, 0.0);
        assert!(o2.running_mean.is_none() && o2.running_var.is_none());
        // f32 agrees.
        let o32 = batch_norm(
            &x.to_dtype(crate::DType::F32),
            None,
            None,
            None,
            BatchNormMode::Train,
            0.1,
            1e-5,
        );
        let ones = Tensor::ones(&[3], crate::DType::F64);
        let zeros = Tensor::zeros(&[3], crate::DType::F64);
        assert_close(&o32.output, &composed(&x, &ones, &zeros, 1e-5), 1e-5, 1e-5);
    }

    #[test]
    fn eval_forward_uses_running_stats() {
        let x = rand_f64(&[3, 2, 2, 2], 6);
        let rm = Tensor::from_vec(vec![0.5, -0.25], &[2]);
        let rv = Tensor::from_vec(vec![4.0, 0.25], &[2]);
        let out = batch_norm(
            &x,
            None,
            None,
            Some((&rm, &rv)),
            BatchNormMode::Eval,
            0.1,
            0.0,
        );
        let want = x
            .sub(&rm.reshape(&[1, 2, 1, 1]))
            .div(&rv.sqrt().reshape(&[1, 2, 1, 1]));
        assert_close(&out.output, &want, 1e-12, 1e-12);
        assert!(out.running_mean.is_none());
    }

    #[test]
    fn gradcheck_batch_norm_train_4d_and_2d() {
        let x = rand_f64(&[3, 2, 3, 4], 7);
        let g = rand_f64(&[2], 8);
        let b = rand_f64(&[2], 9);
        gradcheck(
            |t| {
                batch_norm(
                    &t[0],
                    Some(&t[1]),
                    Some(&t[2]),
                    None,
                    BatchNormMode::Train,
                    0.1,
                    1e-5,
                )
                .output
            },
            &[x, g, b],
        )
        .unwrap();
        let x2 = rand_f64(&[5, 3], 10);
        let g2 = rand_f64(&[3], 11);
        let b2 = rand_f64(&[3], 12);
        gradcheck(
            |t| {
                batch_norm(
                    &t[0],
                    Some(&t[1]),
                    Some(&t[2]),
                    None,
                    BatchNormMode::Train,
                    0.1,
                    1e-5,
                )
                .output
            },
            &[x2.clone(), g2, b2],
        )
        .unwrap();
        // Affine off, running stats passed (their update must not disturb the gradient).
        let rm = Tensor::zeros(&[3], crate::DType::F64);
        let rv = Tensor::ones(&[3], crate::DType::F64);
        gradcheck(
            |t| {
                batch_norm(
                    &t[0],
                    None,
                    None,
                    Some((&rm, &rv)),
                    BatchNormMode::Train,
                    0.1,
                    1e-5,
                )
                .output
            },
            &[x2],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_batch_norm_non_contiguous_input() {
        gradcheck(
            |t| {
                batch_norm(
                    &t[0].permute(&[0, 3, 1, 2]),
                    Some(&t[1]),
                    None,
                    None,
                    BatchNormMode::Train,
                    0.1,
                    1e-5,
                )
                .output
            },
            &[rand_f64(&[2, 3, 4, 3], 13), rand_f64(&[3], 14)],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_batch_norm_eval_and_batch_stats_always() {
        let x = rand_f64(&[3, 2, 2, 3], 15);
        let g = rand_f64(&[2], 16);
        let b = rand_f64(&[2], 17);
        let rm = rand_f64(&[2], 18);
        let rv = rand_f64(&[2], 19).abs().add_scalar(0.5);
        gradcheck(
            |t| {
                batch_norm(
                    &t[0],
                    Some(&t[1]),
                    Some(&t[2]),
                    Some((&rm, &rv)),
                    BatchNormMode::Eval,
                    0.1,
                    1e-5,
                )
                .output
            },
            &[x.clone(), g.clone(), b.clone()],
        )
        .unwrap();
        gradcheck(
            |t| {
                batch_norm(
                    &t[0],
                    Some(&t[1]),
                    Some(&t[2]),
                    Some((&rm, &rv)),
                    BatchNormMode::BatchStatsAlways,
                    0.1,
                    1e-5,
                )
                .output
            },
            &[x, g, b],
        )
        .unwrap();
    }

    #[test]
    #[should_panic(expected = "batch_norm: gamma [3] does not fit input [2, 2, 4, 4]")]
    fn batch_norm_gamma_mismatch_names_shapes() {
        let x = Tensor::zeros(&[2, 2, 4, 4], crate::DType::F32);
        let g = Tensor::ones(&[3], crate::DType::F32);
        let _ = batch_norm(&x, Some(&g), None, None, BatchNormMode::Train, 0.1, 1e-5);
    }
}

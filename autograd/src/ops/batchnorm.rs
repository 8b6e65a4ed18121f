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

use crate::dtype::Float;
use crate::kernels::cpu::batchnorm::{BnLayout, bn_affine2, bn_batch_stats, bn_grad_sums};
use crate::kernels::cpu::layout::standard_layout;
use crate::kernels::cuda::CudaStorage;
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{dispatch2, with_array};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// Which statistics batch norm normalises with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchNormMode {
    /// Batch statistics; the running statistics (if given) are updated and returned.
    Train,
    /// Running statistics (required); nothing is updated.
    Eval,
    /// Batch statistics even at evaluation, no running update: for weight-sharing
    /// supernets, whose sub-networks never share stable running statistics (NAO-WS's
    /// `bn_train=True`).
    BatchStatsAlways,
}

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

fn layout(x: &Tensor) -> BnLayout {
    match x.shape() {
        &[n, c] => BnLayout { n, c, hw: 1 },
        &[n, c, h, w] => BnLayout { n, c, hw: h * w },
        s => panic!("batch_norm: input {s:?} must be (N, C) or (N, C, H, W)"),
    }
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

fn to_t<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
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
    let l = layout(x);
    check_channel("gamma", gamma, x);
    check_channel("beta", beta, x);
    check_channel("running mean", running.map(|r| r.0), x);
    check_channel("running var", running.map(|r| r.1), x);
    let mut all = vec![x];
    all.extend(gamma.into_iter().chain(beta));
    all.extend(running.into_iter().flat_map(|(a, b)| [a, b]));
    if crate::ops::device_of("batch_norm", &all).is_some() {
        return batch_norm_gpu(x, gamma, beta, running, mode, momentum, eps);
    }
    let batch_stats = mode != BatchNormMode::Eval;
    let m = l.per_channel();
    let (mean, var) = if batch_stats {
        assert!(
            m > 0,
            "batch_norm: input {:?} has no elements per channel",
            x.shape()
        );
        with_array!(x.storage(), |a| bn_batch_stats(
            standard_layout(a).as_slice().unwrap(),
            l
        ))
    } else {
        let (rm, rv) = running.unwrap_or_else(|| {
            panic!(
                "batch_norm: Eval mode needs running statistics (input {:?})",
                x.shape()
            )
        });
        (rm.to_vec::<f64>(), rv.to_vec::<f64>())
    };
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let g: Vec<f64> = gamma.map_or(vec![1.0; l.c], |t| t.to_vec::<f64>());
    let b: Vec<f64> = beta.map_or(vec![0.0; l.c], |t| t.to_vec::<f64>());
    let scale: Vec<f64> = (0..l.c).map(|c| g[c] * invstd[c]).collect();
    let shift: Vec<f64> = (0..l.c).map(|c| b[c] - mean[c] * scale[c]).collect();
    let shape = x.shape().to_vec();
    let out = crate::dispatch!(x.storage(), |a| {
        let y = bn_affine2(
            standard_layout(a).as_slice().unwrap(),
            &[],
            l,
            &to_t::<T>(&scale),
            &[],
            &to_t::<T>(&shift),
        );
        ArrayD::from_shape_vec(IxDyn(&shape), y).unwrap()
    });

    let (running_mean, running_var) = match (mode, running) {
        (BatchNormMode::Train, Some((rm, rv))) => {
            let unbias = if m > 1 {
                m as f64 / (m - 1) as f64
            } else {
                1.0
            };
            let upd = |old: &Tensor, batch: &[f64], k: f64| {
                let v: Vec<f64> = old
                    .to_vec::<f64>()
                    .iter()
                    .zip(batch)
                    .map(|(o, b)| (1.0 - momentum) * o + momentum * b * k)
                    .collect();
                crate::graph::no_grad(|| Tensor::from_vec(v, &[l.c]).to_dtype(old.dtype()))
            };
            (Some(upd(rm, &mean, 1.0)), Some(upd(rv, &var, unbias)))
        }
        _ => (None, None),
    };

    let mut inputs = vec![x];
    inputs.extend(gamma);
    inputs.extend(beta);
    let (has_gamma, has_beta) = (gamma.is_some(), beta.is_some());
    let (mean, invstd) = (Arc::new(mean), Arc::new(invstd));
    let output = Tensor::from_op(
        out,
        &inputs,
        "batch_norm",
        move |inp: &[Tensor], _: &Tensor, dy: &Tensor| {
            let x = &inp[0];
            let (sum_dy, sum_dyxc) = with_array!(x.storage(), |a| {
                let d: &ArrayD<T> = dy.storage().array().unwrap_or_else(|| {
                    panic!("batch_norm backward: dtype mismatch {}", dy.dtype())
                });
                let dyv = standard_layout(d);
                bn_grad_sums(
                    standard_layout(a).as_slice().unwrap(),
                    dyv.as_slice().unwrap(),
                    l,
                    &mean,
                )
            });
            let gvals: Vec<f64> = if has_gamma {
                inp[1].to_vec::<f64>()
            } else {
                vec![1.0; l.c]
            };
            let mf = m as f64;
            let k: Vec<f64> = (0..l.c).map(|c| gvals[c] * invstd[c]).collect();
            let dx = x.is_tracked().then(|| {
                let (bx, cst): (Vec<f64>, Vec<f64>) = if batch_stats {
                    (0..l.c)
                        .map(|c| {
                            let bx = -k[c] * invstd[c] * invstd[c] * sum_dyxc[c] / mf;
                            (bx, -k[c] * sum_dy[c] / mf - bx * mean[c])
                        })
                        .unzip()
                } else {
                    (vec![0.0; l.c], vec![0.0; l.c])
                };
                let shape = x.shape().to_vec();
                let s = dispatch2!("batch_norm backward", dy.storage(), x.storage(), |d, xa| {
                    let d = standard_layout(d);
                    let xa = standard_layout(xa);
                    let v = bn_affine2(
                        d.as_slice().unwrap(),
                        if batch_stats {
                            xa.as_slice().unwrap()
                        } else {
                            &[]
                        },
                        l,
                        &to_t::<T>(&k),
                        &to_t::<T>(&bx),
                        &to_t::<T>(&cst),
                    );
                    ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap()
                });
                Tensor::from_storage(s)
            });
            let mut grads = vec![dx];
            if has_gamma {
                let gg = &inp[1];
                grads.push(gg.is_tracked().then(|| {
                    let v: Vec<f64> = (0..l.c).map(|c| invstd[c] * sum_dyxc[c]).collect();
                    Tensor::from_vec(v, &[l.c]).to_dtype(gg.dtype())
                }));
            }
            if has_beta {
                let bb = &inp[inp.len() - 1];
                grads.push(
                    bb.is_tracked()
                        .then(|| Tensor::from_vec(sum_dy.clone(), &[l.c]).to_dtype(bb.dtype())),
                );
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

/// [`batch_norm`] for GPU tensors (arguments already checked): training statistics by the
/// fused kernels of [`crate::kernels::cuda::norm`]; evaluation composed of tensor ops, so its
/// gradient comes for free.
fn batch_norm_gpu(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running: Option<(&Tensor, &Tensor)>,
    mode: BatchNormMode,
    momentum: f64,
    eps: f64,
) -> BatchNormOutput {
    use crate::kernels::cuda::norm;
    let s = x.shape();
    let c = s[1];
    if mode == BatchNormMode::Eval {
        let (rm, rv) = running.unwrap_or_else(|| {
            panic!("batch_norm: Eval mode needs running statistics (input {s:?})")
        });
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
        return BatchNormOutput {
            output: y,
            running_mean: None,
            running_var: None,
        };
    }
    const OP: &str = "batch_norm";
    let running = match (mode, running) {
        (BatchNormMode::Train, Some((rm, rv))) => Some((rm.cuda(OP), rv.cuda(OP))),
        _ => None,
    };
    let (y, saved, new_running) = norm::batch_norm_train(
        x.cuda(OP),
        gamma.map(|g| g.cuda(OP)),
        beta.map(|b| b.cuda(OP)),
        running,
        momentum,
        eps,
    );
    let (running_mean, running_var) = match new_running {
        Some((m, v)) => (
            Some(Tensor::from_storage(Storage::Cuda(m))),
            Some(Tensor::from_storage(Storage::Cuda(v))),
        ),
        None => (None, None),
    };
    let mut inputs = vec![x];
    inputs.extend(gamma);
    inputs.extend(beta);
    let (has_gamma, has_beta) = (gamma.is_some(), beta.is_some());
    let saved = std::sync::Arc::new(saved);
    let output = Tensor::from_op(
        Storage::Cuda(y),
        &inputs,
        "batch_norm",
        move |inp: &[Tensor], _: &Tensor, dy: &Tensor| {
            const OP: &str = "batch_norm backward";
            let gamma = has_gamma.then(|| inp[1].cuda(OP));
            let (dx, dgamma, dbeta) = norm::batch_norm_train_backward(
                dy.cuda(OP),
                inp[0].cuda(OP),
                &saved,
                gamma,
                has_beta,
            );
            let wrap = |s: CudaStorage| Tensor::from_storage(Storage::Cuda(s));
            let mut grads = vec![Some(wrap(dx))];
            if has_gamma {
                grads.push(dgamma.map(wrap));
            }
            if has_beta {
                grads.push(dbeta.map(wrap));
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

//! Batch normalisation on the GPU (training statistics: `ops-cuda`'s fused kernels; the
//! evaluation mode is composed of tensor ops, so its gradient comes for free).

use super::{buf, check, wrap};
use crate::ops::batchnorm::{BatchNormMode, BatchNormOutput};
use crate::tensor::Tensor;
use ops_cuda::CudaDevice;
use ops_cuda::kernels::norm;
use ops_cuda::kernels::reduce::{self, ReduceOp};
use std::sync::Arc;

/// [`crate::ops::batchnorm::batch_norm`] for GPU tensors (arguments already checked).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    dev: &CudaDevice,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running: Option<(&Tensor, &Tensor)>,
    mode: BatchNormMode,
    momentum: f64,
    eps: f64,
) -> BatchNormOutput {
    const OP: &str = "batch_norm";
    let s = x.shape();
    let (n, c, hw) = (s[0], s[1], s[2..].iter().product::<usize>());
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
    // Train: the running statistics are copied and updated on the device.
    let mut new_running = match (mode, running) {
        (BatchNormMode::Train, Some((rm, rv))) => Some((
            check(OP, buf(OP, rm).try_clone()),
            check(OP, buf(OP, rv).try_clone()),
        )),
        _ => None,
    };
    let (y, saved) = check(
        OP,
        norm::batch_norm_forward_train(
            dev,
            buf(OP, x),
            gamma.map(|g| buf(OP, g)),
            beta.map(|b| buf(OP, b)),
            new_running.as_mut().map(|(m, v)| (m, v)),
            (n, c, hw),
            eps as f32,
            momentum as f32,
        ),
    );
    let (running_mean, running_var) = match new_running {
        Some((m, v)) => (
            Some(Tensor::from_storage(wrap(m, &[c]))),
            Some(Tensor::from_storage(wrap(v, &[c]))),
        ),
        None => (None, None),
    };
    let mut inputs = vec![x];
    inputs.extend(gamma);
    inputs.extend(beta);
    let (has_gamma, has_beta) = (gamma.is_some(), beta.is_some());
    let saved = Arc::new(saved);
    let d = dev.clone();
    let output = Tensor::from_op(
        wrap(y, s),
        &inputs,
        "batch_norm",
        move |inp: &[Tensor], _: &Tensor, dy: &Tensor| {
            const OP: &str = "batch_norm backward";
            let x = &inp[0];
            let gamma = has_gamma.then(|| buf(OP, &inp[1]));
            let gr = check(
                OP,
                norm::batch_norm_backward(&d, buf(OP, dy), buf(OP, x), &saved, gamma, (n, c, hw)),
            );
            let mut grads = vec![Some(Tensor::from_storage(wrap(gr.dx, x.shape())))];
            if has_gamma {
                grads.push(gr.dgamma.map(|g| Tensor::from_storage(wrap(g, &[c]))));
            }
            if has_beta {
                let db = match gr.dbeta {
                    Some(b) if has_gamma => b,
                    _ => {
                        let axes: Vec<usize> = (0..dy.ndim()).filter(|&a| a != 1).collect();
                        check(
                            OP,
                            reduce::reduce(&d, ReduceOp::Sum, buf(OP, dy), dy.shape(), &axes),
                        )
                    }
                };
                grads.push(Some(Tensor::from_storage(wrap(db, &[c]))));
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

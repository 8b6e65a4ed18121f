//! The batch-norm family, dispatched by device and dtype: normalisation of an `(N, C)` or
//! `(N, C, H, W)` storage per channel (batch or running statistics), the running-statistics
//! update, and the backward. The CPU kernels are `kernels::cpu::batchnorm` (fused per
//! channel), the GPU ones `kernels::cuda::norm` (batch statistics only: evaluation with
//! running statistics on a GPU has no fused kernel, see [`Storage::batch_norm`]).

use super::{Storage, all_cuda_slice};
use crate::dtype::{DType, Float};
use crate::kernels::cpu::batchnorm::{BnLayout, bn_affine2, bn_batch_stats, bn_grad_sums};
use crate::kernels::cpu::layout::standard_layout;
use crate::kernels::cuda::{CudaStorage, norm as gpu};
use ndarray::{ArrayD, IxDyn};

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

/// What [`Storage::batch_norm`] returns.
#[derive(Debug)]
pub struct BatchNormForward {
    /// The normalised (and scaled/shifted) storage, same shape as the input.
    pub output: Storage,
    /// Updated running `(mean, var)` (only in `Train` with running statistics given).
    pub running: Option<(Storage, Storage)>,
    /// What the backward needs.
    pub saved: BatchNormSaved,
}

/// What [`Storage::batch_norm_backward`] needs from the forward.
#[derive(Debug)]
pub enum BatchNormSaved {
    /// CPU: the statistics normalised with (per channel, f64).
    Cpu {
        /// The input's layout.
        layout: BnLayout,
        /// Whether they were batch statistics (the gradient flows through them).
        batch_stats: bool,
        /// Mean per channel.
        mean: Vec<f64>,
        /// `1 / sqrt(var + eps)` per channel.
        invstd: Vec<f64>,
    },
    /// GPU (batch statistics): the kernel's saved statistics.
    Cuda(gpu::BatchNormSaved),
}

/// The input's layout: `(N, C)` or `(N, C, H, W)`.
pub fn bn_layout(shape: &[usize]) -> BnLayout {
    match *shape {
        [n, c] => BnLayout { n, c, hw: 1 },
        [n, c, h, w] => BnLayout { n, c, hw: h * w },
        ref s => panic!("batch_norm: input {s:?} must be (N, C) or (N, C, H, W)"),
    }
}

fn to_t<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}

/// The elements in row-major order as f64 (what `Tensor::to_vec::<f64>` gives).
fn to_f64_vec(s: &Storage) -> Vec<f64> {
    match s {
        Storage::Cuda(c) => c.to_array().iter().map(|&v| v as f64).collect(),
        _ => with_array!(s, |a| a.iter().map(|v| v.to_f64().unwrap()).collect()),
    }
}

/// A `(c)` CPU storage of `dtype` holding `v` (converted from f64 as `to_dtype` does).
fn channel_vec(v: Vec<f64>, dtype: DType) -> Storage {
    let c = v.len();
    let a = ArrayD::from_shape_vec(IxDyn(&[c]), v).unwrap();
    match dtype {
        DType::F64 => Storage::F64(a),
        DType::F32 => Storage::F32(a.mapv(|v| v as f32)),
    }
}

impl Storage {
    /// Batch norm per channel, `y = gamma * (x - mean) / sqrt(var + eps) + beta`, of an
    /// `(N, C)` or `(N, C, H, W)` storage with optional `(C)` affine parameters and running
    /// statistics (shapes checked by the caller; `running` required in `Eval`). In `Train`
    /// the running statistics come back updated (`new = (1 - momentum) * old + momentum *
    /// batch`, unbiased batch variance).
    ///
    /// `None` for `Eval` on a GPU, which has no fused kernel: the caller composes it from
    /// elementwise ops (so its gradient comes from theirs).
    pub fn batch_norm(
        &self,
        gamma: Option<&Storage>,
        beta: Option<&Storage>,
        running: Option<(&Storage, &Storage)>,
        mode: BatchNormMode,
        momentum: f64,
        eps: f64,
    ) -> Option<BatchNormForward> {
        let mut all = vec![self];
        all.extend(gamma.into_iter().chain(beta));
        all.extend(running.into_iter().flat_map(|(a, b)| [a, b]));
        if all_cuda_slice("batch_norm", &all).is_some() {
            if mode == BatchNormMode::Eval {
                return None;
            }
            fn cuda(s: &Storage) -> &CudaStorage {
                s.as_cuda().expect("checked above")
            }
            let running = match (mode, running) {
                (BatchNormMode::Train, Some((rm, rv))) => Some((cuda(rm), cuda(rv))),
                _ => None,
            };
            let (y, saved, new_running) = gpu::batch_norm_train(
                cuda(self),
                gamma.map(cuda),
                beta.map(cuda),
                running,
                momentum,
                eps,
            );
            return Some(BatchNormForward {
                output: Storage::Cuda(y),
                running: new_running.map(|(m, v)| (Storage::Cuda(m), Storage::Cuda(v))),
                saved: BatchNormSaved::Cuda(saved),
            });
        }
        let l = bn_layout(self.shape());
        let batch_stats = mode != BatchNormMode::Eval;
        let m = l.per_channel();
        let (mean, var) = if batch_stats {
            assert!(
                m > 0,
                "batch_norm: input {:?} has no elements per channel",
                self.shape()
            );
            with_array!(self, |a| bn_batch_stats(
                standard_layout(a).as_slice().unwrap(),
                l
            ))
        } else {
            let (rm, rv) = running.unwrap_or_else(|| {
                panic!(
                    "batch_norm: Eval mode needs running statistics (input {:?})",
                    self.shape()
                )
            });
            (to_f64_vec(rm), to_f64_vec(rv))
        };
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let g: Vec<f64> = gamma.map_or(vec![1.0; l.c], to_f64_vec);
        let b: Vec<f64> = beta.map_or(vec![0.0; l.c], to_f64_vec);
        let scale: Vec<f64> = (0..l.c).map(|c| g[c] * invstd[c]).collect();
        let shift: Vec<f64> = (0..l.c).map(|c| b[c] - mean[c] * scale[c]).collect();
        let shape = self.shape().to_vec();
        let output = dispatch!(self, |a| {
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
        let running = match (mode, running) {
            (BatchNormMode::Train, Some((rm, rv))) => {
                let unbias = if m > 1 {
                    m as f64 / (m - 1) as f64
                } else {
                    1.0
                };
                let upd = |old: &Storage, batch: &[f64], k: f64| {
                    let v: Vec<f64> = to_f64_vec(old)
                        .iter()
                        .zip(batch)
                        .map(|(o, b)| (1.0 - momentum) * o + momentum * b * k)
                        .collect();
                    channel_vec(v, old.dtype())
                };
                Some((upd(rm, &mean, 1.0), upd(rv, &var, unbias)))
            }
            _ => None,
        };
        Some(BatchNormForward {
            output,
            running,
            saved: BatchNormSaved::Cpu {
                layout: l,
                batch_stats,
                mean,
                invstd,
            },
        })
    }

    /// The gradients of [`Storage::batch_norm`] with respect to the input `x`, `gamma` and
    /// `beta` (each gradient of the dtype of its input), from the output gradient `self`;
    /// `need` says which to compute (`need.1` only with a `gamma`, `need.2` only with a
    /// `beta`). With batch statistics the gradient flows
    /// through the mean and variance; with running statistics it is the affine rule.
    pub fn batch_norm_backward(
        &self,
        x: &Storage,
        gamma: Option<&Storage>,
        beta: Option<&Storage>,
        saved: &BatchNormSaved,
        need: (bool, bool, bool),
    ) -> (Option<Storage>, Option<Storage>, Option<Storage>) {
        const OP: &str = "batch_norm backward";
        let (layout, batch_stats, mean, invstd) = match saved {
            BatchNormSaved::Cuda(saved) => {
                let mut all = vec![self, x];
                all.extend(gamma);
                let c = all_cuda_slice(OP, &all)
                    .unwrap_or_else(|| panic!("{OP}: the gradient is not on the GPU"));
                let (dx, dgamma, dbeta) =
                    gpu::batch_norm_train_backward(c[0], c[1], saved, c.get(2).copied(), need.2);
                return (
                    need.0.then_some(Storage::Cuda(dx)),
                    dgamma.filter(|_| need.1).map(Storage::Cuda),
                    dbeta.map(Storage::Cuda),
                );
            }
            BatchNormSaved::Cpu {
                layout,
                batch_stats,
                mean,
                invstd,
            } => (*layout, *batch_stats, mean, invstd),
        };
        let l = layout;
        let m = l.per_channel();
        let (sum_dy, sum_dyxc) = with_array!(x, |a| {
            let d: &ArrayD<T> = self
                .array()
                .unwrap_or_else(|| panic!("{OP}: dtype mismatch {}", self.dtype()));
            let dyv = standard_layout(d);
            bn_grad_sums(
                standard_layout(a).as_slice().unwrap(),
                dyv.as_slice().unwrap(),
                l,
                mean,
            )
        });
        let gvals: Vec<f64> = gamma.map_or(vec![1.0; l.c], to_f64_vec);
        let mf = m as f64;
        let k: Vec<f64> = (0..l.c).map(|c| gvals[c] * invstd[c]).collect();
        let dx = need.0.then(|| {
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
            dispatch2!(OP, self, x, |d, xa| {
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
            })
        });
        let dgamma = gamma.filter(|_| need.1).map(|gg| {
            let v: Vec<f64> = (0..l.c).map(|c| invstd[c] * sum_dyxc[c]).collect();
            channel_vec(v, gg.dtype())
        });
        let dbeta = beta
            .filter(|_| need.2)
            .map(|bb| channel_vec(sum_dy.clone(), bb.dtype()));
        (dx, dgamma, dbeta)
    }
}

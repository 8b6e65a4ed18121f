//! [`train_cnn`]: trains a child CNN with a [`Recipe`] on CIFAR-style data, reporting
//! per-epoch train loss/accuracy and held-out accuracy; [`evaluate`] scores a network.
//!
//! All randomness comes from the `seed`: the initial weights, the batch order and
//! augmentation (the batcher's seed), and the dropout and drop-path masks (a third stream),
//! so the same seed reproduces the same run bit for bit. A loss that is NaN or infinite
//! stops training with [`TrainError::Diverged`] naming the epoch and step: no garbage
//! weights are handed back as a result.

use std::sync::Arc;
use std::time::Instant;

use autograd::nn::Module;
use autograd::optim::{Schedule, clip_grad_norm};
use autograd::{Tensor, no_grad};
use datasets::{Augment, Batcher, BatcherConfig, ChannelStats, ImageSet, LastBatch};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::recipe::Recipe;
use crate::cnn::{CnnConfig, CnnNetwork, Mode};
use crate::space::ArchError;

/// Training and held-out images, normalised with `stats`.
#[derive(Debug, Clone)]
pub struct TrainData {
    /// The training images.
    pub train: Arc<ImageSet>,
    /// The held-out images scored after every epoch (a dev split, or the test set).
    pub eval: Arc<ImageSet>,
    /// Per-channel normalisation.
    pub stats: ChannelStats,
}

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Mean training loss (the classifier's cross-entropy, plus the weighted auxiliary
    /// loss when there is an auxiliary head).
    pub train_loss: f64,
    /// Training accuracy of the classifier (with dropout and drop-path active).
    pub train_acc: f64,
    /// Accuracy on [`TrainData::eval`] after the epoch (evaluation mode).
    pub eval_acc: f64,
    /// Wall time of the epoch, evaluation included, in seconds.
    pub seconds: f64,
}

/// What [`train_cnn`] returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// The configuration actually trained (regularisation taken from the recipe).
    pub config: CnnConfig,
    /// The recipe.
    pub recipe: Recipe,
    /// The seed.
    pub seed: u64,
    /// Trainable parameters.
    pub params: usize,
    /// Per-epoch numbers.
    pub epochs: Vec<EpochReport>,
    /// Held-out accuracy after the last epoch.
    pub final_eval_acc: f64,
    /// Total wall time in seconds.
    pub seconds: f64,
}

/// Why training stopped.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "training diverged: loss {loss} at epoch {epoch}, step {step} (try a lower learning rate or tighter gradient clipping)"
    )]
    Diverged {
        /// Epoch (0-based).
        epoch: usize,
        /// Step within the run (0-based).
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// The architecture tokens are not valid in the configured space.
    #[error("invalid architecture: {0}")]
    Arch(#[from] ArchError),
    /// The data or the recipe cannot be used.
    #[error("cannot train: {0}")]
    Setup(String),
}

fn mix(seed: u64, stream: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
        ^ stream
}

/// The configuration `cfg` with the recipe's regularisation: its dropout and drop-path keep
/// probabilities, and an auxiliary head exactly when `aux_weight > 0`.
pub fn effective_config(cfg: &CnnConfig, recipe: &Recipe) -> CnnConfig {
    CnnConfig {
        dropout_keep: recipe.dropout_keep,
        drop_path_keep: recipe.drop_path_keep,
        aux_head: recipe.aux_weight > 0.0,
        ..cfg.clone()
    }
}

/// A batch of images on `device` (the network's).
fn batch_tensor(images: ndarray::Array4<f32>, device: &autograd::Device) -> Tensor {
    Tensor::from_array(images.into_dyn()).to(device)
}

/// The device of the network's parameters (where its inputs must go).
pub fn net_device(net: &CnnNetwork) -> autograd::Device {
    net.params().first().map(|p| p.device()).unwrap_or_default()
}

/// Top-1 accuracy of `net` on `set` in evaluation mode (running statistics, no dropout),
/// without recording gradients, in batches of `batch_size`.
pub fn evaluate(
    net: &CnnNetwork,
    set: &Arc<ImageSet>,
    stats: &ChannelStats,
    batch_size: usize,
) -> f64 {
    let batcher = Batcher::new(set.clone(), *stats, BatcherConfig::eval(batch_size.max(1)))
        .expect("a positive batch size");
    let (mut correct, mut total) = (0usize, 0usize);
    let device = net_device(net);
    no_grad(|| {
        for b in batcher.epoch(0) {
            let out = net.forward(&batch_tensor(b.images, &device), &mut Mode::eval());
            let pred = out.logits.argmax_axis(1);
            correct += pred.iter().zip(&b.labels).filter(|(p, l)| p == l).count();
            total += b.labels.len();
        }
    });
    correct as f64 / total.max(1) as f64
}

/// Trains the child network of `arch` (tokens of `cfg.space`) with `recipe` on `data`,
/// everything random drawn from `seed`. With `progress`, an indicatif bar (hidden when
/// stderr is not a terminal) shows the steps, and one line per epoch is printed to stderr.
///
/// Returns the trained network's report; stops with [`TrainError::Diverged`] as soon as a
/// loss is NaN or infinite.
///
/// Runs on the CPU; [`train_cnn_on`] takes the device as an argument (there is no
/// process-wide device: callers such as `nao`'s evaluators carry the one the CLI chose).
pub fn train_cnn(
    arch: &[usize],
    cfg: &CnnConfig,
    recipe: &Recipe,
    data: &TrainData,
    seed: u64,
    progress: bool,
) -> Result<(CnnNetwork, TrainReport), TrainError> {
    train_cnn_on(
        arch,
        cfg,
        recipe,
        data,
        seed,
        progress,
        &autograd::Device::Cpu,
    )
}

/// [`train_cnn`] on `device`: the network is built on the CPU (same initial weights for
/// the same seed), moved there, and every batch is copied there; dropout and drop-path
/// masks are drawn on the CPU from the same generators, so a GPU run follows the CPU run's
/// random choices (its numbers differ in the last bits: other summation orders).
pub fn train_cnn_on(
    arch: &[usize],
    cfg: &CnnConfig,
    recipe: &Recipe,
    data: &TrainData,
    seed: u64,
    progress: bool,
    device: &autograd::Device,
) -> Result<(CnnNetwork, TrainReport), TrainError> {
    train_cnn_observed_on(arch, cfg, recipe, data, seed, progress, device, &mut |_| {})
}

/// [`train_cnn`], calling `on_epoch` with each epoch's numbers as soon as the epoch is done
/// (for example to append them to a log that can be watched, and that survives a crash).
/// The same numbers end up in the returned report; the training is the same bit for bit.
/// On the CPU; [`train_cnn_observed_on`] takes the device.
pub fn train_cnn_observed(
    arch: &[usize],
    cfg: &CnnConfig,
    recipe: &Recipe,
    data: &TrainData,
    seed: u64,
    progress: bool,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<(CnnNetwork, TrainReport), TrainError> {
    let cpu = autograd::Device::Cpu;
    train_cnn_observed_on(arch, cfg, recipe, data, seed, progress, &cpu, on_epoch)
}

/// [`train_cnn_observed`] on `device` (as [`train_cnn_on`] is [`train_cnn`] on `device`).
#[allow(clippy::too_many_arguments)]
pub fn train_cnn_observed_on(
    arch: &[usize],
    cfg: &CnnConfig,
    recipe: &Recipe,
    data: &TrainData,
    seed: u64,
    progress: bool,
    device: &autograd::Device,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<(CnnNetwork, TrainReport), TrainError> {
    let start = Instant::now();
    let cfg = effective_config(cfg, recipe);
    cfg.validate().map_err(TrainError::Setup)?;
    if data.train.is_empty() || data.eval.is_empty() {
        return Err(TrainError::Setup("empty training or evaluation set".into()));
    }
    if data.train.num_classes() > cfg.classes {
        return Err(TrainError::Setup(format!(
            "the data has {} classes, the network {}",
            data.train.num_classes(),
            cfg.classes
        )));
    }
    let mut init_rng = Pcg64Mcg::seed_from_u64(mix(seed, 1));
    let net = CnnNetwork::from_tokens(arch, &cfg, &mut init_rng)?;
    net.to_device(device)
        .map_err(|e| TrainError::Setup(format!("cannot move the network to {device}: {e}")))?;
    let mut mask_rng = Pcg64Mcg::seed_from_u64(mix(seed, 2));
    let augment = match recipe.cutout {
        Some(c) => Augment::with_cutout(c),
        None => Augment::standard(),
    };
    let batcher = Batcher::new(
        data.train.clone(),
        data.stats,
        BatcherConfig {
            batch_size: recipe.batch_size,
            shuffle: true,
            last_batch: LastBatch::Drop,
            augment,
            seed: mix(seed, 3),
        },
    )
    .map_err(|e| TrainError::Setup(e.to_string()))?;
    let per_epoch = batcher.num_batches();
    if per_epoch == 0 {
        return Err(TrainError::Setup(format!(
            "{} training images make no full batch of {}",
            data.train.len(),
            recipe.batch_size
        )));
    }
    let total_steps = recipe.epochs * per_epoch;
    let params = net.trainable_params();
    let mut opt = recipe.optimizer.build(recipe.lr_schedule.lr(0));
    let bar = if progress {
        ProgressBar::with_draw_target(Some(total_steps as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps {msg} ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("train");
    let mut epochs = Vec::with_capacity(recipe.epochs);
    let mut step = 0usize;
    for epoch in 0..recipe.epochs {
        let t0 = Instant::now();
        let lr = recipe.lr_schedule.lr(epoch);
        opt.set_lr(lr);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for b in batcher.epoch(epoch as u64) {
            let n = b.labels.len();
            let x = batch_tensor(b.images, device);
            let frac = step as f64 / total_steps as f64;
            let out = net.forward(&x, &mut Mode::train(&mut mask_rng, frac));
            let mut loss = out.logits.cross_entropy(&b.labels);
            if let Some(aux) = &out.aux_logits {
                loss = &loss + &aux.cross_entropy(&b.labels).mul_scalar(recipe.aux_weight);
            }
            let l = loss.item();
            if !l.is_finite() {
                bar.abandon_with_message(format!("diverged: loss {l}"));
                return Err(TrainError::Diverged {
                    epoch,
                    step,
                    loss: l,
                });
            }
            let mut grads = loss.backward();
            if let Some(c) = recipe.grad_clip {
                clip_grad_norm(&mut grads, &params, c);
            }
            opt.step(&params, &grads);
            let pred = out.logits.argmax_axis(1);
            correct += pred.iter().zip(&b.labels).filter(|(p, l)| p == l).count();
            loss_sum += l * n as f64;
            seen += n;
            step += 1;
            bar.inc(1);
            bar.set_message(format!("epoch {epoch} loss {:.3}", loss_sum / seen as f64));
        }
        let eval_acc = evaluate(&net, &data.eval, &data.stats, 250);
        let rep = EpochReport {
            epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            eval_acc,
            seconds: t0.elapsed().as_secs_f64(),
        };
        if progress {
            // One plain line per epoch (the only output when stderr is not a terminal):
            // what finished, its numbers, the best so far, elapsed and remaining time.
            let best = epochs
                .iter()
                .map(|e: &EpochReport| e.eval_acc)
                .fold(rep.eval_acc, f64::max);
            let elapsed = start.elapsed().as_secs_f64();
            let remaining = elapsed / (epoch + 1) as f64 * (recipe.epochs - epoch - 1) as f64;
            let line = format!(
                "epoch {:>3}/{}  lr {:.4}  train loss {:.4}  train acc {:.4}  eval acc {:.4}  ({:.1} s) | best eval acc {best:.4} | elapsed {elapsed:.0} s | remaining ~{remaining:.0} s",
                rep.epoch + 1,
                recipe.epochs,
                rep.lr,
                rep.train_loss,
                rep.train_acc,
                rep.eval_acc,
                rep.seconds
            );
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
        on_epoch(&rep);
        epochs.push(rep);
    }
    bar.finish_and_clear();
    let final_eval_acc = epochs.last().map_or(0.0, |e| e.eval_acc);
    let report = TrainReport {
        params: net.num_params(),
        config: cfg,
        recipe: recipe.clone(),
        seed,
        epochs,
        final_eval_acc,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((net, report))
}

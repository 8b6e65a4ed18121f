//! What the LM trainer ([`super::rnn_trainer`]) and its resumable loop
//! ([`super::lm_session`]) share: the error and report types, evaluation of a model on a
//! stream, and averaged SGD (the switch rule and the running average). The public items
//! are re-exported from [`super::rnn_trainer`], where users look for them.

use autograd::nn::Param;
use autograd::{Tensor, no_grad};
use datasets::{BpttWindows, SeqLen};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::rnn::RnnLanguageModel;

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss (or the gradient norm) became NaN or infinite.
    #[error(
        "training diverged: the {what} is {value} at epoch {epoch}, window {window} \
         (lower the learning rate or clip harder)"
    )]
    NonFinite {
        /// `"loss"` or `"gradient norm"`.
        what: &'static str,
        /// The offending value.
        value: f64,
        /// Epoch (1-based).
        epoch: usize,
        /// Window within the epoch (0-based).
        window: usize,
    },
    /// The recipe or model config is unusable.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// `"recipe"` or `"model config"`.
        what: &'static str,
        /// The reason.
        why: String,
    },
    /// The model could not be moved to the training device.
    #[error("setup failed: {0}")]
    Setup(String),
    /// The corpus could not be batched.
    #[error(transparent)]
    Data(#[from] datasets::DatasetError),
    /// A checkpoint could not be written or read ([`super::lm_session::LmSession`]).
    #[error("checkpoint {0}")]
    Checkpoint(String),
}

/// The numbers of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training NLL per token (nats), without the TAR term.
    pub train_loss: f64,
    /// `exp(train_loss)`.
    pub train_ppl: f64,
    /// Mean validation NLL per token (with the averaged weights once ASGD is on).
    pub valid_loss: f64,
    /// `exp(valid_loss)`.
    pub valid_ppl: f64,
    /// Whether parameter averaging was on during this epoch.
    pub asgd: bool,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

/// What `train_rnn` (`crate::train::rnn_trainer`) measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RnnReport {
    /// One entry per epoch.
    pub epochs: Vec<EpochStats>,
    /// Lowest validation perplexity seen.
    pub best_valid_ppl: f64,
    /// The epoch after which averaging started, if it did.
    pub asgd_from_epoch: Option<usize>,
    /// Trainable parameters of the model.
    pub num_params: usize,
}

/// Mean NLL per token of `model` on a batchified stream, in evaluation mode (no dropout),
/// fixed windows of `bptt`, hidden state carried from zero; at most `max_windows` windows.
pub fn evaluate(
    model: &RnnLanguageModel,
    data: &Array2<u32>,
    bptt: usize,
    max_windows: Option<usize>,
) -> Result<f64, TrainError> {
    let _guard = autograd::NoGradGuard::new();
    let mut hidden = model.init_hidden(data.ncols());
    let (mut total, mut count) = (0.0, 0usize);
    let windows = BpttWindows::new(data, SeqLen::Fixed(bptt), 0)?;
    for w in windows.take(max_windows.unwrap_or(usize::MAX)) {
        let out = model.forward(w.input, w.target, &hidden, None);
        total += out.nll.item() * w.seq_len as f64;
        count += w.seq_len;
        hidden = out.hidden;
    }
    Ok(total / count.max(1) as f64)
}

/// The AWD-LSTM switch rule: with `history` the validation losses of the earlier
/// evaluations, switch to averaged SGD when there are more than `nonmono` of them and
/// `valid_loss` is worse than the best of all but the last `nonmono`.
///
/// ```
/// use models::train::rnn_trainer::asgd_should_switch;
/// let h = [5.0, 4.0, 3.9, 3.8, 3.85, 3.83];
/// assert!(!asgd_should_switch(&h, 3.95, 5)); // best of h[..1] is 5.0
/// assert!(asgd_should_switch(&h, 3.95, 2)); // best of h[..4] is 3.8
/// assert!(!asgd_should_switch(&h[..2], 9.0, 5)); // too few evaluations
/// ```
pub fn asgd_should_switch(history: &[f64], valid_loss: f64, nonmono: usize) -> bool {
    history.len() > nonmono
        && valid_loss
            > history[..history.len() - nonmono]
                .iter()
                .cloned()
                .fold(f64::INFINITY, f64::min)
}

/// Running average of parameter values (ASGD).
pub(crate) struct Averager {
    pub(crate) avg: Vec<Tensor>,
    pub(crate) count: usize,
}

impl Averager {
    pub(crate) fn new(params: &[Param]) -> Averager {
        Averager {
            avg: params.iter().map(|p| p.get().detach()).collect(),
            count: 1,
        }
    }

    pub(crate) fn update(&mut self, params: &[Param]) {
        self.count += 1;
        let k = 1.0 / self.count as f64;
        no_grad(|| {
            for (a, p) in self.avg.iter_mut().zip(params) {
                *a = &*a + &(&p.get() - &*a).mul_scalar(k);
            }
        });
    }

    /// Runs `f` with the averaged weights in place, then restores the current ones.
    pub(crate) fn with_average<R>(&self, params: &[Param], f: impl FnOnce() -> R) -> R {
        let saved: Vec<Tensor> = params.iter().map(|p| p.get()).collect();
        for (p, a) in params.iter().zip(&self.avg) {
            p.set(a.clone());
        }
        let r = f();
        for (p, s) in params.iter().zip(saved) {
            p.set(s);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::{DType, Device};

    #[test]
    fn averager_keeps_the_running_mean_and_restores_weights() {
        let p = Param::new("w", Tensor::from_vec(vec![1.0f64, 2.0], &[2]));
        let params = vec![p.clone()];
        let mut a = Averager::new(&params);
        for v in [3.0, 5.0] {
            p.set(Tensor::from_vec(vec![v, 2.0 * v], &[2]));
            a.update(&params);
        }
        // mean of 1, 3, 5 = 3 and of 2, 6, 10 = 6
        let seen = a.with_average(&params, || p.get().to_vec::<f64>());
        assert_eq!(seen, vec![3.0, 6.0]);
        assert_eq!(p.get().to_vec::<f64>(), vec![5.0, 10.0]);
        assert_eq!(p.get().dtype(), DType::F64);
    }

    /// The ASGD average of GPU parameters stays on the GPU and equals the CPU's (skips
    /// without a CUDA device, unless `OPS_CUDA_REQUIRE_GPU=1`).
    #[test]
    fn averager_on_the_gpu_matches_the_cpu() {
        let dev = match Device::cuda(0) {
            Ok(d) => d,
            Err(e) => {
                if std::env::var("OPS_CUDA_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                    panic!("OPS_CUDA_REQUIRE_GPU=1 but no CUDA device: {e}");
                }
                println!("skipped: no CUDA device ({e})");
                return;
            }
        };
        let run = |device: &Device| {
            let p = Param::new("w", Tensor::from_vec(vec![1.0f32, 2.0], &[2]).to(device));
            let params = vec![p.clone()];
            let mut a = Averager::new(&params);
            for v in [3.0f32, 5.0] {
                p.set(Tensor::from_vec(vec![v, 2.0 * v], &[2]).to(device));
                a.update(&params);
            }
            assert!(a.avg.iter().all(|t| t.device() == device));
            a.with_average(&params, || p.get().to_vec::<f32>())
        };
        let (c, g) = (run(&Device::Cpu), run(&dev));
        for (x, y) in g.iter().zip(&c) {
            assert!((x - y).abs() <= 1e-6 * y.abs(), "GPU {x} vs CPU {y}");
        }
    }
}

//! Optimisers ([`Sgd`], [`Adam`]), learning-rate schedules ([`schedule`]), gradient
//! clipping, and optimiser state files ([`state`]) for exact resumption.
//!
//! An optimiser updates a slice of [`Param`]s from the [`Gradients`] that
//! [`crate::Tensor::backward`] returned: for each trainable parameter whose current value
//! has a gradient it computes the new value in the parameter's dtype and replaces it with
//! [`Param::set`]. Parameters without a gradient (unused this step) and buffers are skipped,
//! and their state is left alone. State (momentum buffers, Adam moments, step counts) is
//! keyed by parameter *name*, so it can be saved and loaded into a freshly built model.
//!
//! Gradient clipping is separate: call [`clip_grad_norm`] (or
//! [`Gradients::clip_by_global_norm`], which also counts retained intermediate gradients)
//! between backward and step. Learning rates come from a [`schedule::Schedule`] through
//! [`Optimizer::set_lr`].
//!
//! ```
//! use autograd::nn::{Linear, Module};
//! use autograd::optim::{Adam, Optimizer, clip_grad_norm};
//! use autograd::optim::schedule::{CosineAnnealing, Schedule};
//! use autograd::{DType, Tensor};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
//! let fc = Linear::new("fc", 2, 1, true, &mut rng);
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, -1.0, 0.5], &[2, 2]);
//! let y = Tensor::from_vec(vec![1.0f32, -1.0], &[2, 1]);
//! let mut opt = Adam::new(0.1);
//! let sched = CosineAnnealing { lr_max: 0.1, lr_min: 0.001, total: 50 };
//! let params = fc.trainable_params();
//! let mut losses = vec![];
//! for step in 0..50 {
//!     opt.set_lr(sched.lr(step));
//!     let loss = (fc.forward(&x) - &y).square().mean();
//!     losses.push(loss.item());
//!     let mut grads = loss.backward();
//!     clip_grad_norm(&mut grads, &params, 5.0);
//!     opt.step(&params, &grads);
//! }
//! assert!(losses[49] < 0.01 * losses[0]);
//! ```

pub mod adam;
pub mod schedule;
pub mod sgd;
pub mod state;

pub use adam::Adam;
pub use schedule::{Constant, CosineAnnealing, CosineWarmRestarts, LrSchedule, Schedule};
pub use sgd::Sgd;
pub use state::{OptimizerState, ParamState, load_state, save_state};

use crate::error::Error;
use crate::graph::{Gradients, no_grad};
use crate::nn::Param;
use std::path::Path;

/// A first-order optimiser.
pub trait Optimizer {
    /// Updates every trainable parameter in `params` that has a gradient in `grads`.
    ///
    /// Panics when two parameters share a name (state is keyed by name) or a gradient's
    /// shape or dtype differs from its parameter's (naming both).
    fn step(&mut self, params: &[Param], grads: &Gradients);

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (a schedule calls this every step or epoch).
    fn set_lr(&mut self, lr: f64);

    /// A snapshot of the state: kind, learning rate, hyperparameters (for reference) and
    /// per-parameter step counts and buffers.
    fn state(&self) -> OptimizerState;

    /// Replaces the state with `state` (and the learning rate with `state.lr`), after
    /// checking that it is this kind of optimiser's state and fits `params` (every name
    /// present, trainable, with matching shapes and dtypes). On error nothing changes.
    /// Other hyperparameters stay as this optimiser was built.
    fn load_state(&mut self, state: OptimizerState, params: &[Param]) -> Result<(), Error>;

    /// Writes [`Optimizer::state`] to `path` atomically (see [`state`]).
    fn save_state_file(&self, path: &Path) -> Result<(), Error> {
        save_state(path, &self.state())
    }

    /// Reads `path` and [`Optimizer::load_state`]s it; errors name the file.
    fn load_state_file(&mut self, path: &Path, params: &[Param]) -> Result<(), Error> {
        let s = load_state(path)?;
        self.load_state(s, params).map_err(|e| match e {
            Error::Format { message, .. } => Error::Format {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }
}

/// Scales the gradients of `params` (trainable ones that have a gradient) so that their
/// joint L2 norm is at most `max_norm`, like `torch.nn.utils.clip_grad_norm_`; returns the
/// norm before clipping. Unlike [`Gradients::clip_by_global_norm`], gradients of other
/// tensors (retained intermediates) neither count nor change.
pub fn clip_grad_norm(grads: &mut Gradients, params: &[Param], max_norm: f64) -> f64 {
    let targets: Vec<_> = params
        .iter()
        .filter(|p| p.is_trainable())
        .map(|p| p.get())
        .filter(|t| grads.get(t).is_some())
        .collect();
    let norm = targets
        .iter()
        .map(|t| grads.get(t).unwrap().storage().sum_squares())
        .sum::<f64>()
        .sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        no_grad(|| {
            for t in &targets {
                let g = grads.get(t).unwrap().mul_scalar(scale);
                grads.insert(t, g);
            }
        });
    }
    norm
}

/// Panics naming the duplicate when two parameters share a name.
pub(crate) fn assert_unique(params: &[Param], who: &str) {
    if let Err(dup) = crate::nn::check_unique(params) {
        panic!("{who}: two parameters are named '{dup}'; optimiser state is keyed by name");
    }
}

/// Panics naming the parameter when its gradient does not fit it.
pub(crate) fn assert_fits(p: &Param, value: &crate::Tensor, g: &crate::Tensor) {
    assert_eq!(
        value.shape(),
        g.shape(),
        "parameter '{}' has shape {:?} but its gradient has shape {:?}",
        p.name(),
        value.shape(),
        g.shape()
    );
    assert_eq!(
        value.dtype(),
        g.dtype(),
        "parameter '{}' has dtype {} but its gradient has dtype {}",
        p.name(),
        value.dtype(),
        g.dtype()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Tensor};

    #[test]
    fn clip_restricts_to_params() {
        let a = Param::new("a", Tensor::zeros(&[2], DType::F64));
        let b = Param::new("b", Tensor::zeros(&[1], DType::F64));
        let other = Tensor::zeros(&[1], DType::F64).requires_grad();
        let mut grads = Gradients::default();
        grads.insert(&a.get(), Tensor::from_vec(vec![3.0f64, 0.0], &[2]));
        grads.insert(&b.get(), Tensor::from_vec(vec![4.0f64], &[1]));
        grads.insert(&other, Tensor::from_vec(vec![100.0f64], &[1]));
        let n = clip_grad_norm(&mut grads, &[a.clone(), b.clone()], 1.0);
        assert_eq!(n, 5.0);
        let ga = grads.get(&a.get()).unwrap().to_vec::<f64>();
        assert!((ga[0] - 0.6).abs() < 1e-6 && ga[1] == 0.0);
        assert!((grads.get(&b.get()).unwrap().item() - 0.8).abs() < 1e-6);
        assert_eq!(grads.get(&other).unwrap().item(), 100.0);
        // below the limit nothing changes
        let n2 = clip_grad_norm(&mut grads, &[a.clone(), b.clone()], 10.0);
        assert!((n2 - 1.0).abs() < 1e-5);
        assert!((grads.get(&b.get()).unwrap().item() - 0.8).abs() < 1e-6);
    }
}

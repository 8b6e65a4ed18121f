//! [`Sgd`]: stochastic gradient descent with momentum, Nesterov momentum and weight decay,
//! with PyTorch's semantics.

use crate::dtype::{DType, Float};
use crate::error::Error;
use crate::graph::{Gradients, NoGradGuard};
use crate::nn::Param;
use crate::optim::state::{OptimizerState, ParamState};
use crate::optim::{Optimizer, assert_fits, assert_unique};
use crate::tensor::Tensor;
use ndarray::{ArrayD, Zip};
use std::collections::{BTreeMap, HashMap};

const SLOT: &str = "momentum_buffer";

/// Stochastic gradient descent, as `torch.optim.SGD` (without dampening):
///
/// ```text
/// g = grad + weight_decay * p                  (L2 penalty added to the gradient)
/// b = g                  on a parameter's first update, else  b = momentum * b + g
/// d = g + momentum * b   (nesterov)   or   d = b   (momentum)   or   d = g   (momentum 0)
/// p = p - lr * d
/// ```
///
/// computed in the parameter's dtype. The momentum buffer `b` is kept per parameter name.
///
/// ```
/// use autograd::nn::Param;
/// use autograd::optim::{Optimizer, Sgd};
/// use autograd::{DType, Tensor};
/// let w = Param::new("w", Tensor::from_vec(vec![1.0f64], &[1]));
/// let mut opt = Sgd::new(0.1).with_momentum(0.9).with_nesterov(true);
/// for _ in 0..2 {
///     let grads = (&w.get() * &w.get()).sum().backward(); // d(w^2)/dw = 2w
///     opt.step(std::slice::from_ref(&w), &grads);
/// }
/// // step 1: g = 2, b = 2, d = 2 + 1.8 = 3.8, w = 1 - 0.38 = 0.62
/// // step 2: g = 1.24, b = 1.8 + 1.24 = 3.04, d = 1.24 + 2.736 = 3.976, w = 0.62 - 0.3976
/// assert!((w.get().item() - 0.2224).abs() < 1e-12);
/// ```
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 for plain SGD).
    pub momentum: f64,
    /// Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
    /// L2 penalty coefficient, added to the gradient.
    pub weight_decay: f64,
    buffers: HashMap<String, ParamState>,
}

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Sgd {
        Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            buffers: HashMap::new(),
        }
    }

    /// Sets the momentum factor.
    pub fn with_momentum(mut self, momentum: f64) -> Sgd {
        self.momentum = momentum;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn with_nesterov(mut self, nesterov: bool) -> Sgd {
        self.nesterov = nesterov;
        self
    }

    /// Sets the weight decay (L2) coefficient.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Sgd {
        self.weight_decay = weight_decay;
        self
    }
}

fn update<T: Float>(
    sgd: &Sgd,
    p: &Tensor,
    g: &Tensor,
    buf: Option<&Tensor>,
) -> (Tensor, Option<Tensor>) {
    let (p, g) = (p.array::<T>(), g.array::<T>());
    let (lr, m, wd) = (T::of(sgd.lr), T::of(sgd.momentum), T::of(sgd.weight_decay));
    let d: ArrayD<T> = if sgd.weight_decay != 0.0 {
        Zip::from(g).and(p).map_collect(|&g, &p| g + wd * p)
    } else {
        g.to_owned()
    };
    let (d, new_buf) = if sgd.momentum != 0.0 {
        let b: ArrayD<T> = match buf {
            None => d.clone(),
            Some(b) => Zip::from(b.array::<T>())
                .and(&d)
                .map_collect(|&b, &d| m * b + d),
        };
        let d = if sgd.nesterov {
            Zip::from(&d).and(&b).map_collect(|&d, &b| d + m * b)
        } else {
            b.clone()
        };
        (d, Some(Tensor::from_array(b)))
    } else {
        (d, None)
    };
    let new_p = Zip::from(p).and(&d).map_collect(|&p, &d| p - lr * d);
    (Tensor::from_array(new_p), new_buf)
}

/// The same update on a GPU, composed of tensor ops (f32; the momentum buffer stays on the
/// device; one loaded from a file moves there on first use).
fn update_gpu(sgd: &Sgd, p: &Tensor, g: &Tensor, buf: Option<&Tensor>) -> (Tensor, Option<Tensor>) {
    let d = if sgd.weight_decay != 0.0 {
        g.add(&p.mul_scalar(sgd.weight_decay))
    } else {
        g.clone()
    };
    let (d, new_buf) = if sgd.momentum != 0.0 {
        let b = match buf {
            None => d.clone(),
            Some(b) => b.to(p.device()).mul_scalar(sgd.momentum).add(&d),
        };
        let d = if sgd.nesterov {
            d.add(&b.mul_scalar(sgd.momentum))
        } else {
            b.clone()
        };
        (d, Some(b))
    } else {
        (d, None)
    };
    (p.sub(&d.mul_scalar(sgd.lr)), new_buf)
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[Param], grads: &Gradients) {
        assert!(
            !self.nesterov || self.momentum > 0.0,
            "Sgd: Nesterov momentum needs momentum > 0, got {}",
            self.momentum
        );
        assert_unique(params, "Sgd::step");
        let _guard = NoGradGuard::new();
        for p in params.iter().filter(|p| p.is_trainable()) {
            let value = p.get();
            let Some(g) = grads.get(&value) else { continue };
            assert_fits(p, &value, g);
            let buf = self.buffers.get(p.name()).and_then(|s| s.buffers.get(SLOT));
            let (new_p, new_buf) = match value.dtype() {
                _ if value.storage().is_cuda() => update_gpu(self, &value, g, buf),
                DType::F32 => update::<f32>(self, &value, g, buf),
                DType::F64 => update::<f64>(self, &value, g, buf),
            };
            p.set(new_p);
            let st = self.buffers.entry(p.name().to_string()).or_default();
            st.step += 1;
            if let Some(b) = new_buf {
                st.buffers.insert(SLOT.to_string(), b);
            }
        }
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> OptimizerState {
        let mut hyper = BTreeMap::new();
        hyper.insert("momentum".to_string(), self.momentum);
        hyper.insert(
            "nesterov".to_string(),
            if self.nesterov { 1.0 } else { 0.0 },
        );
        hyper.insert("weight_decay".to_string(), self.weight_decay);
        OptimizerState {
            kind: "sgd".to_string(),
            lr: self.lr,
            hyper,
            params: self
                .buffers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn load_state(&mut self, state: OptimizerState, params: &[Param]) -> Result<(), Error> {
        // Momentum buffers are optional per parameter only when momentum is 0.
        let slots: &[&str] = if self.momentum != 0.0 { &[SLOT] } else { &[] };
        state.check("sgd", slots, params)?;
        self.lr = state.lr;
        self.buffers = state.params.into_iter().collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(v: &[f64]) -> Param {
        Param::new("w", Tensor::from_vec(v.to_vec(), &[v.len()]))
    }

    fn grads_of(p: &Param, g: &[f64]) -> Gradients {
        let mut grads = Gradients::default();
        grads.insert(&p.get(), Tensor::from_vec(g.to_vec(), &[g.len()]));
        grads
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn plain_step() {
        let p = param(&[1.0, -2.0]);
        let mut opt = Sgd::new(0.5);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[0.2, 0.4]));
        close(&p.get().to_vec(), &[0.9, -2.2]);
        assert!(opt.state().params["w"].buffers.is_empty());
    }

    #[test]
    fn weight_decay_is_added_to_the_gradient() {
        // g = 0.2 + 0.1 * 1 = 0.3, p = 1 - 0.5 * 0.3
        let p = param(&[1.0]);
        let mut opt = Sgd::new(0.5).with_weight_decay(0.1);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[0.2]));
        close(&p.get().to_vec(), &[0.85]);
    }

    #[test]
    fn momentum_two_steps() {
        // step 1: b = 1, p = 0 - 0.1 * 1 = -0.1
        // step 2: g = 2 + 0.5 * (-0.1) (wd) = 1.95, b = 0.9 + 1.95 = 2.85, p = -0.1 - 0.285
        let p = param(&[0.0]);
        let mut opt = Sgd::new(0.1).with_momentum(0.9).with_weight_decay(0.5);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[1.0]));
        close(&p.get().to_vec(), &[-0.1]);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[2.0]));
        close(&p.get().to_vec(), &[-0.385]);
        close(&opt.state().params["w"].buffers[SLOT].to_vec(), &[2.85]);
    }

    #[test]
    fn nesterov_two_steps() {
        // step 1: b = 1, d = 1 + 0.9 = 1.9, p = -0.19
        // step 2: b = 0.9 + 2 = 2.9, d = 2 + 2.61 = 4.61, p = -0.19 - 0.461 = -0.651
        let p = param(&[0.0]);
        let mut opt = Sgd::new(0.1).with_momentum(0.9).with_nesterov(true);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[1.0]));
        close(&p.get().to_vec(), &[-0.19]);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[2.0]));
        close(&p.get().to_vec(), &[-0.651]);
    }

    #[test]
    fn f32_params_stay_f32_and_missing_grads_are_skipped() {
        let a = Param::new("a", Tensor::from_vec(vec![1.0f32], &[1]));
        let b = Param::new("b", Tensor::from_vec(vec![1.0f32], &[1]));
        let buf = Param::buffer("c", Tensor::from_vec(vec![1.0f32], &[1]));
        let mut grads = Gradients::default();
        grads.insert(&a.get(), Tensor::from_vec(vec![1.0f32], &[1]));
        let before_b = b.get().id();
        let mut opt = Sgd::new(0.25).with_momentum(0.5);
        opt.step(&[a.clone(), b.clone(), buf.clone()], &grads);
        assert_eq!(a.get().to_vec::<f32>(), vec![0.75]);
        assert_eq!(a.dtype(), DType::F32);
        assert_eq!(b.get().id(), before_b);
        assert_eq!(opt.state().params.len(), 1);
    }

    #[test]
    #[should_panic(expected = "parameter 'w' has shape [2] but its gradient has shape [3]")]
    fn mismatched_gradient_panics_naming_the_parameter() {
        // Gradients::insert itself refuses a mismatched shape, so check the step's guard
        // directly (a hand-built Gradients could still hold one keyed by another route).
        let p = param(&[1.0, 2.0]);
        assert_fits(&p, &p.get(), &Tensor::zeros(&[3], DType::F64));
    }

    #[test]
    fn load_state_refuses_wrong_kind_and_keeps_old_state() {
        let p = param(&[0.0]);
        let mut sgd = Sgd::new(0.1).with_momentum(0.9);
        sgd.step(std::slice::from_ref(&p), &grads_of(&p, &[1.0]));
        let mut adam = crate::optim::Adam::new(0.1);
        adam.step(std::slice::from_ref(&p), &grads_of(&p, &[1.0]));
        let e = sgd
            .load_state(adam.state(), std::slice::from_ref(&p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("adam optimiser state"), "{e}");
        assert_eq!(
            sgd.state().params["w"].buffers[SLOT].to_vec::<f64>(),
            vec![1.0]
        );
    }
}

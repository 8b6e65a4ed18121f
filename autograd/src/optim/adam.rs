//! [`Adam`]: adaptive moment estimation with PyTorch's semantics (L2 weight decay added to
//! the gradient, bias correction, no AMSGrad).

use crate::dtype::{DType, Float};
use crate::error::Error;
use crate::graph::{Gradients, NoGradGuard};
use crate::nn::Param;
use crate::optim::state::{OptimizerState, ParamState};
use crate::optim::{Optimizer, assert_fits, assert_unique};
use crate::tensor::Tensor;
use ndarray::{ArrayD, Zip};
use std::collections::{BTreeMap, HashMap};

const M: &str = "exp_avg";
const V: &str = "exp_avg_sq";

/// Adam, as `torch.optim.Adam` (`amsgrad=False`). With `t` the parameter's own step count
/// (starting at 1):
///
/// ```text
/// g = grad + weight_decay * p          (L2 added to the gradient: Adam, not AdamW)
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g^2
/// p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// computed in the parameter's dtype (the bias corrections in f64).
///
/// ```
/// use autograd::nn::Param;
/// use autograd::optim::{Adam, Optimizer};
/// use autograd::Tensor;
/// let w = Param::new("w", Tensor::from_vec(vec![1.0f64, -1.0], &[2]));
/// let mut opt = Adam::new(0.01);
/// let grads = (&w.get() * &w.get()).sum().backward();
/// opt.step(std::slice::from_ref(&w), &grads);
/// // the first step moves every coordinate by about lr against its gradient's sign
/// let v = w.get().to_vec::<f64>();
/// assert!((v[0] - 0.99).abs() < 1e-7 && (v[1] + 0.99).abs() < 1e-7);
/// ```
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty coefficient, added to the gradient.
    pub weight_decay: f64,
    state: HashMap<String, ParamState>,
}

impl Adam {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(lr: f64) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            state: HashMap::new(),
        }
    }

    /// Sets `(beta1, beta2)`.
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Adam {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets `eps`.
    pub fn with_eps(mut self, eps: f64) -> Adam {
        self.eps = eps;
        self
    }

    /// Sets the weight decay (L2) coefficient.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Adam {
        self.weight_decay = weight_decay;
        self
    }
}

/// The hyperparameters of one step (copied out so the state map can be borrowed).
#[derive(Clone, Copy)]
struct Hyper {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

fn update<T: Float>(
    adam: Hyper,
    step: u64,
    p: &Tensor,
    g: &Tensor,
    mv: Option<(&Tensor, &Tensor)>,
) -> (Tensor, Tensor, Tensor) {
    let (p, g) = (p.array::<T>(), g.array::<T>());
    let (b1, b2, wd) = (
        T::of(adam.beta1),
        T::of(adam.beta2),
        T::of(adam.weight_decay),
    );
    let g: ArrayD<T> = if adam.weight_decay != 0.0 {
        Zip::from(g).and(p).map_collect(|&g, &p| g + wd * p)
    } else {
        g.to_owned()
    };
    let (m, v) = match mv {
        Some((m, v)) => (
            Zip::from(m.array::<T>())
                .and(&g)
                .map_collect(|&m, &g| b1 * m + (T::one() - b1) * g),
            Zip::from(v.array::<T>())
                .and(&g)
                .map_collect(|&v, &g| b2 * v + (T::one() - b2) * g * g),
        ),
        None => (
            g.mapv(|g| (T::one() - b1) * g),
            g.mapv(|g| (T::one() - b2) * g * g),
        ),
    };
    let bc1 = 1.0 - adam.beta1.powf(step as f64);
    let bc2 = 1.0 - adam.beta2.powf(step as f64);
    let step_size = T::of(adam.lr / bc1);
    let bc2_sqrt = T::of(bc2.sqrt());
    let eps = T::of(adam.eps);
    let new_p = Zip::from(p)
        .and(&m)
        .and(&v)
        .map_collect(|&p, &m, &v| p - step_size * m / (v.sqrt() / bc2_sqrt + eps));
    (
        Tensor::from_array(new_p),
        Tensor::from_array(m),
        Tensor::from_array(v),
    )
}

/// The same update on a GPU, composed of tensor ops (f32; the moments stay on the device;
/// ones loaded from a file move there on first use).
fn update_gpu(
    adam: Hyper,
    step: u64,
    p: &Tensor,
    g: &Tensor,
    mv: Option<(&Tensor, &Tensor)>,
) -> (Tensor, Tensor, Tensor) {
    let g = if adam.weight_decay != 0.0 {
        g.add(&p.mul_scalar(adam.weight_decay))
    } else {
        g.clone()
    };
    let g2 = g.square();
    let (m, v) = match mv {
        Some((m, v)) => (
            m.to(p.device())
                .mul_scalar(adam.beta1)
                .add(&g.mul_scalar(1.0 - adam.beta1)),
            v.to(p.device())
                .mul_scalar(adam.beta2)
                .add(&g2.mul_scalar(1.0 - adam.beta2)),
        ),
        None => (
            g.mul_scalar(1.0 - adam.beta1),
            g2.mul_scalar(1.0 - adam.beta2),
        ),
    };
    let bc1 = 1.0 - adam.beta1.powf(step as f64);
    let bc2 = 1.0 - adam.beta2.powf(step as f64);
    let denom = v.sqrt().mul_scalar(1.0 / bc2.sqrt()).add_scalar(adam.eps);
    let new_p = p.sub(&m.mul_scalar(adam.lr / bc1).div(&denom));
    (new_p, m, v)
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[Param], grads: &Gradients) {
        assert_unique(params, "Adam::step");
        let _guard = NoGradGuard::new();
        let h = Hyper {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
        };
        for p in params.iter().filter(|p| p.is_trainable()) {
            let value = p.get();
            let Some(g) = grads.get(&value) else { continue };
            assert_fits(p, &value, g);
            let st = self.state.entry(p.name().to_string()).or_default();
            st.step += 1;
            let mv = match (st.buffers.get(M), st.buffers.get(V)) {
                (Some(m), Some(v)) => Some((m, v)),
                _ => None,
            };
            let (new_p, m, v) = match value.dtype() {
                _ if value.storage().is_cuda() => update_gpu(h, st.step, &value, g, mv),
                DType::F32 => update::<f32>(h, st.step, &value, g, mv),
                DType::F64 => update::<f64>(h, st.step, &value, g, mv),
            };
            p.set(new_p);
            st.buffers.insert(M.to_string(), m);
            st.buffers.insert(V.to_string(), v);
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
        hyper.insert("beta1".to_string(), self.beta1);
        hyper.insert("beta2".to_string(), self.beta2);
        hyper.insert("eps".to_string(), self.eps);
        hyper.insert("weight_decay".to_string(), self.weight_decay);
        OptimizerState {
            kind: "adam".to_string(),
            lr: self.lr,
            hyper,
            params: self
                .state
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn load_state(&mut self, state: OptimizerState, params: &[Param]) -> Result<(), Error> {
        state.check("adam", &[M, V], params)?;
        self.lr = state.lr;
        self.state = state.params.into_iter().collect();
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

    #[test]
    fn two_steps_by_hand() {
        // lr 0.1, betas (0.5, 0.75), eps 0.01, weight decay 0.2, p0 = 1.
        // step 1: g = 0.5 + 0.2 = 0.7; m = 0.35; v = 0.25 * 0.49 = 0.1225
        //   m_hat = 0.35 / 0.5 = 0.7; v_hat = 0.1225 / 0.25 = 0.49
        //   p = 1 - 0.1 * 0.7 / (0.7 + 0.01) = 1 - 0.07 / 0.71
        let p = param(&[1.0]);
        let mut opt = Adam::new(0.1)
            .with_betas(0.5, 0.75)
            .with_eps(0.01)
            .with_weight_decay(0.2);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[0.5]));
        let p1 = 1.0 - 0.07 / 0.71;
        assert!((p.get().item() - p1).abs() < 1e-14);
        // step 2: g = -1 + 0.2 * p1; m = 0.175 + 0.5 g; v = 0.091875 + 0.25 g^2
        //   bc1 = 0.75; bc2 = 1 - 0.5625 = 0.4375
        let g = -1.0 + 0.2 * p1;
        let m = 0.5 * 0.35 + 0.5 * g;
        let v = 0.75 * 0.1225 + 0.25 * g * g;
        let p2 = p1 - (0.1 / 0.75) * m / (v.sqrt() / 0.4375f64.sqrt() + 0.01);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[-1.0]));
        assert!(
            (p.get().item() - p2).abs() < 1e-14,
            "{} {p2}",
            p.get().item()
        );
        let st = &opt.state().params["w"];
        assert_eq!(st.step, 2);
        assert!((st.buffers[M].item() - m).abs() < 1e-15);
        assert!((st.buffers[V].item() - v).abs() < 1e-15);
    }

    #[test]
    fn bias_correction_makes_the_first_step_lr_sized() {
        // with eps ~ 0 the first update is lr * g / |g| whatever the gradient's scale
        for g in [1e-3, 1.0, 1e3] {
            let p = param(&[0.0, 0.0]);
            let mut opt = Adam::new(0.5).with_eps(1e-12);
            opt.step(std::slice::from_ref(&p), &grads_of(&p, &[g, -g]));
            let v = p.get().to_vec::<f64>();
            assert!(
                (v[0] + 0.5).abs() < 1e-6 && (v[1] - 0.5).abs() < 1e-6,
                "{g}: {v:?}"
            );
        }
    }

    #[test]
    fn step_counts_are_per_parameter() {
        let a = Param::new("a", Tensor::zeros(&[1], DType::F32));
        let b = Param::new("b", Tensor::zeros(&[1], DType::F32));
        let mut opt = Adam::new(0.1);
        for i in 0..3 {
            let mut grads = Gradients::default();
            grads.insert(&a.get(), Tensor::ones(&[1], DType::F32));
            if i == 0 {
                grads.insert(&b.get(), Tensor::ones(&[1], DType::F32));
            }
            opt.step(&[a.clone(), b.clone()], &grads);
        }
        let s = opt.state();
        assert_eq!((s.params["a"].step, s.params["b"].step), (3, 1));
        assert_eq!(a.dtype(), DType::F32);
    }

    #[test]
    fn load_state_restores_lr_and_moments() {
        let p = param(&[1.0]);
        let mut opt = Adam::new(0.1);
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[0.5]));
        let mut fresh = Adam::new(0.7);
        fresh
            .load_state(opt.state(), std::slice::from_ref(&p))
            .unwrap();
        assert_eq!(fresh.lr(), 0.1);
        let q = p.renamed("w");
        let before = p.get().item();
        opt.step(std::slice::from_ref(&p), &grads_of(&p, &[0.25]));
        let after_opt = p.get().item();
        q.set(Tensor::from_vec(vec![before], &[1]));
        fresh.step(std::slice::from_ref(&q), &grads_of(&q, &[0.25]));
        assert_eq!(q.get().item().to_bits(), after_opt.to_bits());
    }
}

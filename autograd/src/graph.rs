//! Reverse-mode differentiation: the walk that turns a scalar's gradient into
//! [`Gradients`]. (The [`Backward`] rule of an op lives with the node that holds it, in
//! `tensor.rs`; [`no_grad`] in `grad_mode.rs`; both are re-exported here.)
//!
//! The walk collects every node reachable from the output that needs a gradient, sorts them
//! by id in descending order (ids grow with creation, so this is a reverse topological
//! order; no recursion, so a 1000-step LSTM unroll is fine), and runs each node's rule once,
//! summing (`+=`) the gradients of tensors used more than once.

use crate::tensor::{Tensor, TensorId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

pub use crate::grad_mode::{NoGradGuard, is_grad_enabled, no_grad};
pub use crate::tensor::Backward;

/// Gradients returned by [`Tensor::backward`], keyed by tensor id.
///
/// Holds the gradient of every variable ([`Tensor::requires_grad`]) that the output depends
/// on, and of every intermediate tensor marked with [`Tensor::retain_grad`].
#[derive(Default, Clone)]
pub struct Gradients {
    map: HashMap<TensorId, Tensor>,
}

impl Gradients {
    /// The gradient of `t`, if `t` was a gradient target reached by backward.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }

    /// The gradient by id.
    pub fn get_id(&self, id: TensorId) -> Option<&Tensor> {
        self.map.get(&id)
    }

    /// Sets (replaces) the gradient of `t`.
    pub fn insert(&mut self, t: &Tensor, grad: Tensor) {
        assert_eq!(
            t.shape(),
            grad.shape(),
            "gradient shape {:?} != tensor shape {:?}",
            grad.shape(),
            t.shape()
        );
        self.map.insert(t.id(), grad);
    }

    /// Removes and returns the gradient of `t`.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }

    /// Number of gradients held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no gradient is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All (id, gradient) pairs, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (TensorId, &Tensor)> {
        let mut v: Vec<_> = self.map.iter().map(|(k, g)| (*k, g)).collect();
        v.sort_by_key(|(k, _)| *k);
        v.into_iter()
    }

    /// The L2 norm of all gradients together (f64 accumulation, in id order).
    pub fn global_norm(&self) -> f64 {
        self.iter()
            .map(|(_, g)| g.storage().sum_squares())
            .sum::<f64>()
            .sqrt()
    }

    /// Scales every gradient so that the global norm is at most `max_norm`; returns the
    /// norm before clipping (like `torch.nn.utils.clip_grad_norm_`).
    pub fn clip_by_global_norm(&mut self, max_norm: f64) -> f64 {
        let norm = self.global_norm();
        if norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            no_grad(|| {
                for g in self.map.values_mut() {
                    *g = g.mul_scalar(scale);
                }
            });
        }
        norm
    }
}

impl Tensor {
    /// Back-propagates from this one-element tensor (the loss), seeding its gradient with 1.
    ///
    /// Panics when the tensor has more than one element: use
    /// [`Tensor::backward_with`] and give the output gradient explicitly.
    pub fn backward(&self) -> Gradients {
        assert_eq!(
            self.numel(),
            1,
            "backward() needs a one-element loss, got shape {:?}; use backward_with",
            self.shape()
        );
        self.backward_with(&self.ones_like())
    }

    /// Back-propagates from this tensor with the given gradient of the output.
    pub fn backward_with(&self, grad: &Tensor) -> Gradients {
        assert_eq!(
            self.shape(),
            grad.shape(),
            "backward_with: gradient shape {:?} != output shape {:?}",
            grad.shape(),
            self.shape()
        );
        let _guard = NoGradGuard::new();
        let order = reverse_topological_order(self);
        let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
        pending.insert(self.id(), grad.detach());
        let mut out = Gradients::default();
        for node in order {
            let Some(g) = pending.remove(&node.id()) else {
                continue;
            };
            if let Some(op) = &node.0.op {
                let grads = op.backward.backward(&op.inputs, &node, &g);
                assert_eq!(
                    grads.len(),
                    op.inputs.len(),
                    "{}: backward returned {} gradients for {} inputs",
                    op.name,
                    grads.len(),
                    op.inputs.len()
                );
                for (input, gi) in op.inputs.iter().zip(grads) {
                    let Some(gi) = gi else { continue };
                    if !input.0.requires_grad {
                        continue;
                    }
                    assert_eq!(
                        gi.shape(),
                        input.shape(),
                        "{}: gradient shape {:?} != input shape {:?}",
                        op.name,
                        gi.shape(),
                        input.shape()
                    );
                    accumulate(&mut pending, input.id(), gi);
                }
            }
            if node.0.retain.load(Ordering::Relaxed) {
                out.map.insert(node.id(), g);
            }
        }
        out
    }
}

fn accumulate(map: &mut HashMap<TensorId, Tensor>, id: TensorId, g: Tensor) {
    match map.remove(&id) {
        Some(mut prev) => {
            if !add_in_place(&mut prev, &g) {
                prev = &prev + &g;
            }
            map.insert(id, prev);
        }
        None => {
            map.insert(id, g);
        }
    }
}

/// `prev += g` without a new buffer, when nothing else can see `prev` (its node is held
/// only here: no clone, no op input, no retained gradient) and both are CPU arrays of one
/// dtype, shape and row-major layout. The sums are the same bits as `prev + g`. Returns
/// false (and changes nothing) otherwise.
fn add_in_place(prev: &mut Tensor, g: &Tensor) -> bool {
    use crate::storage::Storage;
    fn add<T: crate::dtype::Float>(a: &mut ndarray::ArrayD<T>, b: &ndarray::ArrayD<T>) -> bool {
        use rayon::prelude::*;
        if a.shape() != b.shape() {
            return false;
        }
        let (Some(a), Some(b)) = (a.as_slice_mut(), b.as_slice()) else {
            return false;
        };
        const CHUNK: usize = crate::kernels::cpu::par::GRAD_SUM_CHUNK;
        if a.len() >= 2 * CHUNK {
            a.par_chunks_mut(CHUNK)
                .zip(b.par_chunks(CHUNK))
                .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, &y)| *x += y));
        } else {
            a.iter_mut().zip(b).for_each(|(x, &y)| *x += y);
        }
        true
    }
    let Some(node) = std::sync::Arc::get_mut(&mut prev.0) else {
        return false;
    };
    if node.op.is_some() {
        return false;
    }
    match (&mut node.storage, g.storage()) {
        (Storage::F32(a), Storage::F32(b)) => add(a, b),
        (Storage::F64(a), Storage::F64(b)) => add(a, b),
        _ => false,
    }
}

/// Every tracked node reachable from `root`, largest id first.
fn reverse_topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut seen: HashSet<TensorId> = HashSet::new();
    let mut stack = vec![root.clone()];
    let mut nodes = Vec::new();
    seen.insert(root.id());
    while let Some(t) = stack.pop() {
        if let Some(op) = &t.0.op {
            for i in &op.inputs {
                if i.0.requires_grad && seen.insert(i.id()) {
                    stack.push(i.clone());
                }
            }
        }
        nodes.push(t);
    }
    nodes.sort_by_key(|t| std::cmp::Reverse(t.id()));
    nodes
}

#[cfg(test)]
mod tests {
    use crate::tensor::Tensor;

    /// Fan-out gradients are summed; the in-place sum never changes a gradient that is
    /// shared (one tensor handed to two inputs by `add`) or kept (a retained gradient).
    #[test]
    fn fan_out_sums_leave_shared_and_retained_gradients_alone() {
        let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).requires_grad();
        let b = Tensor::from_vec(vec![4.0f64, 5.0, 6.0], &[3]).requires_grad();
        // c = a + b (backward hands ONE tensor to both a and b); d = 2c + a + a*b.
        let c = a.add(&b);
        c.retain_grad();
        let d = c.mul_scalar(2.0).add(&a).add(&a.mul(&b)).sum();
        let g = d.backward();
        assert_eq!(g.get(&c).unwrap().to_vec::<f64>(), vec![2.0; 3]);
        // dd/da = 2 + 1 + b; dd/db = 2 + a.
        assert_eq!(g.get(&a).unwrap().to_vec::<f64>(), vec![7.0, 8.0, 9.0]);
        assert_eq!(g.get(&b).unwrap().to_vec::<f64>(), vec![3.0, 4.0, 5.0]);
        // x used three times through the same shared gradient.
        let x = Tensor::from_vec(vec![1.0f32; 70_000], &[70_000]).requires_grad();
        let y = x.add(&x).add(&x).sum();
        let gx = y.backward().get(&x).unwrap().to_vec::<f32>();
        assert!(gx.iter().all(|&v| v == 3.0));
    }
}

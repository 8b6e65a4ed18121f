//! [`Param`]: a named, shared, replaceable leaf tensor (a weight, or a buffer such as a
//! batch-norm running mean).

use crate::dtype::DType;
use crate::tensor::Tensor;
use std::sync::{Arc, RwLock};

struct Cell {
    value: RwLock<Tensor>,
    trainable: bool,
}

/// A named model parameter: a cheap-to-clone handle to a shared, replaceable tensor.
///
/// A *trainable* parameter holds a leaf variable ([`Tensor::requires_grad`]): use
/// [`Param::get`] in the forward pass, look its gradient up with
/// `grads.get(&param.get())` after backward (the handle returns the same tensor, with the
/// same id, until it is replaced), and let an optimiser replace it with [`Param::set`].
/// A *buffer* ([`Param::buffer`], e.g. batch-norm running statistics) is saved and loaded
/// with the model but never optimised and never takes a gradient.
///
/// Clones share the value: setting through one handle is seen through all of them. The
/// name belongs to the handle, so [`Param::renamed`] gives a second name to the same value
/// (see [`crate::nn::prefixed`]).
///
/// ```
/// use autograd::Tensor;
/// use autograd::nn::Param;
/// let w = Param::new("fc.weight", Tensor::from_vec(vec![1.0f32, 2.0], &[2]));
/// let loss = (&w.get() * &w.get()).sum();
/// let grads = loss.backward();
/// let g = grads.get(&w.get()).unwrap();
/// assert_eq!(g.to_vec::<f32>(), vec![2.0, 4.0]);
/// // a hand-written SGD step
/// w.set(autograd::no_grad(|| &w.get() - &g.mul_scalar(0.5)));
/// assert_eq!(w.get().to_vec::<f32>(), vec![0.0, 0.0]);
/// assert_eq!((w.name(), w.shape(), w.is_trainable()), ("fc.weight", vec![2], true));
/// ```
#[derive(Clone)]
pub struct Param {
    name: Arc<str>,
    cell: Arc<Cell>,
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Param({}, shape={:?}, dtype={}, {})",
            self.name,
            self.shape(),
            self.dtype(),
            if self.is_trainable() {
                "trainable"
            } else {
                "buffer"
            }
        )
    }
}

impl Param {
    /// A trainable parameter holding `value` as a leaf variable (its history, if any, is
    /// dropped).
    pub fn new(name: impl Into<String>, value: Tensor) -> Param {
        Param::with_trainable(name, value, true)
    }

    /// A buffer: saved and loaded with the model, never optimised, never differentiated.
    pub fn buffer(name: impl Into<String>, value: Tensor) -> Param {
        Param::with_trainable(name, value, false)
    }

    fn with_trainable(name: impl Into<String>, value: Tensor, trainable: bool) -> Param {
        let name: String = name.into();
        assert!(!name.is_empty(), "Param::new: a parameter needs a name");
        Param {
            name: name.into(),
            cell: Arc::new(Cell {
                value: RwLock::new(wrap(&value, trainable)),
                trainable,
            }),
        }
    }

    /// The current value: the same tensor (same id) until the parameter is replaced.
    pub fn get(&self) -> Tensor {
        self.cell.value.read().expect("Param lock poisoned").clone()
    }

    /// Replaces the value (re-wrapped as a leaf variable for trainable parameters).
    ///
    /// Panics, naming the parameter and both shapes (or dtypes), when `value` does not have
    /// the current shape and dtype: convert a whole model with
    /// [`crate::nn::Module::to_dtype`] or [`Param::set_any`].
    pub fn set(&self, value: Tensor) {
        let cur = self.get();
        assert_eq!(
            cur.shape(),
            value.shape(),
            "Param::set: parameter '{}' has shape {:?}, the new value has shape {:?}",
            self.name,
            cur.shape(),
            value.shape()
        );
        assert_eq!(
            cur.dtype(),
            value.dtype(),
            "Param::set: parameter '{}' has dtype {}, the new value has dtype {}",
            self.name,
            cur.dtype(),
            value.dtype()
        );
        assert_eq!(
            cur.device(),
            value.device(),
            "Param::set: parameter '{}' lives on {}, the new value on {}",
            self.name,
            cur.device(),
            value.device()
        );
        self.set_any(value);
    }

    /// Replaces the value with one of any shape and dtype (for reshaping or converting a
    /// model on purpose).
    pub fn set_any(&self, value: Tensor) {
        *self.cell.value.write().expect("Param lock poisoned") = wrap(&value, self.cell.trainable);
    }

    /// Converts the value to `dtype` (a no-op when it already has it).
    pub fn to_dtype(&self, dtype: DType) {
        let v = self.get();
        if v.dtype() != dtype {
            self.set_any(crate::no_grad(|| v.to_dtype(dtype)));
        }
    }

    /// Moves the value to `device` (a no-op when it is there already); errors for f64
    /// values and a GPU, or a failing copy.
    pub fn to_device(&self, device: &crate::Device) -> Result<(), crate::Error> {
        let v = self.get();
        if v.device() != device {
            let moved = crate::no_grad(|| v.to_device(device))?;
            self.set_any(moved);
        }
        Ok(())
    }

    /// The device of the current value.
    pub fn device(&self) -> crate::Device {
        self.get().device().clone()
    }

    /// The full (hierarchical) name, e.g. `"encoder.lstm.w_ih"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same value under another name (clones share the value).
    pub fn renamed(&self, name: impl Into<String>) -> Param {
        let name: String = name.into();
        Param {
            name: name.into(),
            cell: self.cell.clone(),
        }
    }

    /// The shape of the current value.
    pub fn shape(&self) -> Vec<usize> {
        self.get().shape().to_vec()
    }

    /// The dtype of the current value.
    pub fn dtype(&self) -> DType {
        self.get().dtype()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.get().numel()
    }

    /// False for buffers.
    pub fn is_trainable(&self) -> bool {
        self.cell.trainable
    }

    /// True when both handles share one value (whatever their names).
    pub fn same_value(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

fn wrap(value: &Tensor, trainable: bool) -> Tensor {
    if trainable {
        value.requires_grad()
    } else {
        value.detach()
    }
}

/// Returns the first name used twice, if any (parameter files and optimiser state are
/// keyed by name, so names must be unique).
pub fn check_unique(params: &[Param]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for p in params {
        if !seen.insert(p.name()) {
            return Err(p.name().to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_returns_the_same_leaf_until_set() {
        let p = Param::new("w", Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]));
        let a = p.get();
        assert_eq!(a.id(), p.get().id());
        assert!(a.is_tracked());
        assert_eq!(a.op_name(), "leaf");
        let grads = (&a * &a).sum().backward();
        assert!(grads.get(&p.get()).is_some());
        p.set(Tensor::from_vec(vec![0.0f32, 0.0, 0.0], &[3]));
        assert_ne!(p.get().id(), a.id());
        assert!(p.get().is_tracked());
        assert_eq!(p.numel(), 3);
    }

    #[test]
    fn set_drops_history() {
        let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).requires_grad();
        let p = Param::new("w", x.mul_scalar(2.0));
        assert_eq!(p.get().op_name(), "leaf");
        p.set(x.mul_scalar(3.0));
        assert_eq!(p.get().op_name(), "leaf");
        assert_eq!(p.get().to_vec::<f64>(), vec![3.0, 6.0]);
    }

    #[test]
    fn buffers_take_no_gradient() {
        let b = Param::buffer("bn.running_mean", Tensor::zeros(&[4], DType::F32));
        assert!(!b.is_trainable());
        assert!(!b.get().is_tracked());
    }

    #[test]
    fn clones_and_renames_share_the_value() {
        let p = Param::new("w", Tensor::zeros(&[2], DType::F32));
        let q = p.renamed("enc.w");
        q.set(Tensor::ones(&[2], DType::F32));
        assert_eq!(p.get().to_vec::<f32>(), vec![1.0, 1.0]);
        assert_eq!(q.name(), "enc.w");
        assert!(p.same_value(&q));
        p.to_dtype(DType::F64);
        assert_eq!(q.dtype(), DType::F64);
    }

    #[test]
    #[should_panic(expected = "parameter 'w' has shape [2], the new value has shape [3]")]
    fn set_with_another_shape_panics_naming_the_parameter() {
        let p = Param::new("w", Tensor::zeros(&[2], DType::F32));
        p.set(Tensor::zeros(&[3], DType::F32));
    }

    #[test]
    #[should_panic(expected = "parameter 'w' has dtype f32, the new value has dtype f64")]
    fn set_with_another_dtype_panics() {
        let p = Param::new("w", Tensor::zeros(&[2], DType::F32));
        p.set(Tensor::zeros(&[2], DType::F64));
    }
}

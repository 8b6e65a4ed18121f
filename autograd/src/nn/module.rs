//! The [`Module`] trait (a model is whatever can list its parameters) and helpers for
//! hierarchical parameter names.

use crate::dtype::DType;
use crate::error::Error;
use crate::nn::param::Param;
use std::path::Path;

/// A model or layer: something that owns named parameters.
///
/// Only [`Module::params`] is required; it must list every parameter and buffer in a
/// stable order with unique names. Forward passes are ordinary methods of each layer (their
/// signatures differ), and gradients come from [`crate::Tensor::backward`], so this trait
/// has no `forward` and no `zero_grad`.
///
/// ```
/// use autograd::nn::{Linear, Module, Param, prefixed};
/// use autograd::Tensor;
/// use rand::SeedableRng;
///
/// struct Mlp { fc1: Linear, fc2: Linear }
/// impl Module for Mlp {
///     fn params(&self) -> Vec<Param> {
///         let mut p = self.fc1.params();
///         p.extend(self.fc2.params());
///         p
///     }
/// }
/// impl Mlp {
///     fn forward(&self, x: &Tensor) -> Tensor {
///         self.fc2.forward(&self.fc1.forward(x).tanh())
///     }
/// }
///
/// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
/// let mlp = Mlp {
///     fc1: Linear::new("mlp.fc1", 2, 8, true, &mut rng),
///     fc2: Linear::new("mlp.fc2", 8, 1, true, &mut rng),
/// };
/// let names: Vec<String> = mlp.params().iter().map(|p| p.name().to_string()).collect();
/// assert_eq!(names, ["mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]);
/// assert_eq!(mlp.num_params(), 2 * 8 + 8 + 8 + 1);
/// let y = mlp.forward(&Tensor::zeros(&[5, 2], autograd::DType::F32));
/// assert_eq!(y.shape(), &[5, 1]);
///
/// // save and load (atomic write; load validates the whole file first)
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("mlp.params");
/// mlp.save(&path).unwrap();
/// mlp.load(&path).unwrap();
///
/// // a module built without knowing where it sits can be renamed when composed
/// let inner = Linear::new("fc", 2, 2, false, &mut rng);
/// assert_eq!(prefixed("decoder", inner.params())[0].name(), "decoder.fc.weight");
/// ```
pub trait Module {
    /// Every parameter and buffer, in a stable order, with unique hierarchical names.
    fn params(&self) -> Vec<Param>;

    /// The parameters an optimiser should update (buffers left out).
    fn trainable_params(&self) -> Vec<Param> {
        self.params()
            .into_iter()
            .filter(|p| p.is_trainable())
            .collect()
    }

    /// The number of trainable elements.
    fn num_params(&self) -> usize {
        self.trainable_params().iter().map(|p| p.numel()).sum()
    }

    /// Converts every parameter and buffer to `dtype` (e.g. f64 for gradient checks).
    fn to_dtype(&self, dtype: DType) {
        for p in self.params() {
            p.to_dtype(dtype);
        }
    }

    /// Moves every parameter and buffer to `device` (GPU: f32 models only; convert with
    /// [`Module::to_dtype`] first). Optimiser state follows the parameters lazily: moments
    /// are created on the device of the gradients.
    fn to_device(&self, device: &crate::Device) -> Result<(), Error> {
        for p in self.params() {
            p.to_device(device)?;
        }
        Ok(())
    }

    /// Writes every parameter and buffer to `path` (see [`crate::nn::serialize`]).
    fn save(&self, path: impl AsRef<Path>) -> Result<(), Error>
    where
        Self: Sized,
    {
        crate::nn::serialize::save_params(path, &self.params())
    }

    /// Loads every parameter and buffer from `path`; nothing changes unless the whole file
    /// matches this model (see [`crate::nn::serialize::load_params`]).
    fn load(&self, path: impl AsRef<Path>) -> Result<(), Error>
    where
        Self: Sized,
    {
        crate::nn::serialize::load_params(path, &self.params())
    }
}

impl Module for Vec<Param> {
    fn params(&self) -> Vec<Param> {
        self.clone()
    }
}

impl Module for Param {
    fn params(&self) -> Vec<Param> {
        vec![self.clone()]
    }
}

/// Joins a prefix and a name with a dot; an empty prefix gives the name alone.
///
/// ```
/// assert_eq!(autograd::nn::join("encoder.lstm", "w_ih"), "encoder.lstm.w_ih");
/// assert_eq!(autograd::nn::join("", "w_ih"), "w_ih");
/// ```
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The same parameters (sharing their values) renamed `prefix.name`.
pub fn prefixed(prefix: &str, params: Vec<Param>) -> Vec<Param> {
    params
        .into_iter()
        .map(|p| {
            let n = join(prefix, p.name());
            p.renamed(n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;
    use crate::nn::check_unique;

    #[test]
    fn trainable_params_leave_buffers_out() {
        let ps = vec![
            Param::new("a", Tensor::zeros(&[2, 3], DType::F32)),
            Param::buffer("b", Tensor::zeros(&[4], DType::F32)),
        ];
        assert_eq!(ps.trainable_params().len(), 1);
        assert_eq!(ps.num_params(), 6);
        ps.to_dtype(DType::F64);
        assert_eq!(ps[1].dtype(), DType::F64);
    }

    #[test]
    fn duplicate_names_are_found() {
        let ps = vec![
            Param::new("a", Tensor::zeros(&[1], DType::F32)),
            Param::new("b", Tensor::zeros(&[1], DType::F32)),
            Param::new("a", Tensor::zeros(&[1], DType::F32)),
        ];
        assert_eq!(check_unique(&ps), Err("a".to_string()));
        assert_eq!(check_unique(&ps[..2]), Ok(()));
    }
}

//! [`Linear`]: `y = x W^T + b`.

use crate::dtype::DType;
use crate::nn::init;
use crate::nn::module::{Module, join};
use crate::nn::param::Param;
use crate::tensor::Tensor;
use rand_pcg::Pcg64Mcg;

/// A fully connected layer `y = x W^T + b` with `W: (out, in)` (PyTorch layout).
///
/// ```
/// use autograd::{DType, Tensor};
/// use autograd::nn::{Linear, Module};
/// use rand::SeedableRng;
/// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
/// let fc = Linear::new("head", 3, 2, true, &mut rng);
/// assert_eq!(fc.weight.name(), "head.weight");
/// assert_eq!(fc.weight.shape(), vec![2, 3]);
/// let y = fc.forward(&Tensor::ones(&[4, 3], DType::F32));
/// assert_eq!(y.shape(), &[4, 2]);
/// assert_eq!(fc.num_params(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct Linear {
    /// `(out_features, in_features)`, named `"{name}.weight"`.
    pub weight: Param,
    /// `(out_features)`, named `"{name}.bias"`.
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer named `name` with PyTorch's default initialisation: weight and bias uniform
    /// in `±1/sqrt(in_features)`, f32. Use [`Module::to_dtype`] for f64.
    pub fn new(
        name: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
        rng: &mut Pcg64Mcg,
    ) -> Linear {
        assert!(
            in_features > 0 && out_features > 0,
            "Linear '{name}': sizes must be positive, got in={in_features} out={out_features}"
        );
        let bound = 1.0 / (in_features as f64).sqrt();
        let weight = Param::new(
            join(name, "weight"),
            init::uniform(&[out_features, in_features], bound, DType::F32, rng),
        );
        let bias = bias.then(|| {
            Param::new(
                join(name, "bias"),
                init::uniform(&[out_features], bound, DType::F32, rng),
            )
        });
        Linear { weight, bias }
    }

    /// A layer from existing parameters; panics naming the shapes if they do not fit.
    pub fn from_params(weight: Param, bias: Option<Param>) -> Linear {
        let ws = weight.shape();
        assert_eq!(
            ws.len(),
            2,
            "Linear: weight '{}' must be 2-d, got {ws:?}",
            weight.name()
        );
        if let Some(b) = &bias {
            assert_eq!(
                b.shape(),
                vec![ws[0]],
                "Linear: bias '{}' shape {:?} does not fit weight shape {ws:?}",
                b.name(),
                b.shape()
            );
        }
        Linear { weight, bias }
    }

    /// `in_features`.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// `out_features`.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// `x W^T + b` for `x: (..., in)`, giving `(..., out)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let b = self.bias.as_ref().map(|b| b.get());
        x.linear(&self.weight.get(), b.as_ref())
    }
}

impl Module for Linear {
    fn params(&self) -> Vec<Param> {
        let mut v = vec![self.weight.clone()];
        v.extend(self.bias.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rand_f64;
    use rand::SeedableRng;

    #[test]
    fn forward_matches_by_hand_and_init_is_bounded() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let fc = Linear::new("fc", 4, 3, true, &mut rng);
        let bound = 0.5f32;
        assert!(
            fc.weight
                .get()
                .to_vec::<f32>()
                .iter()
                .all(|v| v.abs() <= bound)
        );
        assert!(
            fc.bias
                .as_ref()
                .unwrap()
                .get()
                .to_vec::<f32>()
                .iter()
                .all(|v| v.abs() <= bound)
        );
        fc.weight.set(Tensor::from_vec(
            vec![1.0f32, 0., 0., 0., 0., 1., 0., 0., 1., 1., 1., 1.],
            &[3, 4],
        ));
        fc.bias
            .as_ref()
            .unwrap()
            .set(Tensor::from_vec(vec![0.5f32, 0.0, -1.0], &[3]));
        let y = fc.forward(&Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 4]));
        assert_eq!(y.to_vec::<f32>(), vec![1.5, 2.0, 9.0]);
        let names: Vec<_> = fc.params().iter().map(|p| p.name().to_string()).collect();
        assert_eq!(names, ["fc.weight", "fc.bias"]);
        assert_eq!((fc.in_features(), fc.out_features()), (4, 3));
    }

    #[test]
    fn gradients_reach_the_params() {
        // loss = sum(x W^T + b): dW[o, i] = sum_n x[n, i], db[o] = N.
        let mut rng = Pcg64Mcg::seed_from_u64(4);
        let fc = Linear::new("fc", 3, 2, true, &mut rng);
        fc.to_dtype(DType::F64);
        let x = rand_f64(&[2, 5, 3], 9);
        let grads = fc.forward(&x).sum().backward();
        let col: Vec<f64> = x.reshape(&[10, 3]).sum_axes(&[0], false).to_vec::<f64>();
        let gw = grads.get(&fc.weight.get()).unwrap().to_vec::<f64>();
        for o in 0..2 {
            for i in 0..3 {
                assert!((gw[o * 3 + i] - col[i]).abs() < 1e-12);
            }
        }
        let gb = grads.get(&fc.bias.as_ref().unwrap().get()).unwrap();
        assert_eq!(gb.to_vec::<f64>(), vec![10.0, 10.0]);
    }

    #[test]
    fn no_bias() {
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        let fc = Linear::new("fc", 2, 2, false, &mut rng);
        assert_eq!(fc.params().len(), 1);
        assert_eq!(
            fc.forward(&Tensor::zeros(&[3, 2], DType::F32))
                .to_vec::<f32>(),
            vec![0.0; 6]
        );
    }
}

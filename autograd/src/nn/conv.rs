//! [`Conv2d`]: a 2-D convolution layer over NCHW tensors.

use crate::dtype::DType;
use crate::nn::init::{self, FanMode, Nonlinearity};
use crate::nn::module::{Module, join};
use crate::nn::param::Param;
use crate::ops::conv::Conv2dParams;
use crate::tensor::Tensor;
use rand_pcg::Pcg64Mcg;

/// A convolution layer: weight `(Cout, Cin / groups, kh, kw)` (PyTorch layout), optional
/// bias `(Cout)`, and its stride/padding/dilation/groups ([`Conv2dParams`]).
///
/// Weights start Kaiming-normal like PyTorch's `nn.init.kaiming_normal_` default
/// (`fan_in`, gain `sqrt(2)`: std `sqrt(2 / fan_in)`), the initialisation NAO's PyTorch
/// children apply to every conv; a bias starts uniform in `±1/sqrt(fan_in)` (PyTorch's
/// default for conv biases).
///
/// ```
/// use autograd::{DType, Tensor};
/// use autograd::nn::{Conv2d, Module};
/// use autograd::ops::conv::Conv2dParams;
/// use rand::SeedableRng;
/// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
/// let conv = Conv2d::new("stem", 3, 8, (3, 3), Conv2dParams::new(1, 1, 1, 1), false, &mut rng);
/// assert_eq!(conv.weight.name(), "stem.weight");
/// assert_eq!(conv.num_params(), 8 * 3 * 3 * 3);
/// let y = conv.forward(&Tensor::zeros(&[2, 3, 16, 16], DType::F32));
/// assert_eq!(y.shape(), &[2, 8, 16, 16]);
/// ```
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// `(Cout, Cin / groups, kh, kw)`, named `"{name}.weight"`.
    pub weight: Param,
    /// `(Cout)`, named `"{name}.bias"`.
    pub bias: Option<Param>,
    /// Stride, padding, dilation, groups.
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A layer named `name` mapping `cin` to `cout` channels with a `kernel = (kh, kw)`
    /// window. Panics when the channel counts are not divisible by `params.groups`.
    pub fn new(
        name: &str,
        cin: usize,
        cout: usize,
        kernel: (usize, usize),
        params: Conv2dParams,
        bias: bool,
        rng: &mut Pcg64Mcg,
    ) -> Conv2d {
        let g = params.groups.max(1);
        assert!(
            cin > 0 && cout > 0 && cin.is_multiple_of(g) && cout.is_multiple_of(g),
            "Conv2d '{name}': channels in={cin} out={cout} must be positive and divisible by groups={g}"
        );
        let shape = [cout, cin / g, kernel.0, kernel.1];
        let weight = Param::new(
            join(name, "weight"),
            init::kaiming_normal(
                &shape,
                FanMode::FanIn,
                Nonlinearity::Relu.gain(),
                DType::F32,
                rng,
            ),
        );
        let fan_in = (cin / g) * kernel.0 * kernel.1;
        let bias = bias.then(|| {
            Param::new(
                join(name, "bias"),
                init::uniform(&[cout], 1.0 / (fan_in as f64).sqrt(), DType::F32, rng),
            )
        });
        Conv2d {
            weight,
            bias,
            params,
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Convolves `x: (N, Cin, H, W)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let b = self.bias.as_ref().map(|b| b.get());
        x.conv2d(&self.weight.get(), b.as_ref(), self.params)
    }
}

impl Module for Conv2d {
    fn params(&self) -> Vec<Param> {
        let mut v = vec![self.weight.clone()];
        v.extend(self.bias.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GradcheckOptions, gradcheck_params, rand_f64};
    use rand::SeedableRng;

    #[test]
    fn init_std_is_kaiming_fan_in() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let conv = Conv2d::new(
            "c",
            16,
            64,
            (3, 3),
            Conv2dParams::default(),
            false,
            &mut rng,
        );
        let w = conv.weight.get().to_vec::<f64>();
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        let want = 2.0 / (16.0 * 9.0);
        assert!((var / want - 1.0).abs() < 0.05, "var {var} want {want}");
        assert_eq!(conv.out_channels(), 64);
    }

    #[test]
    fn gradcheck_strided_grouped_with_bias() {
        let mut rng = Pcg64Mcg::seed_from_u64(2);
        let conv = Conv2d::new(
            "c",
            4,
            6,
            (3, 2),
            Conv2dParams::new(2, 1, 1, 2),
            true,
            &mut rng,
        );
        conv.to_dtype(DType::F64);
        let x = rand_f64(&[2, 4, 5, 5], 3);
        let w = rand_f64(&[2, 6, 3, 3], 4);
        let r = gradcheck_params(
            || conv.forward(&x).mul(&w).sum(),
            &conv.params(),
            GradcheckOptions::default(),
        )
        .unwrap();
        assert_eq!(r.elements, 6 * 2 * 3 * 2 + 6);
    }
}

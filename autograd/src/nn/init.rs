//! Seeded initialisers. Every function draws from the generator it is given (the workspace's
//! [`Pcg64Mcg`]), so a model built from one seed is the same on every run.
//!
//! Fans follow PyTorch: for a shape `(out, in, k1, k2, ..)`, `fan_in = in * k1 * k2 * ..`
//! and `fan_out = out * k1 * k2 * ..`; a 1-d shape has `fan_in = fan_out = len`.
//!
//! ```
//! use autograd::DType;
//! use autograd::nn::init;
//! use rand::SeedableRng;
//! let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
//! let w = init::xavier_uniform(&[64, 32], 1.0, DType::F32, &mut rng);
//! let bound = (6.0f32 / 96.0).sqrt();
//! assert!(w.to_vec::<f32>().iter().all(|v| v.abs() <= bound));
//! ```

use crate::dtype::DType;
use crate::tensor::{Tensor, standard_normal};
use rand_pcg::Pcg64Mcg;

/// The nonlinearity that follows a layer, for the gain of Xavier/Kaiming initialisation
/// (PyTorch's `calculate_gain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    /// Identity, sigmoid: gain 1.
    Linear,
    /// tanh: gain 5/3.
    Tanh,
    /// ReLU: gain sqrt(2).
    Relu,
    /// Leaky ReLU with this negative slope: gain sqrt(2 / (1 + slope^2)).
    LeakyRelu(f64),
}

impl Nonlinearity {
    /// The recommended gain.
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear => 1.0,
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(s) => (2.0 / (1.0 + s * s)).sqrt(),
        }
    }
}

/// Which fan Kaiming initialisation preserves the variance of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Forward activations (PyTorch's default).
    FanIn,
    /// Backward gradients.
    FanOut,
}

/// `(fan_in, fan_out)` of a weight shape (see the module docs). Panics on a 0-d shape.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => panic!("fans: a 0-d shape has no fans"),
        1 => (shape[0], shape[0]),
        _ => {
            let receptive: usize = shape[2..].iter().product();
            (shape[1] * receptive, shape[0] * receptive)
        }
    }
}

/// Zeros.
pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
    Tensor::zeros(shape, dtype)
}

/// Ones.
pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
    Tensor::ones(shape, dtype)
}

/// Every element `v`.
pub fn constant(shape: &[usize], v: f64, dtype: DType) -> Tensor {
    Tensor::full(shape, v, dtype)
}

/// Uniform in `[-a, a)`.
pub fn uniform(shape: &[usize], a: f64, dtype: DType, rng: &mut Pcg64Mcg) -> Tensor {
    assert!(a > 0.0, "uniform: bound {a} must be positive");
    Tensor::uniform(shape, -a, a, dtype, rng)
}

/// Normal with mean 0 and standard deviation `std`.
pub fn normal(shape: &[usize], std: f64, dtype: DType, rng: &mut Pcg64Mcg) -> Tensor {
    Tensor::randn(shape, std, dtype, rng)
}

/// Xavier/Glorot uniform: `U(-b, b)` with `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(shape: &[usize], gain: f64, dtype: DType, rng: &mut Pcg64Mcg) -> Tensor {
    let (fi, fo) = fans(shape);
    uniform(shape, gain * (6.0 / (fi + fo) as f64).sqrt(), dtype, rng)
}

/// Xavier/Glorot normal: std `gain * sqrt(2 / (fan_in + fan_out))`.
pub fn xavier_normal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Pcg64Mcg) -> Tensor {
    let (fi, fo) = fans(shape);
    normal(shape, gain * (2.0 / (fi + fo) as f64).sqrt(), dtype, rng)
}

fn fan(shape: &[usize], mode: FanMode) -> usize {
    let (fi, fo) = fans(shape);
    match mode {
        FanMode::FanIn => fi,
        FanMode::FanOut => fo,
    }
}

/// Kaiming/He normal: std `gain / sqrt(fan)` (use `Nonlinearity::Relu.gain()` before a
/// ReLU).
pub fn kaiming_normal(
    shape: &[usize],
    mode: FanMode,
    gain: f64,
    dtype: DType,
    rng: &mut Pcg64Mcg,
) -> Tensor {
    normal(shape, gain / (fan(shape, mode) as f64).sqrt(), dtype, rng)
}

/// Kaiming/He uniform: `U(-b, b)` with `b = gain * sqrt(3 / fan)`. PyTorch's default for
/// linear and conv weights is this with `gain = LeakyRelu(sqrt(5)).gain()`, i.e.
/// `b = 1 / sqrt(fan_in)`.
pub fn kaiming_uniform(
    shape: &[usize],
    mode: FanMode,
    gain: f64,
    dtype: DType,
    rng: &mut Pcg64Mcg,
) -> Tensor {
    uniform(
        shape,
        gain * (3.0 / fan(shape, mode) as f64).sqrt(),
        dtype,
        rng,
    )
}

/// A (semi-)orthogonal matrix scaled by `gain`, like PyTorch's `orthogonal_`: the shape is
/// viewed as `rows = shape[0]` by `cols = the rest`; a Gaussian matrix (transposed when it
/// is wide) is orthonormalised by Gram-Schmidt (which gives the QR factor whose `R` has a
/// positive diagonal, the sign fix PyTorch applies), so rows are orthonormal when
/// `rows <= cols` and columns are orthonormal otherwise.
pub fn orthogonal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Pcg64Mcg) -> Tensor {
    assert!(
        shape.len() >= 2,
        "orthogonal: needs at least 2 dimensions, got shape {shape:?}"
    );
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    let (m, n) = if rows < cols {
        (cols, rows)
    } else {
        (rows, cols)
    };
    // columns of an m x n matrix (m >= n), stored column by column
    let mut q: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..m).map(|_| standard_normal(rng)).collect())
        .collect();
    for j in 0..n {
        // two passes of modified Gram-Schmidt keep the columns orthogonal to rounding error
        for _ in 0..2 {
            for k in 0..j {
                let (done, rest) = q.split_at_mut(j);
                let d: f64 = done[k].iter().zip(&rest[0]).map(|(a, b)| a * b).sum();
                for (x, y) in rest[0].iter_mut().zip(&done[k]) {
                    *x -= d * y;
                }
            }
        }
        let norm = q[j].iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(norm > 1e-12, "orthogonal: degenerate random matrix");
        for x in q[j].iter_mut() {
            *x /= norm;
        }
    }
    // element (r, c) of the rows x cols result: q[r][c] when wide, q[c][r] when tall
    let out: Vec<f64> = if rows < cols {
        q.iter().flatten().map(|v| gain * v).collect()
    } else {
        (0..rows)
            .flat_map(|r| q.iter().map(move |col| gain * col[r]))
            .collect()
    };
    Tensor::from_vec(out, shape).to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> Pcg64Mcg {
        Pcg64Mcg::seed_from_u64(42)
    }

    fn mean_std(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (
            m,
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt(),
        )
    }

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(&[10, 3, 5, 5]), (75, 250));
        assert_eq!(fans(&[8, 4]), (4, 8));
        assert_eq!(fans(&[7]), (7, 7));
    }

    #[test]
    fn same_seed_same_values() {
        let a = xavier_uniform(&[5, 4], 1.0, DType::F32, &mut rng());
        let b = xavier_uniform(&[5, 4], 1.0, DType::F32, &mut rng());
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
        assert_eq!(a.dtype(), DType::F32);
    }

    #[test]
    fn uniform_bounds_and_spread() {
        let b = (6.0f64 / (200.0 + 100.0)).sqrt();
        let w = xavier_uniform(&[200, 100], 1.0, DType::F64, &mut rng()).to_vec::<f64>();
        assert!(w.iter().all(|v| v.abs() <= b));
        let (m, s) = mean_std(&w);
        assert!(
            m.abs() < 0.01 && (s - b / 3f64.sqrt()).abs() < 0.01 * b,
            "{m} {s}"
        );
        let k = kaiming_uniform(
            &[50, 20, 3, 3],
            FanMode::FanIn,
            Nonlinearity::LeakyRelu(5f64.sqrt()).gain(),
            DType::F64,
            &mut rng(),
        )
        .to_vec::<f64>();
        let bound = 1.0 / 180f64.sqrt();
        assert!(k.iter().all(|v| v.abs() <= bound + 1e-15));
        assert!(k.iter().any(|v| v.abs() > 0.9 * bound));
    }

    #[test]
    fn kaiming_normal_has_the_relu_std() {
        let w = kaiming_normal(
            &[400, 50],
            FanMode::FanIn,
            Nonlinearity::Relu.gain(),
            DType::F64,
            &mut rng(),
        )
        .to_vec::<f64>();
        let (m, s) = mean_std(&w);
        let want = (2.0f64 / 50.0).sqrt();
        assert!(
            m.abs() < 0.01 && (s - want).abs() < 0.03 * want,
            "{m} {s} {want}"
        );
        let w = kaiming_normal(&[400, 50], FanMode::FanOut, 1.0, DType::F64, &mut rng());
        let (_, s) = mean_std(&w.to_vec::<f64>());
        assert!((s - 0.05).abs() < 0.002, "{s}");
    }

    fn gram(w: &[f64], rows: usize, cols: usize, by_rows: bool) -> Vec<Vec<f64>> {
        let n = if by_rows { rows } else { cols };
        let at = |i: usize, k: usize| {
            if by_rows {
                w[i * cols + k]
            } else {
                w[k * cols + i]
            }
        };
        let len = if by_rows { cols } else { rows };
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (0..len).map(|k| at(i, k) * at(j, k)).sum())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn orthogonal_is_orthonormal_tall_wide_and_square() {
        for &(r, c) in &[(6usize, 6usize), (8, 3), (3, 8)] {
            let w = orthogonal(&[r, c], 1.0, DType::F64, &mut rng()).to_vec::<f64>();
            let g = gram(&w, r, c, r <= c);
            for (i, row) in g.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((v - want).abs() < 1e-12, "{r}x{c}: G[{i}][{j}] = {v}");
                }
            }
        }
        // gain scales; higher-d shapes are flattened after the first axis
        let w = orthogonal(&[4, 2, 3], 2.0, DType::F32, &mut rng());
        assert_eq!(w.shape(), &[4, 2, 3]);
        let v = w.to_vec::<f64>();
        let n0: f64 = v[..6].iter().map(|x| x * x).sum();
        assert!((n0 - 4.0).abs() < 1e-5, "{n0}");
    }

    #[test]
    fn gains_match_pytorch() {
        assert_eq!(Nonlinearity::Linear.gain(), 1.0);
        assert!((Nonlinearity::Tanh.gain() - 5.0 / 3.0).abs() < 1e-15);
        assert!((Nonlinearity::Relu.gain() - 2f64.sqrt()).abs() < 1e-15);
        assert!((Nonlinearity::LeakyRelu(0.0).gain() - 2f64.sqrt()).abs() < 1e-15);
    }
}

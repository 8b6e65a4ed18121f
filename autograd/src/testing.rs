//! Gradient checking by central differences, in f64.
//!
//! [`gradcheck`] compares the gradient that backward computes for every element of every
//! input with `(L(x + eps) - L(x - eps)) / (2 eps)`, where the scalar `L = sum(w * f(x))`
//! weights the output by a fixed random tensor `w` (uniform in [-1, 1), seeded), so that
//! errors in different output elements cannot cancel.
//!
//! The error measure is `|analytic - numeric| / max(1, |analytic|, |numeric|)` (relative for
//! large gradients, absolute for small ones) and the default tolerance is `1e-6`, with
//! `eps = 1e-6`. In f64 a correct rule lands near 1e-9; a wrong one lands far above 1e-6.
//! Ops with kinks (relu, max, max-pool, clamp) are checked at points away from the kinks,
//! with the same tolerance.

use crate::dtype::DType;
use crate::graph::no_grad;
use crate::tensor::Tensor;
use rand::SeedableRng;
use std::fmt;

/// Settings of [`gradcheck_with`].
#[derive(Debug, Clone, Copy)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Largest accepted error (see the module docs for the measure).
    pub tol: f64,
    /// Seed of the output weighting.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            tol: 1e-6,
            seed: 0x6a09e667,
        }
    }
}

/// What a passing check measured.
#[derive(Debug, Clone, Copy)]
pub struct GradcheckReport {
    /// Largest error over all elements.
    pub max_error: f64,
    /// Number of input elements checked.
    pub elements: usize,
}

/// The first element whose gradient disagrees.
#[derive(Debug, Clone)]
pub struct GradcheckError {
    /// Which input.
    pub input: usize,
    /// Flat index of the element inside that input.
    pub element: usize,
    /// Gradient from backward.
    pub analytic: f64,
    /// Central-difference estimate.
    pub numeric: f64,
    /// The error measure.
    pub error: f64,
    /// The tolerance it exceeded.
    pub tol: f64,
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck failed: input {} element {}: backward gives {:.10e}, finite differences give {:.10e} (error {:.3e} > tol {:.1e})",
            self.input, self.element, self.analytic, self.numeric, self.error, self.tol
        )
    }
}

impl std::error::Error for GradcheckError {}

/// Checks the gradients of `f` at `inputs` (f64 tensors) with default options.
///
/// ```
/// use autograd::testing::{gradcheck, rand_f64};
/// gradcheck(|x| x[0].tanh().mul(&x[1]), &[rand_f64(&[3], 1), rand_f64(&[3], 2)]).unwrap();
/// ```
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
) -> Result<GradcheckReport, GradcheckError> {
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradcheck`] with explicit options.
pub fn gradcheck_with(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError> {
    for (i, t) in inputs.iter().enumerate() {
        assert_eq!(
            t.dtype(),
            DType::F64,
            "gradcheck: input {i} has dtype {}; gradient checks run in f64",
            t.dtype()
        );
    }
    let vars: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.contiguous().detach().requires_grad())
        .collect();
    let out = f(&vars);
    assert_eq!(
        out.dtype(),
        DType::F64,
        "gradcheck: the function returned dtype {}",
        out.dtype()
    );
    let w = rand_f64(out.shape(), opts.seed);
    let loss = out.mul(&w).sum();
    let grads = loss.backward();

    let weighted = |xs: &[Tensor]| -> f64 { no_grad(|| f(xs).mul(&w).sum().item()) };
    let mut max_error: f64 = 0.0;
    let mut elements = 0;
    for (i, v) in vars.iter().enumerate() {
        let analytic: Vec<f64> = match grads.get(v) {
            Some(g) => g.to_vec::<f64>(),
            None => vec![0.0; v.numel()],
        };
        let base = v.to_vec::<f64>();
        for e in 0..base.len() {
            let eval = |delta: f64| {
                let mut data = base.clone();
                data[e] += delta;
                let mut xs: Vec<Tensor> = vars.iter().map(|t| t.detach()).collect();
                xs[i] = Tensor::from_vec(data, v.shape());
                weighted(&xs)
            };
            let numeric = (eval(opts.eps) - eval(-opts.eps)) / (2.0 * opts.eps);
            let error = compare(i, e, analytic[e], numeric, opts.tol)?;
            max_error = max_error.max(error);
            elements += 1;
        }
    }
    Ok(GradcheckReport {
        max_error,
        elements,
    })
}

/// The error measure of the module docs for one element; an error past `tol` (or not
/// finite) is the check's failure.
fn compare(
    input: usize,
    element: usize,
    analytic: f64,
    numeric: f64,
    tol: f64,
) -> Result<f64, GradcheckError> {
    let error = (analytic - numeric).abs() / 1f64.max(analytic.abs()).max(numeric.abs());
    if error > tol || !error.is_finite() {
        return Err(GradcheckError {
            input,
            element,
            analytic,
            numeric,
            error,
            tol,
        });
    }
    Ok(error)
}

/// A seeded f64 tensor with values uniform in [-1, 1), for tests.
pub fn rand_f64(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    Tensor::uniform(shape, -1.0, 1.0, DType::F64, &mut rng)
}

/// Asserts that two tensors have the same shape and agree elementwise within
/// `atol + rtol * |b|`; the message names the first differing element.
pub fn assert_close(a: &Tensor, b: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(a.shape(), b.shape(), "assert_close: shapes differ");
    let (x, y) = (a.to_vec::<f64>(), b.to_vec::<f64>());
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert!(
            (p - q).abs() <= atol + rtol * q.abs(),
            "assert_close: element {i}: {p} vs {q} (atol {atol}, rtol {rtol})"
        );
    }
}

/// Checks the gradients of a scalar `loss()` with respect to every element of every
/// trainable parameter, by central differences (same measure and defaults as [`gradcheck`]).
/// `loss` must be deterministic (no dropout draws that change between calls) and the
/// parameters f64. Each parameter is restored after its elements are perturbed.
pub fn gradcheck_params(
    loss: impl Fn() -> Tensor,
    params: &[crate::nn::Param],
    opts: GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError> {
    let out = loss();
    assert_eq!(
        out.numel(),
        1,
        "gradcheck_params: the loss must have one element, got shape {:?}",
        out.shape()
    );
    let grads = out.backward();
    let mut max_error: f64 = 0.0;
    let mut elements = 0;
    for (i, p) in params.iter().enumerate().filter(|(_, p)| p.is_trainable()) {
        let value = p.get();
        assert_eq!(
            value.dtype(),
            DType::F64,
            "gradcheck_params: parameter '{}' is {}, expected f64",
            p.name(),
            value.dtype()
        );
        let analytic: Vec<f64> = grads
            .get(&value)
            .map(|g| g.to_vec::<f64>())
            .unwrap_or_else(|| vec![0.0; value.numel()]);
        let base = value.to_vec::<f64>();
        for e in 0..base.len() {
            let eval = |delta: f64| {
                let mut data = base.clone();
                data[e] += delta;
                p.set(Tensor::from_vec(data, value.shape()));
                no_grad(|| loss().item())
            };
            let numeric = (eval(opts.eps) - eval(-opts.eps)) / (2.0 * opts.eps);
            p.set(value.clone());
            let error = compare(i, e, analytic[e], numeric, opts.tol)?;
            max_error = max_error.max(error);
            elements += 1;
        }
    }
    Ok(GradcheckReport {
        max_error,
        elements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    /// The suite has teeth: an op with a deliberately wrong backward rule (d/dx sin = sin
    /// instead of cos) fails the check, and a 1% error in a correct rule fails it too.
    #[test]
    fn gradcheck_catches_a_wrong_backward_rule() {
        fn bad_sin(x: &Tensor) -> Tensor {
            let out = crate::dispatch!(x.storage(), |a| a.mapv(|v| v.sin()));
            Tensor::from_op(
                out,
                &[x],
                "bad_sin",
                |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                    let wrong = crate::dispatch!(inp[0].storage(), |a| a.mapv(|v| v.sin()));
                    vec![Some(g.mul(&Tensor::from_storage(wrong)))]
                },
            )
        }
        fn slightly_off_square(x: &Tensor) -> Tensor {
            let out = crate::dispatch!(x.storage(), |a| a.mapv(|v| v * v));
            Tensor::from_op(
                out,
                &[x],
                "off_square",
                |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                    vec![Some(g.mul(&inp[0]).mul_scalar(2.02))]
                },
            )
        }
        let x = rand_f64(&[4], 1);
        let err = gradcheck(|t| bad_sin(&t[0]), &[x.clone()]).unwrap_err();
        assert!(err.to_string().contains("gradcheck failed"), "{err}");
        assert!(gradcheck(|t| slightly_off_square(&t[0]), &[x.clone()]).is_err());
        // And the correct rule passes.
        gradcheck(|t| t[0].square(), &[x]).unwrap();
    }

    #[test]
    fn gradcheck_reports_elements_and_small_error() {
        let r = gradcheck(|t| t[0].exp().sum(), &[rand_f64(&[2, 3], 2)]).unwrap();
        assert_eq!(r.elements, 6);
        assert!(r.max_error < 1e-8, "{}", r.max_error);
    }
}

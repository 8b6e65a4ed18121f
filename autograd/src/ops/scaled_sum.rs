//! The per-example weighted sum of two branches as one op: `out[n] = a[n] * ka[n] +
//! b[n] * kb[n]`, where `ka`, `kb` are per-example factors (the CNN cells' drop-path: 0 or
//! `1 / keep`, or no factor when a branch is not dropped). One pass over contiguous memory
//! instead of two broadcast multiplies and an add (these maps are memory-bound); the
//! backward is `g * ka`, `g * kb`. On a GPU it is composed of those ops.

use crate::tensor::Tensor;

/// `a * ka + b * kb` per example of the first axis; `None` factors mean 1. Panics naming
/// both shapes when `a` and `b` differ, and the counts when a factor list does not have
/// one factor per example.
///
/// ```
/// use autograd::Tensor;
/// use autograd::ops::scaled_sum::scaled_sum;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
/// let b = Tensor::from_vec(vec![10.0f32, 10.0, 10.0, 10.0], &[2, 2]);
/// // example 0 of `a` dropped, example 1 kept at 1 / 0.5
/// let out = scaled_sum(&a, Some(vec![0.0, 2.0]), &b, None);
/// assert_eq!(out.to_vec::<f32>(), vec![10.0, 10.0, 16.0, 18.0]);
/// ```
pub fn scaled_sum(a: &Tensor, ka: Option<Vec<f64>>, b: &Tensor, kb: Option<Vec<f64>>) -> Tensor {
    assert_eq!(
        a.shape(),
        b.shape(),
        "scaled_sum: branch shapes {:?} and {:?} differ",
        a.shape(),
        b.shape()
    );
    let n = a.shape()[0];
    for k in [&ka, &kb].into_iter().flatten() {
        assert_eq!(
            k.len(),
            n,
            "scaled_sum: {} factors for a batch of {n}",
            k.len()
        );
    }
    let Some(out) = a
        .storage()
        .scaled_sum(ka.as_deref(), b.storage(), kb.as_deref())
    else {
        return scaled_sum_composed(a, ka, b, kb);
    };
    Tensor::from_op(
        out,
        &[a, b],
        "scaled_sum",
        move |_: &[Tensor], _: &Tensor, g: &Tensor| {
            let grad = |k: &Option<Vec<f64>>| {
                Some(match k {
                    None => g.clone(),
                    Some(k) => Tensor::from_storage(
                        g.storage()
                            .scale_examples(k)
                            .expect("a CPU op's gradient is on the CPU"),
                    ),
                })
            };
            vec![grad(&ka), grad(&kb)]
        },
    )
}

/// [`scaled_sum`] from tensor ops (the GPU path, and the reference the fused op is checked
/// against): the factors become an `(n, 1, ..)` tensor on the branches' device.
pub fn scaled_sum_composed(
    a: &Tensor,
    ka: Option<Vec<f64>>,
    b: &Tensor,
    kb: Option<Vec<f64>>,
) -> Tensor {
    let scaled = |t: &Tensor, k: Option<Vec<f64>>| match k {
        None => t.clone(),
        Some(k) => {
            let mut shape = vec![1; t.ndim()];
            shape[0] = k.len();
            let k = Tensor::from_vec(k, &shape).to_dtype(t.dtype());
            t.mul(&k.to(t.device()))
        }
    };
    scaled(a, ka).add(&scaled(b, kb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    /// The fused op against the composed one (value and both gradients), its gradient
    /// check (f64), and an f32 run keeping its dtype.
    #[test]
    fn matches_the_composed_op_and_gradchecks() {
        let (a, b) = (rand_f64(&[5, 2, 3, 3], 1), rand_f64(&[5, 2, 3, 3], 2));
        let (a, b) = (a.requires_grad(), b.requires_grad());
        let ka = Some(vec![0.0, 2.5, 2.5, 0.0, 2.5]);
        let kb = Some(vec![1.25, 1.25, 0.0, 1.25, 1.25]);
        let got = scaled_sum(&a, ka.clone(), &b, kb.clone());
        let want = scaled_sum_composed(&a, ka.clone(), &b, kb.clone());
        assert_close(&got, &want, 1e-12, 0.0);
        // a weighted sum as the loss, so that each element's gradient differs
        let w = rand_f64(&[5, 2, 3, 3], 3);
        let (g1, g2) = (got.mul(&w).sum().backward(), want.mul(&w).sum().backward());
        for t in [&a, &b] {
            assert_close(g1.get(t).unwrap(), g2.get(t).unwrap(), 1e-12, 0.0);
        }
        gradcheck(
            |t: &[Tensor]| scaled_sum(&t[0], ka.clone(), &t[1], None),
            &[a.clone(), b.clone()],
        )
        .unwrap();
        let f32s = scaled_sum(&a.to_dtype(DType::F32), None, &b.to_dtype(DType::F32), None);
        assert_eq!(f32s.dtype(), DType::F32);
    }

    #[test]
    #[should_panic(expected = "3 factors for a batch of 5")]
    fn a_factor_list_of_the_wrong_length_panics() {
        let (a, b) = (rand_f64(&[5, 2], 1), rand_f64(&[5, 2], 2));
        scaled_sum(&a, Some(vec![1.0; 3]), &b, None);
    }
}

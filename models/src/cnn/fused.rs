//! A fused node sum with drop-path: `out[n] = a[n] * ka[n] + b[n] * kb[n]`, where `ka`,
//! `kb` are per-example drop-path factors (0 or `1 / keep`, or 1 when a branch is not
//! dropped). One pass over contiguous memory instead of two broadcast multiplies and an
//! add (these maps are memory-bound); the backward pass is `g * ka`, `g * kb`.

use autograd::{Float, Storage, Tensor};
use ndarray::{ArrayD, IxDyn};
use rand::RngExt;
use rayon::prelude::*;

/// Per-example drop-path factors for a batch of `n`, drawn exactly as
/// `autograd::ops::dropout::drop_path_mask` draws them (one uniform per example, kept when
/// below `keep`); `None` when `keep == 1` (nothing drawn).
pub fn drop_path_factors(n: usize, keep: f64, rng: &mut impl rand::Rng) -> Option<Vec<f64>> {
    assert!(
        keep > 0.0 && keep <= 1.0,
        "drop-path: keep probability must be in (0, 1], got {keep}"
    );
    if keep == 1.0 {
        return None;
    }
    Some(
        (0..n)
            .map(|_| {
                if rng.random_range(0.0..1.0) < keep {
                    1.0 / keep
                } else {
                    0.0
                }
            })
            .collect(),
    )
}

fn combine<T: Float>(
    a: &ArrayD<T>,
    ka: Option<&[f64]>,
    b: &ArrayD<T>,
    kb: Option<&[f64]>,
) -> ArrayD<T> {
    let n = a.shape()[0];
    let a = a.as_standard_layout();
    let b = b.as_standard_layout();
    let (xs, ys) = (a.as_slice().unwrap(), b.as_slice().unwrap());
    let per = xs.len() / n.max(1);
    let mut out = vec![T::zero(); xs.len()];
    if per > 0 {
        out.par_chunks_mut(per).enumerate().for_each(|(i, o)| {
            let fa = T::of(ka.map_or(1.0, |k| k[i]));
            let fb = T::of(kb.map_or(1.0, |k| k[i]));
            let (x, y) = (&xs[i * per..][..per], &ys[i * per..][..per]);
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = x * fa + y * fb;
            }
        });
    }
    ArrayD::from_shape_vec(IxDyn(a.shape()), out).unwrap()
}

fn scale<T: Float>(g: &ArrayD<T>, k: &[f64]) -> ArrayD<T> {
    let g = g.as_standard_layout();
    let gs = g.as_slice().unwrap();
    let per = gs.len() / k.len().max(1);
    let mut out = vec![T::zero(); gs.len()];
    if per > 0 {
        out.par_chunks_mut(per).enumerate().for_each(|(i, o)| {
            let f = T::of(k[i]);
            for (o, &x) in o.iter_mut().zip(&gs[i * per..][..per]) {
                *o = x * f;
            }
        });
    }
    ArrayD::from_shape_vec(IxDyn(g.shape()), out).unwrap()
}

/// `a * ka + b * kb` per example (see the module docs); `None` factors mean 1. Panics
/// naming both shapes when `a` and `b` differ.
pub fn node_sum(a: &Tensor, ka: Option<Vec<f64>>, b: &Tensor, kb: Option<Vec<f64>>) -> Tensor {
    assert_eq!(
        a.shape(),
        b.shape(),
        "node_sum: branch shapes {:?} and {:?} differ",
        a.shape(),
        b.shape()
    );
    let n = a.shape()[0];
    for k in [&ka, &kb].into_iter().flatten() {
        assert_eq!(
            k.len(),
            n,
            "node_sum: {} factors for a batch of {n}",
            k.len()
        );
    }
    if a.storage().is_cuda() || b.storage().is_cuda() {
        return node_sum_composed(a, ka, b, kb);
    }
    let out = match (a.storage(), b.storage()) {
        (Storage::F32(x), Storage::F32(y)) => {
            Storage::F32(combine(x, ka.as_deref(), y, kb.as_deref()))
        }
        (Storage::F64(x), Storage::F64(y)) => {
            Storage::F64(combine(x, ka.as_deref(), y, kb.as_deref()))
        }
        _ => panic!("node_sum: dtypes {} and {} differ", a.dtype(), b.dtype()),
    };
    Tensor::from_op(
        out,
        &[a, b],
        "node_sum",
        move |_: &[Tensor], _: &Tensor, g: &Tensor| {
            let grad = |k: &Option<Vec<f64>>| {
                Some(match k {
                    None => g.clone(),
                    Some(k) => Tensor::from_storage(match g.storage() {
                        Storage::F32(g) => Storage::F32(scale(g, k)),
                        Storage::F64(g) => Storage::F64(scale(g, k)),
                        Storage::Cuda(_) => unreachable!("GPU node_sum is composed"),
                    }),
                })
            };
            vec![grad(&ka), grad(&kb)]
        },
    )
}

/// [`node_sum`] from tensor ops (the GPU path): the factors become an `(n, 1, ..)` tensor
/// on the branches' device.
fn node_sum_composed(a: &Tensor, ka: Option<Vec<f64>>, b: &Tensor, kb: Option<Vec<f64>>) -> Tensor {
    let scaled = |t: &Tensor, k: Option<Vec<f64>>| match k {
        None => t.clone(),
        Some(k) => {
            let mut shape = vec![1; t.ndim()];
            shape[0] = k.len();
            let k: Vec<f32> = k.iter().map(|&v| v as f32).collect();
            t.mul(&Tensor::from_vec(k, &shape).to(t.device()))
        }
    };
    scaled(a, ka).add(&scaled(b, kb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::DType;
    use autograd::testing::{gradcheck, rand_f64};
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn matches_drop_path_and_add() {
        let (a, b) = (rand_f64(&[5, 2, 3, 3], 1), rand_f64(&[5, 2, 3, 3], 2));
        let mut r1 = Pcg64Mcg::seed_from_u64(4);
        let mut r2 = Pcg64Mcg::seed_from_u64(4);
        let ka = drop_path_factors(5, 0.6, &mut r1);
        let kb = drop_path_factors(5, 0.7, &mut r1);
        let want = &a.drop_path(0.6, &mut r2) + &b.drop_path(0.7, &mut r2);
        let got = node_sum(&a, ka.clone(), &b, kb.clone());
        autograd::testing::assert_close(&got, &want, 1e-12, 0.0);
        gradcheck(
            |t: &[Tensor]| node_sum(&t[0], ka.clone(), &t[1], None),
            &[a.clone(), b.clone()],
        )
        .unwrap();
        assert!(drop_path_factors(5, 1.0, &mut r1).is_none());
        let f32s = node_sum(&a.to_dtype(DType::F32), None, &b.to_dtype(DType::F32), None);
        assert_eq!(f32s.dtype(), DType::F32);
    }
}

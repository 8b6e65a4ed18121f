//! Elementwise CPU kernels written once over `T: Float`: maps (plain and in-place slice
//! functions), broadcasting zips, and the sum back down to a broadcast input's shape.

use crate::dtype::Float;
use ndarray::{ArrayD, Axis, IxDyn, Zip};

/// The broadcast shape of `a` and `b` ([`ops_cuda::shape::broadcast_shape`], shared with
/// the GPU kernels); panics naming both shapes (and `op`) when they are incompatible.
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    ops_cuda::shape::broadcast_shape(a, b)
        .unwrap_or_else(|| panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"))
}

/// Elementwise `f(a, b)` with broadcasting (CPU kernel). Large outputs run in parallel.
pub fn zip_broadcast<T: Float>(
    op: &str,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> ArrayD<T> {
    let shape = broadcast_shape(op, a.shape(), b.shape());
    let av = a.broadcast(IxDyn(&shape)).unwrap();
    let bv = b.broadcast(IxDyn(&shape)).unwrap();
    if shape.iter().product::<usize>() >= PAR_THRESHOLD {
        Zip::from(&av).and(&bv).par_map_collect(|&x, &y| f(x, y))
    } else {
        Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y))
    }
}

/// Elementwise `f(a)` (CPU kernel). Large arrays run in parallel.
pub fn map<T: Float>(a: &ArrayD<T>, f: impl Fn(T) -> T + Sync + Send) -> ArrayD<T> {
    if a.len() >= PAR_THRESHOLD {
        Zip::from(a).par_map_collect(|&x| f(x))
    } else {
        a.mapv(f)
    }
}

/// A row-major copy of `a` transformed in place by a slice function (the vectorised
/// `T::exp_inplace` and friends); large arrays are split across rayon.
pub fn map_slices<T: Float>(a: &ArrayD<T>, f: impl Fn(&mut [T]) + Sync + Send) -> ArrayD<T> {
    use rayon::prelude::*;
    let mut v = super::layout::to_row_major(&a.view());
    if v.len() >= PAR_THRESHOLD {
        v.par_chunks_mut(super::par::ELEMENTWISE_CHUNK).for_each(&f);
    } else {
        f(&mut v);
    }
    ArrayD::from_shape_vec(a.raw_dim(), v).unwrap()
}

/// Arrays with at least this many elements are processed with rayon
/// ([`super::par::ELEMENTWISE_MIN`]).
const PAR_THRESHOLD: usize = super::par::ELEMENTWISE_MIN;

/// Sums `a` down to `shape` (the adjoint of broadcasting `shape` up to `a.shape()`).
pub fn sum_to_shape<T: Float>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    if a.shape() == shape {
        return a.clone();
    }
    let lead = a.ndim() - shape.len();
    let mut r = a.clone();
    for _ in 0..lead {
        r = r.sum_axis(Axis(0));
    }
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && r.shape()[i] != 1 {
            r = r.sum_axis(Axis(i)).insert_axis(Axis(i));
        }
    }
    assert_eq!(
        r.shape(),
        shape,
        "sum_to_shape: cannot reduce {:?} to {:?}",
        a.shape(),
        shape
    );
    r
}

//! Per-example weighted sums of two batches, `out[n] = a[n] * ka[n] + b[n] * kb[n]`, and
//! per-example scaling, `out[n] = g[n] * k[n]`, over row-major arrays whose first axis is
//! the example: one pass over contiguous memory (these maps are memory-bound), split
//! across the rayon pool by example. The op is [`crate::ops::scaled_sum::scaled_sum`].

use crate::dtype::Float;
use rayon::prelude::*;

/// `a[n] * ka[n] + b[n] * kb[n]` for the `n` examples of the row-major `a`, `b` (same
/// length); `None` factors mean 1.
pub fn scaled_sum<T: Float>(
    a: &[T],
    ka: Option<&[f64]>,
    b: &[T],
    kb: Option<&[f64]>,
    n: usize,
) -> Vec<T> {
    let per = a.len() / n.max(1);
    let mut out = vec![T::zero(); a.len()];
    if per > 0 {
        out.par_chunks_mut(per).enumerate().for_each(|(i, o)| {
            let fa = T::of(ka.map_or(1.0, |k| k[i]));
            let fb = T::of(kb.map_or(1.0, |k| k[i]));
            let (x, y) = (&a[i * per..][..per], &b[i * per..][..per]);
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = x * fa + y * fb;
            }
        });
    }
    out
}

/// `g[n] * k[n]` for the `k.len()` examples of the row-major `g`.
pub fn scale_examples<T: Float>(g: &[T], k: &[f64]) -> Vec<T> {
    let per = g.len() / k.len().max(1);
    let mut out = vec![T::zero(); g.len()];
    if per > 0 {
        out.par_chunks_mut(per).enumerate().for_each(|(i, o)| {
            let f = T::of(k[i]);
            for (o, &x) in o.iter_mut().zip(&g[i * per..][..per]) {
                *o = x * f;
            }
        });
    }
    out
}

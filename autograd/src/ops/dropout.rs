//! Dropout with EXPLICIT masks, drawn from the caller's generator.
//!
//! Every mask here is a constant tensor whose entries are `0` or `1 / keep_prob` (inverted
//! dropout: the expectation of `x * mask` is `x`), applied with an ordinary `x.mul(&mask)`,
//! so the gradient is `g * mask`. Because the masks come from the `rand::Rng` the caller
//! passes in (a seeded `rand_pcg::Pcg64Mcg` in this project) and are drawn in row-major
//! order, a run is reproducible from its seed. Nothing here reads a global generator.
//!
//! * [`dropout_mask`] / [`Tensor::dropout`]: an independent draw per element.
//! * Locked (variational) dropout: draw ONE mask for all time steps, of shape `(1, B, D)`
//!   (or `(B, D)`) for a `(T, B, D)` sequence, and let broadcasting reuse it at every step:
//!   [`locked_dropout_mask`] / [`Tensor::locked_dropout`].
//! * [`Tensor::embedding_dropout`]: drops whole rows (words) of a `(V, D)` embedding
//!   matrix (AWD-LSTM), with a `(V, 1)` mask.
//! * [`Tensor::drop_path`]: one Bernoulli draw per example of `x: (N, ...)`, scaled by
//!   `1 / keep_prob` (NASNet/ENAS "drop path" on cell branches).
//!
//! With `keep_prob == 1` no number is drawn and the input is returned unchanged (the masks
//! are all ones), so turning dropout off does not shift the generator's stream.

use crate::dtype::DType;
use crate::tensor::Tensor;
use rand::RngExt;

fn check_keep(keep_prob: f64) {
    assert!(
        keep_prob > 0.0 && keep_prob <= 1.0,
        "dropout: keep_prob must be in (0, 1], got {keep_prob}"
    );
}

/// A constant mask of `shape` whose entries are `1 / keep_prob` with probability
/// `keep_prob` and `0` otherwise, drawn in row-major order from `rng` (one uniform draw per
/// element; none when `keep_prob == 1`).
pub fn dropout_mask(
    shape: &[usize],
    keep_prob: f64,
    dtype: DType,
    rng: &mut impl rand::Rng,
) -> Tensor {
    check_keep(keep_prob);
    if keep_prob == 1.0 {
        return Tensor::ones(shape, dtype);
    }
    let v = keep_factors(shape.iter().product(), keep_prob, rng);
    Tensor::from_vec(v, shape).to_dtype(dtype)
}

/// `n` inverted-dropout factors, `1 / keep_prob` with probability `keep_prob` and `0`
/// otherwise: one uniform draw from `rng` each, in order. Every mask here is made of
/// these; per-example factors (drop-path folded into a sum) use them directly.
pub fn keep_factors(n: usize, keep_prob: f64, rng: &mut impl rand::Rng) -> Vec<f64> {
    check_keep(keep_prob);
    let scale = 1.0 / keep_prob;
    (0..n)
        .map(|_| {
            if rng.random_range(0.0..1.0) < keep_prob {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

/// A locked (variational) dropout mask for a time-major sequence of shape `(T, B, D)`:
/// shape `(1, B, D)`, so that `x.mul(&mask)` drops the same units at every time step.
pub fn locked_dropout_mask(
    seq_shape: &[usize],
    keep_prob: f64,
    dtype: DType,
    rng: &mut impl rand::Rng,
) -> Tensor {
    assert!(
        !seq_shape.is_empty(),
        "locked_dropout_mask: a sequence shape (T, ...) is needed, got {seq_shape:?}"
    );
    let mut shape = seq_shape.to_vec();
    shape[0] = 1;
    dropout_mask(&shape, keep_prob, dtype, rng)
}

/// A drop-path mask for a batch `x: (N, ...)`: shape `(N, 1, ..., 1)` (same rank as
/// `shape`), one Bernoulli(`keep_prob`) draw per example, scaled by `1 / keep_prob`.
pub fn drop_path_mask(
    shape: &[usize],
    keep_prob: f64,
    dtype: DType,
    rng: &mut impl rand::Rng,
) -> Tensor {
    assert!(
        !shape.is_empty(),
        "drop_path_mask: a batch shape (N, ...) is needed, got {shape:?}"
    );
    let mut m = vec![1; shape.len()];
    m[0] = shape[0];
    dropout_mask(&m, keep_prob, dtype, rng)
}

/// The mask on `x`'s device. Masks are always drawn on the CPU from the caller's generator
/// (so a GPU run draws exactly the masks of a CPU run with the same seed) and copied over.
fn on_device(x: &Tensor, mask: Tensor) -> Tensor {
    mask.to(x.device())
}

impl Tensor {
    /// `self * dropout_mask(self.shape(), keep_prob, ...)`: standard inverted dropout with
    /// a fresh mask from `rng`. Returns `self` when `keep_prob == 1`.
    pub fn dropout(&self, keep_prob: f64, rng: &mut impl rand::Rng) -> Tensor {
        check_keep(keep_prob);
        if keep_prob == 1.0 {
            return self.clone();
        }
        self.mul(&on_device(
            self,
            dropout_mask(self.shape(), keep_prob, self.dtype(), rng),
        ))
    }

    /// Locked dropout of a `(T, B, D)` sequence: one `(1, B, D)` mask shared by all steps.
    pub fn locked_dropout(&self, keep_prob: f64, rng: &mut impl rand::Rng) -> Tensor {
        check_keep(keep_prob);
        if keep_prob == 1.0 {
            return self.clone();
        }
        self.mul(&on_device(
            self,
            locked_dropout_mask(self.shape(), keep_prob, self.dtype(), rng),
        ))
    }

    /// Embedding dropout (AWD-LSTM): on a `(V, D)` embedding weight, zeroes whole rows
    /// with probability `1 - keep_prob` and scales the kept rows by `1 / keep_prob`. Look
    /// up the returned (masked) weight with [`Tensor::embedding`].
    pub fn embedding_dropout(&self, keep_prob: f64, rng: &mut impl rand::Rng) -> Tensor {
        assert_eq!(
            self.ndim(),
            2,
            "embedding_dropout: weight must be (V, D), got shape {:?}",
            self.shape()
        );
        check_keep(keep_prob);
        if keep_prob == 1.0 {
            return self.clone();
        }
        let mask = dropout_mask(&[self.shape()[0], 1], keep_prob, self.dtype(), rng);
        self.mul(&on_device(self, mask))
    }

    /// Drop path on a batch `x: (N, ...)`: each example is kept (and scaled by
    /// `1 / keep_prob`) or zeroed as a whole, one draw per example from `rng`.
    pub fn drop_path(&self, keep_prob: f64, rng: &mut impl rand::Rng) -> Tensor {
        check_keep(keep_prob);
        if keep_prob == 1.0 {
            return self.clone();
        }
        self.mul(&on_device(
            self,
            drop_path_mask(self.shape(), keep_prob, self.dtype(), rng),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gradcheck, rand_f64};
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn masks_are_zero_or_scaled_and_reproducible() {
        let mut r1 = Pcg64Mcg::seed_from_u64(7);
        let mut r2 = Pcg64Mcg::seed_from_u64(7);
        let a = dropout_mask(&[20, 30], 0.8, DType::F64, &mut r1).to_vec::<f64>();
        let b = dropout_mask(&[20, 30], 0.8, DType::F64, &mut r2).to_vec::<f64>();
        assert_eq!(a, b);
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.25).abs() < 1e-15));
        let kept = a.iter().filter(|&&v| v > 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.8).abs() < 0.06, "{kept}");
        // keep_prob = 1 draws nothing
        let mut r3 = Pcg64Mcg::seed_from_u64(7);
        let _ = dropout_mask(&[5], 1.0, DType::F64, &mut r3);
        let c = dropout_mask(&[20, 30], 0.8, DType::F64, &mut r3).to_vec::<f64>();
        assert_eq!(a, c);
    }

    #[test]
    fn locked_mask_is_shared_over_time_and_embedding_dropout_drops_rows() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let x = Tensor::ones(&[4, 3, 5], DType::F64);
        let y = x.locked_dropout(0.5, &mut rng).to_vec::<f64>();
        for t in 1..4 {
            assert_eq!(y[..15], y[t * 15..(t + 1) * 15]);
        }
        let w = Tensor::ones(&[50, 4], DType::F64);
        let e = w.embedding_dropout(0.5, &mut rng).to_vec::<f64>();
        for row in e.chunks(4) {
            assert!(row.iter().all(|&v| v == row[0]) && (row[0] == 0.0 || row[0] == 2.0));
        }
        assert!(e.contains(&0.0) && e.contains(&2.0));
    }

    #[test]
    fn gradcheck_dropout_with_fixed_mask() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mask = dropout_mask(&[3, 5], 0.6, DType::F64, &mut rng);
        gradcheck(|x| x[0].mul(&mask), &[rand_f64(&[3, 5], 1)]).unwrap();
        // a locked mask broadcast over 4 time steps
        let locked = locked_dropout_mask(&[4, 3, 5], 0.6, DType::F64, &mut rng);
        gradcheck(|x| x[0].mul(&locked), &[rand_f64(&[4, 3, 5], 2)]).unwrap();
        // the same mask as a (B, D) tensor broadcasts the same way
        let bd = locked.reshape(&[3, 5]);
        gradcheck(|x| x[0].mul(&bd), &[rand_f64(&[4, 3, 5], 2)]).unwrap();
    }

    #[test]
    fn gradcheck_drop_path_and_embedding_dropout_with_fixed_seed() {
        // Reseeding inside the closure gives the same mask at every evaluation.
        gradcheck(
            |x| x[0].drop_path(0.7, &mut Pcg64Mcg::seed_from_u64(11)),
            &[rand_f64(&[5, 2, 3], 3)],
        )
        .unwrap();
        gradcheck(
            |x| {
                x[0].embedding_dropout(0.5, &mut Pcg64Mcg::seed_from_u64(12))
                    .embedding(&[1, 1, 4], &[3])
            },
            &[rand_f64(&[6, 3], 4)],
        )
        .unwrap();
        let y = Tensor::ones(&[6, 2], DType::F64)
            .drop_path(0.5, &mut Pcg64Mcg::seed_from_u64(11))
            .to_vec::<f64>();
        for row in y.chunks(2) {
            assert_eq!(row[0], row[1]);
        }
    }
}

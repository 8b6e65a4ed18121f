//! Per-example drop-path factors for the cells' node sums: each node adds its two branches
//! with [`autograd::ops::scaled_sum::scaled_sum`], `a[n] * ka[n] + b[n] * kb[n]`, where `ka`,
//! `kb` are these factors (0 or `1 / keep`, or none when a branch is not dropped).

use autograd::ops::dropout::keep_factors;

/// Per-example drop-path factors for a batch of `n`, drawn exactly as
/// `autograd::ops::dropout::drop_path_mask` draws them ([`keep_factors`]: one uniform per
/// example, kept when below `keep`); `None` when `keep == 1` (nothing drawn).
pub fn drop_path_factors(n: usize, keep: f64, rng: &mut impl rand::Rng) -> Option<Vec<f64>> {
    assert!(
        keep > 0.0 && keep <= 1.0,
        "drop-path: keep probability must be in (0, 1], got {keep}"
    );
    (keep < 1.0).then(|| keep_factors(n, keep, rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tensor;
    use autograd::ops::scaled_sum::scaled_sum;
    use autograd::testing::rand_f64;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    /// The factors are drawn exactly as `drop_path` draws its mask, so the node sum equals
    /// `drop_path(a) + drop_path(b)` from the same generator.
    fn matches_drop_path_and_add() {
        let (a, b) = (rand_f64(&[5, 2, 3, 3], 1), rand_f64(&[5, 2, 3, 3], 2));
        let mut r1 = Pcg64Mcg::seed_from_u64(4);
        let mut r2 = Pcg64Mcg::seed_from_u64(4);
        let ka = drop_path_factors(5, 0.6, &mut r1);
        let kb = drop_path_factors(5, 0.7, &mut r1);
        let want = &a.drop_path(0.6, &mut r2) + &b.drop_path(0.7, &mut r2);
        let got: Tensor = scaled_sum(&a, ka, &b, kb);
        autograd::testing::assert_close(&got, &want, 1e-12, 0.0);
        assert!(drop_path_factors(5, 1.0, &mut r1).is_none());
    }
}

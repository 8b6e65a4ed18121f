//! Standard normal draws (Box-Muller), in one place for the workspace.
//!
//! Every normal draw in the workspace goes through [`box_muller`]. Two ways of drawing its
//! uniforms are in use, and each is kept as it is so that seeded runs reproduce bit for bit
//! (the determinism tests pin them): [`standard_normal`] (the data sets' and evaluators'
//! noise) and [`standard_normal_ranged`] (`autograd`'s weight initialisation and
//! `Tensor::randn`). Each takes two values from the generator per draw.
//!
//! ```
//! use rand::SeedableRng;
//! let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
//! let x = normal_draw::standard_normal(&mut rng);
//! assert!(x.is_finite());
//! ```

use rand::{Rng, RngExt};

/// The Box-Muller transform: one standard normal value `sqrt(-2 ln u1) * cos(2 pi u2)` from
/// `u1` in (0, 1] and `u2` in [0, 1).
pub fn box_muller(u1: f64, u2: f64) -> f64 {
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// One standard normal draw: `u1 = 1 - rng.random::<f64>()` (in (0, 1]), then
/// `u2 = rng.random::<f64>()`, through [`box_muller`].
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    box_muller(u1, u2)
}

/// One standard normal draw with the uniforms taken by `random_range`:
/// `u1` from `f64::MIN_POSITIVE..1.0`, then `u2` from `0.0..1.0`, through [`box_muller`].
/// (A different sequence from [`standard_normal`]'s for the same generator.)
pub fn standard_normal_ranged<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    box_muller(u1, u2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn transform_values() {
        assert_eq!(box_muller(1.0, 0.0), 0.0);
        let x = box_muller(std::f64::consts::E.recip(), 0.0);
        assert!((x - 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn draws_are_seeded_and_roughly_standard() {
        for draw in [
            standard_normal::<Pcg64Mcg>,
            standard_normal_ranged::<Pcg64Mcg>,
        ] {
            let mut a = Pcg64Mcg::seed_from_u64(1);
            let mut b = Pcg64Mcg::seed_from_u64(1);
            let xs: Vec<f64> = (0..20_000).map(|_| draw(&mut a)).collect();
            let ys: Vec<f64> = (0..20_000).map(|_| draw(&mut b)).collect();
            assert_eq!(xs, ys);
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            assert!(
                mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
                "{mean} {var}"
            );
        }
    }
}

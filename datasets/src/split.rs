//! Seeded train/dev splits held out of a training set.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};

/// Size of the dev split used in the paper: 5,000 of the 50,000 CIFAR-10
/// training images (45k train / 5k valid).
pub const DEFAULT_DEV_SIZE: usize = 5_000;

/// Indices of a split, each list sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Indices kept for training.
    pub train: Vec<usize>,
    /// Indices held out as the dev (validation) set.
    pub dev: Vec<usize>,
}

/// Shuffles `v` in place (Fisher–Yates) with `rng`.
///
/// ```
/// use rand::SeedableRng;
/// let mut v: Vec<usize> = (0..10).collect();
/// datasets::split::shuffle(&mut v, &mut rand_pcg::Pcg64Mcg::seed_from_u64(1));
/// v.sort();
/// assert_eq!(v, (0..10).collect::<Vec<_>>());
/// ```
pub fn shuffle<T>(v: &mut [T], rng: &mut Pcg64Mcg) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// Holds `dev_size` of `n` indices out as a dev set, chosen uniformly at
/// random from `seed` (deterministic: same `n`, `dev_size`, `seed` → same split).
///
/// ```
/// let s = datasets::dev_split(50_000, datasets::split::DEFAULT_DEV_SIZE, 0).unwrap();
/// assert_eq!((s.train.len(), s.dev.len()), (45_000, 5_000));
/// assert_eq!(s, datasets::dev_split(50_000, 5_000, 0).unwrap());
/// ```
pub fn dev_split(n: usize, dev_size: usize, seed: u64) -> Result<Split> {
    if dev_size > n {
        return Err(DatasetError::invalid(
            format!("dev split of {dev_size} requested from only {n} examples"),
            "use a dev size no larger than the training set",
        ));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    shuffle(&mut idx, &mut Pcg64Mcg::seed_from_u64(seed));
    let mut dev = idx[..dev_size].to_vec();
    let mut train = idx[dev_size..].to_vec();
    dev.sort_unstable();
    train.sort_unstable();
    Ok(Split { train, dev })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_and_complete_and_seed_dependent() {
        let a = dev_split(1000, 100, 1).unwrap();
        let mut all: Vec<usize> = a.train.iter().chain(&a.dev).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let b = dev_split(1000, 100, 2).unwrap();
        assert_ne!(a.dev, b.dev);
        assert!(dev_split(10, 11, 0).is_err());
    }
}

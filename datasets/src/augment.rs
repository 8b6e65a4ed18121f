//! Preprocessing and augmentation of CIFAR images.
//!
//! Images are normalised per channel, `(x/255 - mean_c) / std_c`, giving
//! `f32` CHW planes. Augmentations follow the PyTorch reference pipeline
//! (`RandomCrop(32, padding=4)`, `RandomHorizontalFlip`, `ToTensor`,
//! `Normalize`, `Cutout(16)`):
//!
//! * **Padding choice:** the 4-pixel border is *black in raw pixel space*
//!   (raw value 0, as PyTorch pads before normalising), i.e. the padded value
//!   in normalised space is `-mean_c / std_c` per channel.
//! * **Flip:** horizontal, with probability 0.5.
//! * **Cutout:** a `size`x`size` square centred at a uniform pixel, clipped
//!   at the borders, set to 0 *after* normalisation (the mean colour).
//!
//! Random numbers are drawn from an explicit [`Pcg64Mcg`] in a fixed order
//! (crop dy, crop dx, flip, cutout cy, cutout cx; each only when enabled),
//! so the fused [`augment_into`] and the step-by-step functions give the same
//! result for the same generator state.

use rand::RngExt;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::cifar::{CHANNELS, IMAGE_BYTES, IMAGE_SIDE, ImageSet};

const S: usize = IMAGE_SIDE;
const PLANE: usize = S * S;

/// Per-channel mean and standard deviation on the [0, 1] scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Mean of R, G, B.
    pub mean: [f32; 3],
    /// Standard deviation of R, G, B (population, over all pixels).
    pub std: [f32; 3],
}

impl ChannelStats {
    /// CIFAR-10 training-set statistics (the standard constants).
    pub const CIFAR10: ChannelStats = ChannelStats {
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.2470, 0.2435, 0.2616],
    };
    /// CIFAR-100 training-set statistics (the commonly used constants).
    pub const CIFAR100: ChannelStats = ChannelStats {
        mean: [0.5071, 0.4865, 0.4409],
        std: [0.2673, 0.2564, 0.2762],
    };
    /// Identity normalisation (mean 0, std 1): values are `x / 255`.
    pub const UNIT: ChannelStats = ChannelStats {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Computes per-channel mean and population std of `set` on the [0, 1]
    /// scale, accumulating exactly in integers (in parallel).
    ///
    /// ```
    /// let set = datasets::synthetic::synthetic_images(50, 1);
    /// let s = datasets::ChannelStats::compute(&set);
    /// assert!(s.mean.iter().all(|m| (0.0..=1.0).contains(m)));
    /// ```
    pub fn compute(set: &ImageSet) -> ChannelStats {
        use rayon::prelude::*;
        let (sum, sq) = set
            .images
            .par_chunks(IMAGE_BYTES)
            .map(|img| {
                let mut sum = [0u64; 3];
                let mut sq = [0u64; 3];
                for c in 0..CHANNELS {
                    for &p in &img[c * PLANE..(c + 1) * PLANE] {
                        sum[c] += u64::from(p);
                        sq[c] += u64::from(p) * u64::from(p);
                    }
                }
                (sum, sq)
            })
            .reduce(
                || ([0u64; 3], [0u64; 3]),
                |(a, b), (c, d)| {
                    (
                        [a[0] + c[0], a[1] + c[1], a[2] + c[2]],
                        [b[0] + d[0], b[1] + d[1], b[2] + d[2]],
                    )
                },
            );
        let n = (set.len() * PLANE).max(1) as f64;
        let mut out = ChannelStats::UNIT;
        for c in 0..3 {
            let mean = sum[c] as f64 / n;
            let var = (sq[c] as f64 / n - mean * mean).max(0.0);
            out.mean[c] = (mean / 255.0) as f32;
            out.std[c] = (var.sqrt() / 255.0) as f32;
        }
        out
    }

    /// Lookup table: normalised value of each raw byte, per channel.
    pub fn lut(&self) -> [[f32; 256]; 3] {
        let mut t = [[0f32; 256]; 3];
        for (c, row) in t.iter_mut().enumerate() {
            let std = if self.std[c] > 0.0 { self.std[c] } else { 1.0 };
            for (v, x) in row.iter_mut().enumerate() {
                *x = (v as f32 / 255.0 - self.mean[c]) / std;
            }
        }
        t
    }
}

/// Which augmentations to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Zero-padding (black) before a random 32x32 crop; 0 disables cropping.
    pub pad: usize,
    /// Random horizontal flip with probability 0.5.
    pub flip: bool,
    /// Cutout square side; `None` disables cutout.
    pub cutout: Option<usize>,
}

impl Default for Augment {
    fn default() -> Self {
        Augment::none()
    }
}

impl Augment {
    /// No augmentation (evaluation).
    pub const fn none() -> Self {
        Augment {
            pad: 0,
            flip: false,
            cutout: None,
        }
    }
    /// Pad 4 + random crop + horizontal flip (the search-time recipe).
    pub const fn standard() -> Self {
        Augment {
            pad: 4,
            flip: true,
            cutout: None,
        }
    }
    /// [`Augment::standard`] plus cutout of side `size` (16 for final training).
    pub const fn with_cutout(size: usize) -> Self {
        Augment {
            pad: 4,
            flip: true,
            cutout: Some(size),
        }
    }
}

/// Normalises a raw CHW image (3072 bytes) into `out` (3072 floats).
///
/// ```
/// use datasets::{ChannelStats, augment::normalize_into};
/// let img = vec![255u8; 3072];
/// let mut out = vec![0f32; 3072];
/// normalize_into(&img, &ChannelStats::UNIT, &mut out);
/// assert!(out.iter().all(|&v| v == 1.0));
/// ```
pub fn normalize_into(img: &[u8], stats: &ChannelStats, out: &mut [f32]) {
    let lut = stats.lut();
    for c in 0..CHANNELS {
        for (o, &p) in out[c * PLANE..(c + 1) * PLANE]
            .iter_mut()
            .zip(&img[c * PLANE..(c + 1) * PLANE])
        {
            *o = lut[c][p as usize];
        }
    }
}

/// The normalised value of a black (raw 0) pixel per channel: the padding value.
pub fn pad_values(stats: &ChannelStats) -> [f32; 3] {
    let lut = stats.lut();
    [lut[0][0], lut[1][0], lut[2][0]]
}

/// Pads a normalised CHW image by `pad` pixels of `fill` (per channel) and
/// crops a random 32x32 window, in place.
///
/// ```
/// use rand::SeedableRng;
/// let mut img = vec![1f32; 3072];
/// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
/// datasets::augment::random_crop(&mut img, 4, [0.0; 3], &mut rng);
/// assert_eq!(img.len(), 3072);
/// ```
pub fn random_crop(img: &mut [f32], pad: usize, fill: [f32; 3], rng: &mut Pcg64Mcg) {
    if pad == 0 {
        return;
    }
    let dy = rng.random_range(0..=2 * pad) as isize - pad as isize;
    let dx = rng.random_range(0..=2 * pad) as isize - pad as isize;
    let src = img.to_vec();
    for c in 0..CHANNELS {
        for y in 0..S {
            for x in 0..S {
                let sy = y as isize + dy;
                let sx = x as isize + dx;
                img[c * PLANE + y * S + x] =
                    if (0..S as isize).contains(&sy) && (0..S as isize).contains(&sx) {
                        src[c * PLANE + sy as usize * S + sx as usize]
                    } else {
                        fill[c]
                    };
            }
        }
    }
}

/// Flips a CHW image horizontally with probability 0.5, in place.
/// Returns whether it flipped.
///
/// ```
/// use rand::SeedableRng;
/// let mut img: Vec<f32> = (0..3072).map(|i| i as f32).collect();
/// let orig = img.clone();
/// let flipped = datasets::augment::random_flip(&mut img, &mut rand_pcg::Pcg64Mcg::seed_from_u64(3));
/// assert_eq!(flipped, img != orig);
/// ```
pub fn random_flip(img: &mut [f32], rng: &mut Pcg64Mcg) -> bool {
    let flip = rng.random_bool(0.5);
    if flip {
        for row in img.chunks_exact_mut(S) {
            row.reverse();
        }
    }
    flip
}

/// Zeroes a `size`x`size` square centred at a uniform random pixel (clipped
/// at the borders), in place.
///
/// ```
/// use rand::SeedableRng;
/// let mut img = vec![1f32; 3072];
/// datasets::augment::cutout(&mut img, 16, &mut rand_pcg::Pcg64Mcg::seed_from_u64(0));
/// let zeros = img.iter().filter(|&&v| v == 0.0).count();
/// assert!(zeros > 0 && zeros <= 3 * 256);
/// ```
pub fn cutout(img: &mut [f32], size: usize, rng: &mut Pcg64Mcg) {
    let (y0, y1, x0, x1) = cutout_box(size, rng);
    for c in 0..CHANNELS {
        for y in y0..y1 {
            img[c * PLANE + y * S + x0..c * PLANE + y * S + x1].fill(0.0);
        }
    }
}

fn cutout_box(size: usize, rng: &mut Pcg64Mcg) -> (usize, usize, usize, usize) {
    let cy = rng.random_range(0..S);
    let cx = rng.random_range(0..S);
    let half = size / 2;
    (
        cy.saturating_sub(half),
        (cy + size - half).min(S),
        cx.saturating_sub(half),
        (cx + size - half).min(S),
    )
}

/// Normalises and augments one raw image into `out` (3072 floats) in a single
/// pass: same result as [`normalize_into`] followed by [`random_crop`] (with
/// [`pad_values`]), [`random_flip`] and [`cutout`], as enabled in `aug`.
///
/// `lut` is [`ChannelStats::lut`] (computed once per batch by the caller).
///
/// ```
/// use rand::SeedableRng;
/// use datasets::{Augment, ChannelStats, augment::augment_into};
/// let set = datasets::synthetic::synthetic_images(1, 0);
/// let lut = ChannelStats::CIFAR10.lut();
/// let mut out = vec![0f32; 3072];
/// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
/// augment_into(set.image(0), &lut, &Augment::with_cutout(16), &mut rng, &mut out);
/// ```
pub fn augment_into(
    img: &[u8],
    lut: &[[f32; 256]; 3],
    aug: &Augment,
    rng: &mut Pcg64Mcg,
    out: &mut [f32],
) {
    let (dy, dx) = if aug.pad > 0 {
        let p = aug.pad as isize;
        (
            rng.random_range(0..=2 * aug.pad) as isize - p,
            rng.random_range(0..=2 * aug.pad) as isize - p,
        )
    } else {
        (0, 0)
    };
    let flip = aug.flip && rng.random_bool(0.5);
    for c in 0..CHANNELS {
        let lut = &lut[c];
        let fill = lut[0];
        let src = &img[c * PLANE..(c + 1) * PLANE];
        let dst = &mut out[c * PLANE..(c + 1) * PLANE];
        for y in 0..S {
            let row = &mut dst[y * S..(y + 1) * S];
            let sy = y as isize + dy;
            if !(0..S as isize).contains(&sy) {
                row.fill(fill);
                continue;
            }
            let srow = &src[sy as usize * S..(sy as usize + 1) * S];
            // Output x (before flip) reads source x + dx.
            for (x, o) in row.iter_mut().enumerate() {
                let xo = if flip { S - 1 - x } else { x };
                let sx = xo as isize + dx;
                *o = if (0..S as isize).contains(&sx) {
                    lut[srow[sx as usize] as usize]
                } else {
                    fill
                };
            }
        }
    }
    if let Some(size) = aug.cutout {
        cutout(out, size, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fused_equals_step_by_step() {
        let set = crate::synthetic::synthetic_images(20, 4);
        let stats = ChannelStats::CIFAR10;
        let lut = stats.lut();
        for (i, aug) in [
            Augment::none(),
            Augment::standard(),
            Augment::with_cutout(16),
        ]
        .iter()
        .enumerate()
        {
            for k in 0..set.len() {
                let seed = (i * 100 + k) as u64;
                let mut fused = vec![0f32; IMAGE_BYTES];
                augment_into(
                    set.image(k),
                    &lut,
                    aug,
                    &mut Pcg64Mcg::seed_from_u64(seed),
                    &mut fused,
                );
                let mut rng = Pcg64Mcg::seed_from_u64(seed);
                let mut step = vec![0f32; IMAGE_BYTES];
                normalize_into(set.image(k), &stats, &mut step);
                random_crop(&mut step, aug.pad, pad_values(&stats), &mut rng);
                if aug.flip {
                    random_flip(&mut step, &mut rng);
                }
                if let Some(s) = aug.cutout {
                    cutout(&mut step, s, &mut rng);
                }
                assert_eq!(fused, step, "aug {aug:?} image {k}");
            }
        }
    }

    #[test]
    fn crop_shift_is_exact() {
        // With pad 4, some seed gives every offset; check content moves by (dy, dx).
        let img: Vec<f32> = (0..IMAGE_BYTES).map(|i| i as f32 + 1.0).collect();
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let mut probe = rng.clone();
        let dy = probe.random_range(0..=8usize) as isize - 4;
        let dx = probe.random_range(0..=8usize) as isize - 4;
        let mut out = img.clone();
        random_crop(&mut out, 4, [-7.0; 3], &mut rng);
        for y in 0..S as isize {
            for x in 0..S as isize {
                let (sy, sx) = (y + dy, x + dx);
                let want = if (0..32).contains(&sy) && (0..32).contains(&sx) {
                    img[(sy * 32 + sx) as usize]
                } else {
                    -7.0
                };
                assert_eq!(out[(y * 32 + x) as usize], want);
            }
        }
    }

    #[test]
    fn cutout_is_clipped_square() {
        let mut rng = Pcg64Mcg::seed_from_u64(0);
        for _ in 0..200 {
            let mut img = vec![1f32; IMAGE_BYTES];
            let mut probe = rng.clone();
            let (y0, y1, x0, x1) = cutout_box(16, &mut probe);
            cutout(&mut img, 16, &mut rng);
            let zeros = img.iter().filter(|&&v| v == 0.0).count();
            assert_eq!(zeros, 3 * (y1 - y0) * (x1 - x0));
            assert!(y1 - y0 <= 16 && y1 - y0 >= 8 && x1 - x0 >= 8);
        }
    }

    #[test]
    fn flip_rate_is_about_half() {
        let mut rng = Pcg64Mcg::seed_from_u64(9);
        let mut img = vec![0f32; IMAGE_BYTES];
        let n = (0..10_000)
            .filter(|_| random_flip(&mut img, &mut rng))
            .count();
        assert!((4_800..5_200).contains(&n), "{n}");
    }

    #[test]
    fn stats_of_constant_image() {
        let mut set = crate::synthetic::synthetic_images(2, 0);
        set.images.fill(51);
        let s = ChannelStats::compute(&set);
        for c in 0..3 {
            assert!((s.mean[c] - 0.2).abs() < 1e-6);
            assert!(s.std[c].abs() < 1e-6);
        }
    }
}

//! Shuffled, augmented mini-batches as NCHW `f32` arrays.
//!
//! Each epoch is a permutation of the set drawn from `(seed, epoch)`; each
//! image's augmentation uses its own generator seeded from
//! `(seed, epoch, image index)`. Batches are assembled in parallel with
//! rayon, and the result does not depend on thread scheduling or on the
//! batch size (the same image in the same epoch is augmented identically).

use std::sync::Arc;

use ndarray::Array4;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::augment::{Augment, ChannelStats, augment_into};
use crate::cifar::{CHANNELS, IMAGE_BYTES, IMAGE_SIDE, ImageSet};
use crate::error::{DatasetError, Result};
use crate::mix_seed;
use crate::split::shuffle;

/// What to do with the last, smaller batch of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LastBatch {
    /// Yield it (smaller than `batch_size`).
    #[default]
    Keep,
    /// Skip it, so every batch has exactly `batch_size` images.
    Drop,
}

/// Configuration of a [`Batcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatcherConfig {
    /// Images per batch (at least 1).
    pub batch_size: usize,
    /// Shuffle the order every epoch; if false, batches follow the set's order.
    pub shuffle: bool,
    /// Policy for the final partial batch.
    pub last_batch: LastBatch,
    /// Augmentations (use [`Augment::none`] for evaluation).
    pub augment: Augment,
    /// Base seed for shuffling and augmentation.
    pub seed: u64,
}

impl Default for BatcherConfig {
    /// Batch 128, shuffled, last batch kept, no augmentation, seed 0.
    fn default() -> Self {
        BatcherConfig {
            batch_size: 128,
            shuffle: true,
            last_batch: LastBatch::Keep,
            augment: Augment::none(),
            seed: 0,
        }
    }
}

impl BatcherConfig {
    /// Evaluation batches: no shuffle, no augmentation, last batch kept.
    ///
    /// ```
    /// let cfg = datasets::BatcherConfig::eval(500);
    /// assert!(!cfg.shuffle);
    /// ```
    pub fn eval(batch_size: usize) -> Self {
        BatcherConfig {
            batch_size,
            shuffle: false,
            ..BatcherConfig::default()
        }
    }
}

/// One mini-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Normalised (and augmented) images, shape `(B, 3, 32, 32)`.
    pub images: Array4<f32>,
    /// Class labels.
    pub labels: Vec<usize>,
    /// Index in the source set of each image.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Produces epochs of mini-batches from an [`ImageSet`].
#[derive(Debug, Clone)]
pub struct Batcher {
    set: Arc<ImageSet>,
    stats: ChannelStats,
    lut: Box<[[f32; 256]; 3]>,
    cfg: BatcherConfig,
}

impl Batcher {
    /// A batcher over `set`, normalising with `stats`.
    ///
    /// Errors if `batch_size` is 0.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use datasets::{Batcher, BatcherConfig, ChannelStats, synthetic};
    /// let set = Arc::new(synthetic::synthetic_images(10, 0));
    /// let b = Batcher::new(set, ChannelStats::CIFAR10, BatcherConfig { batch_size: 4, ..Default::default() }).unwrap();
    /// assert_eq!(b.num_batches(), 3);
    /// ```
    pub fn new(set: Arc<ImageSet>, stats: ChannelStats, cfg: BatcherConfig) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(DatasetError::invalid(
                "batch_size is 0",
                "use a batch size of at least 1",
            ));
        }
        Ok(Batcher {
            lut: Box::new(stats.lut()),
            set,
            stats,
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BatcherConfig {
        &self.cfg
    }

    /// The normalisation statistics.
    pub fn stats(&self) -> &ChannelStats {
        &self.stats
    }

    /// The underlying set.
    pub fn set(&self) -> &Arc<ImageSet> {
        &self.set
    }

    /// Number of batches per epoch under the [`LastBatch`] policy.
    pub fn num_batches(&self) -> usize {
        let n = self.set.len();
        let b = self.cfg.batch_size;
        match self.cfg.last_batch {
            LastBatch::Keep => n.div_ceil(b),
            LastBatch::Drop => n / b,
        }
    }

    /// The order in which epoch `epoch` visits the set.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use datasets::{Batcher, BatcherConfig, ChannelStats, synthetic};
    /// let b = Batcher::new(Arc::new(synthetic::synthetic_images(10, 0)), ChannelStats::UNIT, BatcherConfig::default()).unwrap();
    /// assert_eq!(b.epoch_order(3), b.epoch_order(3));
    /// assert_ne!(b.epoch_order(3), b.epoch_order(4));
    /// ```
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.set.len()).collect();
        if self.cfg.shuffle {
            let mut rng = Pcg64Mcg::seed_from_u64(mix_seed(&[self.cfg.seed, epoch, 0x5348_5546]));
            shuffle(&mut order, &mut rng);
        }
        order
    }

    /// Iterates over the batches of epoch `epoch`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use datasets::{Augment, Batcher, BatcherConfig, ChannelStats, LastBatch, synthetic};
    /// let set = Arc::new(synthetic::synthetic_images(10, 0));
    /// let cfg = BatcherConfig { batch_size: 4, last_batch: LastBatch::Drop, augment: Augment::with_cutout(16), ..Default::default() };
    /// let b = Batcher::new(set, ChannelStats::CIFAR10, cfg).unwrap();
    /// let batches: Vec<_> = b.epoch(0).collect();
    /// assert_eq!(batches.len(), 2);
    /// assert_eq!(batches[0].images.shape(), &[4, 3, 32, 32]);
    /// ```
    pub fn epoch(&self, epoch: u64) -> Epoch<'_> {
        Epoch {
            batcher: self,
            epoch,
            order: self.epoch_order(epoch),
            next: 0,
            remaining: self.num_batches(),
        }
    }

    /// Assembles the batch of the images at `indices` (indices into the set)
    /// as seen in epoch `epoch`, in parallel.
    ///
    /// Errors if an index is out of range.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use datasets::{Batcher, BatcherConfig, ChannelStats, synthetic};
    /// let b = Batcher::new(Arc::new(synthetic::synthetic_images(10, 0)), ChannelStats::UNIT, BatcherConfig::eval(2)).unwrap();
    /// let batch = b.assemble(0, &[9, 0]).unwrap();
    /// assert_eq!(batch.indices, vec![9, 0]);
    /// ```
    pub fn assemble(&self, epoch: u64, indices: &[usize]) -> Result<Batch> {
        let n = self.set.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(DatasetError::invalid(
                format!("image index {bad} out of range for a set of {n} images"),
                "pass indices below the set's len()",
            ));
        }
        let mut data = vec![0f32; indices.len() * IMAGE_BYTES];
        let aug = self.cfg.augment;
        let seed = self.cfg.seed;
        data.par_chunks_mut(IMAGE_BYTES)
            .zip(indices.par_iter())
            .for_each(|(out, &idx)| {
                let mut rng = Pcg64Mcg::seed_from_u64(mix_seed(&[seed, epoch, idx as u64]));
                augment_into(self.set.image(idx), &self.lut, &aug, &mut rng, out);
            });
        let images =
            Array4::from_shape_vec((indices.len(), CHANNELS, IMAGE_SIDE, IMAGE_SIDE), data)
                .map_err(|e| DatasetError::invalid(e.to_string(), "report this bug"))?;
        Ok(Batch {
            images,
            labels: indices
                .iter()
                .map(|&i| self.set.labels[i] as usize)
                .collect(),
            indices: indices.to_vec(),
        })
    }
}

/// Iterator over one epoch's batches (see [`Batcher::epoch`]).
#[derive(Debug)]
pub struct Epoch<'a> {
    batcher: &'a Batcher,
    epoch: u64,
    order: Vec<usize>,
    next: usize,
    remaining: usize,
}

impl Iterator for Epoch<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.remaining == 0 {
            return None;
        }
        let end = (self.next + self.batcher.cfg.batch_size).min(self.order.len());
        let idx = &self.order[self.next..end];
        self.next = end;
        self.remaining -= 1;
        // Indices come from the epoch order, so they are always in range.
        self.batcher.assemble(self.epoch, idx).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Epoch<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::synthetic_images;

    fn batcher(n: usize, bs: usize, last: LastBatch, aug: Augment, seed: u64) -> Batcher {
        Batcher::new(
            Arc::new(synthetic_images(n, 1)),
            ChannelStats::CIFAR10,
            BatcherConfig {
                batch_size: bs,
                shuffle: true,
                last_batch: last,
                augment: aug,
                seed,
            },
        )
        .unwrap()
    }

    #[test]
    fn keep_and_drop_last_batch() {
        let keep = batcher(10, 4, LastBatch::Keep, Augment::none(), 0);
        let sizes: Vec<usize> = keep.epoch(0).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        let drop = batcher(10, 4, LastBatch::Drop, Augment::none(), 0);
        let sizes: Vec<usize> = drop.epoch(0).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4]);
        assert_eq!(drop.epoch(0).len(), 2);
        // Every image exactly once with Keep.
        let mut seen: Vec<usize> = keep.epoch(1).flat_map(|b| b.indices).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn reproducible_and_independent_of_batch_size() {
        let a = batcher(50, 8, LastBatch::Keep, Augment::with_cutout(16), 3);
        let b = batcher(50, 8, LastBatch::Keep, Augment::with_cutout(16), 3);
        let ea: Vec<Batch> = a.epoch(2).collect();
        let eb: Vec<Batch> = b.epoch(2).collect();
        assert_eq!(ea, eb);
        // Same image, same epoch → same pixels, whatever batch it lands in.
        let c = batcher(50, 7, LastBatch::Keep, Augment::with_cutout(16), 3);
        let one = c.assemble(2, &[ea[0].indices[0]]).unwrap();
        assert_eq!(
            one.images.index_axis(ndarray::Axis(0), 0),
            ea[0].images.index_axis(ndarray::Axis(0), 0)
        );
        // Different seed or epoch → different augmentation.
        let d = batcher(50, 8, LastBatch::Keep, Augment::with_cutout(16), 4);
        assert_ne!(d.assemble(2, &[0]).unwrap(), a.assemble(2, &[0]).unwrap());
        assert_ne!(a.assemble(1, &[0]).unwrap(), a.assemble(2, &[0]).unwrap());
    }

    #[test]
    fn eval_is_plain_normalisation() {
        let set = Arc::new(synthetic_images(5, 2));
        let b = Batcher::new(set.clone(), ChannelStats::CIFAR10, BatcherConfig::eval(5)).unwrap();
        let batch = b.epoch(0).next().unwrap();
        assert_eq!(batch.indices, vec![0, 1, 2, 3, 4]);
        let mut want = vec![0f32; IMAGE_BYTES];
        crate::augment::normalize_into(set.image(3), &ChannelStats::CIFAR10, &mut want);
        assert_eq!(
            batch
                .images
                .index_axis(ndarray::Axis(0), 3)
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            want
        );
        assert_eq!(batch.labels[3], set.labels[3] as usize);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let set = Arc::new(synthetic_images(5, 2));
        let cfg = BatcherConfig {
            batch_size: 0,
            ..BatcherConfig::default()
        };
        assert!(Batcher::new(set.clone(), ChannelStats::UNIT, cfg).is_err());
        let b = Batcher::new(set, ChannelStats::UNIT, BatcherConfig::eval(2)).unwrap();
        assert!(b.assemble(0, &[5]).is_err());
    }
}

//! [`ImageSet`]: labelled 32x32 RGB images as raw bytes, the type every CIFAR loader,
//! batcher and augmentation works on.

use ndarray::ArrayView4;
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};

/// Side of a CIFAR image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Number of colour channels.
pub const CHANNELS: usize = 3;
/// Bytes of pixel data per image (3 x 32 x 32, channel-major).
pub const IMAGE_BYTES: usize = CHANNELS * IMAGE_SIDE * IMAGE_SIDE;

/// A set of 32x32 RGB images with labels, stored as raw bytes.
///
/// `images` holds `len() * IMAGE_BYTES` bytes; image `i` is
/// `images[i*3072..(i+1)*3072]`, channel-major (R plane, G plane, B plane),
/// exactly as in the CIFAR binary files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSet {
    /// Pixel bytes, `N * 3 * 32 * 32`, NCHW order.
    pub images: Vec<u8>,
    /// Class label of each image (CIFAR-100: the fine label).
    pub labels: Vec<u8>,
    /// CIFAR-100 superclass label of each image; `None` for CIFAR-10.
    pub coarse_labels: Option<Vec<u8>>,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes (length of `classes`).
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The 3072 pixel bytes of image `i` (CHW). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// The pixels as an `(N, 3, 32, 32)` array view.
    ///
    /// ```
    /// let set = datasets::synthetic::synthetic_images(5, 1);
    /// assert_eq!(set.view().shape(), &[5, 3, 32, 32]);
    /// ```
    pub fn view(&self) -> ArrayView4<'_, u8> {
        ArrayView4::from_shape((self.len(), CHANNELS, IMAGE_SIDE, IMAGE_SIDE), &self.images)
            .expect("ImageSet invariant: images.len() == labels.len() * 3072")
    }

    /// How many images each class has.
    ///
    /// ```
    /// let set = datasets::synthetic::synthetic_images(20, 1);
    /// assert_eq!(set.class_counts().iter().sum::<usize>(), 20);
    /// ```
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.num_classes()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// A new set with the images at `indices`, in that order.
    ///
    /// Returns an error if an index is out of range.
    ///
    /// ```
    /// let set = datasets::synthetic::synthetic_images(10, 1);
    /// let sub = set.subset(&[3, 1]).unwrap();
    /// assert_eq!(sub.labels, vec![set.labels[3], set.labels[1]]);
    /// assert!(set.subset(&[10]).is_err());
    /// ```
    pub fn subset(&self, indices: &[usize]) -> Result<ImageSet> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DatasetError::invalid(
                format!(
                    "subset index {bad} out of range for a set of {} images",
                    self.len()
                ),
                "pass indices below the set's len()",
            ));
        }
        let mut images = Vec::with_capacity(indices.len() * IMAGE_BYTES);
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Ok(ImageSet {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            coarse_labels: self
                .coarse_labels
                .as_ref()
                .map(|c| indices.iter().map(|&i| c[i]).collect()),
            classes: self.classes.clone(),
        })
    }

    /// Splits off a seeded dev set of `dev_size` images: returns `(train, dev)`.
    /// See [`crate::split::dev_split`].
    ///
    /// ```
    /// let set = datasets::synthetic::synthetic_images(100, 1);
    /// let (train, dev) = set.split_dev(10, 42).unwrap();
    /// assert_eq!((train.len(), dev.len()), (90, 10));
    /// ```
    pub fn split_dev(&self, dev_size: usize, seed: u64) -> Result<(ImageSet, ImageSet)> {
        let split = crate::split::dev_split(self.len(), dev_size, seed)?;
        Ok((self.subset(&split.train)?, self.subset(&split.dev)?))
    }

    /// Encodes the set as CIFAR binary records (3073 bytes per image, or 3074
    /// with coarse labels), the inverse of parsing. Useful to build test files.
    ///
    /// ```
    /// let set = datasets::synthetic::synthetic_images(3, 1);
    /// assert_eq!(set.to_records().len(), 3 * 3073);
    /// ```
    pub fn to_records(&self) -> Vec<u8> {
        let rec = IMAGE_BYTES + 1 + usize::from(self.coarse_labels.is_some());
        let mut out = Vec::with_capacity(self.len() * rec);
        for i in 0..self.len() {
            if let Some(c) = &self.coarse_labels {
                out.push(c[i]);
            }
            out.push(self.labels[i]);
            out.extend_from_slice(self.image(i));
        }
        out
    }
}

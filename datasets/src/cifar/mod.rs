//! CIFAR-10 and CIFAR-100 in their binary formats.
//!
//! * CIFAR-10: directory `cifar-10-batches-bin/` with `data_batch_1..5.bin`
//!   (training) and `test_batch.bin`, each 10 000 records of 3073 bytes:
//!   `<label 0..9><1024 R><1024 G><1024 B>` (planes 32x32, row-major).
//! * CIFAR-100: directory `cifar-100-binary/` with `train.bin` (50 000
//!   records) and `test.bin` (10 000), 3074-byte records:
//!   `<coarse label 0..19><fine label 0..99><3072 pixel bytes>`.
//!
//! [`Cifar::load`] finds the data ([`crate::data_dir`]), extracts the archive
//! if only the archive is present, downloads it if allowed and nothing is
//! present, verifies the files and reads them in parallel.
//!
//! ## Verification
//!
//! After an extraction the files are checked in full (sizes, record
//! structure, labels, MD5 against the official values) *before* the
//! directory is moved into place, and the checksums are recorded in a marker
//! file `.verified` inside the directory. Later loads with
//! [`Verify::Auto`] (the default) only check sizes, record structure and
//! labels; [`Verify::Full`] always recomputes the MD5s.
//!
//! The module is split by concept: [`ImageSet`] (`image_set`), the class names (`classes`),
//! what a release is made of ([`CifarSpec`], `spec`), fetching and verifying it (`fetch`)
//! and parsing its records (`records`); [`Cifar`] here ties them together.

use std::path::{Path, PathBuf};

mod classes;
mod fetch;
mod image_set;
mod records;
mod spec;

pub use classes::{CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES};
pub use fetch::{LoadOptions, VERIFIED_MARKER, Verify};
pub use image_set::{CHANNELS, IMAGE_BYTES, IMAGE_SIDE, ImageSet};
pub use records::parse_records;
pub(crate) use spec::url_from_env;
pub use spec::{CIFAR10_URL_ENV, CIFAR100_URL_ENV, CifarSpec, FileSpec, Layout};

use crate::error::Result;
use fetch::{ensure_available, marker_ok, verify_checksums, write_marker};
use records::read_dir;

/// A loaded CIFAR dataset: the official training and test sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cifar {
    /// The training set (50 000 images for the official releases), in file order.
    pub train: ImageSet,
    /// The test set (10 000 images), in file order.
    pub test: ImageSet,
}

impl Cifar {
    /// Loads CIFAR-10 from `data_dir` (see [`crate::data_dir`]).
    ///
    /// ```no_run
    /// let dir = datasets::data_dir(None);
    /// let cifar = datasets::Cifar::cifar10(&dir, &datasets::LoadOptions::default())?;
    /// assert_eq!(cifar.train.len(), 50_000);
    /// # Ok::<(), datasets::DatasetError>(())
    /// ```
    pub fn cifar10(data_dir: &Path, opts: &LoadOptions) -> Result<Cifar> {
        Self::load(&CifarSpec::cifar10(), data_dir, opts)
    }

    /// Loads CIFAR-100 from `data_dir`; `labels` are the fine labels and
    /// `coarse_labels` the superclasses.
    ///
    /// ```no_run
    /// let dir = datasets::data_dir(None);
    /// let cifar = datasets::Cifar::cifar100(&dir, &datasets::LoadOptions::default())?;
    /// assert_eq!(cifar.train.num_classes(), 100);
    /// # Ok::<(), datasets::DatasetError>(())
    /// ```
    pub fn cifar100(data_dir: &Path, opts: &LoadOptions) -> Result<Cifar> {
        Self::load(&CifarSpec::cifar100(), data_dir, opts)
    }

    /// Loads the dataset described by `spec` from `data_dir`: extracts the
    /// archive if needed, downloads it first if allowed and absent, verifies
    /// (see [`Verify`]) and parses all files in parallel.
    ///
    /// ```
    /// use datasets::{Cifar, CifarSpec, LoadOptions, synthetic};
    /// // A tiny CIFAR-10-format dataset written to a temporary directory.
    /// let dir = tempfile::tempdir().unwrap();
    /// let spec = synthetic::write_small_cifar10(dir.path(), 20, 5, 1).unwrap();
    /// let cifar = Cifar::load(&spec, dir.path(), &LoadOptions::default()).unwrap();
    /// assert_eq!((cifar.train.len(), cifar.test.len()), (20, 5));
    /// ```
    pub fn load(spec: &CifarSpec, data_dir: &Path, opts: &LoadOptions) -> Result<Cifar> {
        let dir = ensure_available(spec, data_dir, opts)?;
        Self::load_dir(spec, &dir, opts)
    }

    /// Makes sure the dataset is in `data_dir`, without reading it: extracts the archive
    /// if only the archive is there, downloads it first if allowed and absent (see
    /// [`Cifar::load`]); returns the dataset directory. A command calls this up front so
    /// that a missing dataset is fetched (or reported) before any work starts.
    ///
    /// ```
    /// use datasets::{Cifar, LoadOptions, synthetic};
    /// let dir = tempfile::tempdir().unwrap();
    /// let (spec, bytes) = synthetic::small_cifar10_archive(10, 5, 1).unwrap();
    /// std::fs::write(dir.path().join(&spec.archive_name), bytes).unwrap();
    /// let d = Cifar::prepare(&spec, dir.path(), &LoadOptions::default()).unwrap();
    /// assert!(d.join("data_batch_1.bin").is_file());
    /// ```
    pub fn prepare(spec: &CifarSpec, data_dir: &Path, opts: &LoadOptions) -> Result<PathBuf> {
        ensure_available(spec, data_dir, opts)
    }

    fn load_dir(spec: &CifarSpec, dir: &Path, opts: &LoadOptions) -> Result<Cifar> {
        let dir = dir.to_path_buf();
        let verified_now = matches!(opts.verify, Verify::Full)
            || (opts.verify == Verify::Auto && !marker_ok(spec, &dir));
        if verified_now {
            let sums = verify_checksums(spec, &dir)?;
            if opts.verify == Verify::Auto {
                // Best effort: a read-only data dir just means we verify again next time.
                let _ = write_marker(&dir, &sums);
            }
        }
        let (train, test) = read_dir(spec, &dir)?;
        Ok(Cifar { train, test })
    }
}

#[cfg(test)]
mod tests;

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

use std::fs;
use std::path::{Path, PathBuf};

use ndarray::ArrayView4;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::archive;
use crate::checksum::{self, Checksum};
use crate::download::{self, FetchOptions};
use crate::error::{DatasetError, Result};

/// Side of a CIFAR image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Number of colour channels.
pub const CHANNELS: usize = 3;
/// Bytes of pixel data per image (3 x 32 x 32, channel-major).
pub const IMAGE_BYTES: usize = CHANNELS * IMAGE_SIDE * IMAGE_SIDE;

/// Name of the marker file written after a successful full verification.
pub const VERIFIED_MARKER: &str = ".verified";

/// The ten CIFAR-10 class names, label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The twenty CIFAR-100 superclass (coarse) names, label order.
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// The hundred CIFAR-100 fine class names, label order (alphabetical).
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

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

/// Record layout of a CIFAR binary file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `<label><3072 pixels>`, 3073 bytes, labels below 10.
    Cifar10,
    /// `<coarse><fine><3072 pixels>`, 3074 bytes, coarse below 20, fine below 100.
    Cifar100,
}

impl Layout {
    /// Bytes per record.
    pub fn record_len(self) -> usize {
        match self {
            Layout::Cifar10 => IMAGE_BYTES + 1,
            Layout::Cifar100 => IMAGE_BYTES + 2,
        }
    }
}

/// One expected data file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// File name inside the dataset directory.
    pub name: String,
    /// Number of records it must hold.
    pub records: usize,
    /// Official MD5, if known.
    pub md5: Option<String>,
}

impl FileSpec {
    fn new(name: &str, records: usize, md5: Option<&str>) -> Self {
        FileSpec {
            name: name.to_string(),
            records,
            md5: md5.map(str::to_string),
        }
    }
}

/// Everything needed to find, fetch, verify and parse one CIFAR dataset.
///
/// Use [`CifarSpec::cifar10`] or [`CifarSpec::cifar100`]; the fields are public
/// so that tests (or mirrors) can point at another URL or at small files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CifarSpec {
    /// Human name used in messages ("CIFAR-10").
    pub name: String,
    /// Directory name inside the data directory (and inside the archive).
    pub dir_name: String,
    /// Archive file name inside the data directory.
    pub archive_name: String,
    /// Where to download the archive from.
    pub url: String,
    /// Known-good digests of the archive; a download must match one of them before it is
    /// extracted (empty: not checked). Not applied to an archive the user placed: repacked
    /// archives are fine if their files verify.
    pub archive_checksums: Vec<Checksum>,
    /// Record layout.
    pub layout: Layout,
    /// Training files, in order.
    pub train_files: Vec<FileSpec>,
    /// Test files, in order.
    pub test_files: Vec<FileSpec>,
    /// Class names (fine classes for CIFAR-100).
    pub classes: Vec<String>,
}

impl CifarSpec {
    /// The official CIFAR-10 binary release; the download URL is `$NAO_CIFAR10_URL` when
    /// that is set (a mirror), else the official one.
    ///
    /// ```
    /// let spec = datasets::CifarSpec::cifar10();
    /// assert_eq!(spec.train_files.len(), 5);
    /// assert_eq!(spec.layout.record_len(), 3073);
    /// ```
    pub fn cifar10() -> Self {
        let md5s = [
            ("data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"),
            ("data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"),
            ("data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"),
            ("data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"),
            ("data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"),
        ];
        CifarSpec {
            name: "CIFAR-10".into(),
            dir_name: "cifar-10-batches-bin".into(),
            archive_name: "cifar-10-binary.tar.gz".into(),
            url: url_from_env(
                CIFAR10_URL_ENV,
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            ),
            // The official archive (md5 as published with it), and the deterministic repack of
            // the same six files in this project's shared data (sha256 from its README).
            archive_checksums: vec![
                Checksum::Md5("c32a1d4ab5d03f1284b67883e8d87530".into()),
                Checksum::Sha256(
                    "084996272b7c94feecbc309421d2777b0a5996de4193fd607bd0f84e4e550501".into(),
                ),
            ],
            layout: Layout::Cifar10,
            train_files: md5s
                .iter()
                .map(|(n, m)| FileSpec::new(n, 10_000, Some(m)))
                .collect(),
            test_files: vec![FileSpec::new(
                "test_batch.bin",
                10_000,
                Some("803d5f7f4d78ea53de84dbe85f74fb6d"),
            )],
            classes: CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The official CIFAR-100 binary release; the download URL is `$NAO_CIFAR100_URL` when
    /// that is set, else the official one.
    ///
    /// Per-file MD5s are not pinned (no official list is available offline):
    /// full verification checks sizes, record structure and label ranges.
    ///
    /// ```
    /// let spec = datasets::CifarSpec::cifar100();
    /// assert_eq!(spec.layout.record_len(), 3074);
    /// assert_eq!(spec.classes.len(), 100);
    /// ```
    pub fn cifar100() -> Self {
        CifarSpec {
            name: "CIFAR-100".into(),
            dir_name: "cifar-100-binary".into(),
            archive_name: "cifar-100-binary.tar.gz".into(),
            url: url_from_env(
                CIFAR100_URL_ENV,
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            ),
            // The official archive's md5, as public loaders pin it.
            archive_checksums: vec![Checksum::Md5("03b5dce01913d631647c71ecec9e9cb8".into())],
            layout: Layout::Cifar100,
            train_files: vec![FileSpec::new("train.bin", 50_000, None)],
            test_files: vec![FileSpec::new("test.bin", 10_000, None)],
            classes: CIFAR100_FINE_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    fn all_files(&self) -> impl Iterator<Item = &FileSpec> {
        self.train_files.iter().chain(self.test_files.iter())
    }

    fn expected_bytes(&self, f: &FileSpec) -> u64 {
        (f.records * self.layout.record_len()) as u64
    }
}

/// Environment variable overriding the CIFAR-10 archive's URL (a mirror, or a test server).
pub const CIFAR10_URL_ENV: &str = "NAO_CIFAR10_URL";
/// Environment variable overriding the CIFAR-100 archive's URL.
pub const CIFAR100_URL_ENV: &str = "NAO_CIFAR100_URL";

/// `$var` if set and not empty, else `default`.
pub(crate) fn url_from_env(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => default.to_string(),
    }
}

/// How much checking [`Cifar::load`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Verify {
    /// Full check (MD5s) when the directory has no `.verified` marker, then
    /// write the marker; with a marker, sizes/structure/labels only.
    #[default]
    Auto,
    /// Always recompute and compare the MD5s (plus sizes, structure, labels).
    Full,
    /// Sizes, structure and labels only; never MD5.
    Quick,
}

/// Options for [`Cifar::load`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Download the archive from the spec's URL when neither the directory nor
    /// the archive is present. Off by default: offline setups get a clear
    /// error saying where to put the file.
    pub allow_download: bool,
    /// How much to verify.
    pub verify: Verify,
    /// Show a progress bar while downloading (plain lines when stderr is not a terminal).
    pub progress: bool,
    /// Retries of a broken download and the pause between them (`progress` above wins
    /// over the one in here).
    #[serde(skip)]
    pub fetch: FetchOptions,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            allow_download: false,
            verify: Verify::Auto,
            progress: true,
            fetch: FetchOptions::default(),
        }
    }
}

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
        read_dir(spec, &dir)
    }
}

fn refetch_fix(spec: &CifarSpec, dir: &Path) -> String {
    format!(
        "delete {} and load again so that it is re-extracted from {} (or re-downloaded from {})",
        dir.display(),
        spec.archive_name,
        spec.url
    )
}

/// Makes sure the extracted directory exists (extracting or downloading as
/// needed) and returns its path.
fn ensure_available(spec: &CifarSpec, data_dir: &Path, opts: &LoadOptions) -> Result<PathBuf> {
    let dir = data_dir.join(&spec.dir_name);
    if dir.is_dir() {
        return Ok(dir);
    }
    let archive_path = data_dir.join(&spec.archive_name);
    if archive_path.is_file() {
        extract_and_verify(spec, &archive_path, data_dir)?;
        return Ok(dir);
    }
    if !opts.allow_download {
        return Err(DatasetError::NotFound {
            dataset: spec.name.clone(),
            extracted: dir,
            archive: archive_path,
            url: spec.url.clone(),
        });
    }
    fs::create_dir_all(data_dir).map_err(|e| DatasetError::io("create directory", data_dir, e))?;
    download::download(
        &spec.url,
        &archive_path,
        &spec.archive_checksums,
        &FetchOptions {
            progress: opts.progress,
            ..opts.fetch.clone()
        },
    )?;
    if let Err(e) = extract_and_verify(spec, &archive_path, data_dir) {
        // We fetched it, and it is unusable: do not leave it to be mistaken for a good one.
        let _ = fs::remove_file(&archive_path);
        return Err(e);
    }
    Ok(dir)
}

fn extract_and_verify(spec: &CifarSpec, archive_path: &Path, data_dir: &Path) -> Result<()> {
    archive::extract_dir(archive_path, data_dir, &spec.dir_name, |tmp_dir| {
        let bad_archive = |e: DatasetError| DatasetError::BadArchive {
            path: archive_path.to_path_buf(),
            reason: e.to_string(),
        };
        let sums = verify_checksums(spec, tmp_dir).map_err(bad_archive)?;
        // Parse once to check record structure and labels before accepting.
        read_dir(spec, tmp_dir).map_err(bad_archive)?;
        write_marker(tmp_dir, &sums)
    })
}

/// Checks sizes and MD5s of every file; returns `(name, md5)` pairs.
fn verify_checksums(spec: &CifarSpec, dir: &Path) -> Result<Vec<(String, String)>> {
    let files: Vec<&FileSpec> = spec.all_files().collect();
    files
        .par_iter()
        .map(|f| {
            let path = dir.join(&f.name);
            check_size(spec, f, &path, dir)?;
            let actual = checksum::md5_file(&path)?;
            if let Some(expected) = &f.md5
                && !expected.eq_ignore_ascii_case(&actual)
            {
                return Err(DatasetError::ChecksumMismatch {
                    path,
                    expected: expected.clone(),
                    actual,
                    fix: refetch_fix(spec, dir),
                });
            }
            Ok((f.name.clone(), actual))
        })
        .collect()
}

fn check_size(spec: &CifarSpec, f: &FileSpec, path: &Path, dir: &Path) -> Result<u64> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DatasetError::MissingFile {
                path: path.to_path_buf(),
                fix: refetch_fix(spec, dir),
            });
        }
        Err(e) => return Err(DatasetError::io("read metadata of", path, e)),
    };
    check_len(spec, f, path, dir, meta.len())?;
    Ok(meta.len())
}

fn check_len(spec: &CifarSpec, f: &FileSpec, path: &Path, dir: &Path, len: u64) -> Result<()> {
    let rec = spec.layout.record_len();
    if !len.is_multiple_of(rec as u64) {
        return Err(DatasetError::TruncatedRecord {
            path: path.to_path_buf(),
            len,
            record_len: rec,
            fix: refetch_fix(spec, dir),
        });
    }
    let expected = spec.expected_bytes(f);
    if len != expected {
        return Err(DatasetError::WrongSize {
            path: path.to_path_buf(),
            expected,
            actual: len,
            fix: refetch_fix(spec, dir),
        });
    }
    Ok(())
}

fn marker_ok(spec: &CifarSpec, dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(VERIFIED_MARKER)) else {
        return false;
    };
    spec.all_files().all(|f| {
        text.lines().any(|line| {
            let mut it = line.split_whitespace();
            let (Some(sum), Some(name)) = (it.next(), it.next()) else {
                return false;
            };
            name == f.name && f.md5.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(sum))
        })
    })
}

fn write_marker(dir: &Path, sums: &[(String, String)]) -> Result<()> {
    let text: String = sums
        .iter()
        .map(|(name, sum)| format!("{sum}  {name}\n"))
        .collect();
    let path = dir.join(VERIFIED_MARKER);
    atomic_file::write_atomic(&path, text.as_bytes())
        .map_err(|e| DatasetError::io("write", &path, e))
}

/// Reads and parses every file of the spec (in parallel), checking sizes,
/// record structure and label ranges. Each file is parsed straight into its
/// slice of the final buffers (no concatenation copy).
fn read_dir(spec: &CifarSpec, dir: &Path) -> Result<Cifar> {
    for f in spec.all_files() {
        check_size(spec, f, &dir.join(&f.name), dir)?;
    }
    let train = read_files(spec, &spec.train_files, dir)?;
    let test = read_files(spec, &spec.test_files, dir)?;
    Ok(Cifar { train, test })
}

/// One file's share of the output buffers.
struct Slot<'a> {
    file: &'a FileSpec,
    images: &'a mut [u8],
    labels: &'a mut [u8],
    coarse: Option<&'a mut [u8]>,
}

fn read_files(spec: &CifarSpec, files: &[FileSpec], dir: &Path) -> Result<ImageSet> {
    let n: usize = files.iter().map(|f| f.records).sum();
    let mut images = vec![0u8; n * IMAGE_BYTES];
    let mut labels = vec![0u8; n];
    let mut coarse = (spec.layout == Layout::Cifar100).then(|| vec![0u8; n]);
    let mut slots = Vec::with_capacity(files.len());
    {
        let (mut img_rest, mut lab_rest) = (images.as_mut_slice(), labels.as_mut_slice());
        let mut coarse_rest = coarse.as_deref_mut();
        for file in files {
            let (img, ir) = img_rest.split_at_mut(file.records * IMAGE_BYTES);
            let (lab, lr) = lab_rest.split_at_mut(file.records);
            let c = coarse_rest.take().map(|c| {
                let (a, b) = c.split_at_mut(file.records);
                coarse_rest = Some(b);
                a
            });
            (img_rest, lab_rest) = (ir, lr);
            slots.push(Slot {
                file,
                images: img,
                labels: lab,
                coarse: c,
            });
        }
    }
    slots.into_par_iter().try_for_each(|slot| {
        let path = dir.join(&slot.file.name);
        let bytes = fs::read(&path).map_err(|e| DatasetError::io("read", &path, e))?;
        check_len(spec, slot.file, &path, dir, bytes.len() as u64)?;
        parse_into(
            &bytes,
            spec.layout,
            spec.classes.len(),
            &path,
            slot.images,
            slot.labels,
            slot.coarse,
        )
        .map_err(|e| with_fix(e, refetch_fix(spec, dir)))
    })?;
    Ok(ImageSet {
        images,
        labels,
        coarse_labels: coarse,
        classes: spec.classes.clone(),
    })
}

fn with_fix(e: DatasetError, new_fix: String) -> DatasetError {
    match e {
        DatasetError::LabelOutOfRange {
            path,
            record,
            kind,
            label,
            limit,
            ..
        } => DatasetError::LabelOutOfRange {
            path,
            record,
            kind,
            label,
            limit,
            fix: new_fix,
        },
        other => other,
    }
}

/// Parses CIFAR binary records from memory.
///
/// `num_classes` bounds the (fine) label; CIFAR-100 coarse labels must be
/// below 20. `path` is only used in error messages.
///
/// ```
/// use datasets::cifar::{Layout, parse_records};
/// let set = datasets::synthetic::synthetic_images(4, 3);
/// let parsed = parse_records(&set.to_records(), Layout::Cifar10, 10, "mem".as_ref()).unwrap();
/// assert_eq!(parsed.images, set.images);
/// assert_eq!(parsed.labels, set.labels);
/// ```
pub fn parse_records(
    bytes: &[u8],
    layout: Layout,
    num_classes: usize,
    path: &Path,
) -> Result<ImageSet> {
    let rec = layout.record_len();
    if !bytes.len().is_multiple_of(rec) {
        return Err(DatasetError::TruncatedRecord {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            record_len: rec,
            fix: format!("delete {} and extract or download it again", path.display()),
        });
    }
    let n = bytes.len() / rec;
    let mut images = vec![0u8; n * IMAGE_BYTES];
    let mut labels = vec![0u8; n];
    let mut coarse = (layout == Layout::Cifar100).then(|| vec![0u8; n]);
    parse_into(
        bytes,
        layout,
        num_classes,
        path,
        &mut images,
        &mut labels,
        coarse.as_deref_mut(),
    )?;
    Ok(ImageSet {
        images,
        labels,
        coarse_labels: coarse,
        classes: Vec::new(),
    })
}

/// Parses whole records of `bytes` into pre-sized output slices.
fn parse_into(
    bytes: &[u8],
    layout: Layout,
    num_classes: usize,
    path: &Path,
    images: &mut [u8],
    labels: &mut [u8],
    mut coarse: Option<&mut [u8]>,
) -> Result<()> {
    let rec = layout.record_len();
    let fix = || format!("delete {} and extract or download it again", path.display());
    let head = rec - IMAGE_BYTES;
    for (i, (r, img)) in bytes
        .chunks_exact(rec)
        .zip(images.chunks_exact_mut(IMAGE_BYTES))
        .enumerate()
    {
        if let Some(c) = coarse.as_deref_mut() {
            if r[0] as usize >= CIFAR100_COARSE_CLASSES.len() {
                return Err(DatasetError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    record: i,
                    kind: "coarse",
                    label: r[0],
                    limit: CIFAR100_COARSE_CLASSES.len(),
                    fix: fix(),
                });
            }
            c[i] = r[0];
        }
        let label = r[head - 1];
        if label as usize >= num_classes {
            return Err(DatasetError::LabelOutOfRange {
                path: path.to_path_buf(),
                record: i,
                kind: if layout == Layout::Cifar100 {
                    "fine"
                } else {
                    "class"
                },
                label,
                limit: num_classes,
                fix: fix(),
            });
        }
        labels[i] = label;
        img.copy_from_slice(&r[head..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    fn small(dir: &Path) -> CifarSpec {
        synthetic::write_small_cifar10(dir, 30, 10, 5).unwrap()
    }

    fn load_err(spec: &CifarSpec, dir: &Path, verify: Verify) -> String {
        let opts = LoadOptions {
            verify,
            ..LoadOptions::default()
        };
        Cifar::load(spec, dir, &opts).unwrap_err().to_string()
    }

    #[test]
    fn roundtrip_and_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = small(tmp.path());
        let c = Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
        assert_eq!(c.train.len(), 30);
        assert_eq!(c.test.len(), 10);
        assert_eq!(c.train.classes.len(), 10);
        assert!(
            tmp.path()
                .join(&spec.dir_name)
                .join(VERIFIED_MARKER)
                .is_file()
        );
        assert!(marker_ok(&spec, &tmp.path().join(&spec.dir_name)));
    }

    #[test]
    fn missing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = small(tmp.path());
        let f = tmp.path().join(&spec.dir_name).join("data_batch_2.bin");
        fs::remove_file(&f).unwrap();
        let msg = load_err(&spec, tmp.path(), Verify::Quick);
        assert!(
            msg.contains("missing file") && msg.contains("data_batch_2.bin"),
            "{msg}"
        );
        assert!(msg.contains("Fix: delete"), "{msg}");
    }

    #[test]
    fn wrong_size_and_truncated_record() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = small(tmp.path());
        let f = tmp.path().join(&spec.dir_name).join("data_batch_3.bin");
        let bytes = fs::read(&f).unwrap();
        fs::write(&f, &bytes[..bytes.len() - 3073]).unwrap();
        let msg = load_err(&spec, tmp.path(), Verify::Quick);
        assert!(
            msg.contains("data_batch_3.bin") && msg.contains("expected"),
            "{msg}"
        );
        assert!(msg.contains("Fix: delete"), "{msg}");
        fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
        let msg = load_err(&spec, tmp.path(), Verify::Quick);
        assert!(msg.contains("data_batch_3.bin is truncated"), "{msg}");
        assert!(msg.contains("Fix: delete"), "{msg}");
    }

    #[test]
    fn label_out_of_range() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = small(tmp.path());
        let f = tmp.path().join(&spec.dir_name).join("test_batch.bin");
        let mut bytes = fs::read(&f).unwrap();
        bytes[3073 * 2] = 10;
        fs::write(&f, &bytes).unwrap();
        let msg = load_err(&spec, tmp.path(), Verify::Quick);
        assert!(
            msg.contains("test_batch.bin") && msg.contains("record 2"),
            "{msg}"
        );
        assert!(msg.contains("label 10"), "{msg}");
        assert!(msg.contains("Fix: delete"), "{msg}");
    }

    #[test]
    fn bad_checksum_detected_only_when_asked_after_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = small(tmp.path());
        // First load verifies and writes the marker.
        Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
        let f = tmp.path().join(&spec.dir_name).join("data_batch_1.bin");
        let mut bytes = fs::read(&f).unwrap();
        bytes[5000] ^= 0xFF;
        fs::write(&f, &bytes).unwrap();
        // Marker present: Auto trusts sizes.
        Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
        let msg = load_err(&spec, tmp.path(), Verify::Full);
        assert!(
            msg.contains("bad checksum for") && msg.contains("data_batch_1.bin"),
            "{msg}"
        );
        assert!(msg.contains("Fix: delete"), "{msg}");
    }

    #[test]
    fn not_found_offline_says_where_to_put_it() {
        let tmp = tempfile::tempdir().unwrap();
        let msg = Cifar::cifar10(tmp.path(), &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");
        assert!(
            msg.contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
            "{msg}"
        );
        assert!(msg.contains("allow_download"), "{msg}");
    }

    #[test]
    fn cifar100_records() {
        let set = synthetic::synthetic_images(6, 2);
        let mut with_coarse = set.clone();
        with_coarse.coarse_labels = Some(set.labels.iter().map(|l| l % 20).collect());
        let bytes = with_coarse.to_records();
        let p = parse_records(&bytes, Layout::Cifar100, 100, Path::new("train.bin")).unwrap();
        assert_eq!(p.coarse_labels, with_coarse.coarse_labels);
        assert_eq!(p.images, set.images);
        let mut bad = bytes.clone();
        bad[3074] = 25;
        let msg = parse_records(&bad, Layout::Cifar100, 100, Path::new("train.bin"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("train.bin") && msg.contains("coarse label 25"),
            "{msg}"
        );
    }

    #[test]
    fn cifar100_load_from_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = CifarSpec::cifar100();
        spec.train_files[0].records = 8;
        spec.test_files[0].records = 4;
        let dir = tmp.path().join(&spec.dir_name);
        fs::create_dir_all(&dir).unwrap();
        for (f, n) in [("train.bin", 8), ("test.bin", 4)] {
            let mut s = synthetic::synthetic_images(n, 9);
            s.coarse_labels = Some(s.labels.clone());
            fs::write(dir.join(f), s.to_records()).unwrap();
        }
        let c = Cifar::load(&spec, tmp.path(), &LoadOptions::default()).unwrap();
        assert_eq!(c.train.len(), 8);
        assert_eq!(c.test.coarse_labels.as_ref().map(Vec::len), Some(4));
    }
}

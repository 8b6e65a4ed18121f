//! What a CIFAR release is made of: its record [`Layout`], its files ([`FileSpec`]) and
//! where to fetch it ([`CifarSpec`]).

use serde::{Deserialize, Serialize};

use super::classes::{CIFAR10_CLASSES, CIFAR100_FINE_CLASSES};
use super::image_set::IMAGE_BYTES;
use crate::checksum::Checksum;

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

    /// The training files, then the test files.
    pub(super) fn all_files(&self) -> impl Iterator<Item = &FileSpec> {
        self.train_files.iter().chain(self.test_files.iter())
    }

    /// The size file `f` must have, in bytes.
    pub(super) fn expected_bytes(&self, f: &FileSpec) -> u64 {
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

//! # datasets
//!
//! Real data for the NAO framework, from files on disk (or a download) to
//! ready-to-use arrays. This crate does not depend on `autograd`: it yields
//! [`ndarray`] arrays and label vectors.
//!
//! * **CIFAR-10 / CIFAR-100** ([`cifar`]): binary records → [`ImageSet`], with
//!   archive extraction ([`archive`]), download ([`download`]) and MD5
//!   verification ([`checksum`]).
//! * **Splits** ([`split`]): a seeded dev split held out of the training set.
//! * **Preprocessing** ([`augment`]): per-channel normalisation, 4-pixel pad +
//!   random crop, horizontal flip, cutout.
//! * **Batching** ([`batcher`]): shuffled, augmented NCHW `f32` mini-batches
//!   assembled in parallel with rayon, reproducible from a seed.
//! * **Penn Treebank / WikiText-2** ([`ptb`]): vocabulary, token ids,
//!   batchify, BPTT windows (fixed or AWD-LSTM random length); fetching PTB
//!   when it is missing ([`ptb_download`]).
//! * **Synthetic data** ([`synthetic`]) for tests and examples.
//!
//! ## Where data lives
//!
//! [`data_dir`] resolves the data directory: an explicit path (the CLI's
//! `--data-dir`), else the `NAO_DATA_DIR` environment variable, else `./data`.
//! Expected layout inside it:
//!
//! ```text
//! cifar-10-batches-bin/   (or cifar-10-binary.tar.gz, extracted on first use)
//! cifar-100-binary/       (or cifar-100-binary.tar.gz)
//! ptb/ptb.{train,valid,test}.txt
//! wikitext-2/wiki.{train,valid,test}.tokens
//! ```
//!
//! ## Downloads
//!
//! With `LoadOptions::allow_download`, a missing dataset is downloaded
//! ([`download`]: progress bar, a `.part` file resumed with an HTTP range
//! request after an interruption, checksum checked before anything is
//! extracted). The URLs can be overridden with `NAO_CIFAR10_URL`,
//! `NAO_CIFAR100_URL` (the archive) and `NAO_PTB_URL` (the directory holding
//! `ptb.{train,valid,test}.txt`).
//!
//! ## Randomness
//!
//! Every random choice comes from [`rand_pcg::Pcg64Mcg`] seeded with
//! `seed_from_u64`, so results are reproducible for a given seed and crate
//! versions.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use datasets::{Augment, Batcher, BatcherConfig, ChannelStats, LastBatch, synthetic};
//!
//! let set = Arc::new(synthetic::synthetic_images(300, 7));
//! let stats = ChannelStats::compute(&set);
//! let cfg = BatcherConfig { batch_size: 128, augment: Augment::standard(), ..BatcherConfig::default() };
//! let batcher = Batcher::new(set, stats, cfg).unwrap();
//! let sizes: Vec<usize> = batcher.epoch(0).map(|b| b.labels.len()).collect();
//! assert_eq!(sizes, vec![128, 128, 44]); // LastBatch::Keep is the default
//! ```

#![warn(missing_docs)]

pub mod archive;
pub mod augment;
pub mod batcher;
pub mod checksum;
pub mod cifar;
pub mod download;
pub mod error;
pub mod ptb;
pub mod ptb_download;
pub mod split;
pub mod synthetic;
pub mod test_server;

use std::path::{Path, PathBuf};

pub use augment::{Augment, ChannelStats};
pub use batcher::{Batch, Batcher, BatcherConfig, LastBatch};
pub use cifar::{Cifar, CifarSpec, ImageSet, LoadOptions, Verify};
pub use error::{DatasetError, Result};
pub use ptb::{BpttWindow, BpttWindows, Corpus, SeqLen, Vocab, batchify};
pub use split::{Split, dev_split};

/// Name of the environment variable that points at the data directory.
pub const DATA_DIR_ENV: &str = "NAO_DATA_DIR";

/// Resolves the data directory: `explicit` (e.g. the CLI's `--data-dir`) if
/// given, else `$NAO_DATA_DIR` if set and non-empty, else `./data`.
///
/// ```
/// use std::path::Path;
/// assert_eq!(datasets::data_dir(Some(Path::new("/srv/data"))), Path::new("/srv/data"));
/// let resolved = datasets::data_dir(None); // $NAO_DATA_DIR or ./data
/// assert!(!resolved.as_os_str().is_empty());
/// ```
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("data"),
    }
}

/// Mixes several 64-bit values into one well-spread seed (SplitMix64 finaliser).
///
/// Used to derive independent per-image / per-epoch seeds from a base seed, so
/// that results do not depend on thread scheduling.
///
/// ```
/// let a = datasets::mix_seed(&[1, 2, 3]);
/// assert_eq!(a, datasets::mix_seed(&[1, 2, 3]));
/// assert_ne!(a, datasets::mix_seed(&[1, 2, 4]));
/// ```
pub fn mix_seed(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        h ^= p;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_wins() {
        assert_eq!(data_dir(Some(Path::new("x/y"))), PathBuf::from("x/y"));
    }
}

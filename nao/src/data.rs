//! The image datasets the commands train on (CIFAR-10, CIFAR-100), and making sure one is
//! on disk before any work starts: a missing dataset is downloaded (resumable, checked
//! against its known checksums, extracted and verified; see [`datasets::download`])
//! unless the command runs `--offline`, which never touches the network and says where
//! to put the files.

use std::path::{Path, PathBuf};

use datasets::{ChannelStats, Cifar, CifarSpec, ImageSet, LoadOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A CIFAR dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// CIFAR-10: 10 classes.
    #[default]
    Cifar10,
    /// CIFAR-100: its 100 fine classes.
    Cifar100,
}

impl Dataset {
    /// Where to find and fetch it (URL from `$NAO_CIFAR10_URL` / `$NAO_CIFAR100_URL` when set).
    pub fn spec(self) -> CifarSpec {
        match self {
            Dataset::Cifar10 => CifarSpec::cifar10(),
            Dataset::Cifar100 => CifarSpec::cifar100(),
        }
    }

    /// Number of classes (CIFAR-100: fine labels).
    pub fn classes(self) -> usize {
        match self {
            Dataset::Cifar10 => 10,
            Dataset::Cifar100 => 100,
        }
    }

    /// Per-channel normalisation of the training set.
    pub fn stats(self) -> ChannelStats {
        match self {
            Dataset::Cifar10 => ChannelStats::CIFAR10,
            Dataset::Cifar100 => ChannelStats::CIFAR100,
        }
    }

    /// Human name ("CIFAR-100").
    pub fn title(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "CIFAR-10",
            Dataset::Cifar100 => "CIFAR-100",
        }
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
        })
    }
}

impl std::str::FromStr for Dataset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "cifar10" => Ok(Dataset::Cifar10),
            "cifar100" => Ok(Dataset::Cifar100),
            _ => Err(format!("unknown dataset `{s}`; known: cifar10, cifar100")),
        }
    }
}

fn data_err(e: datasets::DatasetError) -> Error {
    Error::Config(e.to_string())
}

/// Makes sure `dataset` is in `data_dir`: present already, or extracted from its archive,
/// or (unless `offline`) downloaded first, with a progress bar on a terminal and plain
/// lines otherwise. Returns the dataset's directory.
pub fn prepare(dataset: Dataset, data_dir: &Path, offline: bool) -> Result<PathBuf> {
    let opts = LoadOptions {
        allow_download: !offline,
        progress: true,
        ..LoadOptions::default()
    };
    Cifar::prepare(&dataset.spec(), data_dir, &opts).map_err(data_err)
}

/// Makes sure Penn Treebank (`data_dir/ptb/ptb.{train,valid,test}.txt`) is on disk, as
/// [`prepare`] does for CIFAR: missing files are downloaded (`$NAO_PTB_URL` overrides the
/// source) and checked against their MD5s, unless `offline`. For the `nao ptb` command.
pub fn prepare_ptb(data_dir: &Path, offline: bool) -> Result<PathBuf> {
    let opts = LoadOptions {
        allow_download: !offline,
        progress: true,
        ..LoadOptions::default()
    };
    datasets::ptb_download::ensure_ptb(data_dir, &opts).map_err(data_err)
}

/// Loads `dataset` (which must be on disk; see [`prepare`]) and splits off the seeded
/// 5,000-image dev set: `(train, dev, test)`.
pub fn load_split(
    dataset: Dataset,
    data_dir: &Path,
    seed: u64,
) -> Result<(ImageSet, ImageSet, ImageSet)> {
    let c = Cifar::load(&dataset.spec(), data_dir, &LoadOptions::default()).map_err(data_err)?;
    let (train, dev) = c
        .train
        .split_dev(datasets::split::DEFAULT_DEV_SIZE, seed)
        .map_err(data_err)?;
    Ok((train, dev, c.test))
}

/// The whole training set (train and dev splits together) and the test set.
pub fn load_all(dataset: Dataset, data_dir: &Path) -> Result<(ImageSet, ImageSet)> {
    let c = Cifar::load(&dataset.spec(), data_dir, &LoadOptions::default()).map_err(data_err)?;
    Ok((c.train, c.test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in [Dataset::Cifar10, Dataset::Cifar100] {
            assert_eq!(d.to_string().parse::<Dataset>().unwrap(), d);
        }
        assert_eq!("CIFAR-100".parse::<Dataset>().unwrap(), Dataset::Cifar100);
        assert!("mnist".parse::<Dataset>().unwrap_err().contains("cifar100"));
        assert_eq!(
            Dataset::Cifar100.spec().classes.len(),
            Dataset::Cifar100.classes()
        );
    }

    #[test]
    fn offline_and_missing_says_where_to_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let msg = prepare(Dataset::Cifar100, dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(
                &dir.path()
                    .join("cifar-100-binary.tar.gz")
                    .display()
                    .to_string()
            ) && msg.contains("--offline"),
            "{msg}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn ptb_offline_and_missing_says_where_to_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let msg = prepare_ptb(dir.path(), true).unwrap_err().to_string();
        assert!(
            msg.contains(&dir.path().join("ptb/ptb.train.txt").display().to_string())
                && msg.contains("wojzaremba")
                && msg.contains("--offline"),
            "{msg}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

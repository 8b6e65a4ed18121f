//! The one error type of this crate.
//!
//! Every message names the file (or URL) involved and says how to fix the
//! problem, so that a user reading only the message knows what to do.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, fetching, verifying or reading data.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file could not be read, written, created or renamed.
    #[error(
        "cannot {action} {path}: {source}. Fix: check that the path exists, is readable/writable, and that the disk is not full"
    )]
    Io {
        /// What we were doing ("read", "create", "rename into", ...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A dataset file that must exist is not there.
    #[error("missing file {path}. Fix: {fix}")]
    MissingFile {
        /// The file that is missing.
        path: PathBuf,
        /// How to get it.
        fix: String,
    },

    /// Neither the extracted dataset nor its archive is present and downloading was not allowed.
    #[error(
        "{dataset} not found: neither {extracted} nor {archive} exists, and downloading is off. Fix: download {url} \
         (or get it from a mirror) and put it at {archive}; it is verified and extracted on first use. Or allow the \
         download: the `nao` command downloads it itself unless --offline is given (library: `LoadOptions::allow_download`)"
    )]
    NotFound {
        /// Human name of the dataset ("CIFAR-10").
        dataset: String,
        /// Where the extracted directory was expected.
        extracted: PathBuf,
        /// Where the archive was expected.
        archive: PathBuf,
        /// Canonical URL of the archive.
        url: String,
    },

    /// A file has a whole number of records but not the expected number of bytes.
    #[error(
        "{path} has {actual} bytes, expected {expected}: it is incomplete or not the official file. Fix: {fix}"
    )]
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Expected size in bytes.
        expected: u64,
        /// Actual size in bytes.
        actual: u64,
        /// How to recover.
        fix: String,
    },

    /// A file ends in the middle of a record.
    #[error(
        "{path} is truncated: {len} bytes is not a whole number of {record_len}-byte records. Fix: {fix}"
    )]
    TruncatedRecord {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The record length of the format.
        record_len: usize,
        /// How to recover.
        fix: String,
    },

    /// A label byte is outside the valid class range.
    #[error(
        "{path}: record {record} has {kind} label {label}, but labels must be below {limit}; the file is corrupt. Fix: {fix}"
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Record index inside the file.
        record: usize,
        /// "fine", "coarse" or "class".
        kind: &'static str,
        /// The offending label.
        label: u8,
        /// Number of classes.
        limit: usize,
        /// How to recover.
        fix: String,
    },

    /// An MD5 checksum does not match the official value.
    #[error("bad checksum for {path}: md5 is {actual}, expected {expected}. Fix: {fix}")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Official md5.
        expected: String,
        /// Computed md5.
        actual: String,
        /// How to recover.
        fix: String,
    },

    /// An archive is not a readable gzip'd tar (corrupt or truncated), or lacks the expected content.
    #[error("cannot extract archive {path}: {reason}. Fix: delete {path} and download it again")]
    BadArchive {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The HTTP download failed (connection, status code, or read error).
    #[error(
        "download of {url} failed: {reason}; nothing was written to {path}. Fix: check the network and retry, or download the file by hand and put it at {path}"
    )]
    Download {
        /// The URL.
        url: String,
        /// The destination file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The server closed the connection before sending the whole file.
    #[error(
        "download of {url} is incomplete: got {got} of {expected} bytes, kept in {part}; nothing was written to {path}. Fix: run again to resume from there (check the network), or download the file by hand and put it at {path}"
    )]
    IncompleteDownload {
        /// The URL.
        url: String,
        /// The destination file.
        path: PathBuf,
        /// The partial file kept for resuming.
        part: PathBuf,
        /// Bytes received.
        got: u64,
        /// Bytes announced by Content-Length.
        expected: u64,
    },

    /// A downloaded file matches none of the known-good checksums; it was deleted.
    #[error(
        "download of {url} is corrupt: its {actual} matches none of the known checksums ({expected}); it was deleted and nothing was written to {path}. Fix: run again to download it afresh (a proxy or mirror may have altered it), or download it by hand, check it, and put it at {path}"
    )]
    DownloadChecksum {
        /// The URL.
        url: String,
        /// The destination file.
        path: PathBuf,
        /// Known-good digests.
        expected: String,
        /// Digests of what arrived.
        actual: String,
    },

    /// A word of a validation or test text is not in the training vocabulary (and there is no `<unk>`).
    #[error(
        "{path}:{line}: word {word:?} is not in the training vocabulary and the vocabulary has no <unk>. Fix: use matching train/valid/test files (all from the same release), or map rare words to <unk> in the text"
    )]
    OutOfVocabulary {
        /// The text file (or `"<train text>"` etc. for in-memory text).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The word.
        word: String,
    },

    /// An argument is invalid (zero batch size, too little data, ...).
    #[error("invalid argument: {what}. Fix: {fix}")]
    InvalidArgument {
        /// What is wrong.
        what: String,
        /// How to fix it.
        fix: String,
    },
}

impl DatasetError {
    /// Builds an [`DatasetError::Io`] error.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        DatasetError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Builds an [`DatasetError::InvalidArgument`] error.
    pub(crate) fn invalid(what: impl Into<String>, fix: impl Into<String>) -> Self {
        DatasetError::InvalidArgument {
            what: what.into(),
            fix: fix.into(),
        }
    }
}

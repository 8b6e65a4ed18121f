//! The library's error type.

use std::path::PathBuf;

/// What can go wrong in the search machinery (the binary wraps these with `anyhow`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot write".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file or line could not be read.
    #[error("bad JSON in {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A lookup table is malformed or does not fit the request (the message says how).
    #[error("table {}: {msg}", path.display())]
    Table {
        /// The table file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// An architecture did not parse or validate.
    #[error(transparent)]
    Arch(#[from] models::space::ArchError),
    /// The surrogate (controller) failed to save or load its state.
    #[error("surrogate: {0}")]
    Surrogate(String),
    /// A setting is invalid, or a run directory does not fit the request.
    #[error("{0}")]
    Config(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an `io::Error` with its path.
pub(crate) fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}

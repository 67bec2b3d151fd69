//! The library's error type.

use std::path::PathBuf;

/// Errors from the dataset library. Messages name the file (and line) involved.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read or written.
    // The cause is part of the message, not `source()`: anyhow's `{:#}` would print it twice.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// `manifest.csv` (or another CSV/JSON input) is malformed.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A directory is not a dataset directory (it has no `manifest.csv`).
    #[error(
        "{0}: not a dataset directory (no manifest.csv); make one with `sleeve dataset import --from folder DIR --out DATASET`"
    )]
    NotADataset(PathBuf),
    /// A directory is neither a dataset (with `manifest.csv`) nor a folder-per-genre tree.
    #[error("{0}: not a dataset directory (no manifest.csv) and no genre sub-folders with images")]
    NoImages(PathBuf),
    /// Invalid options or arguments.
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            cause: source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

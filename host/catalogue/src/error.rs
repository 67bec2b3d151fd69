//! The library's error type.

use std::path::PathBuf;

/// Errors of catalogue building. Messages name the file (and line) involved.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueBuildError {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The CSV input is malformed.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number (0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// An existing catalogue file is refused.
    #[error("{path}: {cause}")]
    Catalogue {
        /// The catalogue file.
        path: PathBuf,
        /// Why.
        cause: sleeve_shared::catalogue::CatalogueError,
    },
    /// Invalid options or arguments.
    #[error("{0}")]
    Invalid(String),
}

/// Result with [`CatalogueBuildError`].
pub type Result<T, E = CatalogueBuildError> = std::result::Result<T, E>;

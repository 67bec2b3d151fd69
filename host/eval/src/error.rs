//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong computing a metric or drawing a plot.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The caller's data is inconsistent (lengths, ranges, non-finite values).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// plotters failed to draw.
    #[error("plotting failed: {0}")]
    Plot(String),
    /// Writing an output file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Serialising a report failed.
    #[error("serialising report: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Shorthand for an [`EvalError::InvalidInput`] built with `format!`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::error::EvalError::InvalidInput(format!($($arg)*))
    };
}
pub(crate) use invalid;

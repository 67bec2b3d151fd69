//! The one error type of this crate.

use std::path::PathBuf;

/// Why weights could not be read, checked, written or run.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not in the expected container format (not a TFLite flatbuffer, not a
    /// safetensors file, an unsupported tensor type, ...).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file is readable but is not a MobileNetV2 of the kind this crate handles.
    #[error("{source_name}: not a MobileNetV2 this reader understands: {message}")]
    Architecture {
        /// The file or description of where the weights came from.
        source_name: String,
        /// What does not match.
        message: String,
    },
    /// A torchvision state-dict key is missing.
    #[error("{path}: missing key `{key}`")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The missing key.
        key: String,
    },
    /// A tensor has an unexpected shape.
    #[error("{path}: tensor `{key}` has shape {actual:?}, expected {expected}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor's key or name.
        key: String,
        /// What was found.
        actual: Vec<usize>,
        /// What was expected, in words (e.g. `[32, 3, 3, 3]` or `[C, 1, 3, 3]`).
        expected: String,
    },
    /// Inconsistent in-memory weights or input (wrong lengths, channel mismatch).
    #[error("invalid weights or input: {0}")]
    Invalid(String),
}

impl WeightsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn arch(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Architecture {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = WeightsError> = std::result::Result<T, E>;

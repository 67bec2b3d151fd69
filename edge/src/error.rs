//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the edge runtime's library API.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The bundle directory or its manifest cannot be read.
    #[error("cannot read bundle manifest {path}: {error}")]
    BundleIo {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error (in the message, not a separate cause, so it is printed once).
        error: std::io::Error,
    },
    /// The manifest is not acceptable (format, preprocessing version, paths, hashes).
    #[error("bundle {path} is refused: {reason}")]
    BundleRefused {
        /// The bundle directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A model file cannot be loaded or optimised by tract.
    #[error("model {path}: {message}")]
    Model {
        /// The ONNX file.
        path: PathBuf,
        /// tract's error chain, flattened.
        message: String,
    },
    /// Inference failed or produced outputs of the wrong shape.
    #[error("inference failed ({model}): {message}")]
    Inference {
        /// Which model.
        model: &'static str,
        /// What went wrong.
        message: String,
    },
    /// An image could not be turned into a model input.
    #[error("preprocessing: {0}")]
    Preprocess(#[from] sleeve_shared::preprocess::PreprocessError),
    /// A frame source failed (it may be retried).
    #[error("frame source {source_name}: {message}")]
    Source {
        /// Which source.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// An image file could not be read or decoded.
    #[error("image {path}: {message}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A display or output could not be written.
    #[error("output {target}: {message}")]
    Output {
        /// Where it was going.
        target: String,
        /// What went wrong.
        message: String,
    },
}

impl EdgeError {
    /// A source error with a name and a message.
    pub fn source(name: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Source {
            source_name: name.into(),
            message: message.to_string(),
        }
    }
}

/// Result with [`EdgeError`].
pub type Result<T, E = EdgeError> = std::result::Result<T, E>;

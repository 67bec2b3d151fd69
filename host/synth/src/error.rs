//! Errors of the library API.

use std::path::PathBuf;

/// What can go wrong reading or writing synth data.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An image could not be decoded or encoded.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
    /// An image file cannot be read or decoded (or is over the size limits).
    #[error("{path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A JSON file does not parse or does not have the expected shape.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A COCO file parses but is inconsistent.
    #[error("{path}: {reason}")]
    BadCoco {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A label template is unusable.
    #[error("template {path}: {reason}")]
    BadTemplate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A folder holds no readable images.
    #[error("{path}: {reason}")]
    NoImages {
        /// The folder.
        path: PathBuf,
        /// What was looked for.
        reason: String,
    },
}

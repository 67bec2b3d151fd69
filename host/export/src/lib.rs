//! ONNX export, int8 quantization and model bundles for Sleeve.
//!
//! Pipeline: a trained burn module is traced to ONNX ([`burn_export`]), its graph is
//! cleaned up for tract ([`passes`]: names, Clip, BN folding), checked against burn
//! ([`parity`]), optionally quantized to int8 ([`quant`]), and written with its manifest
//! into a bundle directory ([`bundle`]) that `sleeve-edge` loads.
#![warn(missing_docs)]

pub mod bundle;
pub mod burn_export;
pub mod calibrate;
mod held_out;
pub mod images;
pub mod joint;
pub mod joint_bundle;
pub mod npy;
pub mod parity;
pub mod passes;
pub mod pipeline;
pub mod proto;
pub mod provenance;
pub mod quant;
pub mod runtime;
pub mod tiny;
pub mod trained;

/// Errors of the export library.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// burn-onnx could not trace or lower the module.
    #[error("burn-onnx export failed: {0}")]
    Export(String),
    /// The ONNX graph is not what a pass expects.
    #[error("ONNX graph: {0}")]
    Graph(String),
    /// tract refused or failed to run a model.
    #[error("tract: {0}")]
    Tract(String),
    /// tract does not reproduce burn within tolerance.
    #[error(
        "parity check failed: burn vs tract max |diff| {max_abs_diff:e} > tolerance {tolerance:e}"
    )]
    Parity {
        /// Observed worst difference.
        max_abs_diff: f32,
        /// Allowed difference.
        tolerance: f32,
    },
    /// A tensor has the wrong shape or size.
    #[error("tensor shape: {0}")]
    Shape(String),
}

/// A progress bar for long work (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    sleeve_shared::progress::bar(len, what.to_string())
}

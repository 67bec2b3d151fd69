//! Metrics and plots for Sleeve's models, with no ML-framework dependency.
//!
//! * [`classification`]: accuracy, top-k, per-class P/R/F1, confusion matrix,
//!   one-vs-rest ROC AUC, log loss, calibration (ECE);
//! * [`calibrate`]: temperature scaling and the abstain threshold (selective accuracy);
//! * [`roc`]: binary ROC curves, AUC with ties, recall at a fixed false-positive rate;
//! * [`detection`]: COCO-style single-class AP (AP@0.5, AP@[.5:.95]) and image-level metrics;
//! * [`knn`]: the k-nearest-neighbour baseline and [`features`]: colour histograms;
//! * [`pca`]: principal components for 2-D embedding plots;
//! * [`plot`]: PNG charts (training curves, confusion, ROC, PR, embeddings, bars).
//!
//! Definitions are written up in `docs/metrics.md`.
#![warn(missing_docs)]

pub mod calibrate;
pub mod classification;
pub mod detection;
pub mod error;
pub mod features;
pub mod knn;
pub mod pca;
pub mod plot;
pub mod roc;
pub mod scores;

pub use calibrate::{SelectivePoint, choose_abstain_threshold, fit_temperature, selective};
pub use classification::{ClassMetrics, ClassificationReport, classification_report};
pub use detection::{
    DetectionReport, ImageDetections, ImageLevelReport, PrCurve, detection_report,
};
pub use error::{EvalError, Result};
pub use features::{hsv_histogram, rgb_histogram};
pub use knn::{Distance, Knn, KnnParams, Weighting};
pub use pca::{Pca, pca_2d};
pub use roc::{OperatingPoint, RocCurve, recall_at_fpr, roc_auc, roc_curve};
pub use scores::ScoreRows;

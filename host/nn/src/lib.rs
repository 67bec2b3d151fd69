//! Sleeve models in burn: MobileNetV2 classifier, SSD-Lite detector, weight import, training.
//!
//! burn 0.22 tensors carry their backend in the [`burn::tensor::Device`]: models here have
//! no backend type parameter. Use `Device::flex()` for inference and
//! `Device::flex().autodiff()` for training.
pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod ema;
pub mod evaluate;
pub mod features;
pub mod fit;
pub mod images;
pub mod import;
pub mod learner;
pub mod loss;
pub mod mobilenet;
pub mod predict;
pub mod schedule;
pub mod scratch;
pub mod tasks;
pub mod train;

pub use checkpoint::{ClassifierMeta, load_classifier};
pub use mobilenet::{EmbeddingKind, MobileNetV2, MobileNetV2Config, PaddingMode, Stride16Tap};
pub use predict::predict_probs;

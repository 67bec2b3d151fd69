//! SSD-Lite Parental Advisory detector: model, training, evaluation, fusion.
//!
//! burn 0.22 models carry no backend type: build on `Device::flex()` for inference and
//! `Device::flex().autodiff()` for training.
pub mod loss;
pub mod model;
pub mod targets;

pub use model::{SsdHeads, SsdLite, SsdLiteConfig, anchor_config_for};
pub mod ap;
pub mod backbone;
pub mod checkpoint;
pub mod data;
pub mod evaluate;
pub mod fusion;
pub mod fusion_data;
pub mod infer;
pub mod onnx;
pub mod real;
pub mod real_augment;
pub mod real_eval;
pub mod review;
pub mod run;
pub mod train;

pub use checkpoint::{DetectorMeta, load_detector};
pub use infer::Detector;

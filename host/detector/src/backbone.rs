//! Where the detector's MobileNetV2 comes from: ImageNet weights (the classifier's
//! pretrained backbone) or random initialisation (tests, ablations).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use sleeve_nn::mobilenet::{MobileNetV2, MobileNetV2Config, PaddingMode};

/// Default ImageNet weights (Coral's quantised MobileNetV2 1.0/224, Apache-2.0).
pub const DEFAULT_IMAGENET_WEIGHTS: &str = "/work/shared/weights/mobilenet_v2_1.0_224_quant.tflite";

/// How to initialise the backbone.
#[derive(Clone, Debug, PartialEq)]
pub enum BackboneInit {
    /// Random (He) initialisation at the given width multiplier.
    Random {
        /// Width multiplier α.
        width_mult: f32,
    },
    /// ImageNet weights read from a TFLite file (width 1.0).
    Imagenet(PathBuf),
}

impl BackboneInit {
    /// Human-readable provenance for the checkpoint metadata.
    pub fn describe(&self) -> String {
        match self {
            Self::Random { width_mult } => format!("random init, width {width_mult}"),
            Self::Imagenet(p) => format!("ImageNet weights from {}", p.display()),
        }
    }
}

/// Builds the backbone on `device` and returns its configuration.
pub fn build_backbone(
    init: &BackboneInit,
    device: &Device,
) -> Result<(MobileNetV2, MobileNetV2Config)> {
    match init {
        BackboneInit::Random { width_mult } => {
            let cfg = MobileNetV2Config::new(1)
                .with_width_mult(*width_mult)
                .with_padding(PaddingMode::TfSame)
                .with_bn_epsilon(1e-3);
            cfg.validate()
                .map_err(|e| anyhow::anyhow!("backbone: {e}"))?;
            Ok((cfg.init(device), cfg))
        }
        BackboneInit::Imagenet(path) => crate::backbone::imagenet(path, device),
    }
}

fn imagenet(path: &std::path::Path, device: &Device) -> Result<(MobileNetV2, MobileNetV2Config)> {
    let weights = sleeve_weights::read_weights(path)
        .map_err(|e| anyhow::anyhow!("reading ImageNet weights {}: {e}", path.display()))?;
    let cfg = sleeve_nn::import::config_for(&weights, 1.0, 1);
    let (model, report) = sleeve_nn::import::load_pretrained(cfg.init(device), &weights)
        .map_err(|e| anyhow::anyhow!("importing {}: {e}", path.display()))?;
    tracing::info!(
        "backbone: {} of {} ImageNet tensors from {}",
        report.tensors_mapped,
        report.tensors_total,
        path.display()
    );
    Ok((model, cfg))
}

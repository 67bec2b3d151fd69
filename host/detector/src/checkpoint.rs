//! Detector checkpoints: `detector.bpk` (burnpack weights of the whole [`SsdLite`]) next to
//! `detector.json` ([`DetectorMeta`]: architecture, anchors, decoding, preprocessing and how
//! it was trained). Both are written atomically; [`load_detector`] rebuilds the model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};
use sleeve_shared::detect::DecodeParams;
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::preprocess::PreprocessConfig;

use crate::model::{SsdLite, SsdLiteConfig};

/// File name of the weights inside a checkpoint folder.
pub const WEIGHTS_FILE: &str = "detector.bpk";
/// File name of the metadata inside a checkpoint folder.
pub const META_FILE: &str = "detector.json";
/// Version of [`DetectorMeta`]'s layout.
pub const META_VERSION: u32 = 1;

/// Name of the anchor order the model's outputs follow (see `AnchorConfig::anchors`).
pub const ANCHOR_ORDER: &str = "map,row,col,scale,ratio";

/// Everything about a detector checkpoint except its weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetectorMeta {
    /// [`META_VERSION`].
    pub version: u32,
    /// Architecture and anchors.
    pub model: SsdLiteConfig,
    /// Order of anchors in the outputs ([`ANCHOR_ORDER`]).
    pub anchor_order: String,
    /// Score/NMS thresholds for deployment.
    pub decode: DecodeParams,
    /// How images become input tensors (always `sleeve_shared::preprocess`).
    pub preprocess: PreprocessConfig,
    /// Training provenance and progress.
    pub training: TrainingState,
}

/// Where training stands (also what `--resume` continues from).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainingState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Epochs requested.
    pub epochs_total: usize,
    /// Training seed.
    pub seed: u64,
    /// Whether the backbone was frozen (heads trained on cached features).
    pub frozen_backbone: bool,
    /// Where the backbone's initial weights came from.
    pub backbone_init: String,
    /// Training images per epoch.
    pub train_images: usize,
    /// Mean training loss per completed epoch.
    pub loss_history: Vec<f32>,
    /// Validation AP@0.5 per completed epoch (when measured).
    pub val_ap50_history: Vec<f64>,
    /// Wall-clock seconds spent training so far.
    pub seconds: f64,
    /// Description of the training data.
    pub data: String,
    /// Hidden width of the prediction heads (0 = single depthwise-separable layer). Part of
    /// the architecture; kept here (defaulting to 0) so older metadata still loads.
    #[serde(default)]
    pub head_hidden: usize,
    /// Backbone blocks fine-tuned on cached activations (0: heads only or end to end).
    #[serde(default)]
    pub unfreeze_last: usize,
}

/// The `(weights, meta)` paths for a checkpoint given as its folder, its `.bpk` or its `.json`.
pub fn checkpoint_paths(path: &Path) -> (PathBuf, PathBuf) {
    match path.extension().and_then(|e| e.to_str()) {
        Some("bpk") => (path.to_path_buf(), path.with_extension("json")),
        Some("json") => (path.with_extension("bpk"), path.to_path_buf()),
        _ => (path.join(WEIGHTS_FILE), path.join(META_FILE)),
    }
}

/// Writes `model` and `meta` into the folder `dir` (created if needed), atomically.
pub fn save_checkpoint(dir: &Path, model: &SsdLite, meta: &DetectorMeta) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (weights, meta_path) = checkpoint_paths(dir);
    let mut store = BurnpackStore::from_bytes(None).metadata("sleeve.model", "ssdlite-pa");
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("serialising detector weights: {e:?}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("serialising detector weights: {e:?}"))?;
    write_atomic(&weights, &bytes).with_context(|| format!("writing {}", weights.display()))?;
    let json = serde_json::to_vec_pretty(meta)?;
    write_atomic(&meta_path, &json).with_context(|| format!("writing {}", meta_path.display()))?;
    Ok(())
}

/// Reads a checkpoint's metadata.
pub fn read_meta(path: &Path) -> Result<DetectorMeta> {
    let (_, meta_path) = checkpoint_paths(path);
    let text =
        std::fs::read(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?;
    let meta: DetectorMeta = serde_json::from_slice(&text)
        .with_context(|| format!("parsing {}", meta_path.display()))?;
    if meta.version != META_VERSION {
        bail!(
            "{}: detector meta version {} (this build reads {META_VERSION})",
            meta_path.display(),
            meta.version
        );
    }
    if meta.anchor_order != ANCHOR_ORDER {
        bail!(
            "{}: unknown anchor order '{}'",
            meta_path.display(),
            meta.anchor_order
        );
    }
    meta.model
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", meta_path.display()))?;
    Ok(meta)
}

/// Loads a detector checkpoint (folder, `.bpk` or `.json` path) onto `device`, ready for
/// inference (`.valid()` is up to the caller on autodiff devices). For the export helper:
/// `model.forward(x)` gives `(boxes [N, A, 4], logits [N, A])`.
pub fn load_detector(checkpoint: &Path, device: &Device) -> Result<(SsdLite, DetectorMeta)> {
    let meta = read_meta(checkpoint)?;
    let (weights, _) = checkpoint_paths(checkpoint);
    let bytes =
        std::fs::read(&weights).with_context(|| format!("reading {}", weights.display()))?;
    let mut model = meta
        .model
        .init_with_heads(meta.training.head_hidden, device);
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("loading weights from {}: {e:?}", weights.display()))?;
    Ok((model.to_device(device), meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::anchor_config_for;
    use burn::tensor::Tensor;
    use sleeve_nn::mobilenet::MobileNetV2Config;

    #[test]
    fn save_load_round_trip_gives_same_outputs() {
        let device = Device::flex();
        device.seed(5);
        let cfg = SsdLiteConfig {
            backbone: MobileNetV2Config::new(1).with_width_mult(0.25),
            anchors: anchor_config_for(64),
            input_size: 64,
            tap16: Default::default(),
        };
        let model = cfg.init(&device);
        let meta = DetectorMeta {
            version: META_VERSION,
            model: cfg,
            anchor_order: ANCHOR_ORDER.into(),
            decode: DecodeParams::default(),
            preprocess: PreprocessConfig::signed_unit(64),
            training: TrainingState::default(),
        };
        let dir = tempfile::tempdir().unwrap();
        save_checkpoint(dir.path(), &model, &meta).unwrap();
        let (back, meta2) = load_detector(dir.path(), &device).unwrap();
        assert_eq!(meta2.preprocess, meta.preprocess);
        let x = Tensor::<4>::ones([1, 3, 64, 64], &device);
        let (b1, l1) = model.forward(x.clone());
        let (b2, l2) = back.forward(x);
        let d =
            (l1 - l2).abs().max().into_scalar::<f32>() + (b1 - b2).abs().max().into_scalar::<f32>();
        assert!(d < 1e-6, "{d}");
        assert!(load_detector(&dir.path().join("missing"), &device).is_err());
    }
}

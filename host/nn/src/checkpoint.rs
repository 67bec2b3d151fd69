//! Trained-classifier artifacts: a directory holding `model.bpk` (burnpack weights) and
//! `meta.json` ([`ClassifierMeta`]: architecture, labels, preprocessing, provenance,
//! metrics). [`load_classifier`] is what the detector's fusion and the exporter use.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::labels::LabelSet;
use sleeve_shared::preprocess::PreprocessConfig;

use crate::mobilenet::{MobileNetV2, MobileNetV2Config};
use crate::scratch::{ScratchCnn, ScratchCnnConfig};

/// File name of the weights inside a classifier directory.
pub const MODEL_FILE: &str = "model.bpk";
/// File name of the metadata inside a classifier directory.
pub const META_FILE: &str = "meta.json";
/// Version of the [`ClassifierMeta`] layout.
pub const META_VERSION: u32 = 1;

/// The network architecture and its configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "arch", content = "config", rename_all = "snake_case")]
pub enum ArchConfig {
    /// MobileNetV2 (the default classifier).
    MobilenetV2(MobileNetV2Config),
    /// The small scratch CNN baseline.
    ScratchCnn(ScratchCnnConfig),
}

impl ArchConfig {
    /// Short name (`mobilenet_v2` / `scratch_cnn`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MobilenetV2(_) => "mobilenet_v2",
            Self::ScratchCnn(_) => "scratch_cnn",
        }
    }

    /// Number of output classes.
    pub fn num_classes(&self) -> usize {
        match self {
            Self::MobilenetV2(c) => c.num_classes,
            Self::ScratchCnn(c) => c.num_classes,
        }
    }
}

/// How a classifier was made.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// The command line that trained it.
    pub command: String,
    /// Training data (dataset directory or image folder).
    pub data: String,
    /// Random seed.
    pub seed: u64,
    /// Pretrained weights it started from (file name and SHA-256), if any.
    pub pretrained: Option<String>,
    /// Recipe summary (e.g. `cached-head`, `finetune-last-3`, `scratch`).
    pub recipe: String,
    /// Seconds since the Unix epoch when it was written.
    pub created_unix: u64,
    /// sleeve-nn version.
    pub tool_version: String,
}

/// Everything needed to use a trained classifier besides its weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifierMeta {
    /// [`META_VERSION`].
    pub version: u32,
    /// Architecture and configuration.
    pub arch: ArchConfig,
    /// Class names in output order.
    pub labels: LabelSet,
    /// The preprocessing the model expects (the shared contract).
    pub preprocess: PreprocessConfig,
    /// Training provenance.
    pub provenance: Provenance,
    /// What training measured.
    pub metrics: ClassifierMetrics,
}

/// What training measured, in `meta.json`. Every field is optional, so older and
/// hand-made metadata still load; what is not typed here is kept as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassifierMetrics {
    /// Best validation accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_val_acc: Option<f64>,
    /// Epoch (1-based) of the best validation accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// Held-out test results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestMetrics>,
    /// Anything else the trainer recorded (e.g. its `fit` settings).
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The headline numbers of a held-out test (the full report's other fields are kept).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    /// Top-1 accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Macro-averaged F1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Macro one-vs-rest ROC AUC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_auc: Option<f64>,
    /// The rest of the report.
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, serde_json::Value>,
}

impl ClassifierMetrics {
    /// The first number outside `[0, 1]` (all of these are fractions), named.
    fn out_of_range(&self) -> Option<(&'static str, f64)> {
        let t = self.test.as_ref();
        [
            ("best_val_acc", self.best_val_acc),
            ("test.accuracy", t.and_then(|t| t.accuracy)),
            ("test.macro_f1", t.and_then(|t| t.macro_f1)),
            ("test.macro_auc", t.and_then(|t| t.macro_auc)),
        ]
        .into_iter()
        .find_map(|(k, v)| v.filter(|v| !(0.0..=1.0).contains(v)).map(|v| (k, v)))
    }
}

/// A loaded classifier of either architecture.
#[derive(Debug, Clone)]
// Few values exist at once (one per loaded model), so the size difference does not matter,
// and boxing would change the variants every caller matches on.
#[allow(clippy::large_enum_variant)]
pub enum Classifier {
    /// MobileNetV2.
    Mobilenet(MobileNetV2),
    /// Scratch CNN.
    Scratch(ScratchCnn),
}

impl Classifier {
    /// Images `[N, 3, S, S]` → logits `[N, classes]`.
    pub fn forward(&self, x: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2> {
        match self {
            Self::Mobilenet(m) => m.forward(x),
            Self::Scratch(m) => m.forward(x),
        }
    }

    /// Images → embeddings.
    pub fn embed(&self, x: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2> {
        match self {
            Self::Mobilenet(m) => m.embed(x),
            Self::Scratch(m) => m.embed(x),
        }
    }
}

/// The classifier directory for `path`: `path` itself, or its parent when `path` names the
/// `model.bpk` or `meta.json` inside.
pub fn classifier_dir(path: &Path) -> PathBuf {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(MODEL_FILE) | Some(META_FILE) => {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        }
        _ => path.to_path_buf(),
    }
}

/// Serialises a module's parameters to burnpack bytes.
pub fn module_bytes<M: Module>(model: &M) -> Result<Vec<u8>> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise model weights: {e:?}"))?;
    Ok(bytes.to_vec())
}

/// Loads burnpack bytes into `model` (every parameter must be present and match).
pub fn load_module_bytes<M: Module>(model: M, bytes: Vec<u8>) -> Result<M> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("cannot parse model weights: {e:?}"))?;
    model
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("weights do not fit the model: {e:?}"))
}

/// Writes a classifier directory (weights first, metadata last; both atomic).
pub fn save_classifier<M: Module>(dir: &Path, model: &M, meta: &ClassifierMeta) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bytes = module_bytes(model)?;
    let model_path = dir.join(MODEL_FILE);
    write_atomic(&model_path, &bytes)
        .with_context(|| format!("cannot write {}", model_path.display()))?;
    let meta_path = dir.join(META_FILE);
    let json = serde_json::to_vec_pretty(meta)?;
    write_atomic(&meta_path, &json).with_context(|| format!("cannot write {}", meta_path.display()))
}

/// Reads a classifier's metadata.
pub fn read_meta(path: &Path) -> Result<ClassifierMeta> {
    let meta_path = classifier_dir(path).join(META_FILE);
    let text = std::fs::read(&meta_path)
        .with_context(|| format!("cannot read classifier metadata {}", meta_path.display()))?;
    let meta: ClassifierMeta = serde_json::from_slice(&text)
        .with_context(|| format!("malformed classifier metadata {}", meta_path.display()))?;
    if meta.version != META_VERSION {
        bail!(
            "{}: metadata version {} (this build reads {META_VERSION})",
            meta_path.display(),
            meta.version
        );
    }
    if meta.labels.len() != meta.arch.num_classes() {
        bail!(
            "{}: {} labels for a {}-class model",
            meta_path.display(),
            meta.labels.len(),
            meta.arch.num_classes()
        );
    }
    if let Some((name, v)) = meta.metrics.out_of_range() {
        bail!(
            "{}: metrics.{name} is {v}, outside 0 to 1",
            meta_path.display()
        );
    }
    Ok(meta)
}

/// Loads a classifier of either architecture for inference on `device`.
pub fn load_any_classifier(path: &Path, device: &Device) -> Result<(Classifier, ClassifierMeta)> {
    let meta = read_meta(path)?;
    let model_path = classifier_dir(path).join(MODEL_FILE);
    let bytes = std::fs::read(&model_path)
        .with_context(|| format!("cannot read {}", model_path.display()))?;
    let model = match &meta.arch {
        ArchConfig::MobilenetV2(c) => {
            c.validate().map_err(anyhow::Error::msg)?;
            Classifier::Mobilenet(load_module_bytes(c.init(device), bytes)?)
        }
        ArchConfig::ScratchCnn(c) => {
            c.validate().map_err(anyhow::Error::msg)?;
            Classifier::Scratch(load_module_bytes(c.init(device), bytes)?)
        }
    }
    .valid_mode();
    Ok((model, meta))
}

/// Loads a MobileNetV2 classifier (directory or its `model.bpk`) for inference on `device`.
pub fn load_classifier(path: &Path, device: &Device) -> Result<(MobileNetV2, ClassifierMeta)> {
    match load_any_classifier(path, device)? {
        (Classifier::Mobilenet(m), meta) => Ok((m, meta)),
        (Classifier::Scratch(_), _) => bail!(
            "{} is a scratch-CNN classifier, not MobileNetV2",
            path.display()
        ),
    }
}

impl Classifier {
    fn valid_mode(self) -> Self {
        match self {
            Self::Mobilenet(m) => Self::Mobilenet(m.valid()),
            Self::Scratch(m) => Self::Scratch(m.valid()),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::tensor_values;
    use burn::tensor::Tensor;

    #[test]
    fn save_and_load_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let cfg = MobileNetV2Config::new(3).with_width_mult(0.25);
        let model = cfg.init(&device).valid();
        let meta = ClassifierMeta {
            version: META_VERSION,
            arch: ArchConfig::MobilenetV2(cfg),
            labels: LabelSet::new(&["rock", "pop", "jazz"]).unwrap(),
            preprocess: PreprocessConfig::signed_unit(32),
            provenance: Provenance::default(),
            metrics: serde_json::from_value(serde_json::json!({"acc": 0.5})).unwrap(),
        };
        let out = dir.path().join("clf");
        save_classifier(&out, &model, &meta).unwrap();
        let (loaded, meta2) = load_classifier(&out.join(MODEL_FILE), &device).unwrap();
        assert_eq!(meta2.labels, meta.labels);
        let x = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let a = tensor_values(model.forward(x.clone())).unwrap();
        let b = tensor_values(loaded.forward(x)).unwrap();
        assert_eq!(a, b);
        // a scratch checkpoint is refused by load_classifier
        let scfg = ScratchCnnConfig::new(3)
            .with_base_channels(4)
            .with_stages(2);
        let smeta = ClassifierMeta {
            arch: ArchConfig::ScratchCnn(scfg.clone()),
            ..meta
        };
        save_classifier(&out, &scfg.init(&device), &smeta).unwrap();
        assert!(load_classifier(&out, &device).is_err());
        assert!(load_any_classifier(&out, &device).is_ok());
    }

    #[test]
    fn metrics_are_typed_keep_the_rest_and_have_ranges() {
        // the shape `sleeve train classifier` has written since the style head
        let written = serde_json::json!({
            "best_val_acc": 0.507, "best_epoch": 6,
            "test": {"accuracy": 0.42, "macro_f1": 0.41, "macro_auc": null, "n_samples": 359},
            "fit": {"epochs": 60, "lr": 0.0003}
        });
        let m: ClassifierMetrics = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(m.best_val_acc, Some(0.507));
        assert_eq!(m.test.as_ref().unwrap().accuracy, Some(0.42));
        assert_eq!(m.test.as_ref().unwrap().macro_auc, None);
        assert_eq!(serde_json::to_value(&m).unwrap()["fit"], written["fit"]);
        assert_eq!(serde_json::to_value(&m).unwrap()["test"]["n_samples"], 359);
        assert_eq!(m.out_of_range(), None);
        // an empty or foreign map still loads; a fraction outside 0..1 is named
        assert_eq!(
            serde_json::from_value::<ClassifierMetrics>(serde_json::json!({})).unwrap(),
            ClassifierMetrics::default()
        );
        let bad: ClassifierMetrics =
            serde_json::from_value(serde_json::json!({"test": {"accuracy": 1.5}})).unwrap();
        assert_eq!(bad.out_of_range(), Some(("test.accuracy", 1.5)));
    }
}

//! The shipped detector as the kiosk runs it: the ONNX file of a model bundle
//! (`manifest.json` + models) executed by tract, with the bundle's preprocessing, anchors
//! and decoding. Used to measure a bundle on real covers and to propose boxes for review
//! without a burn checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use image::RgbImage;
use rayon::prelude::*;
use sleeve_shared::detect::{Anchor, DecodeParams, decode_detections};
use sleeve_shared::fsutil::sha256_file;
use sleeve_shared::manifest::{BundleManifest, MANIFEST_FILE, Precision};
use sleeve_shared::preprocess::PreprocessConfig;
use sleeve_shared::results::PaBox;
use tract_onnx::prelude::*;

use crate::data::preprocess_image;

/// Anything that turns cover images into scored Parental Advisory boxes (normalised to the
/// preprocessed square, best first): a burn checkpoint or a bundle's ONNX file.
pub trait PaDetector {
    /// Decoded boxes per image with `params`.
    fn detect_images(&self, images: &[RgbImage], params: &DecodeParams) -> Result<Vec<Vec<PaBox>>>;
    /// The score at or above which the kiosk reports a label.
    fn decision_threshold(&self) -> f32;
    /// Short description for reports.
    fn describe(&self) -> String;
    /// Side of the square input.
    fn input_size(&self) -> u32;
    /// Seeds of its training and validation images, when known (evaluation must differ).
    fn used_seeds(&self) -> Vec<u64> {
        Vec::new()
    }
    /// Metrics recorded with the model whose names start with `prefix` (bundles: the
    /// manifest's `metrics`).
    fn recorded_metrics(&self, _prefix: &str) -> std::collections::BTreeMap<String, f64> {
        Default::default()
    }
}

impl PaDetector for crate::infer::Detector {
    fn detect_images(&self, images: &[RgbImage], params: &DecodeParams) -> Result<Vec<Vec<PaBox>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(16) {
            out.extend(self.detect(chunk, params)?);
        }
        Ok(out)
    }

    fn decision_threshold(&self) -> f32 {
        self.meta.decode.score_threshold
    }

    fn describe(&self) -> String {
        format!(
            "burn checkpoint ({} epochs, seed {})",
            self.meta.training.epochs_done, self.meta.training.seed
        )
    }

    fn input_size(&self) -> u32 {
        self.meta.preprocess.input_size
    }

    fn used_seeds(&self) -> Vec<u64> {
        let s = self.meta.training.seed;
        vec![s, s ^ crate::data::VAL_SEED_SALT]
    }
}

/// A bundle's detector loaded into tract.
pub struct BundleDetector {
    plan: Arc<TypedRunnableModel>,
    preprocess: PreprocessConfig,
    anchors: Vec<Anchor>,
    variances: [f32; 2],
    decision: f32,
    /// The bundle's manifest.
    pub manifest: BundleManifest,
    /// The model file loaded.
    pub model_path: PathBuf,
    /// Its precision.
    pub precision: Precision,
}

/// True when `dir` is a model bundle (holds `manifest.json`).
pub fn is_bundle(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).is_file()
}

impl BundleDetector {
    /// Loads the detector of the bundle in `dir` (the manifest's selected precision unless
    /// `precision` is given), checking the file's SHA-256 against the manifest.
    pub fn load(dir: &Path, precision: Option<Precision>) -> Result<Self> {
        let mpath = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&mpath)
            .with_context(|| format!("reading {}", mpath.display()))?;
        let manifest =
            BundleManifest::from_json(&text).map_err(|e| anyhow!("{}: {e}", mpath.display()))?;
        let det = manifest
            .detector
            .as_ref()
            .ok_or_else(|| anyhow!("bundle {} has no detector", dir.display()))?;
        let precision = precision.unwrap_or(det.model.selected);
        let file = det.model.file(precision).ok_or_else(|| {
            anyhow!(
                "the detector of {} has no {} file",
                dir.display(),
                precision.as_str()
            )
        })?;
        let model_path = dir.join(&file.path);
        let sha = sha256_file(&model_path)
            .with_context(|| format!("reading {}", model_path.display()))?;
        if sha != file.sha256 {
            bail!(
                "{} does not match its manifest SHA-256 (file {sha}, manifest {})",
                model_path.display(),
                file.sha256
            );
        }
        let s = det.model.preprocess.input_size as usize;
        let plan = tract_onnx::onnx()
            .model_for_path(&model_path)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, s, s]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow!("tract cannot load {}: {e:#}", model_path.display()))?;
        Ok(Self {
            plan,
            preprocess: det.model.preprocess.clone(),
            anchors: det.anchors.anchors(),
            variances: det.anchors.variances,
            decision: manifest.pa_decision_threshold().unwrap_or(0.5),
            model_path,
            precision,
            manifest,
        })
    }

    /// Raw outputs (box deltas `4·A`, logits `A`) for one image.
    fn raw(&self, image: &RgbImage) -> Result<(Vec<f32>, Vec<f32>)> {
        let input = preprocess_image(image, &self.preprocess)?;
        let tensor = Tensor::from_shape(&self.preprocess.shape(), &input)
            .map_err(|e| anyhow!("detector input: {e:#}"))?;
        let outputs = self
            .plan
            .run(tvec![tensor.into()])
            .map_err(|e| anyhow!("running {}: {e:#}", self.model_path.display()))?;
        let a = self.anchors.len();
        let (mut deltas, mut logits) = (None, None);
        for v in outputs.iter() {
            let view = v
                .to_plain_array_view::<f32>()
                .map_err(|e| anyhow!("detector output is not f32: {e:#}"))?;
            let vals: Vec<f32> = view.iter().copied().collect();
            match vals.len() {
                n if n == 4 * a => deltas = Some(vals),
                n if n == a => logits = Some(vals),
                _ => {}
            }
        }
        match (deltas, logits) {
            (Some(d), Some(l)) => Ok((d, l)),
            _ => bail!(
                "{}: outputs do not fit {a} anchors",
                self.model_path.display()
            ),
        }
    }
}

impl PaDetector for BundleDetector {
    fn detect_images(&self, images: &[RgbImage], params: &DecodeParams) -> Result<Vec<Vec<PaBox>>> {
        images
            .par_iter()
            .map(|im| {
                let (d, l) = self.raw(im)?;
                decode_detections(&self.anchors, self.variances, &d, &l, params)
                    .map_err(|e| anyhow!("{e}"))
            })
            .collect()
    }

    fn decision_threshold(&self) -> f32 {
        self.decision
    }

    fn describe(&self) -> String {
        format!(
            "bundle '{}', {} ({})",
            self.manifest.name,
            self.model_path.display(),
            self.precision.as_str()
        )
    }

    fn input_size(&self) -> u32 {
        self.preprocess.input_size
    }

    fn recorded_metrics(&self, prefix: &str) -> std::collections::BTreeMap<String, f64> {
        self.manifest
            .metrics
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// Loads a detector from a bundle folder (`manifest.json`) or a burn checkpoint.
pub fn load_any(path: &Path) -> Result<Box<dyn PaDetector>> {
    if path.is_dir() && is_bundle(path) {
        Ok(Box::new(BundleDetector::load(path, None)?))
    } else {
        let device = burn::tensor::Device::flex();
        Ok(Box::new(
            crate::infer::Detector::load(path, &device)
                .with_context(|| format!("loading detector {}", path.display()))?,
        ))
    }
}

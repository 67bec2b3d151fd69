//! Collecting fusion inputs from real covers: classifier probabilities (sleeve-nn) and the
//! detector's best PA score for every train/val/test cover of the classifier's own split.
//! Results are cached in `<out>/fusion_items.json` (keyed by the two checkpoints and the
//! data folder) because running both networks over thousands of covers takes minutes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use sleeve_nn::checkpoint::load_any_classifier;
use sleeve_nn::data::load_splits;
use sleeve_nn::predict::predict_probs_any;
use sleeve_shared::fsutil::write_atomic;

use crate::fusion::{FusionItem, FusionReport};
use crate::infer::Detector;

/// Cache file name.
pub const CACHE_FILE: &str = "fusion_items.json";

#[derive(Serialize, Deserialize)]
struct Cache {
    key: String,
    labels: Vec<String>,
    train: Vec<FusionItem>,
    val: Vec<FusionItem>,
    test: Vec<FusionItem>,
}

/// Best PA score per image file.
fn pa_scores(det: &Detector, paths: &[PathBuf], pb: &indicatif::ProgressBar) -> Result<Vec<f32>> {
    let params = sleeve_shared::detect::DecodeParams {
        score_threshold: 0.01,
        iou_threshold: 0.45,
        max_detections: 1,
    };
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(16) {
        let imgs: Vec<RgbImage> = chunk
            .iter()
            .map(|p| {
                sleeve_shared::imageio::open_rgb(p)
                    .with_context(|| format!("reading {}", p.display()))
            })
            .collect::<Result<_>>()?;
        for d in det.detect(&imgs, &params)? {
            out.push(d.first().map_or(0.0, |b| b.score));
        }
        pb.inc(chunk.len() as u64);
    }
    Ok(out)
}

/// Genre names and the train, validation and test items.
pub type FusionInputs = (
    Vec<String>,
    Vec<FusionItem>,
    Vec<FusionItem>,
    Vec<FusionItem>,
);

/// `(labels, train, val, test)` items for the classifier at `cls` and detector at `det`
/// over the dataset `data`; at most `max_train` training covers (evenly spaced).
pub fn collect(
    cls: &Path,
    det: &Path,
    data: &Path,
    out: &Path,
    max_train: usize,
) -> Result<FusionInputs> {
    let key = format!(
        "{}|{}|{}|{max_train}",
        cls.display(),
        det.display(),
        data.display()
    );
    let cache_path = out.join(CACHE_FILE);
    if let Ok(bytes) = std::fs::read(&cache_path)
        && let Ok(c) = serde_json::from_slice::<Cache>(&bytes)
        && c.key == key
    {
        tracing::info!("using cached fusion inputs from {}", cache_path.display());
        return Ok((c.labels, c.train, c.val, c.test));
    }
    let device = Device::flex();
    let (classifier, meta) = load_any_classifier(cls, &device)
        .with_context(|| format!("loading classifier {}", cls.display()))?;
    let detector = Detector::load(det, &device)
        .with_context(|| format!("loading detector {}", det.display()))?;
    let splits = load_splits(data, meta.provenance.seed, Some(&meta.labels))?;
    let step = splits.train.len().div_ceil(max_train.max(1)).max(1);
    let train: Vec<_> = splits.train.iter().step_by(step).cloned().collect();
    let total = (train.len() + splits.val.len() + splits.test.len()) as u64;
    let pb = sleeve_shared::progress::bar_if(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        total,
        "scoring",
    );
    let mut items = Vec::new();
    for part in [&train, &splits.val, &splits.test] {
        let paths: Vec<PathBuf> = part.iter().map(|s| s.path.clone()).collect();
        let probs = predict_probs_any(&classifier, &paths, &meta.preprocess)?;
        let scores = pa_scores(&detector, &paths, &pb)?;
        items.push(
            part.iter()
                .zip(probs)
                .zip(scores)
                .map(|((s, probs), pa_score)| FusionItem {
                    probs,
                    label: s.label,
                    pa_score,
                })
                .collect::<Vec<_>>(),
        );
    }
    pb.finish_and_clear();
    let test = items.pop().unwrap_or_default();
    let val = items.pop().unwrap_or_default();
    let train = items.pop().unwrap_or_default();
    let labels = meta.labels.names().to_vec();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let cache = Cache {
        key,
        labels,
        train,
        val,
        test,
    };
    write_atomic(&cache_path, &serde_json::to_vec(&cache)?)
        .with_context(|| format!("writing {}", cache_path.display()))?;
    Ok((cache.labels, cache.train, cache.val, cache.test))
}

/// Options of [`fit_and_write`] (`sleeve eval fusion`).
#[derive(Clone, Debug)]
pub struct FusionOptions {
    /// Detector checkpoint.
    pub detector: PathBuf,
    /// Classifier checkpoint; without it, a synthetic self-check is run.
    pub classifier: Option<PathBuf>,
    /// The classifier's dataset (required with `classifier`).
    pub data: Option<PathBuf>,
    /// At most this many training covers for estimating P(PA | genre).
    pub max_train: usize,
    /// Where to write `fusion.json` and `fusion_report.json`.
    pub out: PathBuf,
}

/// Fits PA-aware fusion on the classifier's validation split (or a synthetic self-check),
/// measures it on the test split and writes `fusion.json` and `fusion_report.json` to
/// `a.out`; returns the report.
pub fn fit_and_write(a: &FusionOptions) -> Result<FusionReport> {
    let (labels, train, val, test, source) = match &a.classifier {
        None => {
            tracing::warn!("no --classifier given: running the synthetic self-check only");
            let labels: Vec<String> = ["rap-like", "look-alike", "c", "d", "e"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            (
                labels,
                crate::fusion::synthetic_items(2000, 1),
                crate::fusion::synthetic_items(500, 2),
                crate::fusion::synthetic_items(1000, 3),
                "synthetic self-check".to_string(),
            )
        }
        Some(cls) => {
            let data = a.data.clone().context(
                "--data (the classifier's dataset folder) is required with --classifier",
            )?;
            let (labels, tr, va, te) = collect(cls, &a.detector, &data, &a.out, a.max_train)?;
            (
                labels,
                tr,
                va,
                te,
                format!(
                    "classifier {}, detector {}, data {}",
                    cls.display(),
                    a.detector.display(),
                    data.display()
                ),
            )
        }
    };
    let r = crate::fusion::report(&labels, &train, &val, &test, source)?;
    crate::fusion::write_outputs(&a.out, &r)?;
    Ok(r)
}

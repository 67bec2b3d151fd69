//! `sleeve eval classifier` and `sleeve baseline knn`: JSON reports and PNG plots through
//! sleeve-eval.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use rayon::prelude::*;
use serde::Serialize;
use sleeve_eval::plot::EpochMetrics;
use sleeve_eval::{ClassificationReport, Knn, KnnParams, classification_report};

use crate::augment::AugmentConfig;
use crate::data::{Sample, load_splits, parse_split};
use crate::features::{CacheKey, extract};
use crate::images::load_rgb;
use crate::import::{config_for, load_pretrained};
use crate::learner::FitState;
use crate::predict::{embed_images, predict_probs_any};
use crate::train::write_json;

/// Options of [`eval_classifier`] (`sleeve eval classifier`).
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Classifier directory (or its model.bpk).
    pub checkpoint: PathBuf,
    /// Dataset directory or folder-per-genre tree.
    pub data: PathBuf,
    /// Which split to evaluate (`train`, `val`, `test`).
    pub split: String,
    /// Seed of the split for folders without one (the training seed).
    pub seed: u64,
    /// Output directory for report.json and plots.
    pub out: PathBuf,
}

/// Features for the KNN baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnnFeatures {
    /// Pretrained MobileNetV2 embeddings.
    Embed,
    /// HSV colour histograms.
    Hist,
}

/// Options of [`knn_baseline`] (`sleeve baseline knn`).
#[derive(Clone, Debug)]
pub struct KnnOptions {
    /// Dataset directory or folder-per-genre tree.
    pub data: PathBuf,
    /// Feature type.
    pub features: KnnFeatures,
    /// Pretrained weights for `Embed` (TFLite or safetensors).
    pub weights: Option<PathBuf>,
    /// Neighbours.
    pub k: usize,
    /// Input side for embeddings.
    pub size: u32,
    /// Split seed for folders without one.
    pub seed: u64,
    /// Evaluated split (neighbours come from train).
    pub split: String,
    /// Output directory for report.json.
    pub out: PathBuf,
    /// Feature cache directory (default OUT/cache).
    pub cache_dir: Option<PathBuf>,
}

/// Evaluates a classifier on one split: `report.json`, confusion matrix, ROC curves,
/// embedding PCA scatter, and training curves when the run's `history.json` is found.
pub fn eval_classifier(a: &EvalOptions) -> Result<()> {
    let device = Device::flex();
    let (model, meta) = crate::checkpoint::load_any_classifier(&a.checkpoint, &device)?;
    let split = parse_split(&a.split)?;
    let splits = load_splits(&a.data, a.seed, Some(&meta.labels))?;
    let samples = splits.get(split);
    anyhow::ensure!(
        !samples.is_empty(),
        "no {} images in {}",
        a.split,
        a.data.display()
    );
    let paths: Vec<PathBuf> = samples.iter().map(|s| s.path.clone()).collect();
    let labels: Vec<usize> = samples.iter().map(|s| s.label).collect();
    let t0 = std::time::Instant::now();
    let probs = predict_probs_any(&model, &paths, &meta.preprocess)?;
    let ms_per_image = t0.elapsed().as_secs_f64() * 1000.0 / paths.len() as f64;
    let names = meta.labels.names();
    let report = classification_report(&labels, &probs, names).context("cannot compute metrics")?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    #[derive(Serialize)]
    struct EvalJson<'a> {
        checkpoint: String,
        data: String,
        split: &'a str,
        arch: &'a str,
        input_size: u32,
        ms_per_image: f64,
        report: &'a ClassificationReport,
    }
    write_json(
        &a.out.join("report.json"),
        &EvalJson {
            checkpoint: a.checkpoint.display().to_string(),
            data: a.data.display().to_string(),
            split: split.as_str(),
            arch: meta.arch.name(),
            input_size: meta.preprocess.input_size,
            ms_per_image,
            report: &report,
        },
    )?;
    plots(&a.out, &report, names)?;
    let embeddings = embed_images(&model, &paths, &meta.preprocess)?;
    pca_plot(
        &a.out.join("embedding_pca.png"),
        &embeddings,
        &labels,
        names,
    )?;
    let history = crate::checkpoint::classifier_dir(&a.checkpoint)
        .parent()
        .map(|p| p.join("history.json"));
    if let Some(h) = history.filter(|h| h.is_file()) {
        training_curves(&h, &a.out.join("training_curves.png"))?;
    }
    println!(
        "{} {}: accuracy {:.3}, top-2 {:.3}, macro F1 {:.3}, macro AUC {}, {:.1} ms/image → {}",
        a.split,
        samples.len(),
        report.accuracy,
        report.top2_accuracy,
        report.macro_f1,
        report.macro_auc.map_or("n/a".into(), |v| format!("{v:.3}")),
        ms_per_image,
        a.out.display()
    );
    Ok(())
}

fn plots(out: &Path, report: &ClassificationReport, names: &[String]) -> Result<()> {
    sleeve_eval::plot::confusion_matrix(
        &out.join("confusion.png"),
        &report.confusion,
        names,
        "Confusion matrix",
    )?;
    let curves: Vec<(&str, &sleeve_eval::RocCurve)> = names
        .iter()
        .map(String::as_str)
        .zip(report.roc_curves.iter())
        .collect();
    if !curves.is_empty() {
        sleeve_eval::plot::roc_curves(&out.join("roc.png"), &curves, "One-vs-rest ROC")?;
    }
    Ok(())
}

fn pca_plot(path: &Path, data: &[Vec<f32>], labels: &[usize], names: &[String]) -> Result<()> {
    if data.len() < 3 {
        return Ok(());
    }
    let (_, points) = sleeve_eval::pca_2d(data)?;
    sleeve_eval::plot::embedding_scatter(
        path,
        &points,
        labels,
        names,
        "Embeddings (PCA)",
        ["PC 1", "PC 2"],
    )?;
    Ok(())
}

/// Plots a run's `history.json` ([`FitState`]).
pub fn training_curves(history: &Path, out: &Path) -> Result<()> {
    let state: FitState = serde_json::from_slice(
        &std::fs::read(history).with_context(|| format!("cannot read {}", history.display()))?,
    )
    .with_context(|| format!("malformed {}", history.display()))?;
    let epochs: Vec<EpochMetrics> = state
        .history
        .iter()
        .map(|h| EpochMetrics {
            epoch: h.epoch,
            train_loss: h.train_loss,
            val_loss: Some(h.val_loss),
            train_acc: h.train_acc,
            val_acc: Some(h.val_score),
        })
        .collect();
    if !epochs.is_empty() {
        sleeve_eval::plot::training_curves(out, &epochs, "Training")?;
    }
    Ok(())
}

/// The seeds' KNN baseline: neighbours from the train split, evaluated on `--split`.
pub fn knn_baseline(a: &KnnOptions) -> Result<()> {
    let splits = load_splits(&a.data, a.seed, None)?;
    let split = parse_split(&a.split)?;
    let train = &splits.train;
    let eval = splits.get(split);
    anyhow::ensure!(
        !train.is_empty() && !eval.is_empty(),
        "empty train or {} split",
        a.split
    );
    let (train_x, eval_x) = match a.features {
        KnnFeatures::Hist => (histograms(train)?, histograms(eval)?),
        KnnFeatures::Embed => {
            let w = a
                .weights
                .as_ref()
                .context("--features embed needs --weights (pretrained MobileNetV2)")?;
            let weights = sleeve_weights::read_weights(w)
                .with_context(|| format!("cannot read {}", w.display()))?;
            let device = Device::flex();
            let cfg = config_for(&weights, 1.0, weights.num_classes);
            let (model, _) = load_pretrained(cfg.init(&device), &weights)?;
            let model = burn::module::Module::valid(&model);
            let sha = sleeve_shared::fsutil::sha256_file(w)?;
            let key = CacheKey {
                backbone: format!("{sha}:w1:{:?}", cfg.padding),
                layer: "embed".into(),
                preprocess: weights.input_norm.preprocess_config(a.size),
                augment: None,
                seed: a.seed,
                view: 0,
            };
            let cache = a.cache_dir.clone().unwrap_or_else(|| a.out.join("cache"));
            let aug = AugmentConfig::default();
            let f = |s: &[Sample]| {
                extract(s, &key, &aug, Some(&cache), 16, &device, |x| model.embed(x))
            };
            (f(train)?, f(eval)?)
        }
    };
    let train_y: Vec<usize> = train.iter().map(|s| s.label).collect();
    let eval_y: Vec<usize> = eval.iter().map(|s| s.label).collect();
    let knn = Knn::fit(&train_x, &train_y, splits.labels.len())?;
    let params = KnnParams {
        k: a.k,
        ..KnnParams::default()
    };
    let probs = knn.predict_proba_batch(&eval_x, &params)?;
    let report = classification_report(&eval_y, &probs, splits.labels.names())?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    write_json(
        &a.out.join("report.json"),
        &serde_json::json!({
            "baseline": "knn",
            "features": format!("{:?}", a.features).to_lowercase(),
            "k": a.k,
            "split": split.as_str(),
            "report": report,
        }),
    )?;
    plots(&a.out, &report, splits.labels.names())?;
    println!(
        "k-NN ({:?}, k={}) on {} {}: accuracy {:.3}, macro F1 {:.3}, macro AUC {}",
        a.features,
        a.k,
        eval.len(),
        a.split,
        report.accuracy,
        report.macro_f1,
        report.macro_auc.map_or("n/a".into(), |v| format!("{v:.3}"))
    );
    Ok(())
}

fn histograms(samples: &[Sample]) -> Result<Vec<Vec<f32>>> {
    samples
        .par_iter()
        .map(|s| {
            let img = load_rgb(&s.path)?;
            sleeve_eval::hsv_histogram(&img, [8, 4, 4])
                .with_context(|| format!("histogram of {}", s.path.display()))
        })
        .collect()
}

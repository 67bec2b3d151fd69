//! Training recipes behind `sleeve train classifier`:
//! * **pretrained** (default): frozen ImageNet MobileNetV2 → cached embeddings of a few
//!   augmented views → linear head; optionally `unfreeze_last = K` fine-tunes the last K
//!   blocks on cached activations;
//! * **scratch**: the small CNN or a MobileNetV2 of any width, trained end to end on
//!   on-the-fly augmented images.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::{Module, Param};
use burn::tensor::Device;
use serde::Serialize;
use sleeve_shared::fsutil::{sha256_file, write_atomic};
use sleeve_shared::preprocess::PreprocessConfig;

use crate::augment::AugmentConfig;
use crate::checkpoint::{
    ArchConfig, Classifier, ClassifierMeta, META_VERSION, Provenance, now_unix, save_classifier,
};
use crate::data::{DataSplits, Sample, load_splits};
use crate::features::{CacheKey, extract};
use crate::fit::{FitConfig, FitOutcome, FitState, checkpoint_dir, fit, interrupt_flag};
use crate::import::{config_for, load_pretrained};
use crate::mobilenet::EmbeddingKind;
use crate::mobilenet::MobileNetV2Config;
use crate::predict::predict_probs_any;
use crate::scratch::ScratchCnnConfig;
use crate::tasks::{FinetuneTask, Head, HeadTask, ImageTask, Rows, Standardizer};

/// Which network and how it starts.
#[derive(Clone, Debug)]
pub enum Recipe {
    /// Pretrained MobileNetV2 from `weights`, frozen; head on cached embeddings, plus the
    /// last `unfreeze_last` blocks on cached activations when > 0.
    Pretrained {
        /// TFLite or torchvision safetensors file.
        weights: PathBuf,
        /// Augmented views per training image (besides the plain one).
        views: u32,
        /// Blocks to fine-tune (0: head only).
        unfreeze_last: usize,
        /// What the head sees (style statistics need `unfreeze_last` 0).
        embedding: EmbeddingKind,
    },
    /// MobileNetV2 (random init) trained end to end.
    MobilenetScratch,
    /// The scratch CNN trained end to end.
    ScratchCnn,
}

/// Everything a training run needs.
#[derive(Clone, Debug)]
pub struct TrainPlan {
    /// Dataset directory or image folder.
    pub data: PathBuf,
    /// Output directory (`classifier/`, `history.json`, `checkpoint/`, `cache/`).
    pub out: PathBuf,
    /// Recipe.
    pub recipe: Recipe,
    /// MobileNetV2 width multiplier.
    pub width: f32,
    /// Input side in pixels.
    pub size: u32,
    /// Dropout before the head.
    pub dropout: f64,
    /// Optimisation settings.
    pub fit: FitConfig,
    /// Continue from `out/checkpoint`.
    pub resume: bool,
    /// Feature cache directory (default `out/cache`).
    pub cache_dir: Option<PathBuf>,
    /// Batch size for feature extraction.
    pub extract_batch: usize,
    /// The command line, for provenance.
    pub command: String,
    /// Where training runs (`--device`; the CPU unless built with `cuda`).
    pub device: Device,
}

/// Summary of a finished run (also written to `out/summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    /// Recipe name.
    pub recipe: String,
    /// Best validation accuracy.
    pub best_val_acc: f64,
    /// Test accuracy of the saved classifier.
    pub test_accuracy: f64,
    /// Test macro one-vs-rest ROC AUC.
    pub test_macro_auc: Option<f64>,
    /// Test macro F1.
    pub test_macro_f1: f64,
    /// Seconds spent computing cached features.
    pub feature_seconds: f64,
    /// Seconds spent in the training loop.
    pub fit_seconds: f64,
    /// Mean training items per second over the epochs.
    pub train_items_per_sec: f64,
    /// Mean epoch seconds.
    pub epoch_seconds: f64,
    /// Epochs run and why training stopped.
    pub epochs: usize,
    /// Why training stopped.
    pub stop_reason: String,
    /// Where the classifier was written.
    pub classifier: PathBuf,
}

/// Runs a plan end to end: data, training, test evaluation, classifier directory.
/// Returns `None` when interrupted (the checkpoint is saved; rerun with `--resume`).
pub fn run(plan: &TrainPlan) -> Result<Option<TrainSummary>> {
    std::fs::create_dir_all(&plan.out)
        .with_context(|| format!("cannot create {}", plan.out.display()))?;
    let splits = load_splits(&plan.data, plan.fit.seed, None)?;
    anyhow::ensure!(
        !splits.train.is_empty(),
        "no training images in {}",
        plan.data.display()
    );
    anyhow::ensure!(
        !splits.val.is_empty(),
        "no validation images in {}",
        plan.data.display()
    );
    let mut fit_cfg = plan.fit.clone();
    fit_cfg.num_classes = splits.labels.len();
    let device = plan.device.clone();
    device.seed(plan.fit.seed);
    let interrupt = interrupt_flag();
    let ckpt = checkpoint_dir(&plan.out);
    let aug = AugmentConfig::default();
    let t_all = Instant::now();
    let (classifier, arch, preprocess, pretrained, feature_seconds, outcome_state, recipe_name) =
        match &plan.recipe {
            Recipe::Pretrained {
                weights,
                views,
                unfreeze_last,
                embedding,
            } => {
                let r = pretrained(
                    plan,
                    &splits,
                    &fit_cfg,
                    weights,
                    *views,
                    *unfreeze_last,
                    *embedding,
                    &aug,
                    &device,
                )?;
                let Some(r) = r else { return Ok(None) };
                r
            }
            Recipe::MobilenetScratch | Recipe::ScratchCnn => {
                let preprocess = PreprocessConfig::signed_unit(plan.size);
                let task = ImageTask {
                    train: splits.train.clone(),
                    val: splits.val.clone(),
                    preprocess: preprocess.clone(),
                    augment: aug.clone(),
                    seed: plan.fit.seed,
                    device: device.clone(),
                };
                let (classifier, arch, state, name) = if matches!(plan.recipe, Recipe::ScratchCnn) {
                    let cfg = ScratchCnnConfig::new(fit_cfg.num_classes).with_dropout(plan.dropout);
                    let model = cfg.init(&device);
                    let t = (task, PhantomData);
                    let out = fit(&t, model, &fit_cfg, Some(&ckpt), plan.resume, &interrupt)?;
                    if out.interrupted {
                        return Ok(None);
                    }
                    (
                        Classifier::Scratch(out.best),
                        ArchConfig::ScratchCnn(cfg),
                        out.state,
                        "scratch-cnn",
                    )
                } else {
                    let cfg = MobileNetV2Config::new(fit_cfg.num_classes)
                        .with_width_mult(plan.width)
                        .with_dropout(plan.dropout);
                    let model = cfg.init(&device);
                    let t = (task, PhantomData);
                    let out = fit(&t, model, &fit_cfg, Some(&ckpt), plan.resume, &interrupt)?;
                    if out.interrupted {
                        return Ok(None);
                    }
                    (
                        Classifier::Mobilenet(out.best),
                        ArchConfig::MobilenetV2(cfg),
                        out.state,
                        "mobilenet-scratch",
                    )
                };
                (
                    classifier,
                    arch,
                    preprocess,
                    None,
                    0.0,
                    state,
                    name.to_string(),
                )
            }
        };
    let fit_seconds = t_all.elapsed().as_secs_f64() - feature_seconds;
    // held-out test evaluation of the saved classifier
    let test_paths: Vec<PathBuf> = splits.test.iter().map(|s| s.path.clone()).collect();
    let test_labels: Vec<usize> = splits.test.iter().map(|s| s.label).collect();
    let report = if test_paths.is_empty() {
        None
    } else {
        let probs = predict_probs_any(&classifier, &test_paths, &preprocess)?;
        Some(
            sleeve_eval::classification_report(&test_labels, &probs, splits.labels.names())
                .context("cannot compute test metrics")?,
        )
    };
    let history = &outcome_state.history;
    let n_ep = history.len().max(1) as f64;
    let summary = TrainSummary {
        recipe: recipe_name.clone(),
        best_val_acc: outcome_state.best_val_acc,
        test_accuracy: report.as_ref().map_or(f64::NAN, |r| r.accuracy),
        test_macro_auc: report.as_ref().and_then(|r| r.macro_auc),
        test_macro_f1: report.as_ref().map_or(f64::NAN, |r| r.macro_f1),
        feature_seconds,
        fit_seconds,
        train_items_per_sec: history.iter().map(|h| h.items_per_sec).sum::<f64>() / n_ep,
        epoch_seconds: history.iter().map(|h| h.seconds).sum::<f64>() / n_ep,
        epochs: history.len(),
        stop_reason: outcome_state.stop_reason.clone(),
        classifier: plan.out.join("classifier"),
    };
    let meta = ClassifierMeta {
        version: META_VERSION,
        arch,
        labels: splits.labels.clone(),
        preprocess,
        provenance: Provenance {
            command: plan.command.clone(),
            data: plan.data.display().to_string(),
            seed: plan.fit.seed,
            pretrained,
            recipe: recipe_name,
            created_unix: now_unix(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        },
        metrics: serde_json::json!({
            "best_val_acc": outcome_state.best_val_acc,
            "best_epoch": outcome_state.best_epoch,
            "test": report,
            "fit": plan.fit,
        }),
    };
    match &classifier {
        Classifier::Mobilenet(m) => save_classifier(&summary.classifier, m, &meta)?,
        Classifier::Scratch(m) => save_classifier(&summary.classifier, m, &meta)?,
    }
    write_json(&plan.out.join("history.json"), &outcome_state)?;
    write_json(&plan.out.join("summary.json"), &summary)?;
    tracing::info!(
        "test accuracy {:.3}, macro AUC {:?}; classifier written to {}",
        summary.test_accuracy,
        summary.test_macro_auc,
        summary.classifier.display()
    );
    Ok(Some(summary))
}

type PretrainedResult = (
    Classifier,
    ArchConfig,
    PreprocessConfig,
    Option<String>,
    f64,
    FitState,
    String,
);

#[allow(clippy::too_many_arguments)]
fn pretrained(
    plan: &TrainPlan,
    splits: &DataSplits,
    fit_cfg: &FitConfig,
    weights_path: &Path,
    views: u32,
    unfreeze_last: usize,
    embedding: EmbeddingKind,
    aug: &AugmentConfig,
    device: &Device,
) -> Result<Option<PretrainedResult>> {
    let weights = sleeve_weights::read_weights(weights_path)
        .with_context(|| format!("cannot read pretrained weights {}", weights_path.display()))?;
    weights
        .validate_width(plan.width)
        .with_context(|| format!("{} at width {}", weights_path.display(), plan.width))?;
    let sha = sha256_file(weights_path)
        .with_context(|| format!("cannot read {}", weights_path.display()))?;
    anyhow::ensure!(
        unfreeze_last == 0 || embedding == EmbeddingKind::Pooled,
        "--embedding style trains a head on frozen features: drop --unfreeze-last"
    );
    let cfg = config_for(&weights, plan.width, fit_cfg.num_classes)
        .with_dropout(plan.dropout)
        .with_embedding(Some(embedding));
    let (model, report) = load_pretrained(cfg.init(device), &weights)?;
    tracing::info!(
        "{}: mapped {}/{} tensors (head {})",
        weights.summary(),
        report.tensors_mapped,
        report.tensors_total,
        if report.head_copied { "copied" } else { "new" }
    );
    let model = model.valid();
    let preprocess = weights.input_norm.preprocess_config(plan.size);
    let backbone = format!("{sha}:w{}:{:?}", plan.width, cfg.padding);
    let cache_dir = plan
        .cache_dir
        .clone()
        .unwrap_or_else(|| plan.out.join("cache"));
    let n_blocks = model.num_blocks();
    anyhow::ensure!(
        unfreeze_last <= n_blocks,
        "--unfreeze-last {unfreeze_last} > {n_blocks} blocks"
    );
    let first_block = n_blocks - unfreeze_last;
    let layer = if unfreeze_last == 0 {
        match embedding {
            EmbeddingKind::Pooled => "embed".to_string(),
            EmbeddingKind::Style => "style".to_string(),
        }
    } else {
        format!("block{first_block}")
    };
    let key = |view: u32| CacheKey {
        backbone: backbone.clone(),
        layer: layer.clone(),
        preprocess: preprocess.clone(),
        augment: (view > 0).then(|| aug.clone()),
        seed: fit_cfg.seed,
        view,
    };
    let t0 = Instant::now();
    let rows = |samples: &[Sample], view: u32| -> Result<Rows> {
        let vals = if unfreeze_last == 0 {
            extract(
                samples,
                &key(view),
                aug,
                Some(&cache_dir),
                plan.extract_batch,
                device,
                |x| model.embed(x),
            )?
        } else {
            extract(
                samples,
                &key(view),
                aug,
                Some(&cache_dir),
                plan.extract_batch,
                device,
                |x| model.forward_prefix(x, first_block),
            )?
        };
        Ok(Rows::new(vals, samples.iter().map(|s| s.label).collect()))
    };
    let mut train = rows(&splits.train, 0)?;
    for v in 1..=views {
        train.extend(rows(&splits.train, v)?);
    }
    let val = rows(&splits.val, 0)?;
    let feature_seconds = t0.elapsed().as_secs_f64();
    tracing::info!(
        "features: {} train rows ({} views), {} val rows, {:.0}s",
        train.len(),
        views + 1,
        val.len(),
        feature_seconds
    );
    let interrupt = interrupt_flag();
    let ckpt = checkpoint_dir(&plan.out);
    let (model, state, name) = if unfreeze_last == 0 {
        // style statistics mix scales (means, deviations, pooled map): standardise, then
        // fold the standardisation into the trained layer
        let standardizer = (embedding == EmbeddingKind::Style).then(|| Standardizer::fit(&train));
        let (mut train, mut val) = (train, val);
        if let Some(st) = &standardizer {
            st.apply(&mut train);
            st.apply(&mut val);
        }
        let task = HeadTask {
            train,
            val,
            device: device.clone(),
        };
        let head = Head::new(model.embed_dim(), fit_cfg.num_classes, plan.dropout, device);
        let out: FitOutcome<Head> =
            fit(&task, head, fit_cfg, Some(&ckpt), plan.resume, &interrupt)?;
        if out.interrupted {
            return Ok(None);
        }
        let mut model = model;
        let linear = match &standardizer {
            Some(st) => st.fold_into(&out.best.linear)?,
            None => out.best.linear,
        };
        model.classifier.weight =
            Param::initialized(model.classifier.weight.id, linear.weight.val());
        if let (Some(b), Some(dst)) = (linear.bias.as_ref(), model.classifier.bias.as_ref()) {
            model.classifier.bias = Some(Param::initialized(dst.id, b.val()));
        }
        let name = match embedding {
            EmbeddingKind::Pooled => "pretrained-head",
            EmbeddingKind::Style => "pretrained-style-head",
        };
        (model, out.state, name.to_string())
    } else {
        let [_, c, h, w] = {
            let s = plan.size as usize;
            model
                .forward_prefix(
                    burn::tensor::Tensor::zeros([1, 3, s, s], device),
                    first_block,
                )
                .dims()
        };
        // keep the pretrained (folded) BNs as they are: only conv weights and the head learn
        let model = model.freeze_batch_norms_from(first_block);
        let task = FinetuneTask {
            train,
            val,
            shape: [c, h, w],
            first_block,
            device: device.clone(),
        };
        let out = fit(&task, model, fit_cfg, Some(&ckpt), plan.resume, &interrupt)?;
        if out.interrupted {
            return Ok(None);
        }
        (
            out.best,
            out.state,
            format!("pretrained-finetune-last-{unfreeze_last}"),
        )
    };
    let pretrained = Some(format!(
        "{} (sha256 {sha})",
        weights_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    Ok(Some((
        Classifier::Mobilenet(model.valid()),
        ArchConfig::MobilenetV2(cfg),
        preprocess,
        pretrained,
        feature_seconds,
        state,
        name,
    )))
}

/// Writes pretty JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::load_classifier;
    use crate::predict::predict_probs;
    use image::{Rgb, RgbImage};

    /// A folder-per-genre tree: reddish "rock" and bluish "pop" covers with noise.
    fn toy_folder(dir: &Path, per_class: u32) {
        for (genre, base) in [("rock", [200u8, 40, 40]), ("pop", [40u8, 40, 200])] {
            let d = dir.join(genre);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..per_class {
                let img = RgbImage::from_fn(40, 40, |x, y| {
                    let n = ((x * 31 + y * 17 + i * 7) % 40) as u8;
                    Rgb([
                        base[0].saturating_add(n),
                        base[1].saturating_add(n),
                        base[2].saturating_add(n),
                    ])
                });
                img.save(d.join(format!("{genre}{i}.png"))).unwrap();
            }
        }
    }

    fn plan(data: &Path, out: &Path, recipe: Recipe, epochs: usize) -> TrainPlan {
        TrainPlan {
            data: data.to_path_buf(),
            out: out.to_path_buf(),
            recipe,
            width: 0.25,
            size: 32,
            dropout: 0.0,
            fit: FitConfig {
                epochs,
                batch_size: 8,
                lr: 5e-3,
                warmup_frac: 0.1,
                weight_decay: 1e-4,
                label_smoothing: 0.0,
                balanced: true,
                patience: 0,
                time_budget: None,
                seed: 1,
                num_classes: 0,
            },
            resume: false,
            cache_dir: None,
            extract_batch: 8,
            command: "test".into(),
            device: Device::flex(),
        }
    }

    #[test]
    fn scratch_cnn_learns_a_toy_set_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        toy_folder(&data, 10);
        let out = dir.path().join("run");
        let s = run(&plan(&data, &out, Recipe::ScratchCnn, 4))
            .unwrap()
            .unwrap();
        let h: FitState =
            serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap();
        assert_eq!(h.history.len(), 4);
        assert!(
            h.history[3].train_loss < h.history[0].train_loss,
            "{:?}",
            h.history
        );
        assert!(s.classifier.join("meta.json").is_file());
        assert!(s.test_accuracy.is_finite());
    }

    #[test]
    fn pretrained_head_and_finetune_recipes_write_usable_classifiers() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        toy_folder(&data, 10);
        let weights = dir.path().join("w.safetensors");
        sleeve_weights::write_torchvision_safetensors(&weights, 0.25, 10, 2).unwrap();
        for (k, embedding) in [
            (0, EmbeddingKind::Pooled),
            (2, EmbeddingKind::Pooled),
            (0, EmbeddingKind::Style),
        ] {
            let out = dir.path().join(format!("run{k}{embedding:?}"));
            let recipe = Recipe::Pretrained {
                weights: weights.clone(),
                views: 1,
                unfreeze_last: k,
                embedding,
            };
            let s = run(&plan(&data, &out, recipe, 3)).unwrap().unwrap();
            assert_eq!(s.epochs, 3);
            // the feature cache was written and a second run reuses it
            assert!(std::fs::read_dir(out.join("cache")).unwrap().count() >= 2);
            let (model, meta) = load_classifier(&s.classifier, &Device::flex()).unwrap();
            assert_eq!(meta.labels.names(), ["pop", "rock"]);
            if let crate::checkpoint::ArchConfig::MobilenetV2(c) = &meta.arch {
                assert_eq!(c.embedding_kind(), embedding);
            }
            assert_eq!(meta.preprocess.input_size, 32);
            let img = data.join("rock").join("rock0.png");
            let p = predict_probs(&model, &[img], &meta.preprocess).unwrap();
            assert_eq!(p[0].len(), 2);
            assert!((p[0].iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }
}

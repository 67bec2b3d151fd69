//! Training recipes behind `sleeve train classifier`:
//! * **pretrained** (default): frozen ImageNet MobileNetV2 → cached embeddings of a few
//!   augmented views → linear head; optionally `unfreeze_last = K` fine-tunes the last K
//!   blocks on cached activations;
//! * **fresh views**: the same frozen network, with blocks `first_block..`, the last conv and
//!   a pooled head fine-tuned on freshly augmented images every epoch (the prefix runs
//!   forward only);
//! * **scratch**: the small CNN or a MobileNetV2 of any width, trained end to end on
//!   on-the-fly augmented images.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sleeve_shared::fsutil::{sha256_file, write_atomic};
use sleeve_shared::preprocess::PreprocessConfig;

use crate::augment::AugmentConfig;
use crate::checkpoint::{
    ArchConfig, Classifier, ClassifierMeta, ClassifierMetrics, META_VERSION, Provenance, now_unix,
    save_classifier,
};
use crate::data::{DataSplits, Sample, load_splits};
use crate::features::{CacheKey, extract};
use crate::fit::{FitConfig, fit};
use crate::import::{config_for, load_pretrained};
use crate::learner::{FitState, checkpoint_dir, interrupt_flag};
use crate::mobilenet::EmbeddingKind;
use crate::mobilenet::{MobileNetV2, MobileNetV2Config};
use crate::predict::predict_probs_any;
use crate::scratch::ScratchCnnConfig;
use crate::tasks::{FinetuneTask, FreshViewTask, Head, HeadTask, ImageTask, Rows, Standardizer};

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
    /// Pretrained MobileNetV2 from `weights`: blocks `first_block..`, the final 1×1 conv and
    /// a pooled head fine-tuned on freshly augmented images every epoch; the prefix is
    /// frozen and runs forward only.
    FreshViews {
        /// TFLite or torchvision safetensors file.
        weights: PathBuf,
        /// First fine-tuned block (1..=16 for MobileNetV2).
        first_block: usize,
        /// What the head sees: the pooled map, or the style statistics (those of tapped
        /// blocks before `first_block` computed by the frozen prefix).
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

/// Summary of a finished run (also written to `out/summary.json`; read back with
/// [`TrainSummary::open`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
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

/// File name of a run's [`TrainSummary`].
pub const SUMMARY_FILE: &str = "summary.json";

impl TrainSummary {
    /// Reads `summary.json` of a run folder (`sleeve train classifier --out`). Fields an older
    /// run did not write keep their defaults.
    pub fn open(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(SUMMARY_FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a training summary", path.display()))
    }
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
            Recipe::FreshViews {
                weights,
                first_block,
                embedding,
            } => {
                let r = fresh_views(
                    plan,
                    &splits,
                    &fit_cfg,
                    weights,
                    (*first_block, *embedding),
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
        best_val_acc: outcome_state.best_val_score,
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
        metrics: ClassifierMetrics {
            best_val_acc: Some(outcome_state.best_val_score),
            best_epoch: Some(outcome_state.best_epoch),
            test: report
                .as_ref()
                .map(serde_json::to_value)
                .transpose()?
                .map(serde_json::from_value)
                .transpose()?,
            other: [("fit".to_string(), serde_json::to_value(&plan.fit)?)].into(),
        },
    };
    match &classifier {
        Classifier::Mobilenet(m) => save_classifier(&summary.classifier, m, &meta)?,
        Classifier::Scratch(m) => save_classifier(&summary.classifier, m, &meta)?,
    }
    write_json(&plan.out.join("history.json"), &outcome_state)?;
    write_json(&plan.out.join(SUMMARY_FILE), &summary)?;
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
    anyhow::ensure!(
        unfreeze_last == 0 || embedding == EmbeddingKind::Pooled,
        "--embedding style trains a head on frozen features: drop --unfreeze-last"
    );
    let Backbone {
        model,
        cfg,
        preprocess,
        sha,
    } = Backbone::load(plan, fit_cfg, weights_path, embedding, device)?;
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
        let out: crate::learner::Outcome<Head> =
            fit(&task, head, fit_cfg, Some(&ckpt), plan.resume, &interrupt)?;
        if out.interrupted {
            return Ok(None);
        }
        let linear = match &standardizer {
            Some(st) => st.fold_into(&out.best.linear)?,
            None => out.best.linear,
        };
        let model = with_head(model, &linear);
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
    Ok(Some((
        Classifier::Mobilenet(model.valid()),
        ArchConfig::MobilenetV2(cfg),
        preprocess,
        Some(pretrained_label(weights_path, &sha)),
        feature_seconds,
        state,
        name,
    )))
}

/// A pretrained MobileNetV2 loaded for a run, in inference mode.
struct Backbone {
    model: MobileNetV2,
    cfg: MobileNetV2Config,
    preprocess: PreprocessConfig,
    /// SHA-256 of the weights file.
    sha: String,
}

impl Backbone {
    fn load(
        plan: &TrainPlan,
        fit_cfg: &FitConfig,
        weights_path: &Path,
        embedding: EmbeddingKind,
        device: &Device,
    ) -> Result<Self> {
        let weights = sleeve_weights::read_weights(weights_path).with_context(|| {
            format!("cannot read pretrained weights {}", weights_path.display())
        })?;
        weights
            .validate_width(plan.width)
            .with_context(|| format!("{} at width {}", weights_path.display(), plan.width))?;
        let sha = sha256_file(weights_path)
            .with_context(|| format!("cannot read {}", weights_path.display()))?;
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
        Ok(Self {
            model: model.valid(),
            cfg,
            preprocess: weights.input_norm.preprocess_config(plan.size),
            sha,
        })
    }
}

/// `model` with its linear head replaced by `linear` (same shape), as trainable parameters
/// (the probe's head is an inference copy, whose parameters would otherwise stay frozen).
fn with_head(mut model: MobileNetV2, linear: &burn::nn::Linear) -> MobileNetV2 {
    model.classifier.weight = Param::from_tensor(linear.weight.val());
    if let Some(b) = linear.bias.as_ref() {
        model.classifier.bias = Some(Param::from_tensor(b.val()));
    }
    model
}

/// What a [`linear_probe`] hands to fine-tuning.
struct Probe {
    /// The head fitted on frozen features (`None` when resuming: the checkpoint has it).
    head: Option<burn::nn::Linear>,
    /// The standardisation the head reads through (style embeddings).
    standardizer: Option<Standardizer>,
}

/// A linear probe: the head trained on cached embeddings of the plain images (the model's
/// embedding kind; style statistics standardised), so that fine-tuning starts from a head
/// that already fits the frozen features instead of a random one whose first gradients
/// would disturb the pretrained blocks. With `fit_head` false only the standardisation is
/// computed. `None` when interrupted.
#[allow(clippy::too_many_arguments)]
fn linear_probe(
    plan: &TrainPlan,
    splits: &DataSplits,
    fit_cfg: &FitConfig,
    model: &MobileNetV2,
    backbone: &str,
    preprocess: &PreprocessConfig,
    aug: &AugmentConfig,
    device: &Device,
    fit_head: bool,
) -> Result<Option<Probe>> {
    let style = model.embedding_kind() == EmbeddingKind::Style;
    let key = CacheKey {
        backbone: backbone.to_string(),
        // the same cache entries as a head on frozen features
        layer: if style { "style" } else { "embed" }.into(),
        preprocess: preprocess.clone(),
        augment: None,
        seed: fit_cfg.seed,
        view: 0,
    };
    let cache_dir = plan
        .cache_dir
        .clone()
        .unwrap_or_else(|| plan.out.join("cache"));
    let rows = |samples: &[Sample]| -> Result<Rows> {
        let v = extract(
            samples,
            &key,
            aug,
            Some(&cache_dir),
            plan.extract_batch,
            device,
            |x| model.embed(x),
        )?;
        Ok(Rows::new(v, samples.iter().map(|s| s.label).collect()))
    };
    let mut train = rows(&splits.train)?;
    let standardizer = style.then(|| Standardizer::fit(&train));
    if !fit_head {
        return Ok(Some(Probe {
            head: None,
            standardizer,
        }));
    }
    let mut val = rows(&splits.val)?;
    if let Some(st) = &standardizer {
        st.apply(&mut train);
        st.apply(&mut val);
    }
    let task = HeadTask {
        train,
        val,
        device: device.clone(),
    };
    // the heads' measured defaults on frozen features (docs/training.md)
    let probe = FitConfig {
        epochs: 60,
        batch_size: 64,
        lr: if style { 3e-4 } else { 3e-3 },
        weight_decay: if style { 20.0 } else { 1e-4 },
        patience: 8,
        time_budget: None,
        mixup_alpha: 0.0,
        ..fit_cfg.clone()
    };
    let head = Head::new(model.embed_dim(), fit_cfg.num_classes, plan.dropout, device);
    let out = fit(&task, head, &probe, None, false, &interrupt_flag())?;
    if out.interrupted {
        return Ok(None);
    }
    tracing::info!(
        "linear probe: val accuracy {:.3} at epoch {}",
        out.state.best_val_score,
        out.state.best_epoch
    );
    Ok(Some(Probe {
        head: Some(out.best.linear),
        standardizer,
    }))
}

/// `file name (sha256 …)` of the pretrained weights, for provenance.
fn pretrained_label(weights_path: &Path, sha: &str) -> String {
    format!(
        "{} (sha256 {sha})",
        weights_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

/// Fine-tunes blocks `first_block..`, the final 1×1 conv and the head (initialised by a
/// [`linear_probe`]) on freshly augmented images every epoch ([`FreshViewTask`]); the
/// prefix stays frozen.
fn fresh_views(
    plan: &TrainPlan,
    splits: &DataSplits,
    fit_cfg: &FitConfig,
    weights_path: &Path,
    (first_block, embedding): (usize, EmbeddingKind),
    aug: &AugmentConfig,
    device: &Device,
) -> Result<Option<PretrainedResult>> {
    let Some(setup) = fresh_view_setup(
        plan,
        splits,
        fit_cfg,
        weights_path,
        (first_block, embedding),
        aug,
        device,
    )?
    else {
        return Ok(None);
    };
    let interrupt = interrupt_flag();
    let ckpt = checkpoint_dir(&plan.out);
    let out = fit(
        &setup.task,
        setup.model,
        fit_cfg,
        Some(&ckpt),
        plan.resume,
        &interrupt,
    )?;
    if out.interrupted {
        return Ok(None);
    }
    let mut best = out.best;
    if let Some(st) = &setup.task.standardizer {
        // the saved (and exported) head reads the raw statistics
        best.classifier = st.fold_into(&best.classifier)?;
    }
    let name = match embedding {
        EmbeddingKind::Pooled => format!("pretrained-fresh-views-from-block-{first_block}"),
        EmbeddingKind::Style => format!("pretrained-style-fresh-views-from-block-{first_block}"),
    };
    Ok(Some((
        Classifier::Mobilenet(best),
        ArchConfig::MobilenetV2(setup.cfg),
        setup.task.preprocess,
        Some(pretrained_label(weights_path, &setup.sha)),
        setup.feature_seconds,
        out.state,
        name,
    )))
}

/// What [`fit`] needs for a fresh-view run, and what the run records.
struct FreshViewSetup {
    task: FreshViewTask,
    /// The network to train: pretrained, probed head, BatchNorms of the tail frozen.
    model: MobileNetV2,
    cfg: MobileNetV2Config,
    sha: String,
    feature_seconds: f64,
}

/// Loads the backbone, fits the linear probe (not when resuming), caches the validation
/// prefix activations and builds the task. `None` when interrupted.
fn fresh_view_setup(
    plan: &TrainPlan,
    splits: &DataSplits,
    fit_cfg: &FitConfig,
    weights_path: &Path,
    (first_block, embedding): (usize, EmbeddingKind),
    aug: &AugmentConfig,
    device: &Device,
) -> Result<Option<FreshViewSetup>> {
    let Backbone {
        model,
        cfg,
        preprocess,
        sha,
    } = Backbone::load(plan, fit_cfg, weights_path, embedding, device)?;
    let n_blocks = model.num_blocks();
    anyhow::ensure!(
        (1..n_blocks).contains(&first_block),
        "--finetune-from-block {first_block} is out of range: the network has blocks 0..{}, \
         and block 0 runs at full resolution (use 1..={})",
        n_blocks - 1,
        n_blocks - 1
    );
    let t0 = Instant::now();
    let backbone = format!("{sha}:w{}:{:?}", plan.width, cfg.padding);
    // resumed runs restore the head from the checkpoint: only the standardisation is needed
    let resuming = plan.resume && checkpoint_dir(&plan.out).join("state.json").is_file();
    let Some(probe) = linear_probe(
        plan,
        splits,
        fit_cfg,
        &model,
        &backbone,
        &preprocess,
        aug,
        device,
        !resuming,
    )?
    else {
        return Ok(None);
    };
    let model = match &probe.head {
        Some(head) => with_head(model, head),
        None => model,
    };
    let cache_dir = plan
        .cache_dir
        .clone()
        .unwrap_or_else(|| plan.out.join("cache"));
    let key = |layer: String| CacheKey {
        backbone: backbone.clone(),
        layer,
        preprocess: preprocess.clone(),
        augment: None,
        seed: fit_cfg.seed,
        view: 0,
    };
    let labels = || splits.val.iter().map(|s| s.label).collect::<Vec<_>>();
    let val_acts = extract(
        &splits.val,
        &key(format!("block{first_block}")),
        aug,
        Some(&cache_dir),
        plan.extract_batch,
        device,
        |x| model.forward_prefix(x, first_block),
    )?;
    let val = Rows::new(val_acts, labels());
    let prefix_has_taps = cfg.style_blocks().iter().any(|&b| b < first_block);
    let val_taps = if embedding == EmbeddingKind::Style && prefix_has_taps {
        let taps = extract(
            &splits.val,
            &key(format!("block{first_block}-style-taps")),
            aug,
            Some(&cache_dir),
            plan.extract_batch,
            device,
            |x| {
                let (_, taps) = model.style_prefix(x, first_block);
                taps.expect("the prefix holds a tapped block")
            },
        )?;
        Some(Rows::new(taps, labels()))
    } else {
        None
    };
    let feature_seconds = t0.elapsed().as_secs_f64();
    let [_, c, h, w] = {
        let s = plan.size as usize;
        model
            .forward_prefix(Tensor::zeros([1, 3, s, s], device), first_block)
            .dims()
    };
    let task = FreshViewTask {
        train: splits.train.clone(),
        val,
        val_taps,
        shape: [c, h, w],
        prefix: model.clone(),
        first_block,
        standardizer: probe.standardizer,
        preprocess,
        augment: aug.clone(),
        seed: fit_cfg.seed,
        device: device.clone(),
    };
    Ok(Some(FreshViewSetup {
        task,
        // pretrained (folded) BatchNorms stay as imported: conv weights and the head learn
        model: model.freeze_batch_norms_from(first_block),
        cfg,
        sha,
        feature_seconds,
    }))
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
                mixup_alpha: 0.0,
                balanced: true,
                patience: 0,
                time_budget: None,
                seed: 1,
                num_classes: 0,
                ema_decay: None,
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

    /// Conv weights of every block (expansion, depthwise and projection, concatenated), and
    /// of the final 1×1 conv.
    fn block_weights(m: &MobileNetV2) -> (Vec<Vec<f32>>, Vec<f32>) {
        let values = |c: &crate::mobilenet::ConvBnAct| {
            crate::images::tensor_values(c.conv.weight.val()).unwrap()
        };
        let blocks = m
            .blocks
            .iter()
            .map(|b| {
                let mut v = b.expand.as_ref().map(values).unwrap_or_default();
                v.extend(values(&b.depthwise));
                v.extend(values(&b.project));
                v
            })
            .collect();
        let last = crate::images::tensor_values(m.last.conv.weight.val()).unwrap();
        (blocks, last)
    }

    #[test]
    fn fresh_view_finetuning_trains_the_tail_and_leaves_the_prefix_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        toy_folder(&data, 10);
        let weights = dir.path().join("w.safetensors");
        sleeve_weights::write_torchvision_safetensors(&weights, 0.25, 10, 2).unwrap();
        let out = dir.path().join("run");
        let recipe = Recipe::FreshViews {
            weights: weights.clone(),
            first_block: 13,
            embedding: EmbeddingKind::Pooled,
        };
        let p = plan(&data, &out, recipe, 2);
        let s = run(&p).unwrap().unwrap();
        assert_eq!(s.epochs, 2);
        assert!(
            s.recipe.contains("fresh-views-from-block-13"),
            "{}",
            s.recipe
        );
        let device = Device::flex();
        let mut fit_cfg = p.fit.clone();
        fit_cfg.num_classes = 2;
        let before = Backbone::load(&p, &fit_cfg, &weights, EmbeddingKind::Pooled, &device)
            .unwrap()
            .model;
        let (after, meta) = load_classifier(&s.classifier, &device).unwrap();
        assert_eq!(meta.labels.names(), ["pop", "rock"]);
        let ((b0, l0), (b1, l1)) = (block_weights(&before), block_weights(&after));
        for (i, (x, y)) in b0.iter().zip(&b1).enumerate() {
            let changed = x.iter().zip(y).any(|(a, b)| (a - b).abs() > 1e-7);
            assert_eq!(changed, i >= 13, "block {i}: changed = {changed}");
        }
        assert!(l0.iter().zip(&l1).any(|(a, b)| (a - b).abs() > 1e-7));
        // out of range blocks are refused with the flag's name
        for bad in [0, 17, 40] {
            let recipe = Recipe::FreshViews {
                weights: weights.clone(),
                first_block: bad,
                embedding: EmbeddingKind::Pooled,
            };
            let err = run(&plan(
                &data,
                &dir.path().join(format!("bad{bad}")),
                recipe,
                1,
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("--finetune-from-block"), "{err}");
        }
    }

    /// A task that raises `flag` during its `stop_at`-th training batch (a Ctrl-C there).
    struct StopAt<'a> {
        inner: &'a FreshViewTask,
        flag: &'a std::sync::atomic::AtomicBool,
        calls: std::sync::atomic::AtomicUsize,
        stop_at: usize,
    }

    impl crate::fit::ClassifierTask for StopAt<'_> {
        type Model = MobileNetV2;
        fn train_len(&self) -> usize {
            self.inner.train_len()
        }
        fn train_label(&self, i: usize) -> usize {
            self.inner.train_label(i)
        }
        fn train_logits(
            &self,
            m: &MobileNetV2,
            idx: &[usize],
            epoch: usize,
            mix: Option<&crate::fit::Mix>,
        ) -> Result<burn::tensor::Tensor<2>> {
            use std::sync::atomic::Ordering;
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_at {
                self.flag.store(true, Ordering::SeqCst);
            }
            self.inner.train_logits(m, idx, epoch, mix)
        }
        fn val_probs(&self, m: &MobileNetV2) -> Result<(Vec<f32>, Vec<usize>)> {
            self.inner.val_probs(m)
        }
    }

    #[test]
    fn an_interrupted_fresh_view_run_resumes_to_the_same_weights() {
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        toy_folder(&data, 10);
        let weights = dir.path().join("w.safetensors");
        sleeve_weights::write_torchvision_safetensors(&weights, 0.25, 10, 2).unwrap();
        let p = plan(&data, &dir.path().join("run"), Recipe::ScratchCnn, 2);
        let splits = load_splits(&data, 1, None).unwrap();
        let mut cfg = p.fit.clone();
        cfg.num_classes = 2;
        let aug = AugmentConfig::default();
        let s = fresh_view_setup(
            &p,
            &splits,
            &cfg,
            &weights,
            (14, EmbeddingKind::Pooled),
            &aug,
            &Device::flex(),
        )
        .unwrap()
        .unwrap();
        let no = AtomicBool::new(false);
        let full = fit(&s.task, s.model.clone(), &cfg, None, false, &no).unwrap();
        // the same run, interrupted during epoch 2's first batch, then resumed
        let ck = dir.path().join("ck");
        let flag = AtomicBool::new(false);
        let batches = crate::fit::ClassifierTask::train_len(&s.task).div_ceil(cfg.batch_size);
        let stopping = StopAt {
            inner: &s.task,
            flag: &flag,
            calls: Default::default(),
            stop_at: batches + 1,
        };
        let first = fit(&stopping, s.model.clone(), &cfg, Some(&ck), false, &flag).unwrap();
        assert!(first.interrupted);
        assert_eq!((first.state.epoch, first.state.batch_in_epoch), (1, 1));
        let resumed = fit(&s.task, s.model.clone(), &cfg, Some(&ck), true, &no).unwrap();
        assert_eq!(resumed.state.step, full.state.step);
        let ((a, la), (b, lb)) = (block_weights(&full.best), block_weights(&resumed.best));
        for (x, y) in a
            .iter()
            .flatten()
            .chain(&la)
            .zip(b.iter().flatten().chain(&lb))
        {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        let (h0, h1) = (&full.state.history, &resumed.state.history);
        assert_eq!(h0.len(), 2);
        assert!(
            (h0[1].train_loss - h1[1].train_loss).abs() < 1e-5,
            "{h0:?} vs {h1:?}"
        );
    }

    #[test]
    fn a_style_fresh_view_head_folds_into_one_that_reads_raw_statistics() {
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        toy_folder(&data, 10);
        let weights = dir.path().join("w.safetensors");
        sleeve_weights::write_torchvision_safetensors(&weights, 0.25, 10, 2).unwrap();
        let p = plan(&data, &dir.path().join("run"), Recipe::ScratchCnn, 1);
        let splits = load_splits(&data, 1, None).unwrap();
        let mut cfg = p.fit.clone();
        cfg.num_classes = 2;
        cfg.mixup_alpha = 0.4;
        let aug = AugmentConfig::default();
        let device = Device::flex();
        // block 14 comes after the tapped block 13: the prefix carries statistics
        let s = fresh_view_setup(
            &p,
            &splits,
            &cfg,
            &weights,
            (14, EmbeddingKind::Style),
            &aug,
            &device,
        )
        .unwrap()
        .unwrap();
        assert!(s.task.val_taps.is_some());
        let st = s.task.standardizer.clone().expect("style runs standardise");
        let no = AtomicBool::new(false);
        let out = fit(&s.task, s.model.clone(), &cfg, None, false, &no).unwrap();
        assert!(out.state.history[0].train_loss.is_finite());
        let samples: Vec<&Sample> = splits.val.iter().collect();
        let trained = crate::images::tensor_values(
            s.task
                .tail_logits(&out.best, s.task.prefix_batch(&samples, 0).unwrap()),
        )
        .unwrap();
        let mut saved = out.best.clone();
        saved.classifier = st.fold_into(&saved.classifier).unwrap();
        let inputs: Vec<Vec<f32>> = samples
            .iter()
            .map(|x| crate::features::load_view(x, &s.task.preprocess, &aug, cfg.seed, 0).unwrap())
            .collect();
        let images = crate::images::batch_tensor(&inputs, 32, &device);
        let raw = crate::images::tensor_values(saved.forward(images)).unwrap();
        assert_eq!(trained.len(), raw.len());
        for (a, b) in trained.iter().zip(&raw) {
            assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn fresh_views_differ_between_epochs_and_repeat_for_a_seed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        toy_folder(&data, 2);
        let splits = load_splits(&data, 1, None).unwrap();
        let sample = &splits.train[0];
        let pre = PreprocessConfig::signed_unit(32);
        let aug = AugmentConfig::default();
        let view = |seed, v| crate::features::load_view(sample, &pre, &aug, seed, v).unwrap();
        assert_eq!(view(1, 1), view(1, 1));
        assert_ne!(view(1, 1), view(1, 2));
        assert_ne!(view(1, 1), view(2, 1));
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

    #[test]
    fn a_training_summary_round_trips_and_an_older_one_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let s = TrainSummary {
            recipe: "pretrained-style-head".into(),
            best_val_acc: 0.49,
            epochs: 12,
            fit_seconds: 33.5,
            ..Default::default()
        };
        write_json(&dir.path().join(SUMMARY_FILE), &s).unwrap();
        let back = TrainSummary::open(dir.path()).unwrap();
        assert_eq!((back.epochs, back.fit_seconds), (12, 33.5));
        assert_eq!(back.recipe, "pretrained-style-head");
        // an older run wrote fewer fields
        std::fs::write(dir.path().join(SUMMARY_FILE), r#"{"epochs": 3}"#).unwrap();
        assert_eq!(TrainSummary::open(dir.path()).unwrap().epochs, 3);
        // not a summary: the error names the file
        std::fs::write(dir.path().join(SUMMARY_FILE), "[1, 2]").unwrap();
        let e = format!("{:#}", TrainSummary::open(dir.path()).unwrap_err());
        assert!(
            e.contains(SUMMARY_FILE) && e.contains("not a training summary"),
            "{e}"
        );
    }
}

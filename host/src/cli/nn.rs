//! Classifier subcommands: `sleeve weights check`, `train classifier`, `eval classifier`,
//! `baseline knn`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, ValueEnum};
use sleeve_shared::duration::parse_duration;
use sleeve_shared::results::softmax;

use sleeve_nn::evaluate::{EvalOptions, KnnFeatures, KnnOptions};
use sleeve_nn::fit::FitConfig;
use sleeve_nn::images::{batch_tensor, load_rgb, tensor_values, to_input};
use sleeve_nn::import::{config_for, load_pretrained};
use sleeve_nn::mobilenet::EmbeddingKind;
use sleeve_nn::train::{Recipe, TrainPlan};

/// `sleeve weights check` arguments.
#[derive(Args, Debug)]
pub struct WeightsCheckArgs {
    /// A TFLite MobileNetV2 (e.g. Coral's mobilenet_v2_1.0_224_quant.tflite).
    #[arg(
        long,
        conflicts_with = "safetensors",
        required_unless_present = "safetensors"
    )]
    pub tflite: Option<PathBuf>,
    /// A torchvision MobileNetV2 state dict as safetensors.
    #[arg(long)]
    pub safetensors: Option<PathBuf>,
    /// Class names, one per line, in output order (imagenet_labels.txt).
    #[arg(long)]
    pub labels: PathBuf,
    /// Width multiplier of the weights.
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    /// Input side (default: the weights' native size).
    #[arg(long)]
    pub size: Option<u32>,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Images to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Network for `sleeve train classifier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// MobileNetV2 (pretrained with --weights, else from scratch).
    Mobilenet,
    /// The small scratch CNN.
    Scratch,
}

/// `sleeve train classifier` arguments.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Dataset directory (`sleeve dataset`) or folder-per-genre tree.
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory (classifier/, history.json, summary.json, checkpoint/, cache/).
    #[arg(long)]
    pub out: PathBuf,
    /// Network.
    #[arg(long, value_enum, default_value_t = Arch::Mobilenet)]
    pub arch: Arch,
    /// Pretrained MobileNetV2 weights (TFLite or torchvision safetensors): trains a head
    /// on cached frozen features. Without it MobileNetV2 trains from scratch.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Fine-tune the last K inverted-residual blocks too (pretrained only).
    #[arg(long, default_value_t = 0)]
    pub unfreeze_last: usize,
    /// Fine-tune blocks N..16, the final 1x1 conv and the head (first fitted as a linear
    /// probe on the frozen features) on freshly augmented images every epoch; the stem and
    /// blocks 0..N stay frozen and run forward only (pretrained only; excludes
    /// --unfreeze-last; the head reads the pooled map unless --embedding style).
    #[arg(long, value_name = "N", conflicts_with = "unfreeze_last")]
    pub finetune_from_block: Option<usize>,
    /// What the head sees (pretrained only): `style` (channel means and deviations of three
    /// expansion layers plus the pooled map; the default for a head on frozen features) or
    /// `pooled` (the final map's average; the default with --unfreeze-last).
    #[arg(long, value_enum)]
    pub embedding: Option<EmbeddingArg>,
    /// Augmented views per training image for cached features (besides the plain one).
    #[arg(long, default_value_t = 2)]
    pub views: u32,
    /// MobileNetV2 width multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Maximum epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (one-cycle).
    #[arg(long)]
    pub lr: Option<f64>,
    /// AdamW weight decay [default: 20 for the style head (its 4,736 standardised
    /// features overfit otherwise), 1e-4 otherwise].
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.1)]
    pub label_smoothing: f32,
    /// Mixup α: blend each batch with a shuffled copy of itself by λ ~ Beta(α, α), labels
    /// likewise (0: off; 0.2–0.4 is usual).
    #[arg(long, default_value_t = 0.0, value_parser = parse_mixup)]
    pub mixup: f32,
    /// Validate and keep an exponential moving average of the weights with this decay per
    /// step (e.g. 0.99; off when absent).
    #[arg(long, value_name = "DECAY", value_parser = parse_ema)]
    pub ema: Option<f32>,
    /// Dropout before the head.
    #[arg(long, default_value_t = 0.2)]
    pub dropout: f64,
    /// Do not weight the loss by inverse class frequency.
    #[arg(long)]
    pub no_balance: bool,
    /// Early-stopping patience in epochs (0: off).
    #[arg(long, default_value_t = 8)]
    pub patience: usize,
    /// Stop after this much time (e.g. 90s, 10m, 1h30m), saving first.
    #[arg(long, value_parser = parse_duration)]
    pub time_budget: Option<Duration>,
    /// Random seed (split, init, shuffling, augmentation).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Continue from OUT/checkpoint after Ctrl-C or a crash.
    #[arg(long)]
    pub resume: bool,
    /// Where to train: cpu; wgpu[:N] or cuda[:N] in a build with that feature.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Feature cache directory (default OUT/cache).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// `sleeve eval classifier` arguments.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Classifier directory (or its model.bpk).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset directory or folder-per-genre tree.
    #[arg(long)]
    pub data: PathBuf,
    /// Which split to evaluate (folders without a split get the seeded 80/10/10 one).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Seed of the split for folders without one (use the training seed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory for report.json and plots.
    #[arg(long)]
    pub out: PathBuf,
}

/// Features for the KNN baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KnnFeaturesArg {
    /// Pretrained MobileNetV2 embeddings (needs --weights or --checkpoint).
    Embed,
    /// HSV colour histograms.
    Hist,
}

/// `sleeve baseline knn` arguments.
#[derive(Args, Debug)]
pub struct KnnArgs {
    /// Dataset directory or folder-per-genre tree.
    #[arg(long)]
    pub data: PathBuf,
    /// Feature type.
    #[arg(long, value_enum, default_value_t = KnnFeaturesArg::Embed)]
    pub features: KnnFeaturesArg,
    /// Pretrained weights for `embed` (TFLite or safetensors).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Neighbours.
    #[arg(long, default_value_t = 7)]
    pub k: usize,
    /// Input side for embeddings.
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Split seed for folders without one.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Evaluated split (neighbours come from train).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Output directory for report.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Feature cache directory (default OUT/cache).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Imports ImageNet weights into the burn model and prints the top classes of each image.
pub fn weights_check(a: WeightsCheckArgs) -> Result<()> {
    let path = a
        .tflite
        .clone()
        .or(a.safetensors.clone())
        .context("give --tflite or --safetensors")?;
    let weights = if a.tflite.is_some() {
        sleeve_weights::read_tflite(&path)
    } else {
        sleeve_weights::read_torchvision_safetensors(&path)
    }
    .with_context(|| format!("cannot read {}", path.display()))?;
    weights.validate_width(a.width)?;
    let labels_text = std::fs::read_to_string(&a.labels)
        .with_context(|| format!("cannot read {}", a.labels.display()))?;
    let labels: Vec<&str> = labels_text.lines().collect();
    if labels.len() != weights.num_classes {
        bail!(
            "{} has {} lines but the weights have {} classes",
            a.labels.display(),
            labels.len(),
            weights.num_classes
        );
    }
    let device = Device::flex();
    let cfg = config_for(&weights, a.width, weights.num_classes);
    let (model, report) = load_pretrained(cfg.init(&device), &weights)?;
    println!("{}", weights.summary());
    println!(
        "mapped {}/{} tensors into the burn model (padding {:?})",
        report.tensors_mapped, report.tensors_total, cfg.padding
    );
    if report.tensors_mapped != report.tensors_total {
        bail!("not every tensor was mapped");
    }
    let model = model.valid();
    let size = a.size.unwrap_or(weights.input_size as u32);
    let preprocess = weights.input_norm.preprocess_config(size);
    for img_path in &a.images {
        let input = to_input(&load_rgb(img_path)?, &preprocess)?;
        let logits = tensor_values(model.forward(batch_tensor(&[input], size as usize, &device)))?;
        let probs = softmax(&logits);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&i, &j| probs[j].total_cmp(&probs[i]));
        println!("{}:", img_path.display());
        for &i in order.iter().take(a.top) {
            println!("  {:>5.1}%  {:>4}  {}", probs[i] * 100.0, i, labels[i]);
        }
    }
    Ok(())
}

/// `--mixup`: a finite α in [0, 10].
/// An EMA decay in `[0.5, 1)`.
fn parse_ema(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.5..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!(
            "{v} is outside [0.5, 1): a decay near 1 (e.g. 0.99) averages over ~1/(1-decay) steps"
        )),
        Err(e) => Err(format!("'{s}' is not a number: {e}")),
    }
}

fn parse_mixup(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number (mixup α, e.g. 0.2; 0 turns mixup off)"))?;
    if (0.0..=10.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("mixup α {v} is outside [0, 10]"))
    }
}

/// `--embedding` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum EmbeddingArg {
    /// Global average of the final 1×1 conv.
    Pooled,
    /// Style statistics of three expansion layers plus the pooled map.
    Style,
}

impl From<KnnFeaturesArg> for KnnFeatures {
    fn from(f: KnnFeaturesArg) -> Self {
        match f {
            KnnFeaturesArg::Embed => Self::Embed,
            KnnFeaturesArg::Hist => Self::Hist,
        }
    }
}

impl From<EvalArgs> for EvalOptions {
    fn from(a: EvalArgs) -> Self {
        Self {
            checkpoint: a.checkpoint,
            data: a.data,
            split: a.split,
            seed: a.seed,
            out: a.out,
        }
    }
}

impl From<KnnArgs> for KnnOptions {
    fn from(a: KnnArgs) -> Self {
        Self {
            data: a.data,
            features: a.features.into(),
            weights: a.weights,
            k: a.k,
            size: a.size,
            seed: a.seed,
            split: a.split,
            out: a.out,
            cache_dir: a.cache_dir,
        }
    }
}

impl From<EmbeddingArg> for sleeve_nn::mobilenet::EmbeddingKind {
    fn from(e: EmbeddingArg) -> Self {
        match e {
            EmbeddingArg::Pooled => Self::Pooled,
            EmbeddingArg::Style => Self::Style,
        }
    }
}

/// Trains the classifier.
pub fn train(a: TrainArgs) -> Result<()> {
    let recipe = match (a.arch, &a.weights) {
        (Arch::Mobilenet, Some(w)) if a.finetune_from_block.is_some() => Recipe::FreshViews {
            weights: w.clone(),
            first_block: a.finetune_from_block.unwrap_or_default(),
            embedding: a.embedding.map_or(EmbeddingKind::Pooled, Into::into),
        },
        (Arch::Mobilenet, Some(w)) => Recipe::Pretrained {
            weights: w.clone(),
            views: a.views,
            unfreeze_last: a.unfreeze_last,
            embedding: match (a.embedding, a.unfreeze_last) {
                (Some(e), _) => e.into(),
                (None, 0) => EmbeddingKind::Style,
                (None, _) => EmbeddingKind::Pooled,
            },
        },
        (Arch::Mobilenet, None) => Recipe::MobilenetScratch,
        (Arch::Scratch, None) => Recipe::ScratchCnn,
        (Arch::Scratch, Some(_)) => bail!("--weights applies to --arch mobilenet only"),
    };
    if a.unfreeze_last > 0 && !matches!(recipe, Recipe::Pretrained { .. }) {
        bail!("--unfreeze-last needs pretrained --weights");
    }
    if a.finetune_from_block.is_some() && !matches!(recipe, Recipe::FreshViews { .. }) {
        bail!("--finetune-from-block needs pretrained --weights and --arch mobilenet");
    }
    // defaults measured on covers5 (docs/training.md)
    let (epochs, batch, lr, wd) = match (&recipe, a.unfreeze_last) {
        (
            Recipe::Pretrained {
                embedding: EmbeddingKind::Style,
                ..
            },
            0,
        ) => (60, 64, 3e-4, 20.0),
        (Recipe::Pretrained { .. }, 0) => (60, 64, 3e-3, 1e-4),
        (Recipe::Pretrained { .. }, _) => (15, 32, 1e-3, 1e-4),
        (Recipe::FreshViews { .. }, _) => (12, 32, 3e-4, 1e-2),
        _ => (30, 32, 2e-3, 1e-4),
    };
    let plan = TrainPlan {
        data: a.data.clone(),
        out: a.out.clone(),
        recipe,
        width: a.width,
        size: a.size,
        dropout: a.dropout,
        fit: FitConfig {
            epochs: a.epochs.unwrap_or(epochs),
            batch_size: a.batch_size.unwrap_or(batch),
            lr: a.lr.unwrap_or(lr),
            warmup_frac: 0.1,
            weight_decay: a.weight_decay.unwrap_or(wd),
            label_smoothing: a.label_smoothing,
            mixup_alpha: a.mixup,
            balanced: !a.no_balance,
            patience: a.patience,
            time_budget: a.time_budget,
            seed: a.seed,
            num_classes: 0,
            ema_decay: a.ema,
        },
        resume: a.resume,
        cache_dir: a.cache_dir.clone(),
        extract_batch: 16,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        device: sleeve_nn::device::parse_device(&a.device)?,
    };
    match sleeve_nn::train::run(&plan)? {
        Some(s) => {
            println!("{}", serde_json::to_string_pretty(&s)?);
            Ok(())
        }
        None => {
            eprintln!("interrupted; rerun the same command with --resume to continue");
            std::process::exit(130)
        }
    }
}

/// Evaluates the classifier.
pub fn eval(a: EvalArgs) -> Result<()> {
    sleeve_nn::evaluate::eval_classifier(&a.into())
}

/// KNN baseline.
pub fn knn(a: KnnArgs) -> Result<()> {
    sleeve_nn::evaluate::knn_baseline(&a.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixup_alpha_has_a_range() {
        assert_eq!(parse_mixup("0.2").unwrap(), 0.2);
        assert_eq!(parse_mixup("0").unwrap(), 0.0);
        for bad in ["-0.1", "11", "NaN", "inf", "x"] {
            let err = parse_mixup(bad).unwrap_err();
            assert!(err.contains("mixup"), "{bad}: {err}");
        }
    }
}

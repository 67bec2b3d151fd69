//! Detector subcommands: `sleeve train detector`, `sleeve eval detector`, `sleeve eval fusion`.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use sleeve_shared::duration::parse_duration;

use sleeve_detector::backbone::{BackboneInit, DEFAULT_IMAGENET_WEIGHTS};
use sleeve_detector::data::{CoverPool, Split};
use sleeve_detector::evaluate::{cover_set, evaluate_set, scene_set, write_reports};
use sleeve_detector::loss::LossConfig;
use sleeve_detector::real::RealSplit;
use sleeve_detector::targets::MatchConfig;
use sleeve_detector::train::{DiskSets, RealCovers, TrainConfig, train as run_training};

/// Default seed of held-out evaluation images (training uses `--seed`, validation
/// `--seed ^ VAL_SEED_SALT`; keep this different from both).
pub const DEFAULT_TEST_SEED: u64 = 20_251_123;

/// `sleeve train detector` arguments.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Real covers as `DIR/<genre>/*.jpg` (9/10 used for training); procedural covers if omitted.
    #[arg(long)]
    pub covers: Option<PathBuf>,
    /// Train on a `sleeve synth pa` output folder instead of generating images (repeatable;
    /// frozen backbone only; `--covers`, `--train-images` and `--scene-fraction` are then unused).
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Also train on a `sleeve synth scenes` output folder, frames rectified by their
    /// ground-truth corners (repeatable).
    #[arg(long = "scene-data", value_name = "DIR")]
    pub scene_data: Vec<PathBuf>,
    /// Validate on a `sleeve synth pa` folder instead of generated images (repeatable).
    #[arg(long = "val-data", value_name = "DIR")]
    pub val_data: Vec<PathBuf>,
    /// Validate on a `sleeve synth scenes` folder too (repeatable).
    #[arg(long = "val-scene-data", value_name = "DIR")]
    pub val_scene_data: Vec<PathBuf>,
    /// Real printed labels (`models/detector-data/real-boxes.csv`): train on the real covers
    /// of `--real-train` and validate on those of `--real-val` (with `--negatives` and
    /// `--real-covers`; frozen backbone only).
    #[arg(long, value_name = "BOXES_CSV", requires_all = ["negatives", "real_covers"])]
    pub real: Option<PathBuf>,
    /// Label-free real covers (`real-negatives.txt`), with `--real`.
    #[arg(long, value_name = "LIST", requires = "real")]
    pub negatives: Option<PathBuf>,
    /// Cover folder `DIR/<genre>/*.jpg` the real lists name, with `--real`.
    #[arg(long, value_name = "DIR", requires = "real")]
    pub real_covers: Option<PathBuf>,
    /// Real splits trained on (comma-separated; `test` is refused: it is held out).
    #[arg(long, value_delimiter = ',', default_value = "train")]
    pub real_train: Vec<String>,
    /// Real splits validated on, added to --val-data (comma-separated; `none` for none).
    #[arg(long, value_delimiter = ',', default_value = "val")]
    pub real_val: Vec<String>,
    /// Each real training cover enters the training set this many times: itself, then
    /// augmented views (zoom, tilt, colour, blur, JPEG; boxes carried along).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub real_repeat: u32,
    /// Checkpoint folder (`detector.bpk`, `detector.json`, `best/`).
    #[arg(long, default_value = "runs/detector")]
    pub out: PathBuf,
    /// Square input side in pixels (multiple of 32).
    #[arg(long, default_value_t = 320)]
    pub input_size: u32,
    /// Backbone initialisation: `imagenet` (frozen by default) or `random`.
    #[arg(long, default_value = "imagenet")]
    pub backbone: String,
    /// ImageNet weights file for `--backbone imagenet`.
    #[arg(long, default_value = DEFAULT_IMAGENET_WEIGHTS)]
    pub weights: PathBuf,
    /// Width multiplier for `--backbone random`.
    #[arg(long, default_value_t = 0.5)]
    pub width: f32,
    /// Train the whole network on fresh images every step (slow on CPU) instead of the
    /// heads on cached features of a frozen backbone.
    #[arg(long)]
    pub end_to_end: bool,
    /// Fine-tune the last K backbone blocks and the final 1×1 conv together with the heads,
    /// on cached activations entering them (their BatchNorms stay frozen). 4 = the
    /// stride-32 blocks (the smallest allowed: the heads read the stride-16 map), 7 = the
    /// stride-16 stage too; 0 trains the heads alone. Not with --end-to-end.
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub unfreeze_last: usize,
    /// Start from a trained detector checkpoint (e.g. a heads-only run's `best/`) instead
    /// of fresh heads: the second, fine-tuning phase. Its input size must match; its
    /// stride-16 tap and head width are kept.
    #[arg(long, value_name = "CHECKPOINT")]
    pub init_from: Option<PathBuf>,
    /// Synthetic training images (cached once when the backbone is frozen; per epoch otherwise).
    #[arg(long, default_value_t = 1200)]
    pub train_images: usize,
    /// Synthetic validation images (held-out covers, another seed).
    #[arg(long, default_value_t = 200)]
    pub val_images: usize,
    /// Fraction of training images that are rectified camera scenes.
    #[arg(long, default_value_t = 0.3)]
    pub scene_fraction: f32,
    /// Epochs.
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (Adam, cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Seed of data generation, shuffling and initialisation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop (saving a checkpoint) after this long, e.g. `90s`, `20m`, `1h`.
    #[arg(long, value_parser = parse_duration)]
    pub time_budget: Option<Duration>,
    /// Continue from the checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// Where to train: cpu; wgpu[:N] or cuda[:N] in a build with that feature.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Hidden width of the prediction heads: a 1×1 layer (BatchNorm, ReLU6) before each
    /// head's depthwise-separable layer; 0 for single-layer heads.
    #[arg(long, default_value_t = 128)]
    pub head_hidden: usize,
    /// Where the heads read the stride-16 map: `projection` (the 96-channel block output)
    /// or `expansion` (the next block's 576-channel expansion, as in SSDLite).
    #[arg(long, value_enum, default_value = "projection")]
    pub tap16: Tap16Arg,
}

/// `--tap16` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Tap16Arg {
    /// Output of the last stride-16 block.
    Projection,
    /// Expansion of the first stride-32 block (still at stride 16).
    Expansion,
}

impl From<Tap16Arg> for sleeve_nn::Stride16Tap {
    fn from(t: Tap16Arg) -> Self {
        match t {
            Tap16Arg::Projection => Self::Projection,
            Tap16Arg::Expansion => Self::Expansion,
        }
    }
}

/// `sleeve eval detector` arguments.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Detector checkpoint (folder, `.bpk` or `.json`).
    #[arg(long, default_value = "runs/detector/best")]
    pub checkpoint: PathBuf,
    /// Real covers `DIR/<genre>/*.jpg` (the held-out tenth is used); procedural if omitted.
    #[arg(long)]
    pub covers: Option<PathBuf>,
    /// Synthetic composites to evaluate on.
    #[arg(long, default_value_t = 500)]
    pub count: usize,
    /// Camera scenes (rectified by ground truth) to evaluate on; 0 to skip.
    #[arg(long, default_value_t = 300)]
    pub scenes: usize,
    /// Seed of the evaluation images (must differ from training's).
    #[arg(long, default_value_t = DEFAULT_TEST_SEED)]
    pub seed: u64,
    /// Evaluate on a `sleeve synth pa` output folder (repeatable; one set each). When any
    /// folder is given, no images are generated (`--count`/`--scenes` unused). Make it with
    /// a seed the detector never trained on.
    #[arg(long = "pa-data", value_name = "DIR")]
    pub pa_data: Vec<PathBuf>,
    /// Evaluate on a `sleeve synth scenes` output folder, frames rectified by their
    /// ground-truth corners (repeatable; frames without a sleeve are skipped).
    #[arg(long = "scene-data", value_name = "DIR")]
    pub scene_data: Vec<PathBuf>,
    /// Report folder (`detector_eval.json`, `detector_pr.png`; `real_eval.json` with
    /// `--real`).
    #[arg(long, default_value = "reports/detector")]
    pub out: PathBuf,
    /// Real printed labels: `real-boxes.csv` (models/detector-data/); measures the detector
    /// on real covers found under `--covers DIR/<genre>/`. Only the sets given with
    /// `--pa-data`/`--scene-data` are evaluated besides.
    #[arg(long, value_name = "BOXES_CSV", requires_all = ["negatives", "covers"])]
    pub real: Option<PathBuf>,
    /// Label-free real covers (`real-negatives.txt`), with `--real`.
    #[arg(long, value_name = "LIST")]
    pub negatives: Option<PathBuf>,
    /// Which real splits to report (train, val, test; comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "val,test")]
    pub real_splits: Vec<String>,
    /// False-positive budget for "recall at FPR" and calibration.
    #[arg(long, default_value_t = sleeve_detector::evaluate::MAX_FPR)]
    pub max_fpr: f64,
    /// Choose the kiosk PA threshold on the real `val` split (best recall with FPR ≤
    /// `--max-fpr`) and report every split at it.
    #[arg(long, requires = "real")]
    pub calibrate: bool,
    /// With `--calibrate`: write the threshold into this bundle's manifest
    /// (`detector.pa_threshold`, decode threshold lowered to it if needed, and the real
    /// numbers as `detector.real.*` metrics).
    #[arg(long, value_name = "BUNDLE", requires = "calibrate")]
    pub write_bundle: Option<PathBuf>,
}

/// `sleeve eval fusion` arguments.
#[derive(Args, Debug)]
pub struct FusionArgs {
    /// Detector checkpoint.
    #[arg(long, default_value = "runs/detector/best")]
    pub detector: PathBuf,
    /// Classifier checkpoint (sleeve-nn); without it, a synthetic self-check is run.
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// The classifier's dataset (dataset folder or `DIR/<genre>/` tree; same split as training).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// At most this many training covers for estimating P(PA | genre).
    #[arg(long, default_value_t = 1200)]
    pub max_train: usize,
    /// Where to write `fusion.json` (the fitted parameters) and `fusion_report.json`.
    #[arg(long, default_value = "reports/fusion")]
    pub out: PathBuf,
}

/// Trains the detector.
pub fn train(a: TrainArgs) -> Result<()> {
    let backbone = match a.backbone.as_str() {
        "imagenet" => BackboneInit::Imagenet(a.weights.clone()),
        "random" => BackboneInit::Random {
            width_mult: a.width,
        },
        other => bail!("--backbone must be 'imagenet' or 'random', not '{other}'"),
    };
    if matches!(backbone, BackboneInit::Random { .. }) && !a.end_to_end {
        tracing::warn!("a frozen random backbone learns little; consider --end-to-end");
    }
    if !(0.0..=1.0).contains(&a.scene_fraction) {
        bail!("--scene-fraction must be in [0, 1]");
    }
    let real = |splits: &[String], repeat: u32| -> Result<Option<RealCovers>> {
        let (Some(boxes), Some(negatives), Some(covers)) = (&a.real, &a.negatives, &a.real_covers)
        else {
            return Ok(None);
        };
        let splits = splits
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && *s != "none")
            .map(RealSplit::parse)
            .collect::<Result<Vec<_>>>()?;
        Ok((!splits.is_empty()).then(|| RealCovers {
            boxes: boxes.clone(),
            negatives: negatives.clone(),
            covers: covers.clone(),
            splits,
            repeat: repeat as usize,
            seed: a.seed,
        }))
    };
    let real_train = real(&a.real_train, a.real_repeat)?;
    if real_train
        .as_ref()
        .is_some_and(|r| r.splits.contains(&RealSplit::Test))
    {
        bail!(
            "--real-train test: the real test split is held out for reporting; train on train (and val)"
        );
    }
    let cfg = TrainConfig {
        covers: a.covers,
        train_sets: DiskSets {
            pa: a.data,
            scenes: a.scene_data,
            real: real_train,
        },
        val_sets: DiskSets {
            pa: a.val_data,
            scenes: a.val_scene_data,
            real: real(&a.real_val, 1)?,
        },
        out: a.out,
        input_size: a.input_size,
        backbone,
        end_to_end: a.end_to_end,
        unfreeze_last: a.unfreeze_last,
        init_from: a.init_from,
        train_images: a.train_images,
        val_images: a.val_images,
        scene_fraction: a.scene_fraction,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        time_budget: a.time_budget,
        resume: a.resume,
        device: sleeve_nn::device::parse_device(&a.device)?,
        head_hidden: a.head_hidden,
        tap16: a.tap16.into(),
        loss: LossConfig::default(),
        matching: MatchConfig::default(),
        progress: std::io::stderr().is_terminal(),
    };
    let s = run_training(&cfg)?;
    match s.best {
        Some((ap, epoch)) => println!(
            "trained {} epochs in {:.0}s; best val AP@0.5 {ap:.4} at epoch {epoch} → {}",
            s.state.epochs_done,
            s.state.seconds,
            cfg.out.join(sleeve_detector::train::BEST_DIR).display()
        ),
        None => println!(
            "stopped before the first epoch finished; progress saved in {}",
            cfg.out.display()
        ),
    }
    if s.stopped_early {
        println!("stopped early; continue with --resume");
    }
    Ok(())
}

/// Evaluates the detector (a burn checkpoint or a bundle folder).
pub fn eval(a: EvalArgs) -> Result<()> {
    let det = sleeve_detector::onnx::load_any(&a.checkpoint)?;
    let det = det.as_ref();
    if det.used_seeds().contains(&a.seed) {
        bail!(
            "--seed {} was used to train or validate this detector; pick another",
            a.seed
        );
    }
    let size = det.input_size();
    let mut reports = Vec::new();
    let from_disk = !a.pa_data.is_empty() || !a.scene_data.is_empty() || a.real.is_some();
    for d in &a.pa_data {
        let set = sleeve_detector::data::load_pa_dir(d)?;
        reports.push(evaluate_set(det, &format!("covers:{}", set_name(d)), &set)?);
    }
    for d in &a.scene_data {
        let (set, skipped) = sleeve_detector::data::load_scene_dir(d, size)?;
        tracing::info!(
            "{}: {} rectified scenes ({skipped} frames without a sleeve skipped)",
            d.display(),
            set.len()
        );
        reports.push(evaluate_set(det, &format!("scenes:{}", set_name(d)), &set)?);
    }
    if !from_disk {
        let pool = match &a.covers {
            Some(d) => CoverPool::scan(d)?.split(Split::Holdout),
            None => CoverPool::default(),
        };
        if a.count > 0 {
            let set = cover_set(&pool, a.seed, a.count, size);
            reports.push(evaluate_set(det, "covers", &set)?);
        }
        if a.scenes > 0 {
            let set = scene_set(&pool, a.seed ^ 0x5CE7E, a.scenes, size);
            reports.push(evaluate_set(det, "scenes", &set)?);
        }
        if reports.is_empty() {
            bail!("nothing to evaluate: --count and --scenes are both 0");
        }
    }
    if !reports.is_empty() {
        write_reports(&a.out, &reports)?;
    }
    for r in &reports {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        println!(
            "{:16} images {:4}  AP@0.5 {}  AP@0.75 {}  AP@[.5:.95] {}  image AUC {}  recall@FPR≤{:.0}% {:.3}  FPR@{:.2} {:.4}  {:.0} ms/img",
            r.name,
            r.boxes.n_images,
            f(r.boxes.ap50),
            f(r.boxes.ap75),
            f(r.boxes.ap50_95),
            f(r.image_level.auc),
            r.image_level.max_fpr * 100.0,
            r.image_level.at_fpr.tpr,
            det.decision_threshold(),
            r.image_level.at_threshold.fpr,
            r.ms_per_image
        );
    }
    if let (Some(boxes), Some(neg), Some(covers)) = (&a.real, &a.negatives, &a.covers) {
        let splits = a
            .real_splits
            .iter()
            .map(|s| sleeve_detector::real::RealSplit::parse(s.trim()))
            .collect::<Result<Vec<_>>>()?;
        let opts = sleeve_detector::real_eval::RealEvalOptions {
            boxes: boxes.clone(),
            negatives: neg.clone(),
            covers: covers.clone(),
            splits,
            max_fpr: a.max_fpr,
            calibrate: a.calibrate,
            write_bundle: a.write_bundle.clone(),
            out: a.out.clone(),
        };
        sleeve_detector::real_eval::run(det, &opts, &reports)?;
    }
    println!("reports in {}", a.out.display());
    Ok(())
}

/// Short name of a data folder for report labels (its last path component).
fn set_name(dir: &std::path::Path) -> String {
    dir.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Fits and measures fusion.
pub fn fusion(a: FusionArgs) -> Result<()> {
    let a = sleeve_detector::fusion_data::FusionOptions {
        detector: a.detector,
        classifier: a.classifier,
        data: a.data,
        max_train: a.max_train,
        out: a.out,
    };
    let r = sleeve_detector::fusion_data::fit_and_write(&a)?;
    println!(
        "fusion: α {:.1}, threshold {:.1}, kept: {} | val acc {:.4} → {:.4}, NLL {:.4} → {:.4} | test acc {:.4} → {:.4}",
        r.fit.params.strength,
        r.fit.params.pa_threshold,
        r.fit.keep,
        r.fit.val_accuracy.0,
        r.fit.val_accuracy.1,
        r.fit.val_nll.0,
        r.fit.val_nll.1,
        r.test_accuracy.0,
        r.test_accuracy.1
    );
    for g in &r.per_genre {
        println!(
            "  {:12} n {:4}  P(PA|g) {:.3}  acc {:.3} → {:.3}",
            g.genre, g.n, g.p_pa, g.before, g.after
        );
    }
    println!("wrote {}", a.out.join("fusion.json").display());
    Ok(())
}

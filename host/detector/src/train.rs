//! Training the detector.
//!
//! Default recipe (CPU-friendly): the ImageNet backbone is frozen; every synthetic training
//! image goes through it ONCE and its two pyramid maps are cached in memory, then only the
//! prediction heads train on the cache (seconds per epoch). `unfreeze_last = K` (usually
//! with `init_from` a heads-only checkpoint) caches the activation entering the last K
//! blocks instead and fine-tunes them with the heads. `end_to_end` instead trains the
//! whole network on freshly generated images every step (slow on CPU; meant for narrow
//! backbones). All three checkpoint atomically after every epoch, keep the best epoch by
//! validation AP@0.5, honour Ctrl-C and a time budget, and resume with `resume`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sleeve_eval::detection::{ImageDetections, average_precision};
use sleeve_shared::detect::{Anchor, BoxF, DecodeParams, decode_detections};
use sleeve_shared::preprocess::PreprocessConfig;

use crate::backbone::{BackboneInit, build_backbone};
use crate::checkpoint::{
    ANCHOR_ORDER, DetectorMeta, META_VERSION, TrainingState, load_detector, save_checkpoint,
};
use crate::data::{CoverPool, Sample, Split, preprocess_image, training_sample};
use crate::infer::split_outputs;
use crate::loss::{LossConfig, TargetBatch, detection_loss};
use crate::model::{HeadLayout, SsdHeads, SsdLite, SsdLiteConfig, anchor_config_for};
use crate::targets::{MatchConfig, Targets, assign};
use sleeve_nn::Stride16Tap;

/// Salt mixed into the seed for validation images (never equal to training draws).
pub const VAL_SEED_SALT: u64 = 0x0056_A11D;
/// File of the optimizer state next to the checkpoint (for `--resume`).
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Sub-folder holding the best epoch by validation AP@0.5.
pub const BEST_DIR: &str = "best";

/// Everything a training run needs.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Real covers (`DIR/<genre>/*.jpg`); procedural covers when `None`.
    pub covers: Option<PathBuf>,
    /// Training images from disk instead of generated ones: `sleeve synth pa` folders
    /// and `sleeve synth scenes` folders (frames rectified by their ground truth).
    pub train_sets: DiskSets,
    /// Validation images from disk (generated from held-out covers when empty).
    pub val_sets: DiskSets,
    /// Checkpoint folder.
    pub out: PathBuf,
    /// Square input side (multiple of 32).
    pub input_size: u32,
    /// Backbone initialisation.
    pub backbone: BackboneInit,
    /// Train the backbone too (no feature cache).
    pub end_to_end: bool,
    /// Fine-tune the last this many backbone blocks (and the final 1×1 conv) with the heads,
    /// on cached activations entering them; 0 trains the heads alone on cached pyramid maps.
    pub unfreeze_last: usize,
    /// Start from this detector checkpoint's weights (e.g. a frozen-backbone run) instead
    /// of fresh heads; its architecture (input size, tap, head width) is kept.
    pub init_from: Option<PathBuf>,
    /// Synthetic training images (per epoch for end-to-end; cached set when frozen).
    pub train_images: usize,
    /// Synthetic validation images.
    pub val_images: usize,
    /// Fraction of training images that are rectified camera scenes.
    pub scene_fraction: f32,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Peak learning rate (cosine decay to 5 %).
    pub lr: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// Stop after this much training time.
    pub time_budget: Option<Duration>,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Where training runs (the CPU unless built with `cuda`).
    pub device: Device,
    /// Hidden width of the prediction heads (0 = single layer).
    pub head_hidden: usize,
    /// Where the heads read the stride-16 map.
    pub tap16: Stride16Tap,
    /// Loss settings.
    pub loss: LossConfig,
    /// Anchor matching settings.
    pub matching: MatchConfig,
    /// Show a progress bar.
    pub progress: bool,
}

/// Image sets on disk made by `sleeve synth pa` and `sleeve synth scenes`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskSets {
    /// `sleeve synth pa` output folders.
    pub pa: Vec<PathBuf>,
    /// `sleeve synth scenes` output folders.
    pub scenes: Vec<PathBuf>,
}

impl DiskSets {
    /// Whether no folder is named.
    pub fn is_empty(&self) -> bool {
        self.pa.is_empty() && self.scenes.is_empty()
    }

    /// All samples of all folders (scenes rectified to `size`), in the order given.
    pub fn load(&self, size: u32) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        for d in &self.pa {
            let s = crate::data::load_pa_dir(d)?;
            tracing::info!("{} images from {}", s.len(), d.display());
            out.extend(s);
        }
        for d in &self.scenes {
            let (s, skipped) = crate::data::load_scene_dir(d, size)?;
            tracing::info!(
                "{} rectified scenes from {} ({skipped} frames without a sleeve skipped)",
                s.len(),
                d.display()
            );
            out.extend(s);
        }
        if out.is_empty() {
            bail!("the image folders given hold no usable images");
        }
        Ok(out)
    }

    /// One line naming the folders.
    pub fn describe(&self) -> String {
        let names = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "synth pa folders [{}] + synth scenes folders [{}]",
            names(&self.pa),
            names(&self.scenes)
        )
    }
}

/// Outcome of a run.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Final training state.
    pub state: TrainingState,
    /// Best validation AP@0.5 and its epoch (1-based).
    pub best: Option<(f64, usize)>,
    /// Whether Ctrl-C or the time budget stopped the run early.
    pub stopped_early: bool,
}

/// The process-wide Ctrl-C flag ([`sleeve_shared::stop::ctrl_c`]).
pub fn stop_flag() -> Arc<AtomicBool> {
    sleeve_shared::stop::ctrl_c("Ctrl-C: finishing the current step, saving a checkpoint …")
}

/// Cosine decay from `lr` to `0.05·lr` over `total` epochs.
pub fn lr_at(lr: f64, epoch: usize, total: usize) -> f64 {
    let t = epoch as f64 / total.max(1) as f64;
    lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

fn progress_bar(len: u64, show: bool) -> ProgressBar {
    sleeve_shared::progress::bar_if(show, len, "")
}

/// Generates `n` samples `(seed, 0..n)` in parallel.
pub fn generate(
    pool: &CoverPool,
    seed: u64,
    n: usize,
    size: u32,
    scene_fraction: f32,
    show: bool,
) -> Vec<Sample> {
    let pb = progress_bar(n as u64, show);
    pb.set_prefix("synth");
    let out = (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let s = training_sample(pool, seed, i, size, scene_fraction);
            pb.inc(1);
            s
        })
        .collect();
    pb.finish_and_clear();
    out
}

/// Preprocessed images as one `[N, 3, S, S]` tensor.
pub fn image_batch(
    samples: &[&Sample],
    pre: &PreprocessConfig,
    device: &Device,
) -> Result<Tensor<4>> {
    let s = pre.input_size as usize;
    let mut v = Vec::with_capacity(samples.len() * 3 * s * s);
    for smp in samples {
        v.extend(preprocess_image(&smp.image, pre)?);
    }
    Ok(Tensor::<1>::from_floats(v.as_slice(), device).reshape([samples.len(), 3, s, s]))
}

/// Activations of the frozen part of the network, cached once per image: the two pyramid
/// maps (heads-only training) or the activation entering the first fine-tuned block.
struct FeatureCache {
    /// `maps[k][i]`: map `k` of image `i`, flattened `[C, H, W]`.
    maps: Vec<Vec<Vec<f32>>>,
    /// `[C, H, W]` of each map.
    dims: Vec<[usize; 3]>,
}

impl FeatureCache {
    /// Runs `frozen` over `samples` in batches of 8 and keeps what it returns.
    fn build(
        frozen: &dyn Fn(Tensor<4>) -> Vec<Tensor<4>>,
        samples: &[Sample],
        pre: &PreprocessConfig,
        device: &Device,
        show: bool,
        what: &str,
    ) -> Result<Self> {
        let pb = progress_bar(samples.len() as u64, show);
        pb.set_prefix(format!("features ({what})"));
        let mut cache = Self {
            maps: Vec::new(),
            dims: Vec::new(),
        };
        for chunk in samples.chunks(8) {
            let refs: Vec<&Sample> = chunk.iter().collect();
            let outputs = frozen(image_batch(&refs, pre, device)?);
            if cache.maps.is_empty() {
                cache.maps = vec![Vec::with_capacity(samples.len()); outputs.len()];
            }
            cache.dims.clear();
            for (k, t) in outputs.into_iter().enumerate() {
                let [n, c, h, w] = t.dims();
                cache.dims.push([c, h, w]);
                let v = t
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let per = c * h * w;
                cache.maps[k].extend((0..n).map(|i| v[i * per..(i + 1) * per].to_vec()));
            }
            pb.inc(chunk.len() as u64);
        }
        pb.finish_and_clear();
        Ok(cache)
    }

    /// The cached maps of images `idx` as `[B, C, H, W]` tensors on `device`.
    fn batch(&self, idx: &[usize], device: &Device) -> Vec<Tensor<4>> {
        self.maps
            .iter()
            .zip(&self.dims)
            .map(|(v, d)| {
                let flat: Vec<f32> = idx.iter().flat_map(|&i| v[i].iter().copied()).collect();
                Tensor::<1>::from_floats(flat.as_slice(), device).reshape([
                    idx.len(),
                    d[0],
                    d[1],
                    d[2],
                ])
            })
            .collect()
    }

    fn megabytes(&self) -> f64 {
        let per: usize = self.dims.iter().map(|d| d.iter().product::<usize>()).sum();
        (per * self.maps.first().map_or(0, Vec::len) * 4) as f64 / 1e6
    }
}

/// AP@0.5 of raw outputs against samples' boxes (decoding at a low threshold).
pub fn ap50_of(
    anchors: &[Anchor],
    variances: [f32; 2],
    outputs: &[(Vec<f32>, Vec<f32>)],
    gts: &[Vec<BoxF>],
) -> Result<f64> {
    let params = eval_decode_params();
    let images: Vec<ImageDetections> = outputs
        .iter()
        .zip(gts)
        .map(|((d, l), g)| {
            Ok(ImageDetections {
                ground_truth: g.clone(),
                detections: decode_detections(anchors, variances, d, l, &params)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(average_precision(&images, 0.5)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .unwrap_or(0.0))
}

/// Decoding used for AP: keep everything above 1 % so the PR curve is complete.
pub fn eval_decode_params() -> DecodeParams {
    DecodeParams {
        score_threshold: 0.01,
        iou_threshold: 0.45,
        max_detections: 10,
    }
}

/// Checkpoint metadata for a model being trained.
fn meta_for(model_cfg: &SsdLiteConfig, state: &TrainingState) -> DetectorMeta {
    DetectorMeta {
        version: META_VERSION,
        model: model_cfg.clone(),
        anchor_order: ANCHOR_ORDER.into(),
        decode: DecodeParams::default(),
        preprocess: PreprocessConfig::signed_unit(model_cfg.input_size),
        training: state.clone(),
    }
}

fn save_optimizer(dir: &Path, optim: &ModuleOptimizer) -> Result<()> {
    let bytes = optim
        .to_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("serialising optimizer state: {e:?}"))?;
    let path = dir.join(OPTIMIZER_FILE);
    sleeve_shared::fsutil::write_atomic(&path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}

fn load_optimizer(dir: &Path, optim: ModuleOptimizer) -> ModuleOptimizer {
    let path = dir.join(OPTIMIZER_FILE);
    match std::fs::read(&path)
        .map_err(|e| format!("{e}"))
        .and_then(|b| {
            burn::optim::OptimizerRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(b))
                .map_err(|e| format!("{e:?}"))
        }) {
        Ok(rec) => optim.load_record(rec),
        Err(e) => {
            tracing::warn!(
                "no optimizer state restored from {} ({e}); Adam moments restart",
                path.display()
            );
            optim
        }
    }
}

/// Runs training as configured.
pub fn train(cfg: &TrainConfig) -> Result<TrainSummary> {
    if !cfg.input_size.is_multiple_of(32) || cfg.input_size < 64 {
        bail!(
            "--input-size must be a multiple of 32 and at least 64 (got {})",
            cfg.input_size
        );
    }
    if cfg.batch_size == 0 || cfg.train_images == 0 || cfg.epochs == 0 {
        bail!("batch size, training images and epochs must be positive");
    }
    let pool = match &cfg.covers {
        Some(dir) => CoverPool::scan(dir)?,
        None => CoverPool::default(),
    };
    let train_pool = pool.split(Split::Train);
    let val_pool = pool.split(Split::Holdout);
    let data_desc = match &cfg.covers {
        Some(d) => format!(
            "PA composites over {} real covers in {} ({} held out) + procedural, {:.0}% rectified scenes",
            train_pool.len(),
            d.display(),
            val_pool.len(),
            cfg.scene_fraction * 100.0
        ),
        None => format!(
            "PA composites over procedural covers, {:.0}% rectified scenes",
            cfg.scene_fraction * 100.0
        ),
    };
    if cfg.end_to_end && !cfg.train_sets.is_empty() {
        bail!("training images from disk need the frozen-backbone recipe (drop --end-to-end)");
    }
    if cfg.end_to_end && cfg.unfreeze_last > 0 {
        bail!("--unfreeze-last fine-tunes on cached activations: drop --end-to-end");
    }
    let data_desc = if cfg.train_sets.is_empty() {
        data_desc
    } else {
        cfg.train_sets.describe()
    };
    let plain = cfg.device.clone();
    plain.seed(cfg.seed);
    let train_dev = cfg.device.clone().autodiff();
    train_dev.seed(cfg.seed);
    let anchors_cfg = anchor_config_for(cfg.input_size);
    let anchors = anchors_cfg.anchors();

    // The model: fresh, or the checkpoint being resumed.
    let (mut model, mut state, model_cfg) = if cfg.resume {
        let (m, meta) = load_detector(&cfg.out, &plain)
            .with_context(|| format!("resuming from {}", cfg.out.display()))?;
        if meta.model.input_size != cfg.input_size {
            bail!(
                "checkpoint input size {} differs from --input-size {}",
                meta.model.input_size,
                cfg.input_size
            );
        }
        tracing::info!("resuming after epoch {}", meta.training.epochs_done);
        (m, meta.training, meta.model)
    } else if let Some(init) = &cfg.init_from {
        let (m, meta) = load_detector(init, &plain)
            .with_context(|| format!("loading the starting detector {}", init.display()))?;
        if meta.model.input_size != cfg.input_size {
            bail!(
                "starting detector {} has input size {}, not --input-size {}",
                init.display(),
                meta.model.input_size,
                cfg.input_size
            );
        }
        tracing::info!(
            "starting from {} (trained {} epochs; its stride-16 tap and head width are kept)",
            init.display(),
            meta.training.epochs_done
        );
        let state = TrainingState {
            epochs_total: cfg.epochs,
            seed: cfg.seed,
            frozen_backbone: cfg.unfreeze_last == 0,
            unfreeze_last: cfg.unfreeze_last,
            backbone_init: format!(
                "detector {} ({})",
                init.display(),
                meta.training.backbone_init
            ),
            train_images: cfg.train_images,
            data: data_desc.clone(),
            head_hidden: meta.training.head_hidden,
            ..TrainingState::default()
        };
        (m, state, meta.model)
    } else {
        let (backbone, bcfg) = build_backbone(&cfg.backbone, &plain)?;
        let model_cfg = SsdLiteConfig {
            backbone: bcfg,
            anchors: anchors_cfg.clone(),
            input_size: cfg.input_size,
            tap16: cfg.tap16,
        };
        let layout = HeadLayout {
            hidden: cfg.head_hidden,
            tap16: cfg.tap16,
        };
        let m = SsdLite::with_heads(backbone, &anchors_cfg, layout, &plain);
        let state = TrainingState {
            epochs_total: cfg.epochs,
            seed: cfg.seed,
            frozen_backbone: !cfg.end_to_end && cfg.unfreeze_last == 0,
            unfreeze_last: cfg.unfreeze_last,
            backbone_init: cfg.backbone.describe(),
            train_images: cfg.train_images,
            data: data_desc.clone(),
            head_hidden: cfg.head_hidden,
            ..TrainingState::default()
        };
        (m, state, model_cfg)
    };
    state.epochs_total = cfg.epochs;
    if state.unfreeze_last != cfg.unfreeze_last {
        bail!(
            "the checkpoint was trained with --unfreeze-last {}, not {}",
            state.unfreeze_last,
            cfg.unfreeze_last
        );
    }
    let first_tuned = first_tuned_block(&model.backbone, cfg.unfreeze_last)?;
    let pre = PreprocessConfig::signed_unit(cfg.input_size);

    let val = if cfg.val_sets.is_empty() {
        generate(
            &val_pool,
            cfg.seed ^ VAL_SEED_SALT,
            cfg.val_images,
            cfg.input_size,
            cfg.scene_fraction,
            cfg.progress,
        )
    } else {
        cfg.val_sets.load(cfg.input_size)?
    };
    let val_gt: Vec<Vec<BoxF>> = val.iter().map(|s| s.boxes.clone()).collect();
    let stop = stop_flag();
    let started = Instant::now();
    let spent_before = state.seconds;
    let over_budget = |t: &Instant| cfg.time_budget.is_some_and(|b| t.elapsed() >= b);
    let mut best =
        state
            .val_ap50_history
            .iter()
            .enumerate()
            .fold(None::<(f64, usize)>, |acc, (i, &ap)| match acc {
                Some((b, _)) if b >= ap => acc,
                _ => Some((ap, i + 1)),
            });
    let mut optim = AdamConfig::new()
        .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(1e-4)))
        .init();
    if cfg.resume {
        optim = load_optimizer(&cfg.out, optim);
    }
    let mut stopped_early = false;

    if !cfg.end_to_end {
        // The frozen part runs once per image; what follows it trains on the cache.
        let train = if cfg.train_sets.is_empty() {
            generate(
                &train_pool,
                cfg.seed,
                cfg.train_images,
                cfg.input_size,
                cfg.scene_fraction,
                cfg.progress,
            )
        } else {
            cfg.train_sets.load(cfg.input_size)?
        };
        if !cfg.train_sets.is_empty() {
            state.train_images = train.len();
        }
        let t0 = Instant::now();
        let frozen = |x: Tensor<4>| match first_tuned {
            None => {
                let (c16, c32) = model.backbone.pyramid_at(x, model.tap16);
                vec![c16, c32]
            }
            Some(first) => vec![model.backbone.forward_prefix(x, first)],
        };
        let cache = FeatureCache::build(&frozen, &train, &pre, &plain, cfg.progress, "train")?;
        let val_cache = FeatureCache::build(&frozen, &val, &pre, &plain, cfg.progress, "val")?;
        tracing::info!(
            "cached {} of {} + {} images in {:.1}s ({:.0} MB)",
            match first_tuned {
                None => "pyramid maps".to_string(),
                Some(b) => format!("block-{b} inputs"),
            },
            train.len(),
            val.len(),
            t0.elapsed().as_secs_f64(),
            cache.megabytes() + val_cache.megabytes()
        );
        let targets: Vec<Targets> = train
            .iter()
            .map(|s| assign(&anchors, &s.boxes, anchors_cfg.variances, &cfg.matching))
            .collect();
        drop(train);
        let run = CachedRun {
            cfg,
            cache: &cache,
            val_cache: &val_cache,
            targets: &targets,
            anchors: &anchors,
            variances: anchors_cfg.variances,
            val_gt: &val_gt,
            model_cfg: &model_cfg,
            train_dev: &train_dev,
            plain: &plain,
            started,
            spent_before,
        };
        stopped_early = match first_tuned {
            None => {
                let heads = model.heads.clone();
                run.fit(
                    &mut model,
                    &mut state,
                    &mut best,
                    &mut optim,
                    heads,
                    |h: &SsdHeads, m: Vec<Tensor<4>>| {
                        let [c16, c32]: [Tensor<4>; 2] =
                            m.try_into().expect("the heads' cache holds two maps");
                        h.forward(c16, c32)
                    },
                    |model: &mut SsdLite, h: SsdHeads| model.heads = h,
                )?
            }
            Some(first) => {
                // keep the pretrained (folded) BNs as they are: only conv weights learn
                let net = SsdLite {
                    backbone: model.backbone.clone().freeze_batch_norms_from(first),
                    ..model.clone()
                };
                run.fit(
                    &mut model,
                    &mut state,
                    &mut best,
                    &mut optim,
                    net,
                    |n: &SsdLite, m: Vec<Tensor<4>>| {
                        let [x]: [Tensor<4>; 1] =
                            m.try_into().expect("the fine-tuning cache holds one map");
                        n.forward_from(x, first)
                    },
                    |model: &mut SsdLite, n: SsdLite| *model = n,
                )?
            }
        };
    } else {
        let mut net: SsdLite = model.clone().to_device(&train_dev).train();
        let steps = cfg.train_images.div_ceil(cfg.batch_size);
        for epoch in state.epochs_done..cfg.epochs {
            let lr = lr_at(cfg.lr, epoch, cfg.epochs);
            let pb = progress_bar((steps * cfg.batch_size) as u64, cfg.progress);
            pb.set_prefix(format!("epoch {}/{}", epoch + 1, cfg.epochs));
            let (mut loss_sum, mut batches) = (0.0f64, 0usize);
            for step in 0..steps {
                if stop.load(Ordering::SeqCst) || over_budget(&started) {
                    stopped_early = true;
                    break;
                }
                // Fresh images every step: (epoch, step) index a never-repeating stream.
                let base = ((epoch * steps + step) * cfg.batch_size) as u64;
                let batch: Vec<Sample> = (0..cfg.batch_size as u64)
                    .into_par_iter()
                    .map(|i| {
                        training_sample(
                            &train_pool,
                            cfg.seed,
                            base + i,
                            cfg.input_size,
                            cfg.scene_fraction,
                        )
                    })
                    .collect();
                let t: Vec<Targets> = batch
                    .iter()
                    .map(|s| assign(&anchors, &s.boxes, anchors_cfg.variances, &cfg.matching))
                    .collect();
                let refs: Vec<&Sample> = batch.iter().collect();
                let x = image_batch(&refs, &pre, &train_dev)?;
                let tb = TargetBatch::new(&t.iter().collect::<Vec<_>>(), &train_dev);
                let (d, l) = net.forward(x);
                let parts = detection_loss(d, l, &tb, &cfg.loss);
                let v: f32 = parts.total.clone().into_scalar();
                if !v.is_finite() {
                    bail!("loss became {v} at epoch {}", epoch + 1);
                }
                loss_sum += v as f64;
                batches += 1;
                let grads = GradientsParams::from_grads(parts.total.backward(), &net);
                net = optim.step(lr, net, grads);
                pb.inc(cfg.batch_size as u64);
                pb.set_message(format!("loss {:.3}", loss_sum / batches as f64));
            }
            pb.finish_and_clear();
            model = net.valid();
            if stopped_early && batches < steps {
                tracing::warn!(
                    "stopping in epoch {} (Ctrl-C or time budget); saving progress",
                    epoch + 1
                );
                state.seconds = spent_before + started.elapsed().as_secs_f64();
                save_checkpoint(&cfg.out, &model, &meta_for(&model_cfg, &state))?;
                save_optimizer(&cfg.out, &optim)?;
                break;
            }
            let mut outs = Vec::with_capacity(val.len());
            for chunk in val.chunks(16) {
                let refs: Vec<&Sample> = chunk.iter().collect();
                let (d, l) = model.forward(image_batch(&refs, &pre, &plain)?);
                outs.extend(split_outputs(d, l, anchors.len())?);
            }
            let ap = ap50_of(&anchors, anchors_cfg.variances, &outs, &val_gt)?;
            finish_epoch(
                cfg,
                &model,
                &model_cfg,
                &mut state,
                &mut best,
                &optim,
                loss_sum / batches.max(1) as f64,
                ap,
                spent_before + started.elapsed().as_secs_f64(),
            )?;
            if stopped_early {
                break;
            }
        }
    }
    Ok(TrainSummary {
        state,
        best,
        stopped_early,
    })
}

/// The first fine-tuned block for `--unfreeze-last k` (`None`: heads only).
fn first_tuned_block(backbone: &sleeve_nn::MobileNetV2, k: usize) -> Result<Option<usize>> {
    if k == 0 {
        return Ok(None);
    }
    let n = backbone.num_blocks();
    let min = n - backbone.first_stride32_block();
    if !(min..=n).contains(&k) {
        bail!(
            "--unfreeze-last {k}: the heads read the stride-16 map, so fine-tuning starts at the \
             stride-32 blocks or earlier: give {min} (the stride-32 blocks) to {n} (all blocks)"
        );
    }
    Ok(Some(n - k))
}

/// Training on cached activations, shared by the heads-only and the fine-tuning recipes.
struct CachedRun<'a> {
    cfg: &'a TrainConfig,
    cache: &'a FeatureCache,
    val_cache: &'a FeatureCache,
    targets: &'a [Targets],
    anchors: &'a [Anchor],
    variances: [f32; 2],
    val_gt: &'a [Vec<BoxF>],
    model_cfg: &'a SsdLiteConfig,
    train_dev: &'a Device,
    plain: &'a Device,
    started: Instant,
    spent_before: f64,
}

impl CachedRun<'_> {
    /// Trains `trainee` for the remaining epochs: `forward` maps a batch of cached maps to
    /// `(deltas, logits)`, `commit` puts the trained (inference-mode) module into `model`,
    /// which is what every epoch checkpoints. Returns whether Ctrl-C or the time budget
    /// stopped the run.
    #[allow(clippy::too_many_arguments)]
    fn fit<M: Module>(
        &self,
        model: &mut SsdLite,
        state: &mut TrainingState,
        best: &mut Option<(f64, usize)>,
        optim: &mut ModuleOptimizer,
        trainee: M,
        forward: impl Fn(&M, Vec<Tensor<4>>) -> (Tensor<3>, Tensor<2>),
        commit: impl Fn(&mut SsdLite, M),
    ) -> Result<bool> {
        let cfg = self.cfg;
        let stop = stop_flag();
        let over_budget = || cfg.time_budget.is_some_and(|b| self.started.elapsed() >= b);
        let seconds = || self.spent_before + self.started.elapsed().as_secs_f64();
        let mut trainee = trainee.to_device(self.train_dev).train();
        for epoch in state.epochs_done..cfg.epochs {
            let lr = lr_at(cfg.lr, epoch, cfg.epochs);
            let mut order: Vec<usize> = (0..self.targets.len()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(
                cfg.seed.wrapping_add(epoch as u64),
            ));
            let pb = progress_bar(order.len() as u64, cfg.progress);
            pb.set_prefix(format!("epoch {}/{}", epoch + 1, cfg.epochs));
            let (mut loss_sum, mut batches, mut stopped) = (0.0f64, 0usize, false);
            for idx in order.chunks(cfg.batch_size) {
                if stop.load(Ordering::SeqCst) || over_budget() {
                    stopped = true;
                    break;
                }
                let maps = self.cache.batch(idx, self.train_dev);
                let t: Vec<&Targets> = idx.iter().map(|&i| &self.targets[i]).collect();
                let tb = TargetBatch::new(&t, self.train_dev);
                let (d, l) = forward(&trainee, maps);
                let parts = detection_loss(d, l, &tb, &cfg.loss);
                let v: f32 = parts.total.clone().into_scalar();
                if !v.is_finite() {
                    bail!("loss became {v} at epoch {}", epoch + 1);
                }
                loss_sum += v as f64;
                batches += 1;
                let grads = GradientsParams::from_grads(parts.total.backward(), &trainee);
                trainee = optim.step(lr, trainee, grads);
                pb.inc(idx.len() as u64);
                pb.set_message(format!("loss {:.3}", loss_sum / batches as f64));
            }
            pb.finish_and_clear();
            if stopped && batches < order.len().div_ceil(cfg.batch_size) {
                tracing::warn!(
                    "stopping in epoch {} (Ctrl-C or time budget); saving progress",
                    epoch + 1
                );
                commit(model, trainee.valid());
                state.seconds = seconds();
                save_checkpoint(&cfg.out, model, &meta_for(self.model_cfg, state))?;
                save_optimizer(&cfg.out, optim)?;
                return Ok(true);
            }
            let valid = trainee.valid();
            let mut outs = Vec::with_capacity(self.val_gt.len());
            for chunk in (0..self.val_gt.len()).collect::<Vec<_>>().chunks(64) {
                let (d, l) = forward(&valid, self.val_cache.batch(chunk, self.plain));
                outs.extend(split_outputs(d, l, self.anchors.len())?);
            }
            commit(model, valid);
            let ap = ap50_of(self.anchors, self.variances, &outs, self.val_gt)?;
            finish_epoch(
                cfg,
                model,
                self.model_cfg,
                state,
                best,
                optim,
                loss_sum / batches.max(1) as f64,
                ap,
                seconds(),
            )?;
            if stopped {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Records an epoch, writes the checkpoint (and the best one), logs.
#[allow(clippy::too_many_arguments)]
fn finish_epoch(
    cfg: &TrainConfig,
    model: &SsdLite,
    model_cfg: &SsdLiteConfig,
    state: &mut TrainingState,
    best: &mut Option<(f64, usize)>,
    optim: &ModuleOptimizer,
    loss: f64,
    ap: f64,
    seconds: f64,
) -> Result<()> {
    state.epochs_done += 1;
    state.loss_history.push(loss as f32);
    state.val_ap50_history.push(ap);
    state.seconds = seconds;
    let meta = meta_for(model_cfg, state);
    save_checkpoint(&cfg.out, model, &meta)?;
    save_optimizer(&cfg.out, optim)?;
    let improved = best.is_none_or(|(b, _)| ap > b);
    if improved {
        *best = Some((ap, state.epochs_done));
        save_checkpoint(&cfg.out.join(BEST_DIR), model, &meta)?;
    }
    tracing::info!(
        "epoch {}/{}: loss {loss:.4}, val AP@0.5 {ap:.4}{} ({seconds:.0}s)",
        state.epochs_done,
        state.epochs_total,
        if improved { " (best)" } else { "" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_ends_low() {
        assert!((lr_at(1.0, 0, 10) - 1.0).abs() < 1e-9);
        assert!(lr_at(1.0, 9, 10) < 0.1);
        assert!(lr_at(1.0, 5, 10) < lr_at(1.0, 4, 10));
    }

    /// Heads-only training of a width-0.25 random backbone at 64 px on 24 procedural images.
    fn tiny_config(out: PathBuf, seed: u64) -> TrainConfig {
        TrainConfig {
            covers: None,
            train_sets: DiskSets::default(),
            val_sets: DiskSets::default(),
            out,
            input_size: 64,
            backbone: BackboneInit::Random { width_mult: 0.25 },
            end_to_end: false,
            unfreeze_last: 0,
            init_from: None,
            train_images: 24,
            val_images: 8,
            scene_fraction: 0.0,
            epochs: 2,
            batch_size: 8,
            lr: 5e-3,
            seed,
            device: Device::flex(),
            time_budget: None,
            resume: false,
            head_hidden: 8,
            tap16: Stride16Tap::Projection,
            loss: LossConfig::default(),
            matching: MatchConfig::default(),
            progress: false,
        }
    }

    /// A couple of tiny epochs: the loss falls, checkpoints appear, resume continues.
    #[test]
    fn tiny_training_run_learns_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TrainConfig {
            epochs: 4,
            tap16: Stride16Tap::Expansion,
            ..tiny_config(dir.path().join("det"), 11)
        };
        let s = train(&cfg).unwrap();
        assert_eq!(s.state.epochs_done, 4);
        let h = &s.state.loss_history;
        assert!(h[3] < h[0], "loss did not fall: {h:?}");
        assert!(cfg.out.join(crate::checkpoint::WEIGHTS_FILE).exists());
        assert!(
            cfg.out
                .join(BEST_DIR)
                .join(crate::checkpoint::META_FILE)
                .exists()
        );
        let more = TrainConfig {
            epochs: 5,
            resume: true,
            ..cfg.clone()
        };
        let s2 = train(&more).unwrap();
        assert_eq!(s2.state.epochs_done, 5);
        assert_eq!(s2.state.loss_history.len(), 5);
        assert_eq!(&s2.state.loss_history[..4], &h[..]);
    }

    /// The second phase: start from a heads-only checkpoint and fine-tune the stride-32
    /// blocks on cached activations. The loss falls, blocks before them keep their weights,
    /// the tuned ones change, and a K that skips the stride-16 map is refused.
    #[test]
    fn fine_tuning_last_blocks_changes_only_them() {
        let dir = tempfile::tempdir().unwrap();
        let base = TrainConfig {
            epochs: 2,
            ..tiny_config(dir.path().join("heads"), 12)
        };
        train(&base).unwrap();
        let start = base.out.join(BEST_DIR);
        let tuned = TrainConfig {
            out: dir.path().join("tuned"),
            unfreeze_last: 4,
            init_from: Some(start.clone()),
            epochs: 4,
            lr: 2e-3,
            ..base.clone()
        };
        let s = train(&tuned).unwrap();
        assert_eq!(s.state.unfreeze_last, 4);
        assert!(!s.state.frozen_backbone);
        let h = &s.state.loss_history;
        assert!(h[3] < h[0], "loss did not fall: {h:?}");

        let (before, _) = load_detector(&start, &Device::flex()).unwrap();
        let (after, meta) = load_detector(&tuned.out, &Device::flex()).unwrap();
        assert_eq!(meta.training.unfreeze_last, 4);
        let weights = |m: &SsdLite, b: usize| {
            m.backbone.blocks[b]
                .project
                .conv
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let first = after.backbone.first_stride32_block();
        assert_eq!(weights(&before, first - 1), weights(&after, first - 1));
        assert_ne!(weights(&before, first), weights(&after, first));

        let bad = TrainConfig {
            out: dir.path().join("bad"),
            unfreeze_last: 2,
            ..tuned.clone()
        };
        let err = format!("{:#}", train(&bad).unwrap_err());
        assert!(err.contains("--unfreeze-last 2"), "{err}");
    }
}

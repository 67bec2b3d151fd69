//! Bundles from trained checkpoints: the output of `sleeve train classifier` (MobileNetV2
//! or the scratch CNN; backbone and head are one module, so one graph) and optionally a
//! `sleeve train detector` checkpoint (raw SSD head tensors; decoding stays in
//! `sleeve_shared::detect`). Each model is exported, parity-checked burn vs tract,
//! quantized, measured (size, 1-thread tract latency, agreement with f32, and where data is
//! given classifier test accuracy and detector AP@0.5), and written with provenance and
//! metrics into a bundle that [`crate::bundle::verify_bundle`] accepts.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use serde::Serialize;
use serde_json::json;
use sleeve_detector::SsdLite;
use sleeve_detector::ap::ap50_of;
use sleeve_detector::checkpoint::{DetectorMeta, load_detector};
use sleeve_detector::data::VAL_SEED_SALT;
use sleeve_detector::data::{CoverPool, Split, preprocess_image};
use sleeve_detector::evaluate::cover_set;
use sleeve_detector::run::DetectorRun;
use sleeve_nn::checkpoint::{Classifier, ClassifierMeta, load_any_classifier};
use sleeve_nn::train::{SUMMARY_FILE, TrainSummary};
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::manifest::Precision;
use sleeve_shared::preprocess::PreprocessConfig;
use tracing::{info, warn};

use crate::bundle::{BundleSpec, DetectorPayload, ModelPayload, verify_bundle, write_bundle};
use crate::held_out::held_out_splits;
use crate::images::load_tensor;
use crate::parity::{argmax, compare_models};
use crate::pipeline::{ExportSpec, Exported, export_checked, int8_full, int8_weights};
use crate::quant::calib::RangeMethod;
use crate::runtime::{F32Tensor, TractModel};
use crate::{proto, provenance};

pub use crate::bundle::{CALIBRATION_PNG, REPORT_FILE};

/// Minimum top-1 (classifier) or PA-decision (detector) agreement with f32 for an int8
/// form to be eligible for automatic selection.
pub const MIN_AGREEMENT: f64 = 0.99;

/// Largest AP@0.5 drop (absolute) an int8 detector may show to be selected automatically.
pub const MAX_AP_DROP: f64 = 0.01;

/// Which int8 forms to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Int8Forms {
    /// Weight-only int8 (int8 initializers + DequantizeLinear).
    Weights,
    /// Full integer (QLinearConv, calibrated activations).
    Full,
    /// Both.
    Both,
}

/// The command-line names of enum values: `NAMES[i]` names the `i`-th variant.
macro_rules! named_values {
    ($t:ty, [$($name:literal => $v:ident),+ $(,)?]) => {
        impl $t {
            /// The values' names, as the command line spells them.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
        }

        impl std::str::FromStr for $t {
            type Err = String;

            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($name => Ok(Self::$v),)+
                    _ => Err(format!("'{s}' is not one of {}", Self::NAMES.join(", "))),
                }
            }
        }
    };
}

named_values!(Int8Forms, ["weights" => Weights, "full" => Full, "both" => Both]);
named_values!(Ship, ["all" => All, "int8" => Int8, "selected" => Selected]);
named_values!(Selection, [
    "auto" => Auto,
    "f32" => F32,
    "int8-weights" => Int8Weights,
    "int8-full" => Int8Full,
]);

impl Int8Forms {
    fn precisions(self) -> Vec<Precision> {
        match self {
            Self::Weights => vec![Precision::Int8Weights],
            Self::Full => vec![Precision::Int8Full],
            Self::Both => vec![Precision::Int8Weights, Precision::Int8Full],
        }
    }
}

/// Which of the built files go into the bundle (all are measured either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Ship {
    /// Every built form.
    All,
    /// The int8 forms only (the shipped default: small, both forms for the Pi to choose).
    Int8,
    /// Only the selected form.
    Selected,
}

impl Ship {
    fn keep(self, p: Precision, selected: Precision) -> bool {
        match self {
            Self::All => true,
            Self::Int8 => p != Precision::F32,
            Self::Selected => p == selected,
        }
    }
}

/// Which precision the manifest marks as selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Selection {
    /// By measurement: the fastest eligible form, the smaller file within 10 % of it.
    Auto,
    /// The f32 graph.
    F32,
    /// Weight-only int8.
    Int8Weights,
    /// Full-integer int8.
    Int8Full,
}

impl Selection {
    fn fixed(self) -> Option<Precision> {
        match self {
            Self::Auto => None,
            Self::F32 => Some(Precision::F32),
            Self::Int8Weights => Some(Precision::Int8Weights),
            Self::Int8Full => Some(Precision::Int8Full),
        }
    }
}

/// Everything `sleeve export bundle` needs.
#[derive(Clone, Debug)]
pub struct BundleOptions {
    /// `sleeve train classifier` output (its `--out`, or the `classifier/` inside).
    pub classifier: PathBuf,
    /// `sleeve train detector` output (its `--out`, `best/`, or a `.bpk`/`.json`).
    pub detector: Option<PathBuf>,
    /// Instead of `detector`: an existing bundle whose detector (files, anchors, decoding,
    /// calibrated PA threshold, metrics) and fusion are carried over unchanged.
    pub detector_bundle: Option<PathBuf>,
    /// Bundle directory to write.
    pub out: PathBuf,
    /// int8 forms to build (none: f32 only).
    pub int8: Option<Int8Forms>,
    /// Calibration images (dataset directory or folder tree).
    pub calib: Option<PathBuf>,
    /// Number of calibration images.
    pub calib_count: usize,
    /// Activation range method.
    pub range: RangeMethod,
    /// Which precision to mark as selected.
    pub select: Selection,
    /// Labelled data whose seeded test split (the classifier's seed) measures accuracy.
    pub eval_data: Option<PathBuf>,
    /// At most this many test images (0: all).
    pub eval_count: usize,
    /// Synthetic PA composites for detector calibration and AP (0: no AP).
    pub ap_count: usize,
    /// Real covers (`DIR/<genre>/*.jpg`) for the composites (held-out split for AP, train
    /// split for calibration); procedural covers when absent.
    pub pa_covers: Option<PathBuf>,
    /// Seed of the AP composites (must differ from the detector's training seeds).
    pub ap_seed: u64,
    /// Fusion parameters file (`fusion.json` of `sleeve eval fusion`); none when absent
    /// (unless carried from `detector_bundle`).
    pub fusion: Option<PathBuf>,
    /// Bundle name (default derived from the checkpoints).
    pub name: Option<String>,
    /// Timed runs per form (median).
    pub latency_runs: usize,
    /// burn-vs-tract tolerance.
    pub parity_tolerance: f32,
    /// Inputs for the parity check.
    pub parity_count: usize,
    /// Which built files go into the bundle.
    pub ship: Ship,
    /// `detector_eval.json` of `sleeve eval detector`, whose metrics go into the manifest.
    pub detector_eval: Option<PathBuf>,
    /// What the abstain threshold aims for on the validation split (with `eval_data`).
    pub abstain: crate::calibrate::AbstainTarget,
}

/// A trained classifier found on disk.
#[derive(Debug)]
pub struct ClassifierSource {
    /// Directory holding `meta.json` and `model.bpk`.
    pub dir: PathBuf,
    /// The training run's summary, when found beside the classifier.
    pub summary: Option<TrainSummary>,
}

/// Finds the classifier directory for a `sleeve train classifier` output: `path` itself
/// when it holds `meta.json`, else `path/classifier`; the run's `summary.json` is looked
/// up next to it.
pub fn find_classifier(path: &Path) -> Result<ClassifierSource> {
    let path = sleeve_nn::checkpoint::classifier_dir(path);
    let meta = sleeve_nn::checkpoint::META_FILE;
    let dir = if path.join(meta).is_file() {
        path.clone()
    } else if path.join("classifier").join(meta).is_file() {
        path.join("classifier")
    } else {
        bail!(
            "no trained classifier at {}: expected {meta} and model.bpk there or in its \
             classifier/ folder (the output of `sleeve train classifier`)",
            path.display()
        );
    };
    // the run folder is the classifier directory's parent (`--out`); a classifier copied
    // elsewhere may carry the summary itself
    let summary = [dir.clone(), dir.join("..")]
        .into_iter()
        .find(|d| d.join(SUMMARY_FILE).is_file())
        .map(|d| TrainSummary::open(&d))
        .transpose()?;
    Ok(ClassifierSource { dir, summary })
}

/// Exports a trained classifier (either architecture) with a parity check.
pub fn export_classifier(
    model: &Classifier,
    size: usize,
    parity_inputs: &[F32Tensor],
    tolerance: f32,
) -> Result<Exported> {
    let spec = ExportSpec::classifier(size);
    let e = match model {
        Classifier::Mobilenet(m) => export_checked(
            m,
            &spec,
            |m: &sleeve_nn::MobileNetV2, x| m.forward(x),
            parity_inputs,
            tolerance,
        ),
        Classifier::Scratch(m) => export_checked(
            m,
            &spec,
            |m: &sleeve_nn::scratch::ScratchCnn, x| m.forward(x),
            parity_inputs,
            tolerance,
        ),
    };
    e.context("exporting the classifier")
}

/// Exports a trained detector (`image` → `boxes [1, A, 4]`, `logits [1, A]`) with a
/// parity check.
pub fn export_detector(
    model: &SsdLite,
    size: usize,
    parity_inputs: &[F32Tensor],
    tolerance: f32,
) -> Result<Exported> {
    export_checked(
        model,
        &ExportSpec::detector(size),
        |m: &SsdLite, x| m.forward(x),
        parity_inputs,
        tolerance,
    )
    .context("exporting the detector")
}

/// Measurements of one precision of one model.
#[derive(Clone, Debug, Serialize)]
pub struct FormReport {
    /// Precision.
    pub precision: Precision,
    /// File size.
    pub bytes: usize,
    /// Median 1-thread tract latency.
    pub latency_ms: f64,
    /// Agreement with f32 on the held-out images (classifier test split / detector AP
    /// composites; calibration images when those are not given): top-1 for the
    /// classifier, the "has a PA label" decision at the deploy threshold for the detector.
    pub agreement: f64,
    /// Inputs `agreement` was measured on.
    pub agreement_images: usize,
    /// Largest output difference from f32 on those inputs.
    pub max_abs_diff_vs_f32: f32,
    /// Classifier test accuracy or detector AP@0.5, when measured.
    pub quality: Option<f64>,
    /// Inputs `quality` was measured on.
    pub quality_images: usize,
}

/// What happened to one model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    /// burn vs tract, worst |diff| over all outputs.
    pub parity_max_abs_diff: f32,
    /// Inputs of the parity check.
    pub parity_inputs: usize,
    /// Clean-up passes.
    pub clips: usize,
    /// BatchNorms folded.
    pub folded_bn: usize,
    /// Nodes in the f32 graph.
    pub nodes: usize,
    /// Per precision.
    pub forms: Vec<FormReport>,
    /// The precision marked as selected.
    pub selected: Precision,
    /// Why it was selected.
    pub selected_because: String,
    /// Full-integer conversion details, when built.
    pub full_int8: Option<crate::pipeline::FullIntReport>,
}

/// What `sleeve export bundle` did.
#[derive(Clone, Debug, Serialize)]
pub struct BundleReport {
    /// Bundle directory.
    pub out: PathBuf,
    /// Classifier.
    pub classifier: ModelReport,
    /// Detector.
    pub detector: Option<ModelReport>,
    /// Activation range method of the full-integer forms.
    pub range: String,
    /// Calibration images used per model.
    pub calibration_images: BTreeMap<String, usize>,
}

/// Up to `count` images of `dir` (evenly spaced over the sorted records, skipping paths
/// in `exclude`), preprocessed with `cfg`.
fn images_excluding(
    dir: &Path,
    count: usize,
    cfg: &PreprocessConfig,
    exclude: &HashSet<PathBuf>,
) -> Result<Vec<F32Tensor>> {
    let mut records: Vec<PathBuf> = sleeve_data::load_any(dir)
        .with_context(|| format!("reading images from {}", dir.display()))?
        .into_iter()
        .map(|r| r.path)
        .filter(|p| !exclude.contains(p))
        .collect();
    ensure!(
        !records.is_empty(),
        "{} holds no usable images",
        dir.display()
    );
    records.sort();
    let n = count.min(records.len()).max(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = &records[i * records.len() / n];
        match load_tensor(p, cfg) {
            Ok(t) => out.push(t),
            Err(e) => warn!("skipping {}: {e:#}", p.display()),
        }
    }
    ensure!(
        !out.is_empty(),
        "no image of {} could be loaded",
        dir.display()
    );
    Ok(out)
}

fn random_like(cfg: &PreprocessConfig, n: usize, seed: u64) -> Vec<F32Tensor> {
    crate::images::random_inputs(&cfg.shape(), n, seed)
}

/// Serialized forms of one exported model and their reports.
struct Built {
    exported: Exported,
    files: Vec<(Precision, Vec<u8>)>,
    full: Option<crate::pipeline::FullIntReport>,
}

fn build_forms(
    exported: Exported,
    int8: Option<Int8Forms>,
    calib: Option<&[F32Tensor]>,
    range: RangeMethod,
    what: &str,
) -> Result<Built> {
    let mut files = vec![(Precision::F32, exported.bytes.clone())];
    let mut full = None;
    for p in int8.map(Int8Forms::precisions).unwrap_or_default() {
        match p {
            Precision::Int8Weights => {
                let (q, n) = int8_weights(&exported.model)?;
                info!(
                    "{what}: weight-only int8 ({} weights: {} already on an int8 grid, stored \
                     exactly; {} requantized per channel)",
                    n.total(),
                    n.lossless,
                    n.per_channel
                );
                files.push((p, proto::encode(&q)));
            }
            Precision::Int8Full => {
                let inputs = calib.with_context(|| {
                    format!("the full-integer {what} needs calibration images: pass --calib DIR")
                })?;
                let bar = crate::progress(0, &format!("calibrating the {what}"));
                let (q, r) = int8_full(&exported.model, inputs, range, &bar)?;
                bar.finish_and_clear();
                info!(?r, "{what}: full-integer int8 from {} images", inputs.len());
                full = Some(r);
                files.push((p, proto::encode(&q)));
            }
            Precision::F32 => {}
        }
    }
    Ok(Built {
        exported,
        files,
        full,
    })
}

fn sigmoid_max(logits: &[f32]) -> f32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    1.0 / (1.0 + (-m).exp())
}

/// A quality measurement of one form: `(value, images)`, or `None` when not measured.
type QualityFn<'a> = dyn Fn(&TractModel) -> Result<Option<(f64, usize)>> + 'a;

/// Measures every form: size, latency, agreement with f32 on `inputs` (top-1 for a
/// classifier, PA decision at `pa_threshold` for a detector) and an optional quality
/// number from `quality(model)`.
fn measure(
    built: &Built,
    inputs: &[F32Tensor],
    pa_threshold: Option<f32>,
    runs: usize,
    quality: &QualityFn<'_>,
    what: &str,
) -> Result<Vec<FormReport>> {
    let reference = TractModel::load(&built.files[0].1)?;
    let ref_outs = inputs
        .iter()
        .map(|x| reference.run(x))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (p, bytes) in &built.files {
        let model = TractModel::load(bytes)
            .with_context(|| format!("tract cannot load the {} {what}", p.as_str()))?;
        let a = compare_models(&reference, &model, inputs)?;
        let agreement = match pa_threshold {
            None => a.top1_agreement,
            Some(t) => {
                let mut same = 0;
                for (x, r) in inputs.iter().zip(&ref_outs) {
                    let o = model.run(x)?;
                    let want = sigmoid_max(&r[1].data) >= t;
                    let got = sigmoid_max(&o[1].data) >= t;
                    same += usize::from(want == got);
                }
                same as f64 / inputs.len().max(1) as f64
            }
        };
        let latency_ms = model.time_ms(&inputs[0], 2, runs)?;
        let (quality, quality_images) = match quality(&model)? {
            Some((q, n)) => (Some(q), n),
            None => (None, 0),
        };
        info!(
            "{what} {}: {} bytes, {latency_ms:.1} ms, agreement {agreement:.4}, quality {quality:?}",
            p.as_str(),
            bytes.len()
        );
        out.push(FormReport {
            precision: *p,
            bytes: bytes.len(),
            latency_ms,
            agreement,
            agreement_images: inputs.len(),
            max_abs_diff_vs_f32: a.worst(),
            quality,
            quality_images,
        });
    }
    Ok(out)
}

/// Picks the selected precision: fixed by the user, or the fastest form whose agreement
/// is at least [`MIN_AGREEMENT`] and whose quality drop is at most `max_drop`, preferring
/// the smaller file when within 10 % of the fastest.
pub fn choose(
    forms: &[FormReport],
    select: Selection,
    max_drop: f64,
) -> Result<(Precision, String)> {
    if let Some(p) = select.fixed() {
        ensure!(
            forms.iter().any(|f| f.precision == p),
            "--select {} but that form was not built (see --int8)",
            p.as_str()
        );
        return Ok((p, "chosen with --select".into()));
    }
    let base = forms
        .iter()
        .find(|f| f.precision == Precision::F32)
        .and_then(|f| f.quality);
    let eligible = |f: &&FormReport| {
        f.precision == Precision::F32
            || (f.agreement >= MIN_AGREEMENT
                && match (base, f.quality) {
                    (Some(b), Some(q)) => b - q <= max_drop,
                    _ => true,
                })
    };
    let candidates: Vec<(Precision, f64, u64, f64)> = forms
        .iter()
        .filter(eligible)
        .map(|f| (f.precision, f.latency_ms, f.bytes as u64, f.agreement))
        .collect();
    let p = crate::parity::select_precision(&candidates, MIN_AGREEMENT);
    let rejected: Vec<&str> = forms
        .iter()
        .filter(|f| !eligible(f))
        .map(|f| f.precision.as_str())
        .collect();
    let why = format!(
        "auto: fastest form with agreement ≥ {MIN_AGREEMENT} and quality drop ≤ {max_drop} \
         (smaller file within 10 % of the fastest){}",
        if rejected.is_empty() {
            String::new()
        } else {
            format!("; not eligible: {}", rejected.join(", "))
        }
    );
    Ok((p, why))
}

fn model_report(
    built: &Built,
    forms: Vec<FormReport>,
    select: Selection,
    max_drop: f64,
) -> Result<ModelReport> {
    let (selected, selected_because) = choose(&forms, select, max_drop)?;
    Ok(ModelReport {
        parity_max_abs_diff: built.exported.parity.worst(),
        parity_inputs: built.exported.parity.inputs,
        clips: built.exported.passes.clips,
        folded_bn: built.exported.passes.folded_bn,
        nodes: built.exported.passes.nodes,
        forms,
        selected,
        selected_because,
        full_int8: built.full,
    })
}

fn add_form_metrics(
    prefix: &str,
    r: &ModelReport,
    quality_name: &str,
    m: &mut BTreeMap<String, f64>,
) {
    m.insert(
        format!("{prefix}.parity_max_abs_diff"),
        r.parity_max_abs_diff as f64,
    );
    for f in &r.forms {
        let k = format!("{prefix}.{}", f.precision.as_str());
        m.insert(format!("{k}.bytes"), f.bytes as f64);
        m.insert(format!("{k}.latency_ms_1thread"), f.latency_ms);
        m.insert(format!("{k}.agreement_vs_f32"), f.agreement);
        if let Some(q) = f.quality {
            m.insert(format!("{k}.{quality_name}"), q);
        }
    }
}

fn classifier_metrics(
    meta: &ClassifierMeta,
    summary: Option<&TrainSummary>,
    m: &mut BTreeMap<String, f64>,
) {
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            m.insert(format!("classifier.{k}"), v);
        }
    };
    let test = meta.metrics.test.as_ref();
    put("best_val_acc", meta.metrics.best_val_acc);
    put("test.accuracy", test.and_then(|t| t.accuracy));
    put("test.macro_f1", test.and_then(|t| t.macro_f1));
    put("test.macro_auc", test.and_then(|t| t.macro_auc));
    if let Some(s) = summary {
        put("epochs", Some(s.epochs as f64));
        put("fit_seconds", Some(s.fit_seconds));
    }
}

fn detector_metrics(
    explicit: Option<&Path>,
    meta: &DetectorMeta,
    m: &mut BTreeMap<String, f64>,
) -> Result<()> {
    let t = &meta.training;
    m.insert("detector.epochs".into(), t.epochs_done as f64);
    m.insert("detector.train_images".into(), t.train_images as f64);
    if let Some(best) = t
        .val_ap50_history
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .reduce(f64::max)
    {
        m.insert("detector.best_val_ap50".into(), best);
    }
    // `sleeve eval detector --out` reports, when given
    if let Some(p) = explicit {
        for set in sleeve_detector::evaluate::read_reports(p)? {
            let name = &set.name;
            for (k, x) in [
                ("ap50", set.boxes.ap50),
                ("ap75", set.boxes.ap75),
                ("ap50_95", set.boxes.ap50_95),
                ("image_auc", set.image_level.auc),
            ] {
                if let Some(x) = x.filter(|x| x.is_finite()) {
                    m.insert(format!("detector.eval.{name}.{k}"), x);
                }
            }
        }
    }
    Ok(())
}

fn accuracy(model: &TractModel, xs: &[F32Tensor], ys: &[usize]) -> Result<f64> {
    let mut hit = 0;
    for (x, &y) in xs.iter().zip(ys) {
        if argmax(&model.run(x)?[0].data) == Some(y) {
            hit += 1;
        }
    }
    Ok(hit as f64 / xs.len().max(1) as f64)
}

/// Builds, measures and writes a bundle from trained checkpoints, then verifies it.
pub fn build_bundle(o: &BundleOptions) -> Result<BundleReport> {
    if let Some(p) = o.select.fixed() {
        let built: Vec<Precision> = std::iter::once(Precision::F32)
            .chain(o.int8.map(Int8Forms::precisions).unwrap_or_default())
            .collect();
        ensure!(
            built.contains(&p),
            "--select {} but that form was not built (see --int8)",
            p.as_str()
        );
    }
    // A detector carried from a bundle is checked first: nothing is built if it is bad.
    ensure!(
        o.detector.is_none() || o.detector_bundle.is_none(),
        "give a detector checkpoint or a bundle to take the detector from, not both"
    );
    let carried = o
        .detector_bundle
        .as_deref()
        .map(crate::bundle::detector_from_bundle)
        .transpose()?;
    if let Some(c) = &carried {
        info!(
            "detector carried over from {} ({} files; its fusion {})",
            o.detector_bundle
                .as_deref()
                .unwrap_or(Path::new(""))
                .display(),
            c.payload.model.files.len(),
            if c.fusion.is_some() { "too" } else { "absent" }
        );
    }
    let device = Device::default();
    let src = find_classifier(&o.classifier)?;
    let (cls, meta) = load_any_classifier(&src.dir, &device)
        .with_context(|| format!("loading the classifier in {}", src.dir.display()))?;
    info!(
        "classifier {} ({}, {} classes, input {})",
        src.dir.display(),
        meta.arch.name(),
        meta.labels.len(),
        meta.preprocess.input_size
    );
    let csize = meta.preprocess.input_size as usize;

    // Held-out test split (also excluded from int8 calibration) and the validation split
    // (temperature and abstain threshold).
    let held_out = o
        .eval_data
        .as_deref()
        .map(|d| {
            held_out_splits(
                d,
                meta.provenance.seed,
                &meta.labels,
                &meta.preprocess,
                o.eval_count,
            )
        })
        .transpose()?;
    let exclude = held_out.as_ref().map(|t| t.2.clone()).unwrap_or_default();
    let test = held_out.as_ref().map(|h| (&h.0.0, &h.0.1));
    let calib_c = o
        .calib
        .as_deref()
        .map(|d| images_excluding(d, o.calib_count, &meta.preprocess, &exclude))
        .transpose()?;
    let mut calib_counts = BTreeMap::new();
    if let Some(c) = &calib_c {
        calib_counts.insert("classifier".to_string(), c.len());
    }
    let parity_c: Vec<F32Tensor> = match &calib_c {
        Some(c) => c.iter().take(o.parity_count.max(1)).cloned().collect(),
        None => random_like(&meta.preprocess, o.parity_count.max(1), 17),
    };
    let exported = export_classifier(&cls, csize, &parity_c, o.parity_tolerance)?;
    info!(
        "classifier parity burn vs tract: max |diff| {:e} on {} inputs",
        exported.parity.worst(),
        exported.parity.inputs
    );
    let built_c = build_forms(exported, o.int8, calib_c.as_deref(), o.range, "classifier")?;
    // Agreement on the held-out test images when given (the real-cover measurement),
    // else on the calibration images, else on random inputs.
    let agree_c = match (&test, &calib_c) {
        (Some((xs, _)), _) => (*xs).clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => random_like(&meta.preprocess, 16, 23),
    };
    let quality_c = |m: &TractModel| -> Result<Option<(f64, usize)>> {
        match &test {
            Some((xs, ys)) => Ok(Some((accuracy(m, xs, ys)?, xs.len()))),
            None => Ok(None),
        }
    };
    let forms_c = measure(
        &built_c,
        &agree_c,
        None,
        o.latency_runs,
        &quality_c,
        "classifier",
    )?;
    let report_c = model_report(&built_c, forms_c, o.select, 0.01)?;
    // Temperature and abstain threshold of the form the kiosk will run.
    let calibration = match &held_out {
        Some(((txs, tys), (vxs, vys), _)) if !vxs.is_empty() => {
            let bytes = built_c
                .files
                .iter()
                .find(|(p, _)| *p == report_c.selected)
                .map(|(_, b)| b)
                .context("the selected classifier form was not built")?;
            let model = TractModel::load(bytes)?;
            let test = crate::calibrate::Labelled {
                inputs: txs,
                labels: tys,
            };
            let r = crate::calibrate::calibrate_classifier(
                &model,
                &crate::calibrate::Labelled {
                    inputs: vxs,
                    labels: vys,
                },
                Some(&test),
                &o.abstain,
            )?;
            info!(
                "calibration: temperature {:.3}, abstain below {:.3}; test ECE {:?}, selective {:?}",
                r.fitted.temperature, r.fitted.abstain_threshold, r.test_ece, r.test_selective
            );
            Some((r, model))
        }
        _ => None,
    };

    // Detector.
    let mut det_parts = None;
    if let Some(d) = &o.detector {
        let ddir = DetectorRun::open(d)?.checkpoint;
        let (model, dmeta) = load_detector(&ddir, &device)
            .with_context(|| format!("loading the detector {}", ddir.display()))?;
        let dsize = dmeta.preprocess.input_size as usize;
        let pool = match &o.pa_covers {
            Some(p) => Some(CoverPool::scan(p)?),
            None => None,
        };
        // Calibration: PA composites over training covers (what the detector sees), else
        // the classifier's calibration images at the detector's preprocessing.
        let calib_d: Option<Vec<F32Tensor>> = if o.calib.is_none() {
            None
        } else if let Some(pool) = &pool {
            let train = pool.split(Split::Train);
            let set = cover_set(&train, 0xCA11B, o.calib_count, dmeta.preprocess.input_size);
            Some(
                set.iter()
                    .map(|s| {
                        F32Tensor::new(
                            dmeta.preprocess.shape().to_vec(),
                            preprocess_image(&s.image, &dmeta.preprocess)?,
                        )
                        .map_err(anyhow::Error::from)
                    })
                    .collect::<Result<_>>()?,
            )
        } else {
            o.calib
                .as_deref()
                .map(|c| images_excluding(c, o.calib_count, &dmeta.preprocess, &exclude))
                .transpose()?
        };
        if let Some(c) = &calib_d {
            calib_counts.insert("detector".to_string(), c.len());
        }
        let parity_d: Vec<F32Tensor> = match &calib_d {
            Some(c) => c.iter().take(o.parity_count.max(1)).cloned().collect(),
            None => random_like(&dmeta.preprocess, o.parity_count.max(1), 19),
        };
        let exported = export_detector(&model, dsize, &parity_d, o.parity_tolerance)?;
        info!(
            "detector parity burn vs tract: max |diff| {:e} on {} inputs",
            exported.parity.worst(),
            exported.parity.inputs
        );
        let built_d = build_forms(exported, o.int8, calib_d.as_deref(), o.range, "detector")?;
        // AP on held-out composites.
        let ap_set = if o.ap_count > 0 {
            let t = &dmeta.training;
            ensure!(
                o.ap_seed != t.seed && o.ap_seed != t.seed ^ VAL_SEED_SALT,
                "--ap-seed {} was used to train or validate this detector; pick another",
                o.ap_seed
            );
            let holdout = pool
                .as_ref()
                .map(|p| p.split(Split::Holdout))
                .unwrap_or_default();
            let set = cover_set(&holdout, o.ap_seed, o.ap_count, dmeta.preprocess.input_size);
            let xs = set
                .iter()
                .map(|s| {
                    F32Tensor::new(
                        dmeta.preprocess.shape().to_vec(),
                        preprocess_image(&s.image, &dmeta.preprocess)?,
                    )
                    .map_err(anyhow::Error::from)
                })
                .collect::<Result<Vec<_>>>()?;
            let gts: Vec<_> = set.into_iter().map(|s| s.boxes).collect();
            Some((xs, gts))
        } else {
            None
        };
        let anchors = dmeta.model.anchors.anchors();
        let variances = dmeta.model.anchors.variances;
        let quality_d = |m: &TractModel| -> Result<Option<(f64, usize)>> {
            let Some((xs, gts)) = &ap_set else {
                return Ok(None);
            };
            let outs = xs
                .iter()
                .map(|x| {
                    let o = m.run(x)?;
                    Ok((o[0].data.clone(), o[1].data.clone()))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some((ap50_of(&anchors, variances, &outs, gts)?, xs.len())))
        };
        let agree_d = match (&ap_set, &calib_d) {
            (Some((xs, _)), _) => xs.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => random_like(&dmeta.preprocess, 16, 29),
        };
        let forms_d = measure(
            &built_d,
            &agree_d,
            Some(dmeta.decode.score_threshold),
            o.latency_runs,
            &quality_d,
            "detector",
        )?;
        let report_d = model_report(&built_d, forms_d, o.select, MAX_AP_DROP)?;
        det_parts = Some((ddir, dmeta, built_d, report_d));
    }

    // Manifest.
    let mut metrics = BTreeMap::new();
    classifier_metrics(&meta, src.summary.as_ref(), &mut metrics);
    if let Some((r, _)) = &calibration {
        r.add_metrics(&mut metrics);
    }
    add_form_metrics(
        "export.classifier",
        &report_c,
        "test_accuracy",
        &mut metrics,
    );
    if let Some((_, dmeta, _, r)) = &det_parts {
        detector_metrics(o.detector_eval.as_deref(), dmeta, &mut metrics)?;
        add_form_metrics("export.detector", r, "ap50", &mut metrics);
    }
    if let Some(c) = &carried {
        metrics.extend(c.metrics.clone());
    }
    let explicit_fusion = match &o.fusion {
        Some(p) => {
            let f = sleeve_detector::fusion::read_params(p, meta.labels.len())?;
            info!("fusion parameters from {}", p.display());
            Some(f)
        }
        None => None,
    };
    let fusion = match (explicit_fusion, &carried) {
        (Some(f), _) => Some(f),
        (None, Some(c)) => c.fusion.clone(),
        (None, None) => None,
    };
    let mut data = format!(
        "classifier: {} ({})",
        meta.provenance.data, meta.provenance.recipe
    );
    if let Some(p) = &meta.provenance.pretrained {
        data += &format!(" from {p}");
    }
    if let Some((_, dm, _, _)) = &det_parts {
        let t = &dm.training;
        data += &format!(
            "; detector: {} ({} epochs, {} synthetic PA images, seed {}, {}{})",
            if t.data.is_empty() {
                "synthetic PA composites"
            } else {
                t.data.as_str()
            },
            t.epochs_done,
            t.train_images,
            t.seed,
            t.backbone_init,
            if t.frozen_backbone {
                ", frozen backbone"
            } else {
                ""
            }
        );
    }
    let name = o.name.clone().unwrap_or_else(|| {
        format!(
            "sleeve {} {} classifier{}",
            meta.arch.name(),
            meta.provenance.recipe,
            if det_parts.is_some() || carried.is_some() {
                " + SSD-Lite PA detector"
            } else {
                ""
            }
        )
    });
    let shipped = |files: &[(Precision, Vec<u8>)], selected: Precision, what: &str| {
        ensure!(
            o.ship.keep(selected, selected),
            "the {what}'s selected precision is {} but --files {:?} leaves it out",
            selected.as_str(),
            o.ship
        );
        Ok(files
            .iter()
            .filter(|(p, _)| o.ship.keep(*p, selected))
            .cloned()
            .collect::<Vec<_>>())
    };
    let classifier_payload = ModelPayload {
        stem: "classifier".into(),
        files: shipped(&built_c.files, report_c.selected, "classifier")?,
        selected: report_c.selected,
        input_name: "image".into(),
        output_names: vec!["logits".into()],
        preprocess: meta.preprocess.clone(),
    };
    let detector = match (det_parts.as_ref(), carried) {
        (Some((_, dm, b, r)), _) => Some(DetectorPayload {
            model: ModelPayload {
                stem: "detector".into(),
                files: shipped(&b.files, r.selected, "detector")?,
                selected: r.selected,
                input_name: "image".into(),
                output_names: vec!["boxes".into(), "logits".into()],
                preprocess: dm.preprocess.clone(),
            },
            anchors: dm.model.anchors.clone(),
            decode: dm.decode.clone(),
            // calibrated on real covers after export (`sleeve eval detector --calibrate`)
            pa_threshold: None,
        }),
        (None, Some(c)) => Some(c.payload),
        (None, None) => None,
    };
    let spec = BundleSpec {
        name,
        labels: meta.labels.clone(),
        classifier: classifier_payload,
        detector,
        fusion,
        calibration: calibration.as_ref().map(|(r, _)| r.fitted.clone()),
        provenance: provenance::collect(
            &data,
            meta.provenance.seed,
            std::slice::from_ref(&meta.provenance.command),
        ),
        metrics,
    };
    let report = BundleReport {
        out: o.out.clone(),
        classifier: report_c,
        detector: det_parts.map(|p| p.3),
        range: format!("{:?}", o.range),
        calibration_images: calib_counts,
    };
    write_bundle(&o.out, &spec)?;
    let rpath = o.out.join(REPORT_FILE);
    write_atomic(&rpath, serde_json::to_string_pretty(&report)?.as_bytes())
        .with_context(|| format!("writing {}", rpath.display()))?;
    if let (Some((r, model)), Some((xs, ys))) = (&calibration, test) {
        let png = o.out.join(CALIBRATION_PNG);
        crate::calibrate::reliability_png(
            model,
            &crate::calibrate::Labelled {
                inputs: xs,
                labels: ys,
            },
            r.fitted.temperature,
            &png,
        )?;
    }
    let checks = verify_bundle(&o.out).context("the bundle just written does not verify")?;
    info!(
        "bundle {} written and verified ({} model files)",
        o.out.display(),
        checks.len()
    );
    Ok(report)
}

/// The report as JSON for the command line.
pub fn report_json(r: &BundleReport) -> serde_json::Value {
    json!(r)
}

//! `sleeve eval detector --real`: the detector on real covers with hand-checked labels,
//! per split, optionally calibrating the kiosk threshold on `val` and writing it into a
//! bundle.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use sleeve_eval::detection::ImageDetections;
use sleeve_eval::roc::OperatingPoint;
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::manifest::{BundleManifest, MANIFEST_FILE};

use crate::evaluate::SetReport;
use crate::onnx::PaDetector;
use crate::real::{
    RealReport, RealSplit, at_threshold, calibrate_threshold, detect_real, index_covers,
    read_cover_list, read_real_boxes, real_covers, real_report, real_split,
};

/// What to measure.
#[derive(Clone, Debug)]
pub struct RealEvalOptions {
    /// `real-boxes.csv`.
    pub boxes: PathBuf,
    /// `real-negatives.txt`.
    pub negatives: PathBuf,
    /// `DIR/<genre>/` covers.
    pub covers: PathBuf,
    /// Splits to report.
    pub splits: Vec<RealSplit>,
    /// FPR budget.
    pub max_fpr: f64,
    /// Calibrate the threshold on `val`.
    pub calibrate: bool,
    /// Bundle whose manifest receives the calibrated threshold.
    pub write_bundle: Option<PathBuf>,
    /// Report folder.
    pub out: PathBuf,
}

/// Recall and FPR at one threshold.
#[derive(Clone, Debug, Serialize)]
pub struct AtThreshold {
    /// Split.
    pub split: RealSplit,
    /// At the shipped threshold.
    pub shipped: OperatingPoint,
    /// At the calibrated threshold.
    pub calibrated: OperatingPoint,
}

/// The calibration result.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// Chosen threshold.
    pub threshold: f64,
    /// FPR budget it was chosen for.
    pub max_fpr: f64,
    /// The shipped threshold it replaces.
    pub shipped_threshold: f64,
    /// Every reported split at both thresholds.
    pub splits: Vec<AtThreshold>,
}

/// `real_eval.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RealEvalReport {
    /// The detector measured.
    pub detector: String,
    /// Real sets.
    pub real: Vec<RealReport>,
    /// Calibration, when asked for.
    pub calibration: Option<Calibration>,
    /// Synthetic sets measured in the same run (summaries).
    pub synthetic: Vec<SyntheticSummary>,
    /// Synthetic numbers recorded in the bundle's manifest (`detector.eval.*`), if any.
    pub synthetic_from_manifest: BTreeMap<String, f64>,
}

/// A synthetic set's headline numbers.
#[derive(Clone, Debug, Serialize)]
pub struct SyntheticSummary {
    /// Set name.
    pub name: String,
    /// AP@0.5.
    pub ap50: Option<f64>,
    /// Image AUC.
    pub image_auc: Option<f64>,
    /// Recall at the FPR budget.
    pub recall_at_max_fpr: f64,
    /// FPR at the shipped threshold.
    pub fpr_at_shipped: f64,
}

/// Runs the real-cover evaluation and writes `real_eval.json` and `real_scores.csv`.
pub fn run(
    det: &dyn PaDetector,
    o: &RealEvalOptions,
    synthetic: &[SetReport],
) -> Result<RealEvalReport> {
    let boxes = read_real_boxes(&o.boxes)?;
    let negatives = read_cover_list(&o.negatives)?;
    let index = index_covers(&o.covers)?;
    let covers = real_covers(&boxes, &negatives, &index)?;
    tracing::info!(
        covers = covers.len(),
        boxes = boxes.len(),
        "running {} on real covers",
        det.describe()
    );
    let images = detect_real(det, &covers)?;
    let mut by_split: BTreeMap<RealSplit, Vec<ImageDetections>> = BTreeMap::new();
    let mut scores_csv = String::from("file,genre,split,labels,max_score\n");
    for (c, im) in covers.iter().zip(&images) {
        let split = real_split(&c.file);
        by_split.entry(split).or_default().push(im.clone());
        let max = im.detections.iter().map(|d| d.score).fold(0.0f32, f32::max);
        scores_csv.push_str(&format!(
            "{},{},{},{},{max:.4}\n",
            c.file,
            c.genre,
            split.as_str(),
            c.boxes.len()
        ));
    }
    let shipped = det.decision_threshold() as f64;
    let mut real = Vec::new();
    for s in &o.splits {
        let set = by_split.get(s).map(Vec::as_slice).unwrap_or(&[]);
        if set.is_empty() {
            tracing::warn!("no real covers in split {}", s.as_str());
            continue;
        }
        real.push(real_report(
            &format!("real:{}", s.as_str()),
            set,
            shipped,
            o.max_fpr,
        )?);
    }
    let calibration = if o.calibrate {
        let val = by_split
            .get(&RealSplit::Val)
            .ok_or_else(|| anyhow!("calibration needs real covers in the val split"))?;
        let op = calibrate_threshold(val, o.max_fpr)?;
        let mut splits = Vec::new();
        for s in &o.splits {
            if let Some(set) = by_split.get(s) {
                splits.push(AtThreshold {
                    split: *s,
                    shipped: at_threshold(set, shipped)?,
                    calibrated: at_threshold(set, op.threshold)?,
                });
            }
        }
        Some(Calibration {
            threshold: op.threshold,
            max_fpr: o.max_fpr,
            shipped_threshold: shipped,
            splits,
        })
    } else {
        None
    };
    let report = RealEvalReport {
        detector: det.describe(),
        real,
        calibration,
        synthetic: synthetic
            .iter()
            .map(|r| SyntheticSummary {
                name: r.name.clone(),
                ap50: r.boxes.ap50,
                image_auc: r.image_level.auc,
                recall_at_max_fpr: r.image_level.at_fpr.tpr,
                fpr_at_shipped: r.image_level.at_threshold.fpr,
            })
            .collect(),
        synthetic_from_manifest: det.recorded_metrics("detector.eval."),
    };
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let path = o.out.join("real_eval.json");
    write_atomic(&path, &serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let path = o.out.join("real_scores.csv");
    write_atomic(&path, scores_csv.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    print_report(&report);
    if let (Some(dir), Some(cal)) = (&o.write_bundle, &report.calibration) {
        write_threshold(dir, cal, &report.real)?;
    }
    Ok(report)
}

fn print_report(r: &RealEvalReport) {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    for s in &r.real {
        println!(
            "{:12} covers {:4} (labelled {:3}, boxes {:3})  recall@{:.2} {:.3}  FPR@{:.2} {:.4}  recall@FPR≤{:.0}% {:.3}  image AUC {}  AP@0.5 {}",
            s.name,
            s.n_positive + s.n_negative,
            s.n_positive,
            s.n_boxes,
            s.shipped_threshold,
            s.recall_at_shipped,
            s.shipped_threshold,
            s.fpr_at_shipped,
            s.max_fpr * 100.0,
            s.recall_at_max_fpr,
            f(s.image_auc),
            f(s.ap50)
        );
    }
    if let Some(c) = &r.calibration {
        println!(
            "calibrated on real:val: threshold {:.4} (FPR ≤ {:.0}%), shipped {:.2}",
            c.threshold,
            c.max_fpr * 100.0,
            c.shipped_threshold
        );
        for s in &c.splits {
            println!(
                "  real:{:5} shipped: recall {:.3} FPR {:.4} ({} FP)   calibrated: recall {:.3} FPR {:.4} ({} FP)",
                s.split.as_str(),
                s.shipped.tpr,
                s.shipped.fpr,
                s.shipped.fp,
                s.calibrated.tpr,
                s.calibrated.fpr,
                s.calibrated.fp
            );
        }
    }
}

/// Writes the calibrated threshold into `dir/manifest.json` (typed `pa_threshold`; the
/// decoding threshold is lowered to it when above) with the real numbers as metrics.
pub fn write_threshold(
    dir: &std::path::Path,
    cal: &Calibration,
    real: &[RealReport],
) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut m = BundleManifest::from_json(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let t = cal.threshold as f32;
    let det = m
        .detector
        .as_mut()
        .ok_or_else(|| anyhow!("bundle {} has no detector", dir.display()))?;
    det.pa_threshold = Some(t);
    if det.decode.score_threshold > t {
        det.decode.score_threshold = t;
    }
    m.metrics
        .insert("detector.real.pa_threshold".into(), cal.threshold);
    m.metrics
        .insert("detector.real.max_fpr".into(), cal.max_fpr);
    for s in &cal.splits {
        let k = |what: &str| format!("detector.real.{}.{what}", s.split.as_str());
        m.metrics
            .insert(k("recall_at_pa_threshold"), s.calibrated.tpr);
        m.metrics.insert(k("fpr_at_pa_threshold"), s.calibrated.fpr);
    }
    for r in real {
        let k = |what: &str| format!("detector.{}.{what}", r.name.replace(':', "."));
        if let Some(v) = r.image_auc {
            m.metrics.insert(k("image_auc"), v);
        }
        if let Some(v) = r.ap50 {
            m.metrics.insert(k("ap50"), v);
        }
        m.metrics
            .insert(k("recall_at_max_fpr"), r.recall_at_max_fpr);
    }
    m.validate()
        .map_err(|e| anyhow!("refusing to write an invalid manifest: {e}"))?;
    write_atomic(&path, m.to_json().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote pa_threshold {t:.4} (decode threshold {:.4}) into {}",
        m.detector
            .as_ref()
            .map(|d| d.decode.score_threshold)
            .unwrap_or(t),
        path.display()
    );
    Ok(())
}

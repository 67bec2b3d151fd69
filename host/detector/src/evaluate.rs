//! Held-out evaluation of a detector checkpoint on synthetic covers and camera scenes.
//!
//! * covers: PA composites over held-out covers (`Split::Holdout` of the real covers, or
//!   procedural ones), generated with a seed never used in training;
//! * scenes: kiosk camera frames (`sleeve_synth::scenes`), each rectified to the sleeve by
//!   its ground-truth corners — exactly what the edge feeds the detector after its sleeve
//!   finder — with the frame's label boxes mapped into the rectified square.
//!
//! Reported per set: COCO AP@0.5, AP@0.75, AP@[.5:.95] (`sleeve_eval::detection`), the
//! image-level ROC AUC, recall at ≤ 2 % false positives among images without a label, and
//! the false-positive rate at the shipped score threshold.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sleeve_eval::detection::{
    DetectionReport, ImageDetections, ImageLevelReport, detection_report, image_level_report,
    image_max_scores,
};
use sleeve_shared::fsutil::write_atomic;
use sleeve_synth::pa::PaConfig;
use sleeve_synth::scenes::{SceneConfig, render_scene};

use crate::ap::eval_decode_params;
use crate::data::{CoverPool, Sample, cover_sample, mix, rectify_scene};
use crate::onnx::PaDetector;

/// Image-level false-positive budget for the "recall at fixed FPR" number.
pub const MAX_FPR: f64 = 0.02;

/// Results on one evaluation set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetReport {
    /// Set name (`covers`, `scenes`).
    pub name: String,
    /// Box-level AP numbers.
    pub boxes: DetectionReport,
    /// Image-level numbers (is there a label?).
    pub image_level: ImageLevelReport,
    /// Mean forward-pass milliseconds per image on this machine.
    pub ms_per_image: f64,
}

/// Synthetic held-out composites.
pub fn cover_set(pool: &CoverPool, seed: u64, n: usize, size: u32) -> Vec<Sample> {
    (0..n as u64)
        .into_par_iter()
        .map(|i| cover_sample(pool, seed, i, size, &PaConfig::default()))
        .collect()
}

/// Held-out camera scenes with a sleeve, rectified by ground truth.
pub fn scene_set(pool: &CoverPool, seed: u64, n: usize, size: u32) -> Vec<Sample> {
    let cfg = SceneConfig {
        no_sleeve_prob: 0.0,
        ..SceneConfig::default()
    };
    (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let mut attempt = 0u64;
            loop {
                let draw = mix(seed, i.wrapping_add(attempt << 40));
                let (cover, genre) = pool.cover(draw, 512);
                let scene = render_scene(Some(&cover), genre.as_deref(), &cfg, mix(draw, 3));
                if let Some(s) = rectify_scene(&scene.image, scene.corners, &scene.pa_boxes, size) {
                    return s;
                }
                attempt += 1;
            }
        })
        .collect()
}

/// Runs the detector over `samples` and scores it.
pub fn evaluate_set(det: &dyn PaDetector, name: &str, samples: &[Sample]) -> Result<SetReport> {
    let params = eval_decode_params();
    let started = std::time::Instant::now();
    let mut images = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(16) {
        let imgs: Vec<image::RgbImage> = chunk.iter().map(|s| s.image.clone()).collect();
        let dets = det.detect_images(&imgs, &params)?;
        for (s, d) in chunk.iter().zip(dets) {
            images.push(ImageDetections {
                ground_truth: s.boxes.clone(),
                detections: d,
            });
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1e3 / samples.len().max(1) as f64;
    let boxes = detection_report(&images).map_err(|e| anyhow!("{name}: {e}"))?;
    let (scores, has) = image_max_scores(&images);
    let image_level = image_level_report(&scores, &has, MAX_FPR, det.decision_threshold() as f64)
        .map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(SetReport {
        name: name.into(),
        boxes,
        image_level,
        ms_per_image: ms,
    })
}

/// Name of the JSON report [`write_reports`] writes.
pub const REPORT_FILE: &str = "detector_eval.json";

/// Reads a report written by [`write_reports`] (`sleeve eval detector --out`).
pub fn read_reports(path: &Path) -> Result<Vec<SetReport>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a `sleeve eval detector` report (a list of evaluation sets)",
            path.display()
        )
    })
}

/// Writes the JSON report and one PR-curve PNG per set into `out`.
pub fn write_reports(out: &Path, reports: &[SetReport]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_vec_pretty(reports)?;
    let path = out.join(REPORT_FILE);
    write_atomic(&path, &json).with_context(|| format!("writing {}", path.display()))?;
    let curves: Vec<(&str, &sleeve_eval::PrCurve)> = reports
        .iter()
        .map(|r| (r.name.as_str(), &r.boxes.pr_curve50))
        .collect();
    let png = out.join("detector_pr.png");
    sleeve_eval::plot::pr_curves(&png, &curves, "Parental Advisory detector, IoU 0.5")
        .map_err(|e| anyhow!("plotting {}: {e}", png.display()))?;
    Ok(())
}

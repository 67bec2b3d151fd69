//! Classifier calibration at export: the shipped form's logits on the validation split give
//! a softmax temperature (minimum NLL) and the abstain threshold; the held-out test split
//! measures what they buy (expected calibration error before/after, selective accuracy).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sleeve_eval::ScoreRows;
use sleeve_eval::calibrate::{
    SelectivePoint, choose_abstain_threshold, fit_temperature, nll, selective, softmax_rows,
};
use sleeve_eval::classification::{ECE_BINS, calibration};
use sleeve_shared::calibration::ClassifierCalibration;

use crate::runtime::{F32Tensor, TractModel};

/// What the kiosk's abstain threshold aims for on validation data.
#[derive(Clone, Debug, Serialize)]
pub struct AbstainTarget {
    /// Selective accuracy to reach.
    pub accuracy: f64,
    /// Least share of covers to answer.
    pub min_coverage: f64,
}

impl Default for AbstainTarget {
    fn default() -> Self {
        Self {
            accuracy: 0.70,
            min_coverage: 0.50,
        }
    }
}

/// Labelled model inputs.
pub struct Labelled<'a> {
    /// Preprocessed images.
    pub inputs: &'a [F32Tensor],
    /// Their classes.
    pub labels: &'a [usize],
}

/// The fitted calibration and its measurements.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationReport {
    /// What goes into the manifest.
    pub fitted: ClassifierCalibration,
    /// Validation images used to fit.
    pub val_images: usize,
    /// Validation NLL at temperature 1 and at the fitted temperature.
    pub val_nll: (f64, f64),
    /// Selective accuracy on validation at the chosen threshold.
    pub val_selective: SelectivePoint,
    /// Test images measured (0 when no test split).
    pub test_images: usize,
    /// Test expected calibration error before and after.
    pub test_ece: Option<(f64, f64)>,
    /// Test selective accuracy at the chosen threshold.
    pub test_selective: Option<SelectivePoint>,
    /// The target the threshold was chosen for.
    pub target: AbstainTarget,
}

fn logits_of(model: &TractModel, inputs: &[F32Tensor]) -> Result<(Vec<f32>, usize)> {
    let mut out = Vec::new();
    let mut cols = 0;
    for x in inputs {
        let o = model.run(x)?;
        let l = &o.first().context("the classifier has no output")?.data;
        cols = l.len();
        out.extend_from_slice(l);
    }
    Ok((out, cols))
}

/// Fits the temperature and abstain threshold on `val` and measures them on `test`.
pub fn calibrate_classifier(
    model: &TractModel,
    val: &Labelled<'_>,
    test: Option<&Labelled<'_>>,
    target: &AbstainTarget,
) -> Result<CalibrationReport> {
    anyhow::ensure!(
        !val.inputs.is_empty(),
        "no validation images to calibrate on"
    );
    let (vl, cols) = logits_of(model, val.inputs)?;
    let t = fit_temperature(&vl, cols, val.labels).context("fitting the temperature")?;
    let val_nll = (
        nll(&vl, cols, val.labels, 1.0),
        nll(&vl, cols, val.labels, t),
    );
    let vp = softmax_rows(&vl, cols, t);
    let chosen =
        choose_abstain_threshold(&vp, cols, val.labels, target.accuracy, target.min_coverage)
            .context("choosing the abstain threshold")?;
    let fitted = ClassifierCalibration {
        temperature: t as f32,
        abstain_threshold: chosen.threshold as f32,
    };
    fitted
        .validate()
        .map_err(|e| anyhow::anyhow!("fitted calibration is out of range: {e}"))?;
    let (mut test_ece, mut test_selective, mut test_images) = (None, None, 0);
    if let Some(ts) = test.filter(|ts| !ts.inputs.is_empty()) {
        let (tl, _) = logits_of(model, ts.inputs)?;
        let before = softmax_rows(&tl, cols, 1.0);
        let after = softmax_rows(&tl, cols, t);
        let e0 = calibration(ts.labels, ScoreRows::flat(&before, cols)?, ECE_BINS)?.ece;
        let e1 = calibration(ts.labels, ScoreRows::flat(&after, cols)?, ECE_BINS)?.ece;
        test_ece = Some((e0, e1));
        test_selective = Some(selective(&after, cols, ts.labels, chosen.threshold));
        test_images = ts.inputs.len();
    }
    Ok(CalibrationReport {
        fitted,
        val_images: val.inputs.len(),
        val_nll,
        val_selective: chosen,
        test_images,
        test_ece,
        test_selective,
        target: target.clone(),
    })
}

impl CalibrationReport {
    /// Flattened metrics for the manifest (`classifier.calibration.*`).
    pub fn add_metrics(&self, m: &mut BTreeMap<String, f64>) {
        let mut put = |k: &str, v: f64| {
            if v.is_finite() {
                m.insert(format!("classifier.calibration.{k}"), v);
            }
        };
        put("temperature", f64::from(self.fitted.temperature));
        put(
            "abstain_threshold",
            f64::from(self.fitted.abstain_threshold),
        );
        put("val_nll_before", self.val_nll.0);
        put("val_nll_after", self.val_nll.1);
        put("val_selective_accuracy", self.val_selective.accuracy);
        put("val_coverage", self.val_selective.coverage);
        if let Some((a, b)) = self.test_ece {
            put("test_ece_before", a);
            put("test_ece_after", b);
        }
        if let Some(s) = &self.test_selective {
            put("test_selective_accuracy", s.accuracy);
            put("test_coverage", s.coverage);
        }
    }
}

/// Draws the test reliability diagram after temperature scaling into `path`.
pub fn reliability_png(
    model: &TractModel,
    test: &Labelled<'_>,
    temperature: f32,
    path: &Path,
) -> Result<()> {
    let (tl, cols) = logits_of(model, test.inputs)?;
    let p = softmax_rows(&tl, cols, f64::from(temperature));
    let cal = calibration(test.labels, ScoreRows::flat(&p, cols)?, ECE_BINS)?;
    sleeve_eval::plot::reliability_diagram(
        path,
        &cal.bins,
        &format!("Test calibration after temperature scaling (T = {temperature:.2})"),
    )
    .with_context(|| format!("drawing {}", path.display()))
}

/// Fits the calibration of an existing bundle's selected classifier on the validation split
/// of `data` (the split of the bundle's recorded training seed), measures it on the test
/// split, and rewrites the manifest (atomically, after validating it) with the typed
/// calibration and its metrics, plus `calibration.png`. The model files are not touched.
pub fn calibrate_bundle(
    dir: &Path,
    data: &Path,
    count: usize,
    target: &AbstainTarget,
) -> Result<CalibrationReport> {
    crate::bundle::verify_bundle(dir)
        .with_context(|| format!("{} does not verify", dir.display()))?;
    let mut manifest = crate::bundle::read_manifest(dir)?;
    let entry = &manifest.classifier;
    let file = entry
        .selected_file()
        .with_context(|| format!("{}: the classifier has no selected file", dir.display()))?;
    let path = dir.join(&file.path);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = TractModel::load(&bytes)?;
    let ((txs, tys), (vxs, vys), _) = crate::held_out::held_out_splits(
        data,
        manifest.provenance.seed,
        &manifest.labels,
        &entry.preprocess,
        count,
    )?;
    let test = Labelled {
        inputs: &txs,
        labels: &tys,
    };
    let report = calibrate_classifier(
        &model,
        &Labelled {
            inputs: &vxs,
            labels: &vys,
        },
        Some(&test),
        target,
    )?;
    report.add_metrics(&mut manifest.metrics);
    manifest.calibration = Some(report.fitted.clone());
    manifest
        .validate()
        .map_err(|e| anyhow::anyhow!("refusing to write an invalid manifest: {e}"))?;
    reliability_png(
        &model,
        &test,
        report.fitted.temperature,
        &dir.join(crate::bundle::CALIBRATION_PNG),
    )?;
    let mpath = dir.join(sleeve_shared::manifest::MANIFEST_FILE);
    sleeve_shared::fsutil::write_atomic(&mpath, manifest.to_json().as_bytes())
        .with_context(|| format!("writing {}", mpath.display()))?;
    Ok(report)
}

//! Multi-class classification metrics from labels and per-class probabilities.
//!
//! The predicted class is the arg-max of a row (ties → lower index, as in
//! [`sleeve_shared::Classification::top_k`]). Precision of a class that is never predicted,
//! recall of a class with no samples and F1 when both are 0 are reported as 0 (scikit-learn's
//! `zero_division=0`); macro averages include every class.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result, invalid};
use crate::roc::{RocCurve, roc_curve};
use crate::scores::{ScoreRows, argmax, rank_of};

/// Probabilities are clamped to `[LOG_LOSS_EPS, 1]` before taking the log.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Bins used by [`ClassificationReport`]'s expected calibration error.
pub const ECE_BINS: usize = 10;

/// One class's row of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub name: String,
    /// `tp / (tp + fp)`; 0 when the class is never predicted.
    pub precision: f64,
    /// `tp / (tp + fn)`; 0 when the class has no samples.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// Number of samples whose true class this is.
    pub support: usize,
    /// One-vs-rest ROC AUC; `None` when the class has no samples (or is every sample).
    pub auc: Option<f64>,
}

/// One bin of a reliability diagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge (exclusive, except the first bin which includes 0).
    pub lower: f64,
    /// Upper edge (inclusive).
    pub upper: f64,
    /// Samples whose top probability falls in the bin.
    pub count: usize,
    /// Mean top probability of those samples (0 when empty).
    pub mean_confidence: f64,
    /// Fraction of those samples whose arg-max is right (0 when empty).
    pub accuracy: f64,
}

/// Calibration of the top-1 probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Expected calibration error `Σ_b (n_b / N)·|acc_b − conf_b|`.
    pub ece: f64,
    /// Equal-width bins over `[0, 1]`.
    pub bins: Vec<CalibrationBin>,
}

/// Everything the classifier's evaluation reports, serialisable to JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Number of samples evaluated.
    pub n_samples: usize,
    /// Class names, index order.
    pub class_names: Vec<String>,
    /// Fraction of samples whose arg-max is the true class.
    pub accuracy: f64,
    /// Fraction whose true class is among the two most probable.
    pub top2_accuracy: f64,
    /// Unweighted mean of per-class precision.
    pub macro_precision: f64,
    /// Unweighted mean of per-class recall (balanced accuracy).
    pub macro_recall: f64,
    /// Unweighted mean of per-class F1.
    pub macro_f1: f64,
    /// Support-weighted mean of per-class F1.
    pub weighted_f1: f64,
    /// Per-class precision/recall/F1/support/AUC.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Mean one-vs-rest AUC over the classes where it is defined; `None` if none is.
    pub macro_auc: Option<f64>,
    /// Classes left out of `macro_auc` because they have no samples (or only samples).
    pub auc_undefined: Vec<String>,
    /// Mean negative log-likelihood of the true class (rows renormalised to sum 1).
    pub log_loss: f64,
    /// Expected calibration error of the top-1 probability, [`ECE_BINS`] bins.
    pub ece: f64,
    /// The reliability diagram behind `ece`.
    pub calibration_bins: Vec<CalibrationBin>,
    /// One-vs-rest ROC curves, index order (not serialised: plot them with
    /// [`crate::plot::roc_curves`]).
    #[serde(skip)]
    pub roc_curves: Vec<RocCurve>,
}

fn check_labels(y_true: &[usize], n_classes: usize) -> Result<()> {
    if y_true.is_empty() {
        return Err(invalid!("no samples to evaluate"));
    }
    if n_classes == 0 {
        return Err(invalid!("no classes"));
    }
    if let Some(i) = y_true.iter().position(|&y| y >= n_classes) {
        return Err(invalid!(
            "label {} of sample {i} is out of range for {n_classes} classes",
            y_true[i]
        ));
    }
    Ok(())
}

/// Validates labels and scores; returns the number of classes (row width).
fn check(y_true: &[usize], probs: &ScoreRows) -> Result<usize> {
    let n_classes = if probs.is_empty() {
        0
    } else {
        probs.row(0).len()
    };
    check_labels(y_true, n_classes.max(usize::from(y_true.is_empty())))?;
    probs.validate_probs(y_true.len(), n_classes)?;
    Ok(n_classes)
}

/// Arg-max prediction of every row.
pub fn predictions<'a>(probs: impl Into<ScoreRows<'a>>) -> Vec<usize> {
    let probs = probs.into();
    probs.iter().map(|r| argmax(r).unwrap_or(0)).collect()
}

/// `confusion[true][predicted]` counts for hard predictions.
pub fn confusion_matrix(
    y_true: &[usize],
    y_pred: &[usize],
    n_classes: usize,
) -> Result<Vec<Vec<usize>>> {
    if y_true.len() != y_pred.len() {
        return Err(invalid!(
            "{} labels but {} predictions",
            y_true.len(),
            y_pred.len()
        ));
    }
    check_labels(y_true, n_classes)?;
    if let Some(i) = y_pred.iter().position(|&p| p >= n_classes) {
        return Err(invalid!(
            "prediction {} of sample {i} is out of range for {n_classes} classes",
            y_pred[i]
        ));
    }
    let mut m = vec![vec![0usize; n_classes]; n_classes];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        m[t][p] += 1;
    }
    Ok(m)
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Precision, recall, F1 and support of every class from a confusion matrix
/// (`confusion[true][predicted]`); `auc` is left `None`.
pub fn per_class_metrics(
    confusion: &[Vec<usize>],
    class_names: &[impl AsRef<str>],
) -> Result<Vec<ClassMetrics>> {
    let n = confusion.len();
    if class_names.len() != n || confusion.iter().any(|r| r.len() != n) {
        return Err(invalid!(
            "confusion matrix must be {0}×{0} for {0} class names",
            class_names.len()
        ));
    }
    Ok((0..n)
        .map(|c| {
            let tp = confusion[c][c];
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|r| r[c]).sum();
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                name: class_names[c].as_ref().to_string(),
                precision,
                recall,
                f1,
                support,
                auc: None,
            }
        })
        .collect())
}

/// Fraction of samples whose arg-max is the true class.
pub fn accuracy<'a>(y_true: &[usize], probs: impl Into<ScoreRows<'a>>) -> Result<f64> {
    top_k_accuracy(y_true, probs, 1)
}

/// Fraction of samples whose true class is among the `k` highest scores (ties broken by
/// the lower class index, like the arg-max).
pub fn top_k_accuracy<'a>(
    y_true: &[usize],
    probs: impl Into<ScoreRows<'a>>,
    k: usize,
) -> Result<f64> {
    let probs = probs.into();
    check(y_true, &probs)?;
    let hits = y_true
        .iter()
        .enumerate()
        .filter(|&(i, &y)| rank_of(probs.row(i), y) < k)
        .count();
    Ok(ratio(hits, y_true.len()))
}

/// Mean negative natural-log probability of the true class. Each row is divided by its
/// sum first; probabilities are clamped to `[1e-15, 1]`.
pub fn log_loss<'a>(y_true: &[usize], probs: impl Into<ScoreRows<'a>>) -> Result<f64> {
    let probs = probs.into();
    check(y_true, &probs)?;
    let mut total = 0.0;
    for (i, &y) in y_true.iter().enumerate() {
        let row = probs.row(i);
        let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
        if sum <= 0.0 {
            return Err(invalid!(
                "score row {i} sums to 0; not a probability vector"
            ));
        }
        let p = (f64::from(row[y]) / sum).clamp(LOG_LOSS_EPS, 1.0);
        total -= p.ln();
    }
    Ok(total / y_true.len() as f64)
}

/// Reliability of the top-1 probability over `n_bins` equal-width bins
/// (bin `b` holds confidences in `(b/n, (b+1)/n]`, bin 0 also holds 0).
pub fn calibration<'a>(
    y_true: &[usize],
    probs: impl Into<ScoreRows<'a>>,
    n_bins: usize,
) -> Result<Calibration> {
    let probs = probs.into();
    check(y_true, &probs)?;
    if n_bins == 0 {
        return Err(invalid!("calibration needs at least one bin"));
    }
    let mut count = vec![0usize; n_bins];
    let mut conf_sum = vec![0f64; n_bins];
    let mut correct = vec![0usize; n_bins];
    for (i, &y) in y_true.iter().enumerate() {
        let row = probs.row(i);
        let pred = argmax(row).unwrap_or(0);
        let conf = f64::from(row[pred]).clamp(0.0, 1.0);
        let b = ((conf * n_bins as f64).ceil() as usize)
            .saturating_sub(1)
            .min(n_bins - 1);
        count[b] += 1;
        conf_sum[b] += conf;
        correct[b] += usize::from(pred == y);
    }
    let n = y_true.len() as f64;
    let bins: Vec<CalibrationBin> = (0..n_bins)
        .map(|b| CalibrationBin {
            lower: b as f64 / n_bins as f64,
            upper: (b + 1) as f64 / n_bins as f64,
            count: count[b],
            mean_confidence: if count[b] == 0 {
                0.0
            } else {
                conf_sum[b] / count[b] as f64
            },
            accuracy: ratio(correct[b], count[b]),
        })
        .collect();
    let ece = bins
        .iter()
        .map(|b| b.count as f64 / n * (b.accuracy - b.mean_confidence).abs())
        .sum();
    Ok(Calibration { ece, bins })
}

/// One-vs-rest ROC curve of every class (class `c`'s column against `y == c`).
pub fn ovr_roc_curves<'a>(
    y_true: &[usize],
    probs: impl Into<ScoreRows<'a>>,
) -> Result<Vec<RocCurve>> {
    let probs = probs.into();
    let n_classes = check(y_true, &probs)?;
    (0..n_classes)
        .map(|c| {
            let scores: Vec<f32> = probs.iter().map(|r| r[c]).collect();
            let positive: Vec<bool> = y_true.iter().map(|&y| y == c).collect();
            roc_curve(&scores, &positive)
        })
        .collect()
}

/// The full report. `probs` has one row per sample and one column per class name.
pub fn classification_report<'a>(
    y_true: &[usize],
    probs: impl Into<ScoreRows<'a>>,
    class_names: &[impl AsRef<str>],
) -> Result<ClassificationReport> {
    let probs = probs.into();
    let n_classes = check(y_true, &probs)?;
    if class_names.len() != n_classes {
        return Err(invalid!(
            "{} class names for score rows of width {n_classes}",
            class_names.len()
        ));
    }
    let y_pred = predictions(probs);
    let confusion = confusion_matrix(y_true, &y_pred, n_classes)?;
    let mut per_class = per_class_metrics(&confusion, class_names)?;
    let roc_curves = ovr_roc_curves(y_true, probs)?;
    let mut auc_undefined = Vec::new();
    let mut aucs = Vec::new();
    for (m, curve) in per_class.iter_mut().zip(&roc_curves) {
        m.auc = curve.auc;
        match curve.auc {
            Some(a) => aucs.push(a),
            None => auc_undefined.push(m.name.clone()),
        }
    }
    let mean =
        |f: fn(&ClassMetrics) -> f64| per_class.iter().map(f).sum::<f64>() / n_classes as f64;
    let cal = calibration(y_true, probs, ECE_BINS)?;
    Ok(ClassificationReport {
        n_samples: y_true.len(),
        class_names: class_names.iter().map(|s| s.as_ref().to_string()).collect(),
        accuracy: top_k_accuracy(y_true, probs, 1)?,
        top2_accuracy: top_k_accuracy(y_true, probs, 2)?,
        macro_precision: mean(|m| m.precision),
        macro_recall: mean(|m| m.recall),
        macro_f1: mean(|m| m.f1),
        weighted_f1: per_class
            .iter()
            .map(|m| m.f1 * m.support as f64)
            .sum::<f64>()
            / y_true.len() as f64,
        macro_auc: if aucs.is_empty() {
            None
        } else {
            Some(aucs.iter().sum::<f64>() / aucs.len() as f64)
        },
        auc_undefined,
        log_loss: log_loss(y_true, probs)?,
        ece: cal.ece,
        calibration_bins: cal.bins,
        per_class,
        confusion,
        roc_curves,
    })
}

impl ClassificationReport {
    /// Pretty-printed JSON (ROC curves are not included).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes [`Self::to_json`] to `path` atomically.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = self.to_json()?;
        sleeve_shared::fsutil::write_atomic(path, json.as_bytes()).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |a| format!("{a:.3}"))
}

/// A plain-text table in the style of scikit-learn's `classification_report`.
impl fmt::Display for ClassificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .class_names
            .iter()
            .map(|n| n.len())
            .max()
            .unwrap_or(5)
            .max(12);
        writeln!(
            f,
            "{:>w$} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "precision", "recall", "f1", "auc", "support"
        )?;
        for m in &self.per_class {
            writeln!(
                f,
                "{:>w$} {:>9.3} {:>9.3} {:>9.3} {:>9} {:>9}",
                m.name,
                m.precision,
                m.recall,
                m.f1,
                fmt_opt(m.auc),
                m.support
            )?;
        }
        writeln!(
            f,
            "{:>w$} {:>9.3} {:>9.3} {:>9.3} {:>9} {:>9}",
            "macro avg",
            self.macro_precision,
            self.macro_recall,
            self.macro_f1,
            fmt_opt(self.macro_auc),
            self.n_samples
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "accuracy {:.4}  top-2 {:.4}  log-loss {:.4}  ECE {:.4}",
            self.accuracy, self.top2_accuracy, self.log_loss, self.ece
        )?;
        if !self.auc_undefined.is_empty() {
            writeln!(
                f,
                "AUC undefined (no samples) for: {}",
                self.auc_undefined.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    /// y = [0,0,1,1,2,2]; predictions [0,1,1,1,2,0].
    fn tiny() -> (Vec<usize>, Vec<Vec<f32>>) {
        let y = vec![0, 0, 1, 1, 2, 2];
        let p = vec![
            vec![0.7, 0.2, 0.1],
            vec![0.3, 0.6, 0.1],
            vec![0.1, 0.8, 0.1],
            vec![0.2, 0.5, 0.3],
            vec![0.1, 0.1, 0.8],
            vec![0.5, 0.1, 0.4],
        ];
        (y, p)
    }

    #[test]
    fn tiny_case_by_hand() {
        let (y, p) = tiny();
        let r = classification_report(&y, &p, &NAMES).unwrap();
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // Top-2: sample 1 (b > a: a is 2nd) hit, sample 5 (a > c: c 2nd) hit → all hit.
        assert!((r.top2_accuracy - 1.0).abs() < 1e-12);
        // a: P = 1/2, R = 1/2, F1 = 1/2. b: P = 2/3, R = 1, F1 = 0.8. c: P = 1, R = 1/2, F1 = 2/3.
        let f1: Vec<f64> = r.per_class.iter().map(|m| m.f1).collect();
        for (got, want) in f1.iter().zip([0.5, 0.8, 2.0 / 3.0]) {
            assert!((got - want).abs() < 1e-12, "{f1:?}");
        }
        assert!((r.per_class[1].precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.macro_f1 - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(
            r.per_class.iter().map(|m| m.support).collect::<Vec<_>>(),
            [2, 2, 2]
        );
        // Class c scores: positives {0.8, 0.4}, negatives {0.1, 0.1, 0.1, 0.3}: all 8 pairs won.
        assert_eq!(r.per_class[2].auc, Some(1.0));
        // Log loss by hand: the true-class probabilities are 0.7, 0.3, 0.8, 0.5, 0.8, 0.4.
        let want = -[0.7f32, 0.3, 0.8, 0.5, 0.8, 0.4]
            .iter()
            .map(|&p| f64::from(p).ln())
            .sum::<f64>()
            / 6.0;
        assert!((r.log_loss - want).abs() < 1e-6, "{} vs {want}", r.log_loss);
        assert!(r.auc_undefined.is_empty());
        let json = r.to_json().unwrap();
        let back: ClassificationReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.confusion, r.confusion);
        assert!(r.to_string().contains("macro avg"));
    }

    #[test]
    fn class_without_samples_is_excluded_from_macro_auc() {
        let y = vec![0, 1, 0, 1];
        let p = vec![
            vec![0.8, 0.1, 0.1],
            vec![0.2, 0.7, 0.1],
            vec![0.6, 0.3, 0.1],
            vec![0.4, 0.5, 0.1],
        ];
        let r = classification_report(&y, &p, &NAMES).unwrap();
        assert_eq!(r.auc_undefined, vec!["c".to_string()]);
        assert_eq!(r.per_class[2].auc, None);
        assert_eq!(r.macro_auc, Some(1.0));
        assert_eq!(r.per_class[2].support, 0);
        assert_eq!(r.per_class[2].f1, 0.0);
    }

    #[test]
    fn flat_matrix_gives_the_same_report() {
        let (y, p) = tiny();
        let flat: Vec<f32> = p.iter().flatten().copied().collect();
        let a = classification_report(&y, &p, &NAMES).unwrap();
        let b = classification_report(&y, ScoreRows::flat(&flat, 3).unwrap(), &NAMES).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn calibration_by_hand() {
        // Confidences 0.95 (right), 0.95 (wrong), 0.55 (right): bins 9 and 5.
        let y = vec![0, 1, 0];
        let p = vec![vec![0.95, 0.05], vec![0.95, 0.05], vec![0.55, 0.45]];
        let c = calibration(&y, &p, 10).unwrap();
        assert_eq!(c.bins[9].count, 2);
        assert_eq!(c.bins[5].count, 1);
        let want = 2.0 / 3.0 * (0.5f64 - 0.95).abs() + 1.0 / 3.0 * (1.0f64 - 0.55).abs();
        assert!((c.ece - want).abs() < 1e-6, "{} vs {want}", c.ece);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let (y, p) = tiny();
        assert!(classification_report(&y[..5], &p, &NAMES).is_err());
        assert!(classification_report(&y, &p, &NAMES[..2]).is_err());
        let mut bad = y.clone();
        bad[0] = 7;
        let err = classification_report(&bad, &p, &NAMES).unwrap_err();
        assert!(err.to_string().contains("sample 0"), "{err}");
        assert!(classification_report(&[], &Vec::<Vec<f32>>::new(), &NAMES).is_err());
        let zero = vec![vec![0.0f32, 0.0]];
        assert!(log_loss(&[0], &zero).is_err());
    }
}

//! Binary ROC curves, AUC and operating points (threshold ↔ recall/false-positive rate).
//!
//! A sample is predicted positive when `score >= threshold`. The curve has one point per
//! *distinct* score (tied scores move together), so the trapezoid area equals the
//! Mann–Whitney probability `P(s⁺ > s⁻) + ½·P(s⁺ = s⁻)`.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// A ROC curve: points by increasing false-positive rate, starting at `(0, 0)` (threshold
/// `+∞`) and ending at `(1, 1)` (the lowest score).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False-positive rate at each threshold (0 everywhere when there are no negatives).
    pub fpr: Vec<f64>,
    /// True-positive rate (recall) at each threshold (0 everywhere when there are no positives).
    pub tpr: Vec<f64>,
    /// Threshold of each point; the first is `+∞`.
    pub thresholds: Vec<f64>,
    /// Number of positive samples.
    pub positives: usize,
    /// Number of negative samples.
    pub negatives: usize,
    /// Area under the curve; `None` when there are no positives or no negatives.
    pub auc: Option<f64>,
}

/// Confusion counts and rates at one threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// Scores `>= threshold` are predicted positive (`+inf`: none is; written as JSON
    /// `null`, which reads back as `+inf`).
    #[serde(deserialize_with = "null_as_infinity")]
    pub threshold: f64,
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// True negatives.
    pub tn: usize,
    /// False negatives.
    pub fn_: usize,
    /// Recall `tp / (tp + fn)` (0 when there are no positives).
    pub tpr: f64,
    /// False-positive rate `fp / (fp + tn)` (0 when there are no negatives).
    pub fpr: f64,
    /// Precision `tp / (tp + fp)` (1 when nothing is predicted positive).
    pub precision: f64,
}

/// A number, or `null` (how serde_json writes a non-finite one) as `+inf`.
fn null_as_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let v: Option<f64> = serde::Deserialize::deserialize(d)?;
    Ok(v.unwrap_or(f64::INFINITY))
}

fn check_binary(scores: &[f32], positive: &[bool]) -> Result<()> {
    if scores.len() != positive.len() {
        return Err(invalid!(
            "{} scores but {} labels",
            scores.len(),
            positive.len()
        ));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(invalid!("score {i} is not finite ({})", scores[i]));
    }
    Ok(())
}

fn rate(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// ROC curve of `scores` against binary labels (`true` = positive).
pub fn roc_curve(scores: &[f32], positive: &[bool]) -> Result<RocCurve> {
    check_binary(scores, positive)?;
    let p = positive.iter().filter(|&&b| b).count();
    let n = positive.len() - p;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));

    let mut curve = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
        positives: p,
        negatives: n,
        auc: None,
    };
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        // Consume every sample tied at this score before emitting a point.
        while i < order.len() && scores[order[i]] == s {
            if positive[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        curve.fpr.push(rate(fp, n));
        curve.tpr.push(rate(tp, p));
        curve.thresholds.push(f64::from(s));
    }
    if p > 0 && n > 0 {
        curve.auc = Some(trapezoid(&curve.fpr, &curve.tpr));
    }
    Ok(curve)
}

/// Area under a piecewise-linear curve through `(x[i], y[i])` (x non-decreasing).
pub fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xw, yw)| (xw[1] - xw[0]) * (yw[0] + yw[1]) / 2.0)
        .sum()
}

/// ROC AUC of `scores` against binary labels; `None` when a class is absent.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Result<Option<f64>> {
    Ok(roc_curve(scores, positive)?.auc)
}

/// Counts and rates when scores `>= threshold` are called positive.
pub fn operating_point(
    scores: &[f32],
    positive: &[bool],
    threshold: f64,
) -> Result<OperatingPoint> {
    check_binary(scores, positive)?;
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    for (&s, &pos) in scores.iter().zip(positive) {
        match (f64::from(s) >= threshold, pos) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    Ok(OperatingPoint {
        threshold,
        tp,
        fp,
        tn,
        fn_,
        tpr: rate(tp, tp + fn_),
        fpr: rate(fp, fp + tn),
        precision: if tp + fp == 0 { 1.0 } else { rate(tp, tp + fp) },
    })
}

/// The operating point with the highest recall whose false-positive rate is at most
/// `max_fpr` (ties in recall: the lowest FPR, then the highest threshold). Thresholds are
/// observed scores, so the point is achievable exactly; when even the highest score breaks
/// the FPR budget the threshold is `+∞` (nothing called positive).
pub fn recall_at_fpr(scores: &[f32], positive: &[bool], max_fpr: f64) -> Result<OperatingPoint> {
    if !(0.0..=1.0).contains(&max_fpr) {
        return Err(invalid!("max_fpr {max_fpr} is outside [0, 1]"));
    }
    let curve = roc_curve(scores, positive)?;
    let mut best = 0;
    for i in 1..curve.fpr.len() {
        // Rates are computed the same way for every point, so a tiny epsilon only guards
        // budgets like 0.02 that are not exactly representable.
        if curve.fpr[i] <= max_fpr + 1e-12 && curve.tpr[i] > curve.tpr[best] {
            best = i;
        }
    }
    operating_point(scores, positive, curve.thresholds[best])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of a set without positives (threshold +inf) reads back (it did not: the
    /// `null` serde_json writes for +inf was refused by the reader).
    #[test]
    fn an_infinite_threshold_round_trips_through_json() {
        let p = OperatingPoint {
            threshold: f64::INFINITY,
            tp: 0,
            fp: 0,
            tn: 300,
            fn_: 0,
            tpr: 0.0,
            fpr: 0.0,
            precision: 1.0,
        };
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("\"threshold\":null"), "{text}");
        assert_eq!(serde_json::from_str::<OperatingPoint>(&text).unwrap(), p);
        let finite = OperatingPoint {
            threshold: 0.35,
            ..p
        };
        let back: OperatingPoint =
            serde_json::from_str(&serde_json::to_string(&finite).unwrap()).unwrap();
        assert_eq!(back, finite);
    }

    fn auc(s: &[f32], y: &[bool]) -> Option<f64> {
        roc_auc(s, y).unwrap()
    }

    #[test]
    fn perfect_reversed_and_tied() {
        let y = [true, true, false, false];
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &y), Some(1.0));
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &y), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &y), Some(0.5));
    }

    #[test]
    fn hand_computed_three_quarters() {
        // Positives 0.8, 0.4; negatives 0.6, 0.2. Pairs (pos > neg): (0.8,0.6) (0.8,0.2)
        // (0.4,0.2) win, (0.4,0.6) loses → 3/4.
        let s = [0.8, 0.6, 0.4, 0.2];
        let y = [true, false, true, false];
        assert!((auc(&s, &y).unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn partial_tie_counts_half() {
        // Positive 0.5 tied with one negative 0.5, beats negative 0.1: (0.5 + 1) / 2.
        let s = [0.5, 0.5, 0.1];
        let y = [true, false, false];
        assert!((auc(&s, &y).unwrap() - 0.75).abs() < 1e-12);
        let c = roc_curve(&s, &y).unwrap();
        assert_eq!(c.fpr, vec![0.0, 0.5, 1.0]);
        assert_eq!(c.tpr, vec![0.0, 1.0, 1.0]);
    }

    #[test]
    fn missing_class_has_no_auc() {
        assert_eq!(auc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
        assert!(roc_auc(&[0.1], &[true, false]).is_err());
        assert!(roc_auc(&[f32::NAN], &[true]).is_err());
    }

    #[test]
    fn recall_at_fixed_fpr() {
        // 50 negatives at 0.00..0.49, positives at 0.45, 0.7, 0.9.
        let mut s: Vec<f32> = (0..50).map(|i| i as f32 / 100.0).collect();
        let mut y = vec![false; 50];
        s.extend([0.45, 0.7, 0.9]);
        y.extend([true, true, true]);
        // FPR ≤ 2 % allows one false positive, but the best recall it buys (2 of 3) is
        // already reached at threshold 0.7 with none.
        let op = recall_at_fpr(&s, &y, 0.02).unwrap();
        assert_eq!((op.tp, op.fp), (2, 0));
        assert!((op.threshold - 0.7).abs() < 1e-6);
        // FPR ≤ 10 %: 5 negatives ≥ 0.45 → all three positives.
        let op = recall_at_fpr(&s, &y, 0.10).unwrap();
        assert_eq!((op.tp, op.fp), (3, 5));
        // FPR = 0: only 0.9 and 0.7.
        let op = recall_at_fpr(&s, &y, 0.0).unwrap();
        assert_eq!((op.tp, op.fp, op.fpr), (2, 0, 0.0));
        let op = operating_point(&s, &y, 0.8).unwrap();
        assert_eq!((op.tp, op.fp, op.tn, op.fn_), (1, 0, 50, 2));
    }
}

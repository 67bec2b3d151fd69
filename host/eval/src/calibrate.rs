//! Post-hoc calibration of a classifier: a softmax temperature fitted on validation logits
//! (minimum negative log-likelihood), and the abstain threshold on the calibrated top-1
//! probability below which the kiosk says "uncertain", with the selective accuracy it buys.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::scores::argmax;

/// Temperatures are searched in `[MIN_TEMPERATURE, MAX_TEMPERATURE]`.
pub const MIN_TEMPERATURE: f64 = 0.05;
/// Upper end of the temperature search.
pub const MAX_TEMPERATURE: f64 = 20.0;

/// Softmax of `logits / temperature`, row by row (`cols` classes per row).
pub fn softmax_rows(logits: &[f32], cols: usize, temperature: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(cols.max(1)) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let exps: Vec<f64> = row
            .iter()
            .map(|&v| (f64::from(v - max) / temperature).exp())
            .collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| (e / sum) as f32));
    }
    out
}

/// Mean negative log-likelihood of the true classes under `softmax(logits / t)`.
pub fn nll(logits: &[f32], cols: usize, labels: &[usize], temperature: f64) -> f64 {
    let mut total = 0.0;
    for (row, &y) in logits.chunks(cols.max(1)).zip(labels) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let lse: f64 = row
            .iter()
            .map(|&v| (f64::from(v - max) / temperature).exp())
            .sum::<f64>()
            .ln();
        total += lse - f64::from(row[y] - max) / temperature;
    }
    total / labels.len().max(1) as f64
}

fn check(logits: &[f32], cols: usize, labels: &[usize]) -> Result<()> {
    if cols == 0 || labels.is_empty() {
        return Err(invalid!(
            "calibration needs at least one sample and one class"
        ));
    }
    if logits.len() != labels.len() * cols {
        return Err(invalid!(
            "{} logits for {} samples of {cols} classes",
            logits.len(),
            labels.len()
        ));
    }
    if let Some(i) = labels.iter().position(|&y| y >= cols) {
        return Err(invalid!(
            "label {} of sample {i} is out of range",
            labels[i]
        ));
    }
    if logits.iter().any(|v| !v.is_finite()) {
        return Err(invalid!("non-finite logit"));
    }
    Ok(())
}

/// The temperature minimising the validation NLL: golden-section search over `ln t` in
/// `[ln MIN_TEMPERATURE, ln MAX_TEMPERATURE]` (the NLL is unimodal in `t` for fixed logits).
pub fn fit_temperature(logits: &[f32], cols: usize, labels: &[usize]) -> Result<f64> {
    check(logits, cols, labels)?;
    let f = |lt: f64| nll(logits, cols, labels, lt.exp());
    let (mut a, mut b) = (MIN_TEMPERATURE.ln(), MAX_TEMPERATURE.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..80 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - g * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    Ok(((a + b) / 2.0).exp())
}

/// Accuracy and coverage of a classifier that answers only when its top-1 probability is at
/// least `threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectivePoint {
    /// The abstain threshold on the top-1 probability.
    pub threshold: f64,
    /// Fraction of samples answered.
    pub coverage: f64,
    /// Accuracy on the answered samples (0 when none is answered).
    pub accuracy: f64,
    /// Samples answered.
    pub answered: usize,
}

/// Selective accuracy of probabilities `probs` (`cols` per row) at `threshold`.
pub fn selective(probs: &[f32], cols: usize, labels: &[usize], threshold: f64) -> SelectivePoint {
    let (mut answered, mut right) = (0usize, 0usize);
    for (row, &y) in probs.chunks(cols.max(1)).zip(labels) {
        let Some(p) = argmax(row) else { continue };
        if f64::from(row[p]) >= threshold {
            answered += 1;
            right += usize::from(p == y);
        }
    }
    SelectivePoint {
        threshold,
        coverage: answered as f64 / labels.len().max(1) as f64,
        accuracy: if answered == 0 {
            0.0
        } else {
            right as f64 / answered as f64
        },
        answered,
    }
}

/// Chooses the abstain threshold on validation probabilities: the lowest threshold (most
/// answers) whose selective accuracy reaches `target_accuracy` while answering at least
/// `min_coverage` of the samples; when no threshold does both, the threshold that answers
/// exactly `min_coverage` (the most confident share).
pub fn choose_abstain_threshold(
    probs: &[f32],
    cols: usize,
    labels: &[usize],
    target_accuracy: f64,
    min_coverage: f64,
) -> Result<SelectivePoint> {
    if cols == 0 || labels.is_empty() || probs.len() != labels.len() * cols {
        return Err(invalid!(
            "{} probabilities for {} samples of {cols} classes",
            probs.len(),
            labels.len()
        ));
    }
    if !(0.0..=1.0).contains(&target_accuracy) || !(0.0..=1.0).contains(&min_coverage) {
        return Err(invalid!(
            "target accuracy {target_accuracy} and coverage {min_coverage} must be in [0, 1]"
        ));
    }
    let mut conf: Vec<f64> = probs
        .chunks(cols)
        .map(|r| argmax(r).map_or(0.0, |p| f64::from(r[p])))
        .collect();
    conf.sort_by(|a, b| a.total_cmp(b));
    conf.dedup();
    for &t in &conf {
        let p = selective(probs, cols, labels, t);
        if p.coverage + 1e-12 < min_coverage {
            break;
        }
        if p.accuracy >= target_accuracy {
            return Ok(p);
        }
    }
    // fall back: answer the most confident `min_coverage` share
    let n = labels.len();
    let keep = ((min_coverage * n as f64).ceil() as usize).clamp(1, n);
    let mut all: Vec<f64> = probs
        .chunks(cols)
        .map(|r| argmax(r).map_or(0.0, |p| f64::from(r[p])))
        .collect();
    all.sort_by(|a, b| b.total_cmp(a));
    Ok(selective(probs, cols, labels, all[keep - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Logits of a 4-class problem whose true calibration temperature is `t_true`, scaled by
    /// `1 / t_true` so that a fitted temperature should come out near `t_true`.
    fn overconfident(n: usize, t_true: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut logits, mut labels) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let z: Vec<f64> = (0..4).map(|_| rng.random_range(-2.0..2.0)).collect();
            // sample the label from softmax(z): calibrated at temperature 1 on z
            let p = softmax_rows(&z.iter().map(|&v| v as f32).collect::<Vec<_>>(), 4, 1.0);
            let u: f32 = rng.random();
            let mut acc = 0.0;
            let y = p.iter().position(|&q| {
                acc += q;
                u < acc
            });
            labels.push(y.unwrap_or(3));
            logits.extend(z.iter().map(|&v| (v * t_true) as f32));
        }
        (logits, labels)
    }

    #[test]
    fn temperature_fit_recovers_the_scale_and_lowers_nll() {
        let (logits, labels) = overconfident(4000, 3.0, 7);
        let t = fit_temperature(&logits, 4, &labels).unwrap();
        assert!((t - 3.0).abs() < 0.35, "fitted {t}");
        let before = nll(&logits, 4, &labels, 1.0);
        let after = nll(&logits, 4, &labels, t);
        assert!(after < before - 0.05, "{after} vs {before}");
        // already calibrated logits keep a temperature near 1
        let (l1, y1) = overconfident(4000, 1.0, 8);
        let t1 = fit_temperature(&l1, 4, &y1).unwrap();
        assert!((t1 - 1.0).abs() < 0.15, "fitted {t1}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(fit_temperature(&[], 3, &[]).is_err());
        assert!(fit_temperature(&[0.0, 1.0], 2, &[2]).is_err());
        assert!(fit_temperature(&[0.0, f32::NAN], 2, &[0]).is_err());
        assert!(fit_temperature(&[0.0, 1.0, 2.0], 2, &[0]).is_err());
        assert!(choose_abstain_threshold(&[0.5, 0.5], 2, &[0], 1.5, 0.5).is_err());
    }

    #[test]
    fn selective_accuracy_by_hand() {
        // four samples, two classes: confidences 0.9 (right), 0.8 (wrong), 0.7 (right),
        // 0.6 (wrong)
        let probs = [0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4];
        let labels = [0, 0, 0, 1];
        let p = selective(&probs, 2, &labels, 0.75);
        assert_eq!((p.answered, p.coverage, p.accuracy), (2, 0.5, 0.5));
        let p = selective(&probs, 2, &labels, 0.0);
        assert_eq!((p.answered, p.accuracy), (4, 0.5));
        let p = selective(&probs, 2, &labels, 0.95);
        assert_eq!((p.answered, p.accuracy), (0, 0.0));
        // the lowest threshold with accuracy >= 0.6 and coverage >= 0.5: 0.7 gives 2/3
        let c = choose_abstain_threshold(&probs, 2, &labels, 0.6, 0.5).unwrap();
        assert_eq!((c.threshold, c.answered), (0.699999988079071, 3));
        // unreachable accuracy: answer the most confident half
        let c = choose_abstain_threshold(&probs, 2, &labels, 0.99, 0.5).unwrap();
        assert_eq!(c.answered, 2);
    }
}

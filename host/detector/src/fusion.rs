//! Parental-Advisory-aware genre fusion (seed 001's idea: rap covers carry the label far
//! more often than other genres, so a detected label is evidence for the genre).
//!
//! Fitting: `q_g = P(PA | genre g)` is estimated on TRAINING covers labelled by the
//! detector itself (an image counts as "PA" when its best detection scores at least the
//! threshold; Laplace-smoothed). The likelihood strength `α` (and the threshold, from a
//! small grid) are then chosen on VALIDATION covers to minimise the negative
//! log-likelihood of the true genre under `sleeve_shared::fusion::FusionParams::apply`;
//! fusion is kept only when it lowers validation NLL without lowering validation accuracy.
//! Test covers only measure the result.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::fusion::FusionParams;

/// One evaluated cover: classifier probabilities, true genre, best PA detection score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusionItem {
    /// Classifier probabilities in label order.
    pub probs: Vec<f32>,
    /// True genre index.
    pub label: usize,
    /// Highest PA detection score on the cover (0 without detections).
    pub pa_score: f32,
}

/// The `α` grid searched (0 = fusion off).
pub fn alpha_grid() -> Vec<f32> {
    (0..=40).map(|i| i as f32 * 0.1).collect()
}

/// Detector score thresholds searched.
pub const THRESHOLDS: [f32; 4] = [0.3, 0.5, 0.7, 0.9];

/// `P(PA | genre)` per class from items labelled by the detector at `threshold`
/// (Laplace-smoothed: `(k + 1) / (n + 2)`).
pub fn estimate_pa_rates(items: &[FusionItem], num_classes: usize, threshold: f32) -> Vec<f32> {
    let mut k = vec![0usize; num_classes];
    let mut n = vec![0usize; num_classes];
    for it in items.iter().filter(|it| it.label < num_classes) {
        n[it.label] += 1;
        k[it.label] += usize::from(it.pa_score >= threshold);
    }
    k.iter()
        .zip(&n)
        .map(|(&k, &n)| (k as f32 + 1.0) / (n as f32 + 2.0))
        .collect()
}

/// Accuracy and mean negative log-likelihood of `items`, fused by `params` when given.
pub fn score(items: &[FusionItem], params: Option<&FusionParams>) -> (f64, f64) {
    if items.is_empty() {
        return (0.0, 0.0);
    }
    let (mut correct, mut nll) = (0usize, 0.0f64);
    for it in items {
        let p = match params {
            Some(f) => f.apply(&it.probs, it.pa_score),
            None => it.probs.clone(),
        };
        let best = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        correct += usize::from(best == Some(it.label));
        nll -= (p.get(it.label).copied().unwrap_or(0.0).max(1e-7) as f64).ln();
    }
    (
        correct as f64 / items.len() as f64,
        nll / items.len() as f64,
    )
}

/// Per-class `(correct, total)` on `items`.
pub fn per_class(
    items: &[FusionItem],
    num_classes: usize,
    params: Option<&FusionParams>,
) -> Vec<(usize, usize)> {
    let mut out = vec![(0usize, 0usize); num_classes];
    for it in items.iter().filter(|it| it.label < num_classes) {
        let p = match params {
            Some(f) => f.apply(&it.probs, it.pa_score),
            None => it.probs.clone(),
        };
        let best = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        out[it.label].1 += 1;
        out[it.label].0 += usize::from(best == Some(it.label));
    }
    out
}

/// Result of [`fit`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FusionFit {
    /// Best parameters found (even when not kept).
    pub params: FusionParams,
    /// Whether fusion helps on validation (lower NLL, accuracy not lower).
    pub keep: bool,
    /// Validation accuracy without / with fusion.
    pub val_accuracy: (f64, f64),
    /// Validation NLL without / with fusion.
    pub val_nll: (f64, f64),
}

/// Fits `q_g` on `train` and `(α, threshold)` on `val`.
pub fn fit(train: &[FusionItem], val: &[FusionItem], num_classes: usize) -> Result<FusionFit> {
    if train.is_empty() || val.is_empty() {
        bail!(
            "fusion needs training and validation covers (got {} and {})",
            train.len(),
            val.len()
        );
    }
    let (acc0, nll0) = score(val, None);
    let mut best: Option<(f64, f64, FusionParams)> = None;
    for &threshold in &THRESHOLDS {
        let q = estimate_pa_rates(train, num_classes, threshold);
        for &alpha in &alpha_grid() {
            let params = FusionParams {
                p_pa_given_genre: q.clone(),
                strength: alpha,
                pa_threshold: threshold,
            };
            let (acc, nll) = score(val, Some(&params));
            if best.as_ref().is_none_or(|(bn, _, _)| nll < *bn - 1e-12) {
                best = Some((nll, acc, params));
            }
        }
    }
    let (nll1, acc1, params) = best.expect("the grid is not empty");
    Ok(FusionFit {
        keep: params.strength > 0.0 && nll1 < nll0 && acc1 >= acc0,
        params,
        val_accuracy: (acc0, acc1),
        val_nll: (nll0, nll1),
    })
}

/// Report written by `sleeve eval fusion`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FusionReport {
    /// The fit on train/val.
    pub fit: FusionFit,
    /// Class names.
    pub labels: Vec<String>,
    /// Test accuracy without / with fusion (with = the fitted params, even if not kept).
    pub test_accuracy: (f64, f64),
    /// Test NLL without / with fusion.
    pub test_nll: (f64, f64),
    /// Per genre: test accuracy without and with fusion, and `P(PA | genre)`.
    pub per_genre: Vec<GenreRow>,
    /// Items per split `(train, val, test)`.
    pub counts: (usize, usize, usize),
    /// Where the data came from.
    pub source: String,
}

/// One genre's line of the fusion report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenreRow {
    /// Genre name.
    pub genre: String,
    /// Test covers of the genre.
    pub n: usize,
    /// Accuracy without fusion.
    pub before: f64,
    /// Accuracy with fusion.
    pub after: f64,
    /// Fitted `P(PA | genre)`.
    pub p_pa: f32,
}

/// Fits on train/val, measures on test.
pub fn report(
    labels: &[String],
    train: &[FusionItem],
    val: &[FusionItem],
    test: &[FusionItem],
    source: String,
) -> Result<FusionReport> {
    let k = labels.len();
    let fit = fit(train, val, k)?;
    let before = per_class(test, k, None);
    let after = per_class(test, k, Some(&fit.params));
    let rate = |c: (usize, usize)| {
        if c.1 == 0 {
            0.0
        } else {
            c.0 as f64 / c.1 as f64
        }
    };
    let (a0, n0) = score(test, None);
    let (a1, n1) = score(test, Some(&fit.params));
    Ok(FusionReport {
        per_genre: labels
            .iter()
            .enumerate()
            .map(|(i, g)| GenreRow {
                genre: g.clone(),
                n: before[i].1,
                before: rate(before[i]),
                after: rate(after[i]),
                p_pa: fit.params.p_pa_given_genre[i],
            })
            .collect(),
        fit,
        labels: labels.to_vec(),
        test_accuracy: (a0, a1),
        test_nll: (n0, n1),
        counts: (train.len(), val.len(), test.len()),
        source,
    })
}

/// Reads `fusion.json` written by [`write_outputs`] for a model with `labels` genres,
/// checking every number's range.
pub fn read_params(path: &Path, labels: usize) -> Result<FusionParams> {
    let text = std::fs::read(path)
        .with_context(|| format!("reading fusion parameters {}", path.display()))?;
    let f: FusionParams = serde_json::from_slice(&text)
        .with_context(|| format!("parsing fusion parameters {}", path.display()))?;
    let bad = |what: String| anyhow::anyhow!("{}: {what}", path.display());
    if f.p_pa_given_genre.len() != labels {
        return Err(bad(format!(
            "fusion has {} genre rates for {labels} labels",
            f.p_pa_given_genre.len()
        )));
    }
    if let Some(q) = f
        .p_pa_given_genre
        .iter()
        .find(|q| !(0.0..=1.0).contains(*q))
    {
        return Err(bad(format!("P(PA | genre) {q} is not in [0, 1]")));
    }
    if !(0.0..=10.0).contains(&f.strength) {
        return Err(bad(format!("strength {} is not in [0, 10]", f.strength)));
    }
    if !(0.0..=1.0).contains(&f.pa_threshold) {
        return Err(bad(format!(
            "pa_threshold {} is not in [0, 1]",
            f.pa_threshold
        )));
    }
    Ok(f)
}

/// Writes `fusion.json` (the parameters for the bundle; strength 0 when not kept) and
/// `fusion_report.json` into `out`.
pub fn write_outputs(out: &Path, r: &FusionReport) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let shipped = if r.fit.keep {
        r.fit.params.clone()
    } else {
        FusionParams {
            strength: 0.0,
            ..r.fit.params.clone()
        }
    };
    let p = out.join("fusion.json");
    write_atomic(&p, &serde_json::to_vec_pretty(&shipped)?)
        .with_context(|| format!("writing {}", p.display()))?;
    let p = out.join("fusion_report.json");
    write_atomic(&p, &serde_json::to_vec_pretty(r)?)
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// Synthetic covers: genre 0 ("rap-like") shows a label 60 % of the time, the others 5 %;
/// the classifier is a noisy one that often confuses genre 0 with genre 1; the detector
/// finds labels with 90 % recall and 2 % false positives. Used by the self-check and tests.
pub fn synthetic_items(n: usize, seed: u64) -> Vec<FusionItem> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let label = i % 5;
            let has_pa = rng.random::<f32>() < if label == 0 { 0.6 } else { 0.05 };
            let found = if has_pa {
                rng.random::<f32>() < 0.9
            } else {
                rng.random::<f32>() < 0.02
            };
            let mut logits: Vec<f32> = (0..5).map(|_| rng.random::<f32>() * 1.5).collect();
            logits[label] += 1.0;
            if label == 0 || label == 1 {
                // genres 0 and 1 look alike to the classifier
                logits[1 - label] += 0.9;
            }
            let m = logits.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = logits.iter().map(|l| (l - m).exp()).collect();
            let s: f32 = e.iter().sum();
            FusionItem {
                probs: e.iter().map(|v| v / s).collect(),
                label,
                pa_score: if found {
                    0.8 + 0.19 * rng.random::<f32>()
                } else {
                    0.2 * rng.random::<f32>()
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_laplace_smoothed() {
        let it = |label, s| FusionItem {
            probs: vec![0.5, 0.5],
            label,
            pa_score: s,
        };
        let items = [it(0, 0.9), it(0, 0.9), it(0, 0.1), it(1, 0.1)];
        let q = estimate_pa_rates(&items, 2, 0.5);
        assert!((q[0] - 3.0 / 5.0).abs() < 1e-6);
        assert!((q[1] - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn fit_on_synthetic_data_finds_useful_strength() {
        let r = report(
            &["a", "b", "c", "d", "e"].map(String::from),
            &synthetic_items(2000, 1),
            &synthetic_items(600, 2),
            &synthetic_items(1500, 3),
            "test".into(),
        )
        .unwrap();
        assert!(r.fit.keep, "{:?}", r.fit);
        assert!(r.fit.params.strength >= 0.5, "α {}", r.fit.params.strength);
        assert!(r.fit.params.p_pa_given_genre[0] > 0.4 && r.fit.params.p_pa_given_genre[2] < 0.15);
        assert!(
            r.test_accuracy.1 > r.test_accuracy.0 + 0.02,
            "{:?}",
            r.test_accuracy
        );
        assert!(r.per_genre[0].after > r.per_genre[0].before);
        let dir = tempfile::tempdir().unwrap();
        write_outputs(dir.path(), &r).unwrap();
        let p: FusionParams =
            serde_json::from_slice(&std::fs::read(dir.path().join("fusion.json")).unwrap())
                .unwrap();
        assert_eq!(p, r.fit.params);
        let path = dir.path().join("fusion.json");
        assert_eq!(read_params(&path, 5).unwrap(), r.fit.params);
        let err = format!("{:#}", read_params(&path, 4).unwrap_err());
        assert!(
            err.contains("fusion.json") && err.contains("4 labels"),
            "{err}"
        );
        for (bad, what) in [
            (
                FusionParams {
                    strength: -1.0,
                    ..p.clone()
                },
                "strength",
            ),
            (
                FusionParams {
                    pa_threshold: 2.0,
                    ..p.clone()
                },
                "pa_threshold",
            ),
            (
                FusionParams {
                    p_pa_given_genre: vec![0.1, 0.1, 1.5, 0.1, 0.1],
                    ..p.clone()
                },
                "1.5",
            ),
        ] {
            std::fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
            let err = format!("{:#}", read_params(&path, 5).unwrap_err());
            assert!(err.contains(what) && err.contains("fusion.json"), "{err}");
        }
    }

    #[test]
    fn useless_detector_is_not_kept() {
        let mut items = synthetic_items(1500, 4);
        for (i, it) in items.iter_mut().enumerate() {
            it.pa_score = if i % 7 == 0 { 0.9 } else { 0.1 };
        }
        let f = fit(&items[..1000], &items[1000..], 5).unwrap();
        assert!(!f.keep || f.params.strength < 0.5, "{f:?}");
    }
}

//! What the models produce, after postprocessing: genre scores and Parental Advisory boxes.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::boxes::BoxF;

/// One genre's probability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GenreScore {
    /// Index into the bundle's [`crate::LabelSet`].
    pub index: u16,
    /// Probability in `[0, 1]`.
    pub score: f32,
}

/// A classifier's answer: genres by falling probability (top-k, or all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Classification {
    /// Best first.
    pub top: Vec<GenreScore>,
}

impl Classification {
    /// The `k` most probable classes of a probability vector, best first; ties keep the
    /// lower index first.
    pub fn top_k(probs: &[f32], k: usize) -> Self {
        let mut idx: Vec<usize> = (0..probs.len()).collect();
        idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        Self {
            top: idx
                .into_iter()
                .take(k)
                .map(|i| GenreScore {
                    index: i as u16,
                    score: probs[i],
                })
                .collect(),
        }
    }

    /// The best class, if any.
    pub fn best(&self) -> Option<GenreScore> {
        self.top.first().copied()
    }
}

/// A detected Parental Advisory label.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PaBox {
    /// Box in coordinates normalised to the detector input (`[0, 1]`).
    pub bbox: BoxF,
    /// Confidence in `[0, 1]`.
    pub score: f32,
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| libm::expf(l - max)).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_orders() {
        let p = softmax(&[1.0, 3.0, 2.0, 1000.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[3] > 0.999);
        let p = softmax(&[0.0, 0.0]);
        assert_eq!(p, alloc::vec![0.5, 0.5]);
    }

    #[test]
    fn top_k_is_sorted_and_stable() {
        let c = Classification::top_k(&[0.1, 0.4, 0.1, 0.4], 3);
        let idx: Vec<u16> = c.top.iter().map(|g| g.index).collect();
        assert_eq!(idx, alloc::vec![1, 3, 0]);
        assert_eq!(c.best().unwrap().score, 0.4);
    }

    #[test]
    fn sigmoid_midpoint() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(10.0) > 0.9999);
    }
}

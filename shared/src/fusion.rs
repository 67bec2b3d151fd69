//! Parental-Advisory-aware genre fusion: detector evidence adjusts classifier probabilities.
//!
//! With `q_g = P(PA | genre g)` estimated on training data, seeing a label (or not) is a
//! likelihood: `p'(g) ∝ p(g) · L_g^α`, where `L_g = q_g` if a label was found and `1 − q_g`
//! otherwise, and the strength `α ≥ 0` is fitted on validation data (`α = 0` is a no-op).

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Fitted fusion parameters, stored in the bundle manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FusionParams {
    /// `P(PA label | genre)` per genre, in label order, each clamped to `[0.01, 0.99]` on use.
    pub p_pa_given_genre: Vec<f32>,
    /// Likelihood exponent `α`.
    pub strength: f32,
    /// Detector score at or above which a label counts as found.
    pub pa_threshold: f32,
}

impl FusionParams {
    /// Adjusted, renormalised probabilities given the best PA detection score (0 if none).
    /// Returns the input unchanged when lengths disagree.
    pub fn apply(&self, probs: &[f32], pa_score: f32) -> Vec<f32> {
        if probs.len() != self.p_pa_given_genre.len() {
            return probs.to_vec();
        }
        let found = pa_score >= self.pa_threshold;
        let adjusted: Vec<f32> = probs
            .iter()
            .zip(&self.p_pa_given_genre)
            .map(|(&p, &q)| {
                let q = q.clamp(0.01, 0.99);
                let l = if found { q } else { 1.0 - q };
                p * libm::powf(l, self.strength)
            })
            .collect();
        let sum: f32 = adjusted.iter().sum();
        if sum > 0.0 {
            adjusted.into_iter().map(|p| p / sum).collect()
        } else {
            probs.to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_shifts_towards_pa_heavy_genre() {
        let f = FusionParams {
            p_pa_given_genre: alloc::vec![0.05, 0.6],
            strength: 1.0,
            pa_threshold: 0.5,
        };
        let with = f.apply(&[0.5, 0.5], 0.9);
        assert!((with[1] - 0.6 / 0.65).abs() < 1e-6);
        let without = f.apply(&[0.5, 0.5], 0.1);
        assert!((without[0] - 0.95 / 1.35).abs() < 1e-6);
        let off = FusionParams {
            strength: 0.0,
            ..f.clone()
        };
        assert_eq!(off.apply(&[0.3, 0.7], 0.9), alloc::vec![0.3, 0.7]);
        assert_eq!(f.apply(&[1.0], 0.9), alloc::vec![1.0]);
    }
}

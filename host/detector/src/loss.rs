//! The SSD-Lite training loss: sigmoid focal loss on every non-ignored anchor plus
//! smooth-L1 box regression on positives, both normalised by the number of positives.

use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use crate::targets::Targets;

/// Loss hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossConfig {
    /// Focal loss weight of positives (`α`; negatives get `1 − α`).
    pub focal_alpha: f32,
    /// Focal loss focusing exponent `γ`.
    pub focal_gamma: f32,
    /// Smooth-L1 transition point `β` (in encoded units).
    pub smooth_l1_beta: f32,
    /// Weight of the box loss relative to the classification loss.
    pub box_weight: f32,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            focal_alpha: 0.25,
            focal_gamma: 2.0,
            smooth_l1_beta: 0.11,
            box_weight: 1.0,
        }
    }
}

/// A batch of targets as tensors.
#[derive(Clone, Debug)]
pub struct TargetBatch {
    /// `[N, A]` 1/0 labels.
    pub labels: Tensor<2>,
    /// `[N, A]` classification weights (0 = ignored).
    pub weights: Tensor<2>,
    /// `[N, A, 4]` encoded boxes.
    pub boxes: Tensor<3>,
    /// Number of positive anchors in the batch.
    pub num_positive: usize,
}

impl TargetBatch {
    /// Stacks per-image targets (all for the same anchors) on `device`.
    pub fn new(targets: &[&Targets], device: &Device) -> Self {
        let n = targets.len();
        let a = targets.first().map(|t| t.labels.len()).unwrap_or(0);
        let cat = |f: &dyn Fn(&Targets) -> &[f32]| -> Vec<f32> {
            targets.iter().flat_map(|t| f(t).iter().copied()).collect()
        };
        let labels = cat(&|t| &t.labels);
        let weights = cat(&|t| &t.weights);
        let boxes = cat(&|t| &t.boxes);
        Self {
            labels: Tensor::<1>::from_floats(labels.as_slice(), device).reshape([n, a]),
            weights: Tensor::<1>::from_floats(weights.as_slice(), device).reshape([n, a]),
            boxes: Tensor::<1>::from_floats(boxes.as_slice(), device).reshape([n, a, 4]),
            num_positive: targets.iter().map(|t| t.num_positive()).sum(),
        }
    }
}

/// The two loss terms and their weighted sum (scalars `[1]`).
#[derive(Clone, Debug)]
pub struct LossParts {
    /// `cls + box_weight · box`.
    pub total: Tensor<1>,
    /// Focal classification loss.
    pub cls: Tensor<1>,
    /// Smooth-L1 box loss.
    pub boxes: Tensor<1>,
}

/// Loss of predictions (`deltas [N, A, 4]`, `logits [N, A]`) against `t`.
pub fn detection_loss(
    deltas: Tensor<3>,
    logits: Tensor<2>,
    t: &TargetBatch,
    cfg: &LossConfig,
) -> LossParts {
    let norm = t.num_positive.max(1) as f32;
    let y = t.labels.clone();
    // Numerically stable BCE with logits: max(x, 0) − x·y + log(1 + e^{−|x|}).
    let ce = relu(logits.clone()) - logits.clone() * y.clone()
        + logits.clone().abs().neg().exp().log1p();
    let p = sigmoid(logits);
    let one_minus_y = y.clone().neg().add_scalar(1.0);
    let p_t = p.clone() * y.clone() + p.neg().add_scalar(1.0) * one_minus_y.clone();
    let alpha_t =
        y.clone().mul_scalar(cfg.focal_alpha) + one_minus_y.mul_scalar(1.0 - cfg.focal_alpha);
    let modulator = p_t.neg().add_scalar(1.0).powf_scalar(cfg.focal_gamma);
    let cls = (alpha_t * modulator * ce * t.weights.clone())
        .sum()
        .div_scalar(norm);

    let beta = cfg.smooth_l1_beta;
    let d = (deltas - t.boxes.clone()).abs();
    let small = d.clone().clamp_max(beta);
    let sl1 = small.clone().powf_scalar(2.0).mul_scalar(0.5 / beta) + (d - small);
    let [n, a] = y.dims();
    let pos = y.reshape([n, a, 1]);
    let boxes = (sl1 * pos).sum().div_scalar(norm);
    LossParts {
        total: cls.clone() + boxes.clone().mul_scalar(cfg.box_weight),
        cls,
        boxes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{MatchConfig, assign};
    use sleeve_shared::detect::{AnchorConfig, BoxF};

    #[test]
    fn confident_correct_predictions_cost_less() {
        let device = Device::flex();
        let cfg = AnchorConfig::ssdlite_320();
        let anchors = cfg.anchors();
        let t = assign(
            &anchors,
            &[BoxF::new(0.1, 0.1, 0.3, 0.22)],
            cfg.variances,
            &MatchConfig::default(),
        );
        let batch = TargetBatch::new(&[&t], &device);
        let a = anchors.len();
        let good_logits: Vec<f32> = t
            .labels
            .iter()
            .map(|&l| if l > 0.5 { 6.0 } else { -6.0 })
            .collect();
        let good = detection_loss(
            Tensor::<1>::from_floats(t.boxes.as_slice(), &device).reshape([1, a, 4]),
            Tensor::<1>::from_floats(good_logits.as_slice(), &device).reshape([1, a]),
            &batch,
            &LossConfig::default(),
        );
        let bad = detection_loss(
            Tensor::zeros([1, a, 4], &device),
            Tensor::zeros([1, a], &device),
            &batch,
            &LossConfig::default(),
        );
        let g: f32 = good.total.into_scalar();
        let b: f32 = bad.total.into_scalar();
        assert!(g < 0.01, "good {g}");
        assert!(b > 10.0 * g + 1.0, "bad {b} good {g}");
        let gb: f32 = good.boxes.into_scalar();
        assert!(gb.abs() < 1e-6);
    }
}

//! Training targets: which anchors are responsible for which label, and what they regress.
//!
//! SSD's matching: every anchor takes the ground-truth box it overlaps most; IoU ≥
//! `positive_iou` makes it a positive, IoU < `negative_iou` a negative, anything between is
//! ignored by the loss. Each ground-truth box also forces its single best anchor positive,
//! so no label goes unlearnt because its shape falls between anchors.

use sleeve_shared::detect::{Anchor, BoxF};

/// IoU thresholds of the matcher.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatchConfig {
    /// IoU at or above which an anchor is positive.
    pub positive_iou: f32,
    /// IoU below which an anchor is negative.
    pub negative_iou: f32,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            positive_iou: 0.5,
            negative_iou: 0.4,
        }
    }
}

/// Per-anchor targets of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    /// 1 for a positive anchor, 0 otherwise.
    pub labels: Vec<f32>,
    /// 1 where the classification loss applies (positives and negatives), 0 for ignored.
    pub weights: Vec<f32>,
    /// Encoded box targets, 4 per anchor (0 for non-positives).
    pub boxes: Vec<f32>,
    /// Index of the matched ground-truth box for positives.
    pub matched: Vec<Option<usize>>,
}

impl Targets {
    /// Number of positive anchors.
    pub fn num_positive(&self) -> usize {
        self.matched.iter().filter(|m| m.is_some()).count()
    }
}

/// Assigns `gt` (normalised boxes) to `anchors`; `variances` as in the anchor config.
pub fn assign(anchors: &[Anchor], gt: &[BoxF], variances: [f32; 2], cfg: &MatchConfig) -> Targets {
    let n = anchors.len();
    let mut best: Vec<(f32, usize)> = vec![(0.0, 0); n];
    let mut forced: Vec<(f32, usize)> = vec![(-1.0, 0); gt.len()];
    for (i, a) in anchors.iter().enumerate() {
        let ab = a.to_box();
        for (j, g) in gt.iter().enumerate() {
            let iou = ab.iou(g);
            if iou > best[i].0 {
                best[i] = (iou, j);
            }
            if iou > forced[j].0 {
                forced[j] = (iou, i);
            }
        }
    }
    let mut matched: Vec<Option<usize>> = best
        .iter()
        .map(|&(iou, j)| (iou >= cfg.positive_iou).then_some(j))
        .collect();
    let mut weights: Vec<f32> = best
        .iter()
        .map(|&(iou, _)| {
            if iou >= cfg.positive_iou || iou < cfg.negative_iou {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    for (j, &(iou, i)) in forced.iter().enumerate() {
        if iou > 0.0 {
            matched[i] = Some(j);
            weights[i] = 1.0;
        }
    }
    let mut boxes = vec![0.0f32; 4 * n];
    let labels = matched
        .iter()
        .enumerate()
        .map(|(i, m)| match m {
            Some(j) => {
                boxes[4 * i..4 * i + 4].copy_from_slice(&anchors[i].encode(&gt[*j], variances));
                1.0
            }
            None => 0.0,
        })
        .collect();
    Targets {
        labels,
        weights,
        boxes,
        matched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sleeve_shared::detect::AnchorConfig;

    fn anchor(cx: f32, cy: f32, w: f32, h: f32) -> Anchor {
        Anchor { cx, cy, w, h }
    }

    #[test]
    fn thresholds_and_forced_best_anchor() {
        let anchors = [
            anchor(0.2, 0.2, 0.2, 0.2),  // identical to gt 0 → positive
            anchor(0.22, 0.2, 0.2, 0.2), // IoU ≈ 0.82 → positive
            anchor(0.27, 0.2, 0.2, 0.2), // IoU ≈ 0.48 → ignored
            anchor(0.8, 0.8, 0.2, 0.2),  // far → negative
            anchor(0.7, 0.5, 0.3, 0.05), // best for the odd gt 1, IoU < 0.5 → forced positive
        ];
        let gt = [
            BoxF::from_centre(0.2, 0.2, 0.2, 0.2),
            BoxF::from_centre(0.7, 0.5, 0.1, 0.1),
        ];
        let t = assign(&anchors, &gt, [0.1, 0.2], &MatchConfig::default());
        assert_eq!(t.matched, vec![Some(0), Some(0), None, None, Some(1)]);
        assert_eq!(t.labels, vec![1.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(t.weights, vec![1.0, 1.0, 0.0, 1.0, 1.0]);
        assert!(t.boxes[0..4].iter().all(|v| v.abs() < 1e-5));
        assert_eq!(t.num_positive(), 3);
    }

    #[test]
    fn no_ground_truth_means_all_negative() {
        let cfg = AnchorConfig::ssdlite_320();
        let t = assign(&cfg.anchors(), &[], cfg.variances, &MatchConfig::default());
        assert_eq!(t.num_positive(), 0);
        assert!(t.weights.iter().all(|&w| w == 1.0));
        assert!(t.labels.iter().all(|&l| l == 0.0));
    }

    #[test]
    fn encoded_targets_decode_back_to_the_label() {
        let cfg = AnchorConfig::ssdlite_320();
        let anchors = cfg.anchors();
        let gt = BoxF::new(0.62, 0.71, 0.83, 0.84);
        let t = assign(&anchors, &[gt], cfg.variances, &MatchConfig::default());
        assert!(t.num_positive() >= 1);
        for (i, m) in t.matched.iter().enumerate() {
            if m.is_some() {
                let d = [
                    t.boxes[4 * i],
                    t.boxes[4 * i + 1],
                    t.boxes[4 * i + 2],
                    t.boxes[4 * i + 3],
                ];
                let b = anchors[i].decode(d, cfg.variances);
                assert!((b.x0 - gt.x0).abs() < 1e-5 && (b.y1 - gt.y1).abs() < 1e-5);
                assert!(anchors[i].to_box().iou(&gt) > 0.3);
            }
        }
    }
}

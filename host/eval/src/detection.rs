//! Single-class object-detection metrics in the style of COCO, plus image-level metrics
//! (does this image contain a Parental Advisory label at all?).
//!
//! Matching (per image, for one IoU threshold): detections are taken by falling score; each
//! takes the still-unmatched ground-truth box with the highest IoU, if that IoU is at least
//! the threshold (true positive); otherwise it is a false positive. Each ground-truth box is
//! matched at most once, so duplicates of a found box are false positives.
//!
//! AP: all detections of all images are ranked by score (stable: ties keep image order),
//! giving a precision/recall curve; precision is made monotone (`p(r) = max p(r' ≥ r)`) and
//! sampled at the 101 recalls `0, 0.01, …, 1` (0 past the highest recall reached); AP is
//! their mean. AP@[.5:.95] averages AP over IoU thresholds 0.50, 0.55, …, 0.95.

use serde::{Deserialize, Serialize};
use sleeve_shared::PaBox;
use sleeve_shared::detect::BoxF;

use crate::error::{Result, invalid};
use crate::roc::{OperatingPoint, operating_point, recall_at_fpr, roc_curve};

/// Number of recall points of the interpolated AP.
pub const RECALL_POINTS: usize = 101;

/// The ten COCO IoU thresholds `0.50, 0.55, …, 0.95`.
pub fn coco_iou_thresholds() -> [f32; 10] {
    std::array::from_fn(|i| (50 + 5 * i) as f32 / 100.0)
}

/// Ground truth and detections of one image (normalised coordinates).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageDetections {
    /// Labelled boxes.
    pub ground_truth: Vec<BoxF>,
    /// What the detector found, any order.
    pub detections: Vec<PaBox>,
}

/// A precision/recall curve: one point per ranked detection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    /// IoU threshold used for matching.
    pub iou_threshold: f32,
    /// Number of ground-truth boxes (the recall denominator).
    pub n_ground_truth: usize,
    /// Recall after each detection, by falling score.
    pub recall: Vec<f64>,
    /// Precision after each detection.
    pub precision: Vec<f64>,
    /// Score of each detection.
    pub scores: Vec<f64>,
}

/// AP at one IoU threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IouAp {
    /// IoU threshold.
    pub iou: f32,
    /// 101-point interpolated AP; `None` without ground truth.
    pub ap: Option<f64>,
}

/// Box-level detection report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    /// Images evaluated.
    pub n_images: usize,
    /// Ground-truth boxes over all images.
    pub n_ground_truth: usize,
    /// Detections over all images.
    pub n_detections: usize,
    /// AP at IoU 0.5.
    pub ap50: Option<f64>,
    /// AP at IoU 0.75.
    pub ap75: Option<f64>,
    /// Mean AP over IoU 0.50:0.05:0.95.
    pub ap50_95: Option<f64>,
    /// AP at each COCO IoU threshold.
    pub ap_by_iou: Vec<IouAp>,
    /// Highest recall reached at IoU 0.5 (all detections kept).
    pub max_recall50: f64,
    /// The IoU-0.5 precision/recall curve (not serialised; plot it with
    /// [`crate::plot::pr_curves`]).
    #[serde(skip)]
    pub pr_curve50: PrCurve,
}

fn check_box(b: &BoxF, what: &str, image: usize) -> Result<()> {
    if [b.x0, b.y0, b.x1, b.y1].iter().any(|v| !v.is_finite()) {
        return Err(invalid!(
            "image {image}: {what} box {b:?} has non-finite coordinates"
        ));
    }
    Ok(())
}

fn check_images(images: &[ImageDetections]) -> Result<()> {
    for (i, im) in images.iter().enumerate() {
        for g in &im.ground_truth {
            check_box(g, "ground-truth", i)?;
        }
        for d in &im.detections {
            check_box(&d.bbox, "detected", i)?;
            if !d.score.is_finite() {
                return Err(invalid!(
                    "image {i}: detection score {} is not finite",
                    d.score
                ));
            }
        }
    }
    Ok(())
}

/// Greedy matching of one image's detections; returns `(score, is_true_positive)` by
/// falling score.
fn match_image(im: &ImageDetections, iou_threshold: f32) -> Vec<(f32, bool)> {
    let mut order: Vec<usize> = (0..im.detections.len()).collect();
    order.sort_by(|&a, &b| im.detections[b].score.total_cmp(&im.detections[a].score));
    let mut taken = vec![false; im.ground_truth.len()];
    order
        .into_iter()
        .map(|d| {
            let det = &im.detections[d];
            let mut best: Option<(usize, f32)> = None;
            for (g, gt) in im.ground_truth.iter().enumerate() {
                if taken[g] {
                    continue;
                }
                let iou = det.bbox.iou(gt);
                if iou >= iou_threshold && best.is_none_or(|(_, b)| iou > b) {
                    best = Some((g, iou));
                }
            }
            if let Some((g, _)) = best {
                taken[g] = true;
            }
            (det.score, best.is_some())
        })
        .collect()
}

/// The precision/recall curve over all images at one IoU threshold.
pub fn pr_curve(images: &[ImageDetections], iou_threshold: f32) -> Result<PrCurve> {
    check_images(images)?;
    if !(iou_threshold > 0.0 && iou_threshold <= 1.0) {
        return Err(invalid!("IoU threshold {iou_threshold} is outside (0, 1]"));
    }
    let mut all: Vec<(f32, bool)> = images
        .iter()
        .flat_map(|im| match_image(im, iou_threshold))
        .collect();
    // Stable: equal scores keep image order, as COCO's mergesort does.
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n_gt: usize = images.iter().map(|im| im.ground_truth.len()).sum();
    let mut curve = PrCurve {
        iou_threshold,
        n_ground_truth: n_gt,
        ..PrCurve::default()
    };
    let (mut tp, mut fp) = (0usize, 0usize);
    for (score, is_tp) in all {
        if is_tp {
            tp += 1;
        } else {
            fp += 1;
        }
        curve.recall.push(if n_gt == 0 {
            0.0
        } else {
            tp as f64 / n_gt as f64
        });
        curve.precision.push(tp as f64 / (tp + fp) as f64);
        curve.scores.push(f64::from(score));
    }
    Ok(curve)
}

/// 101-point interpolated average precision of a curve; `None` when there is no ground truth.
pub fn interpolated_ap(curve: &PrCurve) -> Option<f64> {
    if curve.n_ground_truth == 0 {
        return None;
    }
    // Precision envelope: best precision at this recall or any higher one.
    let mut envelope = curve.precision.clone();
    for i in (0..envelope.len().saturating_sub(1)).rev() {
        envelope[i] = envelope[i].max(envelope[i + 1]);
    }
    let sum: f64 = (0..RECALL_POINTS)
        .map(|k| {
            let r = k as f64 / (RECALL_POINTS - 1) as f64;
            // First point whose recall reaches r (recall is non-decreasing).
            let idx = curve.recall.partition_point(|&x| x < r);
            envelope.get(idx).copied().unwrap_or(0.0)
        })
        .sum();
    Some(sum / RECALL_POINTS as f64)
}

/// Interpolated AP at one IoU threshold; `None` when there is no ground truth.
pub fn average_precision(images: &[ImageDetections], iou_threshold: f32) -> Result<Option<f64>> {
    Ok(interpolated_ap(&pr_curve(images, iou_threshold)?))
}

/// AP@0.5, AP@0.75, AP@[.5:.95] and the IoU-0.5 PR curve.
pub fn detection_report(images: &[ImageDetections]) -> Result<DetectionReport> {
    let mut ap_by_iou = Vec::new();
    let mut pr_curve50 = PrCurve::default();
    for iou in coco_iou_thresholds() {
        let curve = pr_curve(images, iou)?;
        ap_by_iou.push(IouAp {
            iou,
            ap: interpolated_ap(&curve),
        });
        if ap_by_iou.len() == 1 {
            pr_curve50 = curve;
        }
    }
    let aps: Option<Vec<f64>> = ap_by_iou.iter().map(|a| a.ap).collect();
    Ok(DetectionReport {
        n_images: images.len(),
        n_ground_truth: pr_curve50.n_ground_truth,
        n_detections: images.iter().map(|im| im.detections.len()).sum(),
        ap50: ap_by_iou[0].ap,
        ap75: ap_by_iou[5].ap,
        ap50_95: aps.map(|a| a.iter().sum::<f64>() / a.len() as f64),
        max_recall50: pr_curve50.recall.last().copied().unwrap_or(0.0),
        ap_by_iou,
        pr_curve50,
    })
}

/// Image-level view of a detector: an image is flagged when its best detection scores at
/// least the threshold; positive images are those with at least one ground-truth box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageLevelReport {
    /// Images evaluated.
    pub n_images: usize,
    /// Images with a label.
    pub n_positive: usize,
    /// ROC AUC of the per-image max score; `None` if all images are positive or negative.
    pub auc: Option<f64>,
    /// The false-positive-rate budget used for `at_fpr`.
    pub max_fpr: f64,
    /// Highest recall with FPR ≤ `max_fpr`, and its threshold.
    pub at_fpr: OperatingPoint,
    /// Counts and rates at the caller's threshold (e.g. the one shipped to the edge).
    pub at_threshold: OperatingPoint,
}

/// Per image: the highest detection score (0 without detections) and whether it has a label.
pub fn image_max_scores(images: &[ImageDetections]) -> (Vec<f32>, Vec<bool>) {
    images
        .iter()
        .map(|im| {
            let max = im.detections.iter().map(|d| d.score).fold(0.0f32, f32::max);
            (max, !im.ground_truth.is_empty())
        })
        .unzip()
}

/// Image-level metrics from per-image max scores and labels.
pub fn image_level_report(
    max_scores: &[f32],
    has_label: &[bool],
    max_fpr: f64,
    threshold: f64,
) -> Result<ImageLevelReport> {
    let curve = roc_curve(max_scores, has_label)?;
    Ok(ImageLevelReport {
        n_images: max_scores.len(),
        n_positive: curve.positives,
        auc: curve.auc,
        max_fpr,
        at_fpr: recall_at_fpr(max_scores, has_label, max_fpr)?,
        at_threshold: operating_point(max_scores, has_label, threshold)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(b: BoxF, score: f32) -> PaBox {
        PaBox { bbox: b, score }
    }

    fn a() -> BoxF {
        BoxF::new(0.1, 0.1, 0.3, 0.2)
    }

    fn b() -> BoxF {
        BoxF::new(0.6, 0.6, 0.9, 0.8)
    }

    fn close(x: Option<f64>, want: f64) -> bool {
        x.is_some_and(|v| (v - want).abs() < 1e-9)
    }

    #[test]
    fn perfect_detector_scores_one_at_every_iou() {
        let images = vec![
            ImageDetections {
                ground_truth: vec![a(), b()],
                detections: vec![det(a(), 0.9), det(b(), 0.8)],
            },
            ImageDetections {
                ground_truth: vec![b()],
                detections: vec![det(b(), 0.7)],
            },
            ImageDetections::default(),
        ];
        let r = detection_report(&images).unwrap();
        assert!(close(r.ap50, 1.0) && close(r.ap50_95, 1.0), "{r:?}");
        assert_eq!((r.n_ground_truth, r.n_detections), (3, 3));
        assert_eq!(r.max_recall50, 1.0);
    }

    #[test]
    fn false_positive_ranked_above_the_true_one_halves_ap() {
        let images = vec![
            ImageDetections {
                ground_truth: vec![a()],
                detections: vec![det(a(), 0.8)],
            },
            // FP in an image without labels, scored higher.
            ImageDetections {
                ground_truth: vec![],
                detections: vec![det(b(), 0.9)],
            },
        ];
        // PR points: (r 0, p 0), (r 1, p 1/2); envelope 1/2 everywhere.
        assert!(close(average_precision(&images, 0.5).unwrap(), 0.5));
        let c = pr_curve(&images, 0.5).unwrap();
        assert_eq!(c.recall, vec![0.0, 1.0]);
        assert_eq!(c.precision, vec![0.0, 0.5]);
    }

    #[test]
    fn missed_ground_truth_caps_recall() {
        let images = vec![ImageDetections {
            ground_truth: vec![a(), b()],
            detections: vec![det(a(), 0.9)],
        }];
        // Precision 1 up to recall 0.5 (51 of 101 points), 0 beyond.
        assert!(close(
            average_precision(&images, 0.5).unwrap(),
            51.0 / 101.0
        ));
    }

    #[test]
    fn duplicates_are_false_positives() {
        let images = vec![ImageDetections {
            ground_truth: vec![a(), b()],
            detections: vec![det(a(), 0.9), det(a(), 0.8), det(b(), 0.7)],
        }];
        // PR: (0.5, 1), (0.5, 1/2), (1, 2/3) → envelope 1 for r ≤ 0.5 (51 points), 2/3 above (50).
        let want = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        assert!(close(average_precision(&images, 0.5).unwrap(), want));
        // A lower-ranked duplicate after all boxes are found costs nothing.
        let images = vec![ImageDetections {
            ground_truth: vec![a()],
            detections: vec![det(a(), 0.9), det(a(), 0.8)],
        }];
        assert!(close(average_precision(&images, 0.5).unwrap(), 1.0));
    }

    #[test]
    fn iou_thresholds_sweep() {
        // IoU 0.62: a hit at 0.50, 0.55, 0.60 only → AP@[.5:.95] = 3/10.
        let gt = BoxF::new(0.0, 0.0, 1.0, 1.0);
        let d = BoxF::new(0.0, 0.0, 1.0, 0.62);
        let images = vec![ImageDetections {
            ground_truth: vec![gt],
            detections: vec![det(d, 0.5)],
        }];
        let r = detection_report(&images).unwrap();
        assert!(close(r.ap50, 1.0));
        assert!(close(r.ap75, 0.0));
        assert!(close(r.ap50_95, 0.3), "{:?}", r.ap50_95);
    }

    #[test]
    fn each_detection_takes_its_best_free_box() {
        // Two overlapping GTs; the top detection sits on the second, the next on the first.
        let g1 = BoxF::new(0.0, 0.0, 0.4, 0.4);
        let g2 = BoxF::new(0.1, 0.0, 0.5, 0.4);
        let images = vec![ImageDetections {
            ground_truth: vec![g1, g2],
            detections: vec![det(g2, 0.9), det(g1, 0.8)],
        }];
        assert!(close(average_precision(&images, 0.5).unwrap(), 1.0));
    }

    #[test]
    fn no_ground_truth_means_no_ap_and_bad_input_errors() {
        let images = vec![ImageDetections {
            ground_truth: vec![],
            detections: vec![det(a(), 0.9)],
        }];
        assert_eq!(average_precision(&images, 0.5).unwrap(), None);
        assert_eq!(detection_report(&images).unwrap().ap50_95, None);
        let bad = vec![ImageDetections {
            ground_truth: vec![],
            detections: vec![det(a(), f32::NAN)],
        }];
        assert!(pr_curve(&bad, 0.5).is_err());
        assert!(pr_curve(&images, 0.0).is_err());
    }

    #[test]
    fn image_level_metrics() {
        let images = vec![
            ImageDetections {
                ground_truth: vec![a()],
                detections: vec![det(a(), 0.9), det(b(), 0.2)],
            },
            ImageDetections {
                ground_truth: vec![a()],
                detections: vec![],
            },
            ImageDetections {
                ground_truth: vec![],
                detections: vec![det(b(), 0.4)],
            },
            ImageDetections::default(),
        ];
        let (s, y) = image_max_scores(&images);
        assert_eq!(s, vec![0.9, 0.0, 0.4, 0.0]);
        assert_eq!(y, vec![true, true, false, false]);
        let r = image_level_report(&s, &y, 0.0, 0.5).unwrap();
        assert_eq!((r.at_fpr.tp, r.at_fpr.fp), (1, 0));
        assert_eq!(
            (r.at_threshold.tp, r.at_threshold.fp, r.at_threshold.tn),
            (1, 0, 2)
        );
        // Pairs: 0.9 beats both negatives; 0.0 loses to 0.4 and ties 0.0 → (2 + 0.5) / 4.
        assert!(close(r.auc, 0.625));
    }
}

//! SSD box geometry shared by the detector's training (host) and decoding (edge):
//! anchors, box encoding, IoU and non-maximum suppression.
//!
//! Coordinates are normalised to the detector input: `(0, 0)` top-left, `(1, 1)`
//! bottom-right. The detector outputs, per anchor, 4 box deltas and 1 logit for
//! "Parental Advisory label"; anchors are ordered feature map by feature map, then row,
//! column, scale, aspect ratio — the same order the model's heads flatten to.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::results::{PaBox, sigmoid};

pub use crate::boxes::BoxF;

/// One feature map of the SSD head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureMap {
    /// Cells per side (the map is square).
    pub size: u32,
    /// Anchor sizes (box side of a 1:1 anchor) as fractions of the input.
    pub scales: Vec<f32>,
}

/// How anchors are laid out. Stored in the bundle so the edge decodes exactly as trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnchorConfig {
    /// Feature maps, finest first.
    pub feature_maps: Vec<FeatureMap>,
    /// Width/height ratios applied to every scale (the PA label is about 1.6:1).
    pub aspect_ratios: Vec<f32>,
    /// Box-coding variances `[centre, size]` (SSD's 0.1 / 0.2).
    pub variances: [f32; 2],
}

impl AnchorConfig {
    /// Sleeve's default for a 320×320 input with a MobileNetV2 backbone: stride-16 (20×20)
    /// and stride-32 (10×10) maps, covering labels of about 6–30 % of the cover.
    pub fn ssdlite_320() -> Self {
        Self {
            feature_maps: alloc::vec![
                FeatureMap {
                    size: 20,
                    scales: alloc::vec![0.06, 0.10],
                },
                FeatureMap {
                    size: 10,
                    scales: alloc::vec![0.16, 0.26],
                },
            ],
            aspect_ratios: alloc::vec![1.0, 1.6, 2.2],
            variances: [0.1, 0.2],
        }
    }

    /// Anchors per cell of any map.
    pub fn anchors_per_cell(&self, map: &FeatureMap) -> usize {
        map.scales.len() * self.aspect_ratios.len()
    }

    /// Total number of anchors (saturating: a hostile layout cannot overflow it; bundles
    /// are range-checked by `BundleManifest::validate`).
    pub fn num_anchors(&self) -> usize {
        self.feature_maps.iter().fold(0usize, |acc, m| {
            let cells = (m.size as usize).saturating_mul(m.size as usize);
            acc.saturating_add(cells.saturating_mul(self.anchors_per_cell(m)))
        })
    }

    /// All anchors, in head order, as centre-size boxes.
    pub fn anchors(&self) -> Vec<Anchor> {
        let mut out = Vec::with_capacity(self.num_anchors());
        for map in &self.feature_maps {
            let step = 1.0 / map.size as f32;
            for row in 0..map.size {
                for col in 0..map.size {
                    let cx = (col as f32 + 0.5) * step;
                    let cy = (row as f32 + 0.5) * step;
                    for &s in &map.scales {
                        for &r in &self.aspect_ratios {
                            let sr = libm::sqrtf(r);
                            out.push(Anchor {
                                cx,
                                cy,
                                w: s * sr,
                                h: s / sr,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// An anchor box by centre and size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Anchor {
    /// The anchor as a corner box.
    pub fn to_box(&self) -> BoxF {
        BoxF::from_centre(self.cx, self.cy, self.w, self.h)
    }

    /// SSD regression target of `gt` relative to this anchor.
    pub fn encode(&self, gt: &BoxF, variances: [f32; 2]) -> [f32; 4] {
        let (cx, cy) = gt.centre();
        let w = gt.width().max(1e-6);
        let h = gt.height().max(1e-6);
        [
            (cx - self.cx) / (self.w * variances[0]),
            (cy - self.cy) / (self.h * variances[0]),
            libm::logf(w / self.w) / variances[1],
            libm::logf(h / self.h) / variances[1],
        ]
    }

    /// Inverse of [`Anchor::encode`].
    pub fn decode(&self, d: [f32; 4], variances: [f32; 2]) -> BoxF {
        let cx = self.cx + d[0] * variances[0] * self.w;
        let cy = self.cy + d[1] * variances[0] * self.h;
        // Clamp the exponent so a wild delta cannot overflow to infinity.
        let w = self.w * libm::expf((d[2] * variances[1]).min(8.0));
        let h = self.h * libm::expf((d[3] * variances[1]).min(8.0));
        BoxF::from_centre(cx, cy, w, h)
    }
}

/// Thresholds applied when turning raw head outputs into boxes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodeParams {
    /// Minimum score kept.
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this are suppressed.
    pub iou_threshold: f32,
    /// At most this many boxes survive.
    pub max_detections: usize,
}

impl Default for DecodeParams {
    fn default() -> Self {
        Self {
            score_threshold: 0.5,
            iou_threshold: 0.45,
            max_detections: 5,
        }
    }
}

/// Why raw detector outputs cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// Anchors in the configuration.
    pub anchors: usize,
    /// Box values received (should be `4 · anchors`).
    pub boxes: usize,
    /// Logits received (should be `anchors`).
    pub logits: usize,
}

impl core::fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "detector output does not match its anchors: {} anchors need {} box values and {} logits, got {} and {}",
            self.anchors,
            4 * self.anchors,
            self.anchors,
            self.boxes,
            self.logits
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ShapeMismatch {}

/// Decodes raw head outputs (`box_deltas`: anchors × 4, `logits`: anchors) into scored,
/// clipped, non-maximum-suppressed boxes, best first.
pub fn decode_detections(
    anchors: &[Anchor],
    variances: [f32; 2],
    box_deltas: &[f32],
    logits: &[f32],
    params: &DecodeParams,
) -> Result<Vec<PaBox>, ShapeMismatch> {
    if box_deltas.len() != anchors.len() * 4 || logits.len() != anchors.len() {
        return Err(ShapeMismatch {
            anchors: anchors.len(),
            boxes: box_deltas.len(),
            logits: logits.len(),
        });
    }
    let candidates: Vec<PaBox> = anchors
        .iter()
        .zip(logits)
        .enumerate()
        .filter_map(|(i, (a, &l))| {
            let score = sigmoid(l);
            (score >= params.score_threshold).then(|| {
                let d = [
                    box_deltas[i * 4],
                    box_deltas[i * 4 + 1],
                    box_deltas[i * 4 + 2],
                    box_deltas[i * 4 + 3],
                ];
                PaBox {
                    bbox: a.decode(d, variances).clipped(),
                    score,
                }
            })
        })
        .collect();
    Ok(nms(candidates, params.iou_threshold, params.max_detections))
}

/// Greedy non-maximum suppression: best first, dropping boxes that overlap a kept one by
/// more than `iou_threshold`; at most `max` kept.
pub fn nms(mut boxes: Vec<PaBox>, iou_threshold: f32, max: usize) -> Vec<PaBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<PaBox> = Vec::new();
    for b in boxes {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|k| k.bbox.iou(&b.bbox) <= iou_threshold) {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_known_values() {
        let a = BoxF::new(0.0, 0.0, 2.0, 2.0);
        let b = BoxF::new(1.0, 1.0, 3.0, 3.0);
        assert!((a.iou(&b) - 1.0 / 7.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BoxF::new(5.0, 5.0, 6.0, 6.0)), 0.0);
        assert_eq!(a.iou(&BoxF::new(1.0, 1.0, 1.0, 1.0)), 0.0);
    }

    #[test]
    fn anchors_count_and_order() {
        let cfg = AnchorConfig::ssdlite_320();
        let a = cfg.anchors();
        assert_eq!(a.len(), cfg.num_anchors());
        assert_eq!(a.len(), 20 * 20 * 6 + 10 * 10 * 6);
        // First anchor: first cell of the 20×20 map, scale 0.06, ratio 1.
        assert!((a[0].cx - 0.025).abs() < 1e-6 && (a[0].w - 0.06).abs() < 1e-6);
        // Ratio 1.6 is wider than tall with the same area.
        assert!(a[1].w > a[1].h && (a[1].w * a[1].h - 0.0036).abs() < 1e-6);
        // The last anchor sits in the bottom-right cell of the 10×10 map.
        let last = a.last().unwrap();
        assert!((last.cx - 0.95).abs() < 1e-6 && (last.cy - 0.95).abs() < 1e-6);
    }

    #[test]
    fn anchor_count_of_a_hostile_layout_does_not_overflow() {
        let mut cfg = AnchorConfig::ssdlite_320();
        cfg.feature_maps[0].size = 100_000;
        assert_eq!(cfg.num_anchors(), 100_000 * 100_000 * 6 + 600);
        cfg.feature_maps[0].size = u32::MAX;
        cfg.feature_maps[0].scales = alloc::vec![0.1; 1 << 16];
        assert_eq!(cfg.num_anchors(), usize::MAX);
    }

    #[test]
    fn encode_decode_round_trip() {
        let anchor = Anchor {
            cx: 0.3,
            cy: 0.7,
            w: 0.1,
            h: 0.06,
        };
        let gt = BoxF::new(0.21, 0.66, 0.37, 0.75);
        let d = anchor.encode(&gt, [0.1, 0.2]);
        let back = anchor.decode(d, [0.1, 0.2]);
        for (x, y) in [
            (gt.x0, back.x0),
            (gt.y0, back.y0),
            (gt.x1, back.x1),
            (gt.y1, back.y1),
        ] {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        assert_eq!(
            anchor
                .encode(&anchor.to_box(), [0.1, 0.2])
                .map(|v| (v * 1e4).round()),
            [0.0; 4]
        );
    }

    #[test]
    fn nms_suppresses_overlaps_and_caps() {
        let b = |x: f32, s: f32| PaBox {
            bbox: BoxF::new(x, 0.0, x + 1.0, 1.0),
            score: s,
        };
        let kept = nms(
            alloc::vec![b(0.0, 0.8), b(0.1, 0.9), b(3.0, 0.5), b(6.0, 0.4)],
            0.5,
            2,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.5);
    }

    #[test]
    fn decode_rejects_wrong_shapes_and_thresholds() {
        let cfg = AnchorConfig::ssdlite_320();
        let anchors = cfg.anchors();
        let n = anchors.len();
        assert!(
            decode_detections(
                &anchors,
                cfg.variances,
                &[0.0; 3],
                &[0.0; 1],
                &DecodeParams::default()
            )
            .is_err()
        );
        let mut logits = alloc::vec![-10.0f32; n];
        logits[7] = 4.0;
        let dets = decode_detections(
            &anchors,
            cfg.variances,
            &alloc::vec![0.0; 4 * n],
            &logits,
            &DecodeParams::default(),
        )
        .unwrap();
        assert_eq!(dets.len(), 1);
        let expect = anchors[7].to_box().clipped();
        assert!((dets[0].bbox.x0 - expect.x0).abs() < 1e-6);
        assert!(dets[0].score > 0.98);
    }
}

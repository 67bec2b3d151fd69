//! AP@0.5 of raw detector outputs, and the decoding used for it.

use anyhow::Result;
use sleeve_eval::detection::{ImageDetections, average_precision};
use sleeve_shared::detect::{Anchor, BoxF, DecodeParams, decode_detections};

/// AP@0.5 of raw outputs against samples' boxes (decoding at a low threshold).
pub fn ap50_of(
    anchors: &[Anchor],
    variances: [f32; 2],
    outputs: &[(Vec<f32>, Vec<f32>)],
    gts: &[Vec<BoxF>],
) -> Result<f64> {
    let params = eval_decode_params();
    let images: Vec<ImageDetections> = outputs
        .iter()
        .zip(gts)
        .map(|((d, l), g)| {
            Ok(ImageDetections {
                ground_truth: g.clone(),
                detections: decode_detections(anchors, variances, d, l, &params)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(average_precision(&images, 0.5)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .unwrap_or(0.0))
}

/// Decoding used for AP: keep everything above 1 % so the PR curve is complete.
pub fn eval_decode_params() -> DecodeParams {
    DecodeParams {
        score_threshold: 0.01,
        iou_threshold: 0.45,
        max_detections: 10,
    }
}

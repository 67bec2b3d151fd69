//! Classifies `cat.bmp` with the Coral MobileNetV2 weights through [`reference::forward`]
//! (and, for comparison, the original quantised file through tract-tflite), printing the
//! top-5 and timings as JSON.
//!
//! ```text
//! cargo run -p sleeve-weights --example cat_check [-- WEIGHTS_DIR]
//! ```
//! `WEIGHTS_DIR` (default `/work/shared/weights`) must hold
//! `mobilenet_v2_1.0_224_quant.tflite`, `imagenet_labels.txt` and `cat.bmp`; when it does
//! not, the example says so and exits successfully.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use sleeve_shared::preprocess::{RgbView, preprocess};
use sleeve_weights::{read_tflite, reference};

fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/work/shared/weights".into()),
    );
    let model = dir.join("mobilenet_v2_1.0_224_quant.tflite");
    let labels = dir.join("imagenet_labels.txt");
    let image = dir.join("cat.bmp");
    if let Some(missing) = [&model, &labels, &image].into_iter().find(|p| !p.exists()) {
        eprintln!("skipping: {} is absent", missing.display());
        return Ok(());
    }
    let t = Instant::now();
    let weights = read_tflite(&model)?;
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("{}", weights.summary());
    let labels: Vec<String> = std::fs::read_to_string(&labels)?
        .lines()
        .map(str::to_string)
        .collect();
    let img = image::open(&image)
        .with_context(|| format!("decoding {}", image.display()))?
        .to_rgb8();
    let cfg = weights.input_norm.preprocess_config(224);
    let input = preprocess(
        &RgbView::new(img.width(), img.height(), img.as_raw())?,
        &cfg,
    )
    .map_err(|e| anyhow::anyhow!("preprocessing: {e}"))?;

    let t = Instant::now();
    let logits = reference::forward(&weights, &input)?;
    let forward_ms = t.elapsed().as_secs_f64() * 1e3;
    let probs = sleeve_shared::results::softmax(&logits);
    let top = top_k(&probs, 5);
    let tract = tract_top5(&model, &input);

    let show = |top: &[(usize, f32)]| {
        top.iter()
            .map(|&(i, p)| serde_json::json!({"index": i, "label": labels.get(i), "prob": p}))
            .collect::<Vec<_>>()
    };
    let report = serde_json::json!({
        "weights": weights.source,
        "parameters": weights.parameter_count(),
        "read_ms": read_ms,
        "reference_forward_ms": forward_ms,
        "reference_top5": show(&top),
        "tract_tflite_top5": match &tract {
            Ok(t) => serde_json::json!(show(t)),
            Err(e) => serde_json::json!(format!(
                "tract-tflite could not run the file: {e}: {}",
                e.root_cause()
            )),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.into_iter().take(k).map(|i| (i, probs[i])).collect()
}

/// Runs the original quantised file with tract-tflite. The uint8 input is the resized
/// pixel itself: `[-1, 1]` input `x` ↔ `q = x · 127.5 + 127.5`.
fn tract_top5(model: &std::path::Path, input_nchw: &[f32]) -> Result<Vec<(usize, f32)>> {
    use tract_tflite::internal::*;
    let model = tract_tflite::tflite()
        .model_for_path(model)?
        .into_optimized()?
        .into_runnable()?;
    let s = 224;
    let plane = s * s;
    let mut nhwc = vec![0u8; 3 * plane];
    for c in 0..3 {
        for p in 0..plane {
            nhwc[p * 3 + c] = (input_nchw[c * plane + p] * 127.5 + 127.5)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    let dt = model.model().input_fact(0)?.datum_type;
    let tensor = tract_ndarray::Array4::from_shape_vec((1, s, s, 3), nhwc)?
        .into_tensor()
        .cast_to_dt(dt)?
        .into_owned();
    let out = model.run(tvec!(tensor.into_tvalue()))?;
    let probs = out[0].cast_to::<f32>()?;
    let probs: Vec<f32> = probs
        .to_plain_array_view::<f32>()?
        .iter()
        .copied()
        .collect();
    Ok(top_k(&probs, 5))
}

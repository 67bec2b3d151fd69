//! Property-based fuzzing (issue 18) of `manifest.json` parsing and, with the `image`
//! feature, the image decoding front door. A few dozen cases per property run in the test
//! suite (seconds); `scripts/fuzz.sh DURATION` runs them long via `PROPTEST_CASES`.
//!
//! Properties: nothing panics; whatever is accepted is within range.

use proptest::prelude::*;
use proptest::test_runner::Config;
use sleeve_shared::BundleManifest;
use sleeve_shared::manifest::{MAX_ANCHORS, MAX_INPUT_SIZE, MIN_INPUT_SIZE};

/// Cases per property: `PROPTEST_CASES` or a small suite default.
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A valid manifest as JSON: the seed every mutation starts from.
const SEED: &str = r#"{
  "format_version": 1,
  "name": "seed",
  "labels": {"names": ["country", "electronic", "hiphop", "pop", "rock"]},
  "classifier": {
    "files": [{"precision": "f32", "path": "classifier.onnx",
               "sha256": "abababababababababababababababababababababababababababababababab",
               "bytes": 10}],
    "selected": "f32", "input_name": "image", "output_names": ["logits"],
    "preprocess": {"version": 1, "input_size": 224, "crop_fraction": 1.0,
                   "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "layout": "nchw"}
  },
  "detector": {
    "model": {
      "files": [{"precision": "f32", "path": "detector.onnx",
                 "sha256": "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
                 "bytes": 20}],
      "selected": "f32", "input_name": "image", "output_names": ["boxes", "logits"],
      "preprocess": {"version": 1, "input_size": 320, "crop_fraction": 1.0,
                     "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "layout": "nchw"}
    },
    "anchors": {"feature_maps": [{"size": 20, "scales": [0.06, 0.1]},
                                 {"size": 10, "scales": [0.16, 0.26]}],
                "aspect_ratios": [1.0, 1.6, 2.2], "variances": [0.1, 0.2]},
    "decode": {"score_threshold": 0.5, "iou_threshold": 0.45, "max_detections": 5}
  },
  "fusion": {"p_pa_given_genre": [0.1, 0.1, 0.6, 0.1, 0.1], "strength": 0.5,
             "pa_threshold": 0.5},
  "provenance": {"data": "", "seed": 0, "commit": "", "commands": [], "created_utc": ""},
  "metrics": {"classifier.abstain_threshold": 0.5, "classifier.temperature": 1.0}
}"#;

/// An accepted manifest must be usable: in range and cheap to expand.
fn check_accepted(m: &BundleManifest) {
    for pre in [
        Some(&m.classifier.preprocess),
        m.detector.as_ref().map(|d| &d.model.preprocess),
    ]
    .into_iter()
    .flatten()
    {
        assert!((MIN_INPUT_SIZE..=MAX_INPUT_SIZE).contains(&pre.input_size));
    }
    if let Some(d) = &m.detector {
        let n = d.anchors.num_anchors();
        assert!(n > 0 && n <= MAX_ANCHORS, "{n} anchors accepted");
        assert_eq!(d.anchors.anchors().len(), n);
        assert!((0.0..=1.0).contains(&d.decode.score_threshold));
    }
}

/// Every leaf of a JSON value, as a JSON pointer.
fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                leaves(x, format!("{at}/{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// Hostile JSON values to put at a leaf.
fn hostile_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(u32::MAX)),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!(null)),
        Just(serde_json::json!("")),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        ".{0,8}".prop_map(serde_json::Value::from),
    ]
}

proptest! {
    #![proptest_config(config(64))]

    /// One leaf replaced by a hostile value: refused cleanly or accepted in range.
    #[test]
    fn manifest_leaf_mutations(pick in any::<prop::sample::Index>(), value in hostile_value()) {
        let mut v: serde_json::Value = serde_json::from_str(SEED).unwrap();
        let mut at = Vec::new();
        leaves(&v, String::new(), &mut at);
        let ptr = pick.get(&at).clone();
        *v.pointer_mut(&ptr).unwrap() = value;
        if let Ok(m) = BundleManifest::from_json(&v.to_string()) {
            check_accepted(&m);
        }
    }

    /// Byte-level damage to the text (flips, cuts, insertions) never panics.
    #[test]
    fn manifest_byte_mutations(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = SEED.as_bytes().to_vec();
        for (i, b, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = i.index(bytes.len());
            match op {
                0 => bytes[at] = b,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, b),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(m) = BundleManifest::from_json(&text) {
            check_accepted(&m);
        }
    }

    /// Arbitrary text never panics.
    #[test]
    fn manifest_arbitrary_text(text in ".{0,300}") {
        let _ = BundleManifest::from_json(&text);
    }
}

#[cfg(feature = "image")]
mod images {
    use super::config;
    use image::{ImageFormat, RgbImage};
    use proptest::prelude::*;
    use sleeve_shared::imageio::{MAX_SIDE, decode};

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img = RgbImage::from_fn(24, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 77]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn seeds() -> Vec<Vec<u8>> {
        [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Bmp,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ]
        .into_iter()
        .map(encoded)
        .collect()
    }

    proptest! {
        #![proptest_config(config(64))]

        /// Damaged PNG/JPEG/BMP/GIF/WebP files (flipped bytes, cuts, header fields set to
        /// big values) never panic, and what decodes is within the limits.
        #[test]
        fn image_mutations(
            which in 0usize..5,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6)
        ) {
            let mut bytes = seeds().swap_remove(which);
            for (i, b, op) in edits {
                if bytes.is_empty() {
                    break;
                }
                let at = i.index(bytes.len());
                match op {
                    0 => bytes[at] = b,
                    1 => bytes.truncate(at),
                    // Header bytes (sizes live in the first 32 of every format here).
                    2 => { let h = at % bytes.len().min(32); bytes[h] = b; }
                    _ => bytes[at] ^= 0xFF,
                }
            }
            if let Ok(img) = decode(&bytes) {
                prop_assert!(img.width() <= MAX_SIDE && img.height() <= MAX_SIDE);
            }
        }

        /// Arbitrary bytes (with a real magic number in front half of the time).
        #[test]
        fn image_arbitrary_bytes(magic in 0usize..6, tail in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut bytes = match magic {
                0 => b"\x89PNG\r\n\x1a\n".to_vec(),
                1 => vec![0xFF, 0xD8, 0xFF],
                2 => b"BM".to_vec(),
                3 => b"GIF89a".to_vec(),
                4 => b"RIFF\0\0\0\0WEBPVP8 ".to_vec(),
                _ => Vec::new(),
            };
            bytes.extend(tail);
            let _ = decode(&bytes);
        }
    }
}

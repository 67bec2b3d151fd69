//! Property-based fuzzing (issue 18) of `manifest.json` parsing and, with the `image`
//! feature, the image decoding front door. A few dozen cases per property run in the test
//! suite (seconds); `scripts/fuzz.sh DURATION` runs them long via `PROPTEST_CASES`.
//!
//! Properties: nothing panics; whatever is accepted is within range.

use proptest::prelude::*;
use sleeve_shared::BundleManifest;
use sleeve_shared::manifest::{MAX_ANCHORS, MAX_INPUT_SIZE, MIN_INPUT_SIZE};
use sleeve_testkit::fuzz::{byte_edits, config, hostile_json, mutate_bytes, replace_leaf};

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

proptest! {
    #![proptest_config(config(64))]

    /// One leaf replaced by a hostile value: refused cleanly or accepted in range.
    #[test]
    fn manifest_leaf_mutations(pick in any::<prop::sample::Index>(), value in hostile_json()) {
        let mut v: serde_json::Value = serde_json::from_str(SEED).unwrap();
        prop_assert!(replace_leaf(&mut v, &pick, value));
        if let Ok(m) = BundleManifest::from_json(&v.to_string()) {
            check_accepted(&m);
        }
    }

    /// Byte-level damage to the text (flips, cuts, insertions) never panics.
    #[test]
    fn manifest_byte_mutations(edits in byte_edits(8, 3)) {
        let mut bytes = SEED.as_bytes().to_vec();
        mutate_bytes(&mut bytes, &edits);
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
    use image::{ImageFormat, RgbImage};
    use proptest::prelude::*;
    use sleeve_shared::imageio::{MAX_SIDE, decode};
    use sleeve_testkit::fuzz::{byte_edits, config, mutate_bytes};

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

        /// Damaged PNG/JPEG/BMP/GIF/WebP files (set, inserted and flipped bytes, cuts,
        /// header fields set to big values) never panic, and what decodes is within the
        /// limits.
        #[test]
        fn image_mutations(which in 0usize..5, edits in byte_edits(6, 5)) {
            let mut bytes = seeds().swap_remove(which);
            mutate_bytes(&mut bytes, &edits);
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

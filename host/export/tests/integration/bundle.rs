//! Bundle writer round trip and `verify` refusing tampered files.

use std::collections::BTreeMap;
use std::fs;

use burn::tensor::Device;
use sleeve_export::bundle::{
    BundleSpec, DetectorPayload, ModelPayload, model_file_name, read_manifest, verify_bundle,
    write_bundle,
};
use sleeve_export::images::random_inputs;
use sleeve_export::pipeline::{ExportSpec, PARITY_TOLERANCE, export_checked, int8_weights};
use sleeve_export::proto;
use sleeve_export::tiny::tiny_anchor_config;
use sleeve_export::tiny::{TinyClassifier, TinyDetector};
use sleeve_shared::detect::DecodeParams;
use sleeve_shared::fsutil::sha256_file;
use sleeve_shared::labels::LabelSet;
use sleeve_shared::manifest::{MANIFEST_FILE, Precision, Provenance};
use sleeve_shared::preprocess::PreprocessConfig;

const S: usize = 24;

fn spec() -> BundleSpec {
    let dev = Device::default();
    let inputs = random_inputs(&[1, 3, S, S], 1, 9);
    let c = export_checked(
        &TinyClassifier::new(5, 3, &dev),
        &ExportSpec::classifier(S),
        |m: &TinyClassifier, x| m.forward(x),
        &inputs,
        PARITY_TOLERANCE,
    )
    .unwrap();
    let (w, _) = int8_weights(&c.model).unwrap();
    let d = export_checked(
        &TinyDetector::new(2, 4, &dev),
        &ExportSpec::detector(S),
        |m: &TinyDetector, x| m.forward(x),
        &inputs,
        PARITY_TOLERANCE,
    )
    .unwrap();
    let pre = PreprocessConfig::signed_unit(S as u32);
    let mut metrics = BTreeMap::new();
    metrics.insert("classifier.test.accuracy".to_string(), 0.5);
    BundleSpec {
        name: "test".into(),
        labels: LabelSet::covers5(),
        classifier: ModelPayload {
            stem: "classifier".into(),
            files: vec![
                (Precision::F32, c.bytes.clone()),
                (Precision::Int8Weights, proto::encode(&w)),
            ],
            selected: Precision::Int8Weights,
            input_name: "image".into(),
            output_names: vec!["logits".into()],
            preprocess: pre.clone(),
        },
        detector: Some(DetectorPayload {
            model: ModelPayload {
                stem: "detector".into(),
                files: vec![(Precision::F32, d.bytes.clone())],
                selected: Precision::F32,
                input_name: "image".into(),
                output_names: vec!["boxes".into(), "logits".into()],
                preprocess: pre,
            },
            anchors: tiny_anchor_config(S),
            decode: DecodeParams::default(),
            pa_threshold: None,
        }),
        fusion: None,
        calibration: None,
        provenance: Provenance {
            data: "generated".into(),
            seed: 3,
            commit: "abc".into(),
            commands: vec!["test".into()],
            created_utc: "2026-01-01T00:00:00Z".into(),
        },
        metrics,
    }
}

#[test]
fn manifest_round_trip_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_bundle(dir.path(), &spec()).unwrap();
    assert_eq!(read_manifest(dir.path()).unwrap(), m, "manifest round trip");
    let f = &m.classifier.files[1];
    assert_eq!(
        f.path,
        model_file_name("classifier", Precision::Int8Weights)
    );
    assert_eq!(f.path, "classifier.int8-weights.onnx");
    assert_eq!(sha256_file(&dir.path().join(&f.path)).unwrap(), f.sha256);
    assert!(
        fs::read_to_string(dir.path().join("MODEL_CARD.md"))
            .unwrap()
            .contains("classifier.test.accuracy")
    );
    let checks = verify_bundle(dir.path()).unwrap();
    assert_eq!(checks.len(), 3);
    assert_eq!(checks[0].output_shapes, vec![vec![1, 5]]);
    let a = tiny_anchor_config(S).num_anchors();
    assert_eq!(checks[2].output_shapes, vec![vec![1, a, 4], vec![1, a]]);
    // No temporary files left behind.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn tampered_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_bundle(dir.path(), &spec()).unwrap();
    let path = dir.path().join(&m.classifier.files[0].path);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // same size, different content
    fs::write(&path, &bytes).unwrap();
    let err = format!("{:#}", verify_bundle(dir.path()).unwrap_err());
    assert!(err.contains("SHA-256 mismatch"), "{err}");

    // A missing file and a broken manifest are refused too.
    fs::remove_file(&path).unwrap();
    assert!(format!("{:#}", verify_bundle(dir.path()).unwrap_err()).contains("missing"));
    fs::write(dir.path().join(MANIFEST_FILE), "{").unwrap();
    assert!(verify_bundle(dir.path()).is_err());
}

#[test]
fn invalid_spec_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.classifier.selected = Precision::Int8Full; // no such file
    assert!(write_bundle(dir.path(), &s).is_err());
    assert!(
        !dir.path().join(MANIFEST_FILE).exists(),
        "no manifest for an invalid bundle"
    );
}

#[test]
fn re_export_keeps_the_store_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let s = spec();
    write_bundle(&out, &s).unwrap();
    let catalogue = out.join(sleeve_shared::catalogue::CATALOGUE_FILE);
    fs::write(&catalogue, b"the store's records").unwrap();
    // the previous export's reliability plot is a bundle file: replaced, not refused
    fs::write(out.join("calibration.png"), b"png").unwrap();
    // a second export over the same directory replaces the bundle, not the catalogue
    write_bundle(&out, &s).unwrap();
    assert_eq!(fs::read(&catalogue).unwrap(), b"the store's records");
    assert!(verify_bundle(&out).is_ok());
    // anything else in the directory is still refused rather than replaced
    fs::write(out.join("notes.txt"), b"mine").unwrap();
    let err = write_bundle(&out, &s).unwrap_err();
    assert!(format!("{err:#}").contains("notes.txt"), "{err:#}");
}

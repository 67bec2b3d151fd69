//! `sleeve export bundle` on tiny generated checkpoints written the way `sleeve train
//! classifier` and `sleeve train detector` write them (seconds, no real data).

use std::path::Path;

use burn::tensor::Device;
use sleeve_detector::checkpoint::{ANCHOR_ORDER, DetectorMeta, TrainingState, save_checkpoint};
use sleeve_detector::{SsdLiteConfig, anchor_config_for};
use sleeve_export::bundle::{read_manifest, verify_bundle};
use sleeve_export::quant::calib::RangeMethod;
use sleeve_export::trained::{
    BundleOptions, Int8Forms, REPORT_FILE, Selection, Ship, build_bundle,
};
use sleeve_nn::checkpoint::{ArchConfig, ClassifierMeta, Provenance, save_classifier};
use sleeve_nn::{EmbeddingKind, MobileNetV2Config, Stride16Tap};
use sleeve_shared::detect::DecodeParams;
use sleeve_shared::fusion::FusionParams;
use sleeve_shared::manifest::Precision;
use sleeve_shared::preprocess::PreprocessConfig;

const GENRES: [&str; 5] = ["country", "electronic", "hiphop", "pop", "rock"];

/// Four small distinct images per genre in `dir/<genre>/`.
fn write_images(dir: &Path) {
    for (g, genre) in GENRES.iter().enumerate() {
        std::fs::create_dir_all(dir.join(genre)).unwrap();
        for i in 0..4u32 {
            let img = image::RgbImage::from_fn(40, 40, |x, y| {
                let v = (x * (g as u32 + 1) * 7 + y * (i + 3) * 5 + g as u32 * 40) % 256;
                image::Rgb([v as u8, (255 - v) as u8, ((x + y + i * 30) % 256) as u8])
            });
            img.save(dir.join(genre).join(format!("{g}_{i}.png")))
                .unwrap();
        }
    }
}

/// A classifier output dir (`out/classifier/{model.bpk,meta.json}` + `out/summary.json`).
fn write_classifier(out: &Path, data: &Path, embedding: EmbeddingKind) {
    let device = Device::default();
    let splits = sleeve_nn::data::load_splits(data, 3, None).unwrap();
    let cfg = MobileNetV2Config::new(5)
        .with_width_mult(0.25)
        .with_embedding(Some(embedding));
    let model = cfg.init(&device);
    let meta = ClassifierMeta {
        version: sleeve_nn::checkpoint::META_VERSION,
        arch: ArchConfig::MobilenetV2(cfg),
        labels: splits.labels,
        preprocess: PreprocessConfig::signed_unit(32),
        provenance: Provenance {
            command: "sleeve train classifier --data tiny".into(),
            data: data.display().to_string(),
            seed: 3,
            recipe: "test".into(),
            ..Provenance::default()
        },
        metrics: serde_json::from_value(
            serde_json::json!({"best_val_acc": 0.25, "test": {"accuracy": 0.5, "macro_f1": 0.4}}),
        )
        .unwrap(),
    };
    save_classifier(&out.join("classifier"), &model, &meta).unwrap();
    std::fs::write(
        out.join("summary.json"),
        r#"{"epochs": 7, "fit_seconds": 1.5}"#,
    )
    .unwrap();
}

/// A detector output dir with `best/` and a `fusion.json`.
fn write_detector(out: &Path, tap16: Stride16Tap) -> DetectorMeta {
    let device = Device::default();
    let cfg = SsdLiteConfig {
        backbone: MobileNetV2Config::new(1).with_width_mult(0.25),
        anchors: anchor_config_for(64),
        input_size: 64,
        tap16,
    };
    let model = cfg.init(&device);
    let meta = DetectorMeta {
        version: sleeve_detector::checkpoint::META_VERSION,
        model: cfg,
        anchor_order: ANCHOR_ORDER.into(),
        decode: DecodeParams::default(),
        preprocess: PreprocessConfig::signed_unit(64),
        training: TrainingState {
            epochs_done: 2,
            seed: 1,
            train_images: 10,
            val_ap50_history: vec![0.1, 0.3],
            ..TrainingState::default()
        },
    };
    save_checkpoint(&out.join("best"), &model, &meta).unwrap();
    let fusion = FusionParams {
        p_pa_given_genre: vec![0.1, 0.1, 0.6, 0.1, 0.1],
        strength: 0.5,
        pa_threshold: 0.5,
    };
    std::fs::write(
        out.join("fusion.json"),
        serde_json::to_vec(&fusion).unwrap(),
    )
    .unwrap();
    meta
}

/// Images, a classifier and a detector under `root`, laid out as `options(root)` expects.
fn write_checkpoints(root: &Path, embedding: EmbeddingKind, tap16: Stride16Tap) -> DetectorMeta {
    write_images(&root.join("images"));
    write_classifier(&root.join("clf"), &root.join("images"), embedding);
    write_detector(&root.join("det"), tap16)
}

fn options(root: &Path) -> BundleOptions {
    BundleOptions {
        classifier: root.join("clf"),
        detector: Some(root.join("det")),
        detector_bundle: None,
        out: root.join("bundle"),
        int8: Some(Int8Forms::Both),
        calib: Some(root.join("images")),
        calib_count: 6,
        range: RangeMethod::MinMax,
        select: Selection::Int8Weights,
        eval_data: Some(root.join("images")),
        eval_count: 0,
        ap_count: 0,
        pa_covers: None,
        ap_seed: 9001,
        fusion: Some(root.join("det").join("fusion.json")),
        name: None,
        latency_runs: 1,
        parity_tolerance: 1e-4,
        parity_count: 2,
        ship: Ship::All,
        detector_eval: None,
        abstain: Default::default(),
    }
}

#[test]
fn bundle_from_trained_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dmeta = write_checkpoints(root, EmbeddingKind::Pooled, Stride16Tap::Projection);
    let o = options(root);

    let r = build_bundle(&o).expect("bundle");
    // burn vs tract parity on both models
    assert!(r.classifier.parity_max_abs_diff <= 1e-4, "{r:?}");
    assert_eq!(r.classifier.parity_inputs, 2);
    let d = r.detector.as_ref().expect("detector report");
    assert!(d.parity_max_abs_diff <= 1e-4, "{d:?}");
    // three forms each, int8 smaller, test accuracy measured on the seeded test split
    for m in [&r.classifier, d] {
        let p: Vec<Precision> = m.forms.iter().map(|f| f.precision).collect();
        assert_eq!(
            p,
            [Precision::F32, Precision::Int8Weights, Precision::Int8Full]
        );
        assert!(m.forms[1].bytes < m.forms[0].bytes && m.forms[2].bytes < m.forms[0].bytes);
        assert_eq!(m.forms[0].agreement, 1.0);
        assert_eq!(m.selected, Precision::Int8Weights);
    }
    assert!(
        r.classifier
            .forms
            .iter()
            .all(|f| f.quality.is_some() && f.quality_images > 0)
    );
    assert!(r.classifier.full_int8.is_some_and(|f| f.convs > 0));

    // the bundle verifies and carries what the checkpoints said
    assert_eq!(verify_bundle(&o.out).unwrap().len(), 6);
    let m = read_manifest(&o.out).unwrap();
    assert_eq!(m.classifier.selected, Precision::Int8Weights);
    assert_eq!(m.labels.names(), GENRES);
    let det = m.detector.as_ref().unwrap();
    assert_eq!(det.anchors, dmeta.model.anchors);
    assert_eq!(det.model.preprocess.input_size, 64);
    assert_eq!(m.fusion.as_ref().map(|f| f.strength), Some(0.5));
    assert_eq!(m.provenance.seed, 3);
    assert!(m.provenance.commands[0].contains("train classifier"));
    assert_eq!(m.metrics["classifier.test.accuracy"], 0.5);
    assert_eq!(m.metrics["classifier.epochs"], 7.0);
    assert_eq!(m.metrics["detector.best_val_ap50"], 0.3);
    // temperature and abstain threshold fitted on the validation split, typed, in range
    let cal = m.calibration.as_ref().expect("calibrated bundle");
    assert!(cal.validate().is_ok(), "{cal:?}");
    assert_eq!(
        m.metrics["classifier.calibration.temperature"],
        f64::from(cal.temperature)
    );
    assert!(
        m.metrics["classifier.calibration.val_nll_after"]
            <= m.metrics["classifier.calibration.val_nll_before"] + 1e-9
    );
    assert!(
        m.metrics
            .contains_key("classifier.calibration.test_ece_after")
    );
    assert!(o.out.join("calibration.png").is_file());
    // an existing bundle is recalibrated in place: same model and data, same fit
    let r = sleeve_export::calibrate::calibrate_bundle(
        &o.out,
        &root.join("images"),
        0,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(&r.fitted, cal);
    assert_eq!(
        read_manifest(&o.out).unwrap().calibration.as_ref(),
        Some(cal)
    );
    assert!(verify_bundle(&o.out).is_ok());
    let f32_bytes = m.classifier.file(Precision::F32).unwrap().bytes as f64;
    assert_eq!(m.metrics["export.classifier.f32.bytes"], f32_bytes);
    assert!(
        m.metrics
            .contains_key("export.detector.int8-full.latency_ms_1thread")
    );
    assert!(
        m.metrics
            .contains_key("export.classifier.int8-weights.test_accuracy")
    );
    let card = std::fs::read_to_string(o.out.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.starts_with(&format!("# Model card: {}", m.name)),
        "{card}"
    );
    assert!(
        card.contains("| `classifier.int8-weights.onnx` | int8-weights |"),
        "{card}"
    );
    assert!(card.contains("Parental Advisory detector"));
    assert!(o.out.join(REPORT_FILE).is_file());

    // re-export only the classifier, the detector carried over from that bundle (with a PA
    // threshold calibrated after export)
    let mp = o.out.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    v["detector"]["pa_threshold"] = serde_json::json!(0.62);
    std::fs::write(&mp, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let mut o2 = o.clone();
    o2.detector = None;
    o2.detector_bundle = Some(o.out.clone());
    o2.out = root.join("bundle2");
    let r2 = build_bundle(&o2).expect("bundle with a carried detector");
    assert!(
        r2.detector.is_none(),
        "the carried detector is not re-measured"
    );
    let m2 = read_manifest(&o2.out).unwrap();
    let (d1, d2) = (m.detector.as_ref().unwrap(), m2.detector.as_ref().unwrap());
    let hashes = |d: &sleeve_shared::manifest::DetectorEntry| -> Vec<String> {
        d.model.files.iter().map(|f| f.sha256.clone()).collect()
    };
    assert_eq!(hashes(d2), hashes(d1));
    assert_eq!((&d2.anchors, &d2.decode), (&d1.anchors, &d1.decode));
    assert_eq!(d2.pa_threshold, Some(0.62));
    assert_eq!(m2.fusion, m.fusion);
    assert_eq!(m2.metrics["detector.best_val_ap50"], 0.3);
    assert!(verify_bundle(&o2.out).is_ok());
    // both sources at once, or a bundle without a detector, are refused
    let mut both = o2.clone();
    both.detector = Some(root.join("det"));
    let e = format!("{:#}", build_bundle(&both).unwrap_err());
    assert!(e.contains("not both"), "{e}");
    let mut none = o2.clone();
    none.detector_bundle = Some(root.join("images"));
    let e = format!("{:#}", build_bundle(&none).unwrap_err());
    assert!(e.contains("--detector-bundle"), "{e}");
}

#[test]
fn style_classifier_and_expansion_detector_export_with_parity() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_checkpoints(root, EmbeddingKind::Style, Stride16Tap::Expansion);
    let r = build_bundle(&options(root)).expect("bundle");
    assert!(r.classifier.parity_max_abs_diff <= 1e-4, "{r:?}");
    let d = r.detector.as_ref().expect("detector report");
    assert!(d.parity_max_abs_diff <= 1e-4, "{d:?}");
    for m in [&r.classifier, d] {
        assert_eq!(m.forms.len(), 3, "{m:?}");
        assert!(m.forms[1].agreement > 0.0, "{m:?}");
    }
}

#[test]
fn bad_requests_are_refused_with_context() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_images(&root.join("images"));
    write_classifier(
        &root.join("clf"),
        &root.join("images"),
        EmbeddingKind::Pooled,
    );
    let base = BundleOptions {
        detector: None,
        fusion: None,
        eval_data: None,
        select: Selection::Auto,
        ..options(root)
    };

    let e = build_bundle(&BundleOptions {
        classifier: root.join("nope"),
        ..base.clone()
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("no trained classifier"), "{e:#}");

    let e = build_bundle(&BundleOptions {
        detector: Some(root.join("images")),
        ..base.clone()
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("no detector checkpoint"), "{e:#}");

    let e = build_bundle(&BundleOptions {
        calib: None,
        int8: Some(Int8Forms::Full),
        ..base.clone()
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("calibration images"), "{e:#}");

    let e = build_bundle(&BundleOptions {
        int8: Some(Int8Forms::Weights),
        select: Selection::Int8Full,
        ..base.clone()
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("was not built"), "{e:#}");
    assert!(
        !base.out.join("manifest.json").exists(),
        "nothing half-written"
    );

    // int8 files only: the f32 form is measured but not written
    let r = build_bundle(&BundleOptions {
        ship: Ship::Int8,
        select: Selection::Int8Weights,
        int8: Some(Int8Forms::Weights),
        ..base.clone()
    })
    .unwrap();
    assert_eq!(r.classifier.forms.len(), 2, "f32 measured");
    let m = read_manifest(&base.out).unwrap();
    assert_eq!(m.classifier.files.len(), 1);
    assert_eq!(m.classifier.files[0].precision, Precision::Int8Weights);
    assert!(m.metrics.contains_key("export.classifier.f32.bytes"));
    let e = build_bundle(&BundleOptions {
        ship: Ship::Int8,
        select: Selection::F32,
        ..base.clone()
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("leaves it out"), "{e:#}");

    // f32 only, automatic selection: the f32 file is the only choice
    let r = build_bundle(&BundleOptions {
        int8: None,
        select: Selection::Auto,
        calib: None,
        ..base.clone()
    })
    .unwrap();
    assert_eq!(r.classifier.forms.len(), 1);
    assert_eq!(
        read_manifest(&base.out).unwrap().classifier.selected,
        Precision::F32
    );
}

//! torchvision safetensors: generate → write → read → fold, on small generated files.

use std::path::Path;

use sleeve_weights::layout::block_plan;
use sleeve_weights::torchvision::{
    StateDict, TORCHVISION_BN_EPS, import_state_dict, random_torchvision_state_dict,
};
use sleeve_weights::{
    Activation, InputNorm, Padding, WeightsError, read_torchvision_safetensors, read_weights,
    write_torchvision_safetensors,
};

fn folded(dict: &StateDict, conv: &str, bn: &str, flat: usize, per_out: usize) -> (f32, f32) {
    let w = dict.tensors[&format!("{conv}.weight")].1[flat];
    let o = flat / per_out;
    let g = dict.tensors[&format!("{bn}.weight")].1[o];
    let b = dict.tensors[&format!("{bn}.bias")].1[o];
    let m = dict.tensors[&format!("{bn}.running_mean")].1[o];
    let v = dict.tensors[&format!("{bn}.running_var")].1[o];
    let s = g / (v + TORCHVISION_BN_EPS).sqrt();
    (w * s, b - m * s)
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn round_trip_maps_every_tensor_and_folds_batch_norm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mnv2_035.safetensors");
    let dict = write_torchvision_safetensors(&path, 0.35, 7, 11).unwrap();

    let read = StateDict::read_safetensors(&path).unwrap();
    assert_eq!(read.tensors, dict.tensors);
    // 52 BN layers each write an int64 num_batches_tracked, which is skipped.
    assert_eq!(read.skipped.len(), 52);
    assert!(
        read.skipped
            .contains(&"features.0.1.num_batches_tracked".to_string())
    );
    // torchvision's key names.
    for key in [
        "features.0.0.weight",
        "features.1.conv.0.0.weight",
        "features.1.conv.1.weight",
        "features.1.conv.2.running_var",
        "features.2.conv.1.0.weight",
        "features.2.conv.3.running_var",
        "features.17.conv.2.weight",
        "features.18.1.bias",
        "classifier.1.weight",
        "classifier.1.bias",
    ] {
        assert!(read.tensors.contains_key(key), "{key} missing");
    }

    let imported = import_state_dict(&read, &path).unwrap();
    assert_eq!(imported.used.len(), 262);
    assert_eq!(imported.used.len(), read.tensors.len());
    assert!(imported.unused.is_empty());
    let w = imported.weights;
    assert_eq!(w.num_classes, 7);
    assert!(!w.background_class);
    assert_eq!(w.input_norm, InputNorm::IMAGENET);
    assert_eq!(w.stem.out_channels(), 16);
    assert_eq!(w.feature_dim(), 1280);
    w.validate_width(0.35).unwrap();
    assert!(w.source.contains("mnv2_035.safetensors"));

    // Folded values equal the hand-computed BN folding.
    let (ew, eb) = folded(&dict, "features.0.0", "features.0.1", 5 * 27 + 13, 27);
    assert!(close(w.stem.weight.data[5 * 27 + 13], ew));
    assert!(close(w.stem.bias[5], eb));
    let dw = &w.blocks[4].depthwise;
    let (ew, eb) = folded(
        &dict,
        "features.5.conv.1.0",
        "features.5.conv.1.1",
        9 * 9 + 4,
        9,
    );
    assert!(close(dw.weight.at(9, 0, 1, 1), ew));
    assert!(close(dw.bias[9], eb));
    let proj = &w.blocks[0].project;
    let i = proj.weight.shape[1];
    let (ew, eb) = folded(
        &dict,
        "features.1.conv.1",
        "features.1.conv.2",
        3 * i + 2,
        i,
    );
    assert!(close(proj.weight.at(3, 2, 0, 0), ew));
    assert!(close(proj.bias[3], eb));
    // The classifier is copied, not folded.
    assert_eq!(w.classifier.weight, dict.tensors["classifier.1.weight"].1);

    // Strides, padding and activations follow torchvision.
    for (b, (_, _, s)) in w.blocks.iter().zip(block_plan()) {
        assert_eq!(b.stride(), s);
        assert_eq!(b.depthwise.padding, Padding::Symmetric(1));
        assert_eq!(b.depthwise.activation, Activation::Relu6);
        assert_eq!(b.project.activation, Activation::None);
        assert_eq!(b.project.padding, Padding::Symmetric(0));
    }
    assert_eq!(w.blocks.iter().filter(|b| b.has_residual()).count(), 10);
    assert_eq!(w.stem.stride, 2);

    // The one-call readers agree.
    assert_eq!(read_torchvision_safetensors(&path).unwrap(), w);
    assert_eq!(read_weights(&path).unwrap(), w);
}

#[test]
fn width_one_has_mobilenet_v2_channels() {
    let dict = random_torchvision_state_dict(1.0, 1000, 3);
    let w = import_state_dict(&dict, Path::new("mem")).unwrap().weights;
    w.validate_width(1.0).unwrap();
    assert!(w.validate_width(0.5).is_err());
    // torchvision counts 3,504,872 parameters, BN γ and β included (17,056 BN channels);
    // folded, each BN channel leaves one bias instead of γ and β.
    assert_eq!(w.parameter_count(), 3_504_872 - 17_056);
}

#[test]
fn missing_or_misshaped_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut dict = random_torchvision_state_dict(0.25, 3, 5);
    dict.tensors.remove("features.7.conv.1.1.running_var");
    let path = dir.path().join("missing.safetensors");
    dict.write_safetensors(&path, false).unwrap();
    let err = read_torchvision_safetensors(&path).unwrap_err();
    assert!(
        matches!(&err, WeightsError::MissingKey { key, .. } if key == "features.7.conv.1.1.running_var"),
        "{err}"
    );
    assert!(err.to_string().contains("missing.safetensors"));

    let mut dict = random_torchvision_state_dict(0.25, 3, 5);
    let (shape, values) = dict.tensors["features.3.conv.1.0.weight"].clone();
    dict.tensors.insert(
        "features.3.conv.1.0.weight".into(),
        (vec![shape[0], 1, 5, 5], vec![0.1; values.len() / 9 * 25]),
    );
    let err = import_state_dict(&dict, Path::new("bad.safetensors")).unwrap_err();
    assert!(
        err.to_string().contains("features.3.conv.1.0.weight")
            && err.to_string().contains("[C, 1, 3, 3]"),
        "{err}"
    );

    let mut dict = random_torchvision_state_dict(0.25, 3, 5);
    let (_, v) = dict.tensors["features.4.conv.0.1.bias"].clone();
    dict.tensors.insert(
        "features.4.conv.0.1.bias".into(),
        (vec![v.len() + 1], vec![0.0; v.len() + 1]),
    );
    let err = import_state_dict(&dict, Path::new("bn.safetensors")).unwrap_err();
    assert!(
        err.to_string().contains("features.4.conv.0.1.bias"),
        "{err}"
    );
}

#[test]
fn channel_mismatch_between_blocks_is_an_architecture_error() {
    let a = random_torchvision_state_dict(0.5, 3, 1);
    let b = random_torchvision_state_dict(0.75, 3, 1);
    let mut mixed = a.clone();
    for (k, v) in &b.tensors {
        if k.starts_with("features.9.") {
            mixed.tensors.insert(k.clone(), v.clone());
        }
    }
    let err = import_state_dict(&mixed, Path::new("mixed")).unwrap_err();
    assert!(matches!(err, WeightsError::Architecture { .. }), "{err}");
    assert!(err.to_string().contains("block 8"), "{err}");
}

#[test]
fn half_precision_files_are_read() {
    let dict = random_torchvision_state_dict(0.25, 4, 9);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = dict
        .tensors
        .iter()
        .map(|(k, (s, v))| {
            let b = v
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect();
            (k.clone(), s.clone(), b)
        })
        .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(k, s, b)| {
            (
                k.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F16, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f16.safetensors");
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    let read = StateDict::read_safetensors(&path).unwrap();
    let (_, orig) = &dict.tensors["features.2.conv.0.0.weight"];
    let (_, got) = &read.tensors["features.2.conv.0.0.weight"];
    assert!(
        orig.iter()
            .zip(got)
            .all(|(a, b)| (a - b).abs() <= 1e-3 * (1.0 + a.abs()))
    );
    read_torchvision_safetensors(&path)
        .unwrap()
        .validate_width(0.25)
        .unwrap();
}

#[test]
fn garbage_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.safetensors");
    std::fs::write(&path, b"definitely not safetensors").unwrap();
    let err = read_torchvision_safetensors(&path).unwrap_err();
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");
    let err = read_weights(dir.path().join("absent.safetensors")).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }), "{err}");
}

//! TFLite reader on generated files: float, Coral-style uint8 and per-axis int8 weights.

use std::path::Path;

use sleeve_weights::layout::block_plan;
use sleeve_weights::tflite::parse_tflite;
use sleeve_weights::tflite_write::tflite_bytes;
use sleeve_weights::torchvision::{import_state_dict, random_torchvision_state_dict};
use sleeve_weights::{
    Activation, ConvWeights, InputNorm, MobileNetV2Weights, Padding, WeightQuant, WeightsError,
    read_tflite, read_weights, write_tflite,
};

fn random_weights(width: f32, classes: usize, seed: u64) -> MobileNetV2Weights {
    let dict = random_torchvision_state_dict(width, classes, seed);
    import_state_dict(&dict, Path::new("random"))
        .unwrap()
        .weights
}

/// Largest |a - b| relative to the largest |a| of each output channel.
fn max_channel_rel_err(a: &ConvWeights, b: &ConvWeights) -> f32 {
    assert_eq!(a.weight.shape, b.weight.shape);
    let per = a.weight.data.len() / a.out_channels();
    let mut worst = 0.0f32;
    for (ca, cb) in a.weight.data.chunks(per).zip(b.weight.data.chunks(per)) {
        let m = ca.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (x, y) in ca.iter().zip(cb) {
            worst = worst.max((x - y).abs() / m);
        }
    }
    worst
}

fn all_convs_close(a: &MobileNetV2Weights, b: &MobileNetV2Weights, tol: f32) {
    let (ca, cb) = (a.convs(), b.convs());
    assert_eq!(ca.len(), cb.len());
    for (i, (x, y)) in ca.iter().zip(&cb).enumerate() {
        let e = max_channel_rel_err(x, y);
        assert!(e <= tol, "conv {i}: relative error {e}");
        assert_eq!(x.stride, y.stride, "conv {i}");
        assert_eq!(x.groups, y.groups, "conv {i}");
        assert_eq!(x.activation, y.activation, "conv {i}");
    }
}

#[test]
fn float_file_round_trips_exactly_with_tf_same_padding() {
    let w = random_weights(0.35, 11, 2);
    let bytes = tflite_bytes(&w, 64, WeightQuant::Float32).unwrap();
    let r = parse_tflite(&bytes, Path::new("float.tflite")).unwrap();
    assert_eq!(r.num_classes, 11);
    assert!(!r.background_class);
    assert_eq!(r.input_size, 64);
    assert_eq!(r.input_norm, InputNorm::SIGNED_UNIT);
    assert!(r.source.contains("float.tflite"));
    for (x, y) in w.convs().iter().zip(r.convs()) {
        assert_eq!(x.weight, y.weight);
        assert_eq!(x.bias, y.bias);
        assert_eq!(y.padding, Padding::TfSame);
    }
    assert_eq!(r.classifier, w.classifier);
    for (b, (_, _, s)) in r.blocks.iter().zip(block_plan()) {
        assert_eq!(b.stride(), s);
        assert_eq!(b.project.activation, Activation::None);
        assert_eq!(b.depthwise.activation, Activation::Relu6);
    }
    assert_eq!(r.blocks[0].expand, None);
    r.validate_width(0.35).unwrap();
}

#[test]
fn uint8_per_tensor_weights_are_dequantised_with_zero_points() {
    let w = random_weights(0.5, 1001, 4);
    let bytes = tflite_bytes(&w, 32, WeightQuant::Uint8PerTensor).unwrap();
    let r = parse_tflite(&bytes, Path::new("u8.tflite")).unwrap();
    assert!(r.background_class);
    // One uint8 step over a tensor's range, which can be far wider than one channel's.
    for (i, (x, y)) in w.convs().iter().zip(r.convs()).enumerate() {
        let lo = x.weight.data.iter().copied().fold(0.0f32, f32::min);
        let hi = x.weight.data.iter().copied().fold(0.0f32, f32::max);
        let step = (hi - lo) / 255.0;
        let worst = x
            .weight
            .data
            .iter()
            .zip(&y.weight.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            worst <= 0.51 * step + 1e-7,
            "conv {i}: error {worst} > half step {step}"
        );
        let bias_worst = x
            .bias
            .iter()
            .zip(&y.bias)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            bias_worst <= 0.51 * step + 1e-7,
            "conv {i} bias: {bias_worst}"
        );
    }
}

#[test]
fn int8_per_axis_weights_use_per_channel_scales() {
    let w = random_weights(0.35, 5, 6);
    let bytes = tflite_bytes(&w, 32, WeightQuant::Int8PerAxis).unwrap();
    let r = parse_tflite(&bytes, Path::new("i8.tflite")).unwrap();
    // Half an int8 step of each channel's own range: 0.5 / 127.
    all_convs_close(&w, &r, 0.5 / 127.0 + 1e-6);
}

#[test]
fn read_tflite_insists_on_width_one_and_read_weights_detects_tflite() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.tflite");
    write_tflite(
        &small,
        &random_weights(0.35, 3, 1),
        32,
        WeightQuant::Float32,
    )
    .unwrap();
    let err = read_tflite(&small).unwrap_err();
    assert!(matches!(err, WeightsError::Architecture { .. }), "{err}");
    assert!(err.to_string().contains("stem has 16 channels"), "{err}");

    let full = dir.path().join("full.tflite");
    let w = random_weights(1.0, 1001, 1);
    write_tflite(&full, &w, 224, WeightQuant::Float32).unwrap();
    let r = read_weights(&full).unwrap();
    assert_eq!(r.classifier, w.classifier);
    assert_eq!(r.parameter_count(), w.parameter_count());
}

#[test]
fn wrong_files_give_clear_errors() {
    let err = parse_tflite(b"PK\x03\x04 this is a zip", Path::new("x.tflite")).unwrap_err();
    assert!(err.to_string().contains("not a TFLite file"), "{err}");

    let w = random_weights(0.35, 3, 1);
    let bytes = tflite_bytes(&w, 32, WeightQuant::Float32).unwrap();
    let err = parse_tflite(&bytes[..bytes.len() / 2], Path::new("cut.tflite")).unwrap_err();
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");

    // A network with a block missing is rejected as a different architecture.
    let mut short = w.clone();
    short.blocks.remove(12);
    let bytes = tflite_bytes(&short, 32, WeightQuant::Float32).unwrap();
    let err = parse_tflite(&bytes, Path::new("short.tflite")).unwrap_err();
    assert!(matches!(err, WeightsError::Architecture { .. }), "{err}");
}

//! Export → tract parity, int8 forms and bundles on tiny generated models (seconds).

use burn::tensor::Device;
use sleeve_export::images::random_inputs;
use sleeve_export::parity::compare_models;
use sleeve_export::pipeline::{
    ExportSpec, PARITY_TOLERANCE, export_checked, int8_full, int8_weights,
};
use sleeve_export::quant::calib::RangeMethod;
use sleeve_export::quant::weights::quantize_weights;
use sleeve_export::runtime::TractModel;
use sleeve_export::tiny::tiny_anchor_config;
use sleeve_export::tiny::{TinyClassifier, TinyDetector};
use sleeve_export::{ExportError, proto};

const S: usize = 32;

fn classifier() -> (TinyClassifier, sleeve_export::pipeline::Exported) {
    let m = TinyClassifier::new(5, 42, &Device::default());
    let inputs = random_inputs(&[1, 3, S, S], 3, 1);
    let e = export_checked(
        &m,
        &ExportSpec::classifier(S),
        |m: &TinyClassifier, x| m.forward(x),
        &inputs,
        PARITY_TOLERANCE,
    )
    .expect("export");
    (m, e)
}

fn ops(m: &tract_onnx::pb::ModelProto) -> Vec<String> {
    proto::graph(m)
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

#[test]
fn classifier_exports_with_names_clip_folded_bn_and_parity() {
    let (_, e) = classifier();
    assert!(e.parity.worst() <= PARITY_TOLERANCE, "{:?}", e.parity);
    assert_eq!(e.parity.inputs, 3);
    assert_eq!(e.parity.top1_agreement, 1.0);
    let g = proto::graph(&e.model).unwrap();
    assert_eq!(g.input[0].name, "image");
    assert_eq!(
        g.output.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["logits"]
    );
    let ops = ops(&e.model);
    assert_eq!(
        e.passes.clips, 3,
        "three ReLU6 in the tiny classifier: {ops:?}"
    );
    assert_eq!(ops.iter().filter(|o| *o == "Clip").count(), 3);
    assert_eq!(e.passes.folded_bn, 4);
    assert!(
        !ops.iter().any(|o| o == "BatchNormalization" || o == "Relu"),
        "{ops:?}"
    );
    // The saved bytes are what was checked.
    assert_eq!(proto::decode(&e.bytes).unwrap(), e.model);
}

#[test]
fn detector_exports_two_named_outputs_with_parity() {
    let d = TinyDetector::new(2, 7, &Device::default());
    let inputs = random_inputs(&[1, 3, S, S], 2, 2);
    let e = export_checked(
        &d,
        &ExportSpec::detector(S),
        |m: &TinyDetector, x| m.forward(x),
        &inputs,
        PARITY_TOLERANCE,
    )
    .expect("export");
    assert_eq!(e.parity.max_abs_diff.len(), 2);
    assert!(e.parity.worst() <= PARITY_TOLERANCE);
    let g = proto::graph(&e.model).unwrap();
    let names: Vec<_> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["boxes", "logits"]);
    let outs = TractModel::load(&e.bytes).unwrap().run(&inputs[0]).unwrap();
    let a = d.num_anchors(S);
    assert_eq!(a, tiny_anchor_config(S).num_anchors());
    assert_eq!(outs[0].shape, vec![1, a, 4]);
    assert_eq!(outs[1].shape, vec![1, a]);
}

#[test]
fn parity_failure_is_loud() {
    let m = TinyClassifier::new(5, 1, &Device::default());
    let inputs = random_inputs(&[1, 3, S, S], 1, 1);
    let err = export_checked(
        &m,
        &ExportSpec::classifier(S),
        |m: &TinyClassifier, x| m.forward(x),
        &inputs,
        -1.0,
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::Parity { .. }), "{err}");
    assert!(err.to_string().contains("parity check failed"));
}

/// Moves every Conv weight of `m` onto a 200-level grid with a zero point, as weights
/// imported from a quantized model are.
fn snap_conv_weights_to_grid(m: &mut tract_onnx::pb::ModelProto) -> usize {
    let g = proto::graph_mut(m).unwrap();
    let conv_weights: Vec<String> = g
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .map(|n| n.input[1].clone())
        .collect();
    for t in g.initializer.iter_mut() {
        if !conv_weights.contains(&t.name) {
            continue;
        }
        let v = proto::tensor_f32(t).unwrap();
        let (lo, hi) = v
            .iter()
            .fold((0.0f32, 0.0f32), |(a, b), &x| (a.min(x), b.max(x)));
        let step = (hi - lo) / 199.0;
        let snapped: Vec<f32> = v.iter().map(|&x| (x / step).round() * step).collect();
        *t = proto::f32_tensor(&t.name, &t.dims, &snapped);
    }
    conv_weights.len()
}

#[test]
fn weight_only_int8_stores_grid_weights_exactly() {
    let (_, e) = classifier();
    let mut grid = e.model.clone();
    let convs = snap_conv_weights_to_grid(&mut grid);
    let (q, n) = int8_weights(&grid).unwrap();
    assert_eq!(
        n.lossless, convs,
        "every snapped conv weight is found on its grid"
    );
    assert_eq!(n.per_channel, 1, "the head's MatMul weight is requantized");
    // With the head left aside, the int8 graph computes what the f32 graph does.
    let g = proto::graph(&q).unwrap();
    let per_tensor = g
        .node
        .iter()
        .filter(|n| n.op_type == "DequantizeLinear" && proto::get_int_attr(n, "axis").is_none())
        .count();
    assert_eq!(per_tensor, convs);
    let f32_model = TractModel::load(&proto::encode(&grid)).unwrap();
    let int8_model = TractModel::load(&proto::encode(&q)).unwrap();
    let inputs = random_inputs(&[1, 3, S, S], 4, 9);
    let exact = compare_models(&f32_model, &int8_model, &inputs).unwrap();
    let mut head_only = grid.clone();
    let g = proto::graph_mut(&mut head_only).unwrap();
    let convs_kept: std::collections::HashSet<String> = g
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .map(|n| n.input[1].clone())
        .collect();
    let head_stats = quantize_weights(g, &convs_kept).unwrap();
    assert_eq!(head_stats.per_channel, 1);
    let head = compare_models(
        &f32_model,
        &TractModel::load(&proto::encode(&head_only)).unwrap(),
        &inputs,
    )
    .unwrap();
    assert!(
        (exact.worst() - head.worst()).abs() <= 1e-5,
        "the convs add no error beyond the head's: {} vs {}",
        exact.worst(),
        head.worst()
    );
}

#[test]
fn weight_only_int8_is_smaller_and_close() {
    let (_, e) = classifier();
    let (q, n) = int8_weights(&e.model).unwrap();
    assert_eq!(n.total(), 5, "four convs and the linear head");
    assert_eq!(n.lossless, 0, "random weights are not on a grid");
    let ops = ops(&q);
    assert_eq!(ops.iter().filter(|o| *o == "DequantizeLinear").count(), 5);
    let g = proto::graph(&q).unwrap();
    let int8 = g.initializer.iter().filter(|t| t.data_type == 3).count();
    assert_eq!(int8, 10, "values and zero points");
    let bytes = proto::encode(&q);
    assert!(
        bytes.len() < e.bytes.len(),
        "{} vs {}",
        bytes.len(),
        e.bytes.len()
    );
    let inputs = random_inputs(&[1, 3, S, S], 8, 3);
    let a = compare_models(
        &TractModel::load(&e.bytes).unwrap(),
        &TractModel::load(&bytes).unwrap(),
        &inputs,
    )
    .unwrap();
    let scale = TractModel::load(&e.bytes).unwrap().run(&inputs[0]).unwrap()[0]
        .data
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(a.worst() > 0.0, "quantization changes something");
    assert!(
        a.worst() < 0.05 * scale.max(1.0),
        "worst {} for logits up to {scale}",
        a.worst()
    );
}

#[test]
fn full_int8_loads_runs_and_tracks_f32() {
    let (_, e) = classifier();
    let calib = random_inputs(&[1, 3, S, S], 8, 4);
    let bar = indicatif::ProgressBar::hidden();
    let (q, r) = int8_full(&e.model, &calib, RangeMethod::MinMax, &bar).unwrap();
    assert_eq!(r.convs, 4);
    assert_eq!(r.fused_activations, 3);
    assert_eq!(r.int8_weight_only, 1, "the linear head");
    let ops = ops(&q);
    assert_eq!(
        ops.iter().filter(|o| *o == "QLinearConv").count(),
        4,
        "{ops:?}"
    );
    assert!(!ops.iter().any(|o| o == "Conv" || o == "Clip"), "{ops:?}");
    // The chain stem → depthwise passes uint8 directly: only the graph input and the
    // residual sum are quantized from float.
    assert_eq!(r.quantize_nodes, 2, "{ops:?}");
    let f32m = TractModel::load(&e.bytes).unwrap();
    let qm = TractModel::load(&proto::encode(&q)).expect("tract loads the full-int8 graph");
    let a = compare_models(&f32m, &qm, &calib).unwrap();
    let scale = f32m.run(&calib[0]).unwrap()[0]
        .data
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        a.worst() < 0.15 * scale.max(1.0),
        "worst {} for logits up to {scale}",
        a.worst()
    );
}

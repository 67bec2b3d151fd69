//! The joint model (`sleeve_export::joint`): a classifier and a detector exported from burn
//! on the same backbone merge into one graph that gives both models' outputs, sharing
//! verified by weight hashes; different backbones are refused.

use burn::tensor::Device;
use sleeve_detector::{SsdLite, anchor_config_for};
use sleeve_export::images::random_inputs;
use sleeve_export::joint::{JOINT_OUTPUTS, JointError, JointOptions, check_joint, merge_joint};
use sleeve_export::pipeline::{ExportSpec, PARITY_TOLERANCE, export_checked, int8_weights};
use sleeve_export::proto;
use sleeve_nn::checkpoint::{load_module_bytes, module_bytes};
use sleeve_nn::mobilenet::InvertedResidual;
use sleeve_nn::{EmbeddingKind, MobileNetV2, MobileNetV2Config};
use tract_onnx::pb::ModelProto;

/// The classifier's own input size (like 224) and the detector's, which the joint uses.
const C_SIZE: usize = 32;
const D_SIZE: usize = 64;

fn config() -> MobileNetV2Config {
    MobileNetV2Config::new(5)
        .with_width_mult(0.25)
        .with_embedding(Some(EmbeddingKind::Style))
}

/// An independent copy of `m` with the same weights (through burnpack bytes): tracing a
/// module for export moves its parameters to burn-onnx's capture device, which a plain
/// clone would share.
fn copy(cfg: &MobileNetV2Config, m: &MobileNetV2, device: &Device) -> MobileNetV2 {
    load_module_bytes(cfg.init(device), module_bytes(m).unwrap()).unwrap()
}

fn export_classifier(m: &MobileNetV2) -> ModelProto {
    let inputs = random_inputs(&[1, 3, C_SIZE, C_SIZE], 1, 1);
    export_checked(
        m,
        &ExportSpec::classifier(C_SIZE),
        |m: &MobileNetV2, x| m.forward(x),
        &inputs,
        PARITY_TOLERANCE,
    )
    .expect("classifier export")
    .model
}

fn export_detector(backbone: MobileNetV2, device: &Device) -> ModelProto {
    let det = SsdLite::from_backbone(backbone, &anchor_config_for(D_SIZE as u32), device);
    let inputs = random_inputs(&[1, 3, D_SIZE, D_SIZE], 1, 2);
    export_checked(
        &det,
        &ExportSpec::detector(D_SIZE),
        |m: &SsdLite, x| m.forward(x),
        &inputs,
        PARITY_TOLERANCE,
    )
    .expect("detector export")
    .model
}

fn convs(m: &ModelProto) -> usize {
    proto::graph(m)
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .count()
}

#[test]
fn joint_model_equals_the_two_models_and_computes_the_backbone_once() {
    let device = Device::default();
    let cls = config().init(&device);
    let det_backbone = copy(&config(), &cls, &device);
    let c = export_classifier(&cls);
    let d = export_detector(det_backbone, &device);
    let (joint, report) = merge_joint(&c, &d, &JointOptions::default()).expect("merge");

    // The whole backbone is shared: the classifier adds only its style statistics and head.
    assert_eq!(report.shared_convs, convs(&c), "{report:?}");
    assert_eq!(report.classifier_only_convs, 0);
    assert_eq!(convs(&joint), convs(&d), "no conv computed twice");
    assert_eq!(
        report.joint_nodes,
        report.detector_nodes + report.classifier_nodes - report.shared_nodes
    );
    assert_eq!(report.first_unshared.as_deref(), Some("classifier.weight"));
    let outs: Vec<&str> = proto::graph(&joint)
        .unwrap()
        .output
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(outs, JOINT_OUTPUTS);

    // Same outputs as the separate models (at the joint size) on generated inputs.
    let inputs = random_inputs(&[1, 3, D_SIZE, D_SIZE], 3, 7);
    let diff = check_joint(&joint, &c, &d, &inputs).expect("runs");
    assert!(diff <= 1e-4, "joint vs separate max |diff| {diff}");

    // int8-weights forms of the same pair share the same layers (identical float weights
    // quantize identically) and still agree with their separate forms.
    let (c8, _) = int8_weights(&c).unwrap();
    let (d8, _) = int8_weights(&d).unwrap();
    let (j8, r8) = merge_joint(&c8, &d8, &JointOptions::default()).expect("merge int8");
    assert_eq!(r8.shared_convs, report.shared_convs);
    let diff = check_joint(&j8, &c8, &d8, &inputs).expect("runs");
    assert!(diff <= 1e-4, "int8 joint vs separate max |diff| {diff}");
}

/// A classifier whose last block was fine-tuned shares only the blocks below it.
#[test]
fn fine_tuned_upper_blocks_share_only_the_common_prefix() {
    let device = Device::default();
    let cfg = config();
    let base = cfg.init(&device);
    let mut tuned = copy(&cfg, &base, &device);
    let last = tuned.blocks.len() - 1;
    let spec = cfg.block_specs()[last];
    tuned.blocks[last] = InvertedResidual::new(&spec, cfg.padding, cfg.bn_epsilon, &device);
    let c = export_classifier(&tuned);
    let d = export_detector(base, &device);
    let (joint, report) = merge_joint(&c, &d, &JointOptions::default()).expect("merge");
    assert_eq!(
        report.classifier_only_convs,
        3 + 1,
        "block 16 (3 convs) + the last 1x1"
    );
    assert_eq!(report.shared_convs, convs(&c) - 4);
    let first = report.first_unshared.clone().unwrap();
    assert!(first.contains("blocks.16"), "{first}");
    let inputs = random_inputs(&[1, 3, D_SIZE, D_SIZE], 2, 9);
    let diff = check_joint(&joint, &c, &d, &inputs).expect("runs");
    assert!(diff <= 1e-4, "max |diff| {diff}");
}

#[test]
fn different_backbones_are_refused_with_the_first_difference() {
    let device = Device::default();
    let cls = config().init(&device);
    let other = config().init(&device);
    let same = copy(&config(), &cls, &device);
    let c = export_classifier(&cls);
    let d = export_detector(other, &device);
    let err = merge_joint(&c, &d, &JointOptions::default()).expect_err("refused");
    assert!(
        matches!(err, JointError::NotShared { shared: 0, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("do not share their backbone"), "{msg}");
    assert!(msg.contains("stem.conv.weight"), "{msg}");
    // Requiring more sharing than there is refuses a pair that does share.
    let d_same = export_detector(same, &device);
    let err = merge_joint(
        &c,
        &d_same,
        &JointOptions {
            min_shared_convs: 1000,
        },
    )
    .expect_err("too little");
    assert!(err.to_string().contains("at least 1000"), "{err}");
}

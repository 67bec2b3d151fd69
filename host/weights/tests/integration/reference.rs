//! The reference forward pass against hand-computed values.

use std::path::Path;

use sleeve_weights::reference::{self, FeatureMap, conv2d, global_average_pool, linear};
use sleeve_weights::tflite::parse_tflite;
use sleeve_weights::tflite_write::tflite_bytes;
use sleeve_weights::torchvision::{import_state_dict, random_torchvision_state_dict};
use sleeve_weights::{Activation, ConvWeights, Linear, Padding, Tensor4, WeightQuant};

/// One 4×4 channel holding 1..=16 row-major.
fn ramp() -> FeatureMap {
    FeatureMap::new(1, 4, 4, (1..=16).map(|v| v as f32).collect()).unwrap()
}

fn ones3x3(stride: usize, padding: Padding) -> ConvWeights {
    ConvWeights {
        weight: Tensor4::new([1, 1, 3, 3], vec![1.0; 9]).unwrap(),
        bias: vec![0.0],
        stride,
        groups: 1,
        padding,
        activation: Activation::None,
    }
}

#[test]
fn tf_same_stride_two_pads_bottom_right_only() {
    // Windows rows/cols {0,1,2} and {2,3,pad}.
    let y = conv2d(&ramp(), &ones3x3(2, Padding::TfSame)).unwrap();
    assert_eq!((y.height, y.width), (2, 2));
    assert_eq!(y.data, vec![54.0, 45.0, 72.0, 54.0]);
}

#[test]
fn symmetric_stride_two_pads_both_sides() {
    // Windows rows/cols {pad,0,1} and {1,2,3}.
    let y = conv2d(&ramp(), &ones3x3(2, Padding::Symmetric(1))).unwrap();
    assert_eq!(y.data, vec![14.0, 30.0, 57.0, 99.0]);
}

#[test]
fn stride_one_same_padding_keeps_size() {
    let y = conv2d(&ramp(), &ones3x3(1, Padding::TfSame)).unwrap();
    assert_eq!((y.height, y.width), (4, 4));
    // Corner: 1+2+5+6; centre (1,1): 1+2+3+5+6+7+9+10+11.
    assert_eq!(y.data[0], 14.0);
    assert_eq!(y.data[5], 54.0);
    assert_eq!(
        y,
        conv2d(&ramp(), &ones3x3(1, Padding::Symmetric(1))).unwrap()
    );
}

#[test]
fn depthwise_uses_one_kernel_per_channel_then_bias_and_relu6() {
    let mut data: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    data.extend((1..=16).map(|v| -(v as f32)));
    let x = FeatureMap::new(2, 4, 4, data).unwrap();
    // Channel 0: centre tap ×0.5; channel 1: top-left tap ×1.
    let mut k = vec![0.0; 18];
    k[4] = 0.5;
    k[9] = 1.0;
    let conv = ConvWeights {
        weight: Tensor4::new([2, 1, 3, 3], k).unwrap(),
        bias: vec![-1.0, 10.0],
        stride: 1,
        groups: 2,
        padding: Padding::Symmetric(1),
        activation: Activation::Relu6,
    };
    let y = conv2d(&x, &conv).unwrap();
    // Channel 0: clamp(0.5·v - 1, 0, 6).
    let c0: Vec<f32> = (1..=16)
        .map(|v| (0.5 * v as f32 - 1.0).clamp(0.0, 6.0))
        .collect();
    assert_eq!(&y.data[..16], &c0[..]);
    // Channel 1 at (0,0) reads padding: 10 → clamp 6; at (1,1) reads x[0,0] = -1: 9 → 6;
    // at (3,3) reads x[2,2] = -11: -1 → 0.
    assert_eq!(y.data[16], 6.0);
    assert_eq!(y.data[16 + 5], 6.0);
    assert_eq!(y.data[16 + 15], 0.0);
}

#[test]
fn pointwise_pool_and_linear() {
    let x = FeatureMap::new(2, 1, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let conv = ConvWeights {
        weight: Tensor4::new([1, 2, 1, 1], vec![2.0, -1.0]).unwrap(),
        bias: vec![0.5],
        stride: 1,
        groups: 1,
        padding: Padding::Symmetric(0),
        activation: Activation::None,
    };
    let y = conv2d(&x, &conv).unwrap();
    assert_eq!(y.data, vec![2.0 - 3.0 + 0.5, 4.0 - 4.0 + 0.5]);
    assert_eq!(global_average_pool(&x), vec![1.5, 3.5]);
    let l = Linear {
        weight: vec![1.0, 2.0, 0.0, -1.0],
        bias: vec![0.0, 1.0],
        in_features: 2,
        out_features: 2,
    };
    assert_eq!(linear(&[1.5, 3.5], &l).unwrap(), vec![8.5, -2.5]);
    assert!(linear(&[1.0], &l).is_err());
}

#[test]
fn whole_network_is_consistent_across_formats_and_paddings() {
    let dict = random_torchvision_state_dict(0.35, 6, 8);
    let w = import_state_dict(&dict, Path::new("random"))
        .unwrap()
        .weights;
    let side = 32;
    let input: Vec<f32> = (0..3 * side * side)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let t = reference::trace(&w, &input, side, side).unwrap();
    assert_eq!((t.stem.channels, t.stem.height), (16, 16));
    assert_eq!(t.blocks.len(), 17);
    assert_eq!((t.features.height, t.features.width), (1, 1));
    assert_eq!(t.pooled.len(), 1280);
    assert_eq!(t.logits.len(), 6);
    assert!(t.logits.iter().all(|v| v.is_finite()));
    assert_eq!(reference::forward(&w, &input).unwrap(), t.logits);

    // TF SAME and symmetric padding differ only through the stride-2 convolutions.
    let mut same = w.clone();
    for c in [&mut same.stem]
        .into_iter()
        .chain(same.blocks.iter_mut().map(|b| &mut b.depthwise))
    {
        c.padding = Padding::TfSame;
    }
    let same_logits = reference::forward(&same, &input).unwrap();
    assert_ne!(same_logits, t.logits);
    // ... and a float TFLite file of the same weights is exactly the TF SAME network.
    let bytes = tflite_bytes(&w, side, WeightQuant::Float32).unwrap();
    let from_tflite = parse_tflite(&bytes, Path::new("mem.tflite")).unwrap();
    assert_eq!(
        reference::forward(&from_tflite, &input).unwrap(),
        same_logits
    );

    // A residual block whose projection is zero passes its input through.
    let mut ident = w.clone();
    let b = &mut ident.blocks[2];
    assert!(b.has_residual());
    b.project.weight.data.fill(0.0);
    b.project.bias.fill(0.0);
    let ti = reference::trace(&ident, &input, side, side).unwrap();
    assert_eq!(ti.blocks[2], ti.blocks[1]);

    assert!(reference::forward(&w, &input[1..]).is_err());
}

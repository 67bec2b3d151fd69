//! Tiny burn models shaped like Sleeve's real ones (conv + BN + ReLU6 + depthwise +
//! residual + pool + linear; and a two-output detector head). Used by the tests, and by
//! `sleeve export demo` to try the export pipeline without trained checkpoints.

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use sleeve_shared::detect::AnchorConfig;
use sleeve_shared::rng::SplitMix64;

/// ReLU6 written as `relu(x) − relu(x − 6)`, which burn-onnx can export (it has no Clamp).
pub fn relu6(x: Tensor<4>) -> Tensor<4> {
    relu(x.clone()) - relu(x.sub_scalar(6.0))
}

fn vec1(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Conv + BN (+ ReLU6) unit with non-trivial BN statistics.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
    act: bool,
}

impl ConvBn {
    /// A `k×k` conv (`groups` for depthwise) followed by BN, optionally ReLU6.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        groups: usize,
        act: bool,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Self {
        let p = k / 2;
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(device);
        let mut bn = BatchNormConfig::new(cout).init(device);
        bn.gamma = Param::from_tensor(vec1(rng.uniform(cout, 0.5, 1.5), device));
        bn.beta = Param::from_tensor(vec1(rng.uniform(cout, -0.5, 0.5), device));
        bn.running_mean = RunningState::new(vec1(rng.uniform(cout, -0.3, 0.3), device));
        bn.running_var = RunningState::new(vec1(rng.uniform(cout, 0.5, 2.0), device));
        Self { conv, bn, act }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.bn.forward(self.conv.forward(x));
        if self.act { relu6(y) } else { y }
    }
}

/// A MobileNetV2-flavoured classifier with a few thousand parameters.
#[derive(Module, Debug)]
pub struct TinyClassifier {
    stem: ConvBn,
    dw: ConvBn,
    pw: ConvBn,
    expand: ConvBn,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl TinyClassifier {
    /// A randomly initialised classifier for `classes` classes (deterministic in `seed`).
    pub fn new(classes: usize, seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64::new(seed);
        let r = &mut rng;
        Self {
            stem: ConvBn::new(3, 8, 3, 2, 1, true, r, device),
            dw: ConvBn::new(8, 8, 3, 1, 8, true, r, device),
            pw: ConvBn::new(8, 8, 1, 1, 1, false, r, device),
            expand: ConvBn::new(8, 16, 1, 1, 1, true, r, device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(16, classes).init(device),
        }
    }

    /// Image `[1, 3, S, S]` → logits `[1, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.stem.forward(x);
        let x = x.clone() + self.pw.forward(self.dw.forward(x));
        let x = self.pool.forward(self.expand.forward(x));
        let [n, c, _, _] = x.dims();
        self.head.forward(x.reshape([n, c]))
    }
}

/// A two-level SSD-flavoured detector: box deltas `[1, A, 4]` and logits `[1, A]`.
#[derive(Module, Debug)]
pub struct TinyDetector {
    stem: ConvBn,
    down: ConvBn,
    box1: Conv2d,
    cls1: Conv2d,
    box2: Conv2d,
    cls2: Conv2d,
    anchors_per_cell: usize,
}

impl TinyDetector {
    /// A randomly initialised detector with `k` anchors per cell.
    pub fn new(k: usize, seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64::new(seed);
        let head = |cin, cout| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            stem: ConvBn::new(3, 8, 3, 2, 1, true, &mut rng, device),
            down: ConvBn::new(8, 8, 3, 2, 1, true, &mut rng, device),
            box1: head(8, 4 * k),
            cls1: head(8, k),
            box2: head(8, 4 * k),
            cls2: head(8, k),
            anchors_per_cell: k,
        }
    }

    /// Number of anchors for an `s×s` input.
    pub fn num_anchors(&self, s: usize) -> usize {
        let a = s.div_ceil(2);
        let b = a.div_ceil(2);
        self.anchors_per_cell * (a * a + b * b)
    }

    /// Image `[1, 3, S, S]` → (box deltas `[1, A, 4]`, logits `[1, A]`).
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<3>, Tensor<2>) {
        let f1 = self.stem.forward(x);
        let f2 = self.down.forward(f1.clone());
        let flat_boxes = |t: Tensor<4>| {
            let [n, c, h, w] = t.dims();
            t.reshape([n, c / 4 * h * w, 4])
        };
        let flat_logits = |t: Tensor<4>| {
            let [n, c, h, w] = t.dims();
            t.reshape([n, c * h * w])
        };
        let boxes = Tensor::cat(
            vec![
                flat_boxes(self.box1.forward(f1.clone())),
                flat_boxes(self.box2.forward(f2.clone())),
            ],
            1,
        );
        let logits = Tensor::cat(
            vec![
                flat_logits(self.cls1.forward(f1)),
                flat_logits(self.cls2.forward(f2)),
            ],
            1,
        );
        (boxes, logits)
    }
}

/// The anchor layout matching [`TinyDetector`]'s two maps (stride 2 and 4, two
/// anchors per cell).
pub fn tiny_anchor_config(size: usize) -> AnchorConfig {
    let a = size.div_ceil(2) as u32;
    let b = (a as usize).div_ceil(2) as u32;
    AnchorConfig {
        feature_maps: vec![
            sleeve_shared::detect::FeatureMap {
                size: a,
                scales: vec![0.1],
            },
            sleeve_shared::detect::FeatureMap {
                size: b,
                scales: vec![0.3],
            },
        ],
        aspect_ratios: vec![1.0, 1.6],
        variances: [0.1, 0.2],
    }
}

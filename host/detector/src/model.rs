//! The SSD-Lite network: a MobileNetV2 backbone (shared with the genre classifier) and
//! depthwise-separable prediction heads on its stride-16 and stride-32 maps.
//!
//! Output layout: box deltas `[N, A, 4]` and logits `[N, A]` with anchors in exactly the
//! order of [`AnchorConfig::anchors`] (map, row, column, scale, ratio). Each 1×1 conv
//! emits channels ordered `(scale, ratio[, coordinate])`; [`cell_major`] turns
//! `[N, C, H, W]` into `[N, H·W, C]` with slices, reshapes and one concat — no
//! transpose/permute, so the exported ONNX graph needs only Slice, Reshape and Concat.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sleeve_nn::mobilenet::{MobileNetV2, MobileNetV2Config, Stride16Tap, relu6};
use sleeve_shared::detect::{AnchorConfig, FeatureMap};

/// Prior probability of "label" that the logit bias starts at (RetinaNet's trick: keeps
/// the thousands of easy negatives from swamping the first steps).
pub const PRIOR_PROBABILITY: f32 = 0.01;

/// The anchor layout for an input of `input_size` pixels: Sleeve's SSD-Lite scales and
/// ratios ([`AnchorConfig::ssdlite_320`]) on maps of `input/16` and `input/32` cells.
/// Scales are fractions of the input, so they carry over to any size.
pub fn anchor_config_for(input_size: u32) -> AnchorConfig {
    let base = AnchorConfig::ssdlite_320();
    let sizes = [input_size / 16, input_size / 32];
    AnchorConfig {
        feature_maps: base
            .feature_maps
            .iter()
            .zip(sizes)
            .map(|(m, size)| FeatureMap {
                size,
                scales: m.scales.clone(),
            })
            .collect(),
        ..base
    }
}

/// Configuration of the prediction heads.
#[derive(Config, Debug)]
pub struct SsdHeadsConfig {
    /// Channels of the stride-16 map.
    pub c16_channels: usize,
    /// Channels of the stride-32 map.
    pub c32_channels: usize,
    /// Anchors per cell on the stride-16 map.
    pub anchors16: usize,
    /// Anchors per cell on the stride-32 map.
    pub anchors32: usize,
    /// BatchNorm epsilon of the depthwise stage.
    #[config(default = 1e-3)]
    pub bn_epsilon: f64,
    /// Hidden width of each head: 0 for a single depthwise-separable layer, otherwise a 1×1
    /// expansion/reduction to this many channels (BatchNorm, ReLU6) first — a non-linear
    /// head that helps when the backbone is frozen.
    #[config(default = 0)]
    pub hidden: usize,
}

impl SsdHeadsConfig {
    /// Heads for `anchors` on top of `backbone`'s pyramid (single-layer; see `with_hidden`).
    pub fn for_backbone(backbone: &MobileNetV2, anchors: &AnchorConfig) -> Self {
        Self::for_backbone_at(backbone, anchors, Stride16Tap::Projection)
    }

    /// Heads for `anchors` on `backbone`'s pyramid with the stride-16 map taken at `tap`.
    pub fn for_backbone_at(
        backbone: &MobileNetV2,
        anchors: &AnchorConfig,
        tap: Stride16Tap,
    ) -> Self {
        let per_cell: Vec<usize> = anchors
            .feature_maps
            .iter()
            .map(|m| anchors.anchors_per_cell(m))
            .collect();
        Self::new(
            backbone.stride16_channels_at(tap),
            backbone.last_channels(),
            per_cell.first().copied().unwrap_or(0),
            per_cell.get(1).copied().unwrap_or(0),
        )
    }

    /// Randomly initialised heads; logit biases start at [`PRIOR_PROBABILITY`].
    pub fn init(&self, device: &Device) -> SsdHeads {
        let head = |cin, cout, logits| {
            PredictionHead::with_hidden(cin, self.hidden, cout, logits, self.bn_epsilon, device)
        };
        SsdHeads {
            box16: head(self.c16_channels, 4 * self.anchors16, false),
            cls16: head(self.c16_channels, self.anchors16, true),
            box32: head(self.c32_channels, 4 * self.anchors32, false),
            cls32: head(self.c32_channels, self.anchors32, true),
        }
    }
}

/// [optional 1×1 conv → BatchNorm → ReLU6 →] 3×3 depthwise conv → BatchNorm → ReLU6 → 1×1
/// conv (with bias).
#[derive(Module, Debug)]
pub struct PredictionHead {
    /// Optional 1×1 conv to the hidden width (bias-free) and its BatchNorm.
    pub expand: Option<Conv2d>,
    /// BatchNorm after `expand`.
    pub expand_bn: Option<BatchNorm>,
    /// Depthwise 3×3 conv (bias-free).
    pub depthwise: Conv2d,
    /// BatchNorm after the depthwise conv.
    pub bn: BatchNorm,
    /// Pointwise conv to the outputs.
    pub pointwise: Conv2d,
}

impl PredictionHead {
    /// A head from `cin` channels to `cout` outputs per cell; `logits` sets the bias prior.
    pub fn new(cin: usize, cout: usize, logits: bool, bn_epsilon: f64, device: &Device) -> Self {
        Self::with_hidden(cin, 0, cout, logits, bn_epsilon, device)
    }

    /// Like [`new`](Self::new) with a 1×1 layer to `hidden` channels first (none when 0).
    pub fn with_hidden(
        cin: usize,
        hidden: usize,
        cout: usize,
        logits: bool,
        bn_epsilon: f64,
        device: &Device,
    ) -> Self {
        let (expand, expand_bn, cin) = if hidden > 0 {
            (
                Some(
                    Conv2dConfig::new([cin, hidden], [1, 1])
                        .with_bias(false)
                        .init(device),
                ),
                Some(
                    BatchNormConfig::new(hidden)
                        .with_epsilon(bn_epsilon)
                        .init(device),
                ),
                hidden,
            )
        } else {
            (None, None, cin)
        };
        let depthwise = Conv2dConfig::new([cin, cin], [3, 3])
            .with_groups(cin)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(device);
        let bn = BatchNormConfig::new(cin)
            .with_epsilon(bn_epsilon)
            .init(device);
        let mut pointwise = Conv2dConfig::new([cin, cout], [1, 1])
            .with_initializer(burn::nn::Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            })
            .init(device);
        let bias = if logits {
            -((1.0 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY).ln()
        } else {
            0.0
        };
        pointwise.bias = Some(Param::from_tensor(Tensor::full([cout], bias, device)));
        Self {
            expand,
            expand_bn,
            depthwise,
            bn,
            pointwise,
        }
    }

    /// `[N, cin, H, W]` → `[N, cout, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match (&self.expand, &self.expand_bn) {
            (Some(c), Some(bn)) => relu6(bn.forward(c.forward(x))),
            _ => x,
        };
        self.pointwise
            .forward(relu6(self.bn.forward(self.depthwise.forward(x))))
    }
}

/// `[N, C, H, W]` → `[N, H·W, C]` (row, column, channel) without a transpose: each channel
/// is sliced out as `[N, H·W, 1]` and the slices are concatenated on the last axis.
pub fn cell_major(t: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = t.dims();
    let flat = t.reshape([n, c, h * w]);
    let columns: Vec<Tensor<3>> = (0..c)
        .map(|i| flat.clone().narrow(1, i, 1).reshape([n, h * w, 1]))
        .collect();
    Tensor::cat(columns, 2)
}

/// The four prediction heads (boxes and logits on each of the two maps).
#[derive(Module, Debug)]
pub struct SsdHeads {
    /// Box deltas on the stride-16 map.
    pub box16: PredictionHead,
    /// Logits on the stride-16 map.
    pub cls16: PredictionHead,
    /// Box deltas on the stride-32 map.
    pub box32: PredictionHead,
    /// Logits on the stride-32 map.
    pub cls32: PredictionHead,
}

impl SsdHeads {
    /// Pyramid maps → (box deltas `[N, A, 4]`, logits `[N, A]`) in anchor order.
    pub fn forward(&self, c16: Tensor<4>, c32: Tensor<4>) -> (Tensor<3>, Tensor<2>) {
        let boxes = |t: Tensor<4>| {
            let m = cell_major(t);
            let [n, cells, c] = m.dims();
            m.reshape([n, cells * c / 4, 4])
        };
        let logits = |t: Tensor<4>| {
            let m = cell_major(t);
            let [n, cells, c] = m.dims();
            m.reshape([n, cells * c])
        };
        let b = Tensor::cat(
            vec![
                boxes(self.box16.forward(c16.clone())),
                boxes(self.box32.forward(c32.clone())),
            ],
            1,
        );
        let l = Tensor::cat(
            vec![
                logits(self.cls16.forward(c16)),
                logits(self.cls32.forward(c32)),
            ],
            1,
        );
        (b, l)
    }
}

/// Everything needed to rebuild an [`SsdLite`] before loading its weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SsdLiteConfig {
    /// Backbone configuration (its `num_classes` is unused by the detector).
    pub backbone: MobileNetV2Config,
    /// Anchor layout; its maps must be `input/16` and `input/32`.
    pub anchors: AnchorConfig,
    /// Side of the square input in pixels.
    pub input_size: u32,
    /// Where the stride-16 map is read (older checkpoints: the projection).
    #[serde(default)]
    pub tap16: Stride16Tap,
}

impl SsdLiteConfig {
    /// Checks the pieces fit together.
    pub fn validate(&self) -> Result<(), String> {
        self.backbone.validate()?;
        if self.input_size < 32 || !self.input_size.is_multiple_of(32) {
            return Err(format!(
                "input size {} is not a positive multiple of 32",
                self.input_size
            ));
        }
        let want = [self.input_size / 16, self.input_size / 32];
        let got: Vec<u32> = self.anchors.feature_maps.iter().map(|m| m.size).collect();
        if got != want {
            return Err(format!(
                "anchor maps {got:?} do not match input {} (need {want:?})",
                self.input_size
            ));
        }
        Ok(())
    }

    /// A randomly initialised detector with single-layer heads.
    ///
    /// # Panics
    /// When [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> SsdLite {
        self.init_with_heads(0, device)
    }

    /// A randomly initialised detector whose heads have `head_hidden` hidden channels
    /// (0 = single layer; see [`SsdHeadsConfig::hidden`]).
    ///
    /// # Panics
    /// When [`validate`](Self::validate) fails.
    pub fn init_with_heads(&self, head_hidden: usize, device: &Device) -> SsdLite {
        if let Err(e) = self.validate() {
            panic!("invalid SsdLiteConfig: {e}");
        }
        SsdLite::with_heads(
            self.backbone.init(device),
            &self.anchors,
            HeadLayout {
                hidden: head_hidden,
                tap16: self.tap16,
            },
            device,
        )
    }
}

/// The SSD-Lite Parental Advisory detector.
#[derive(Module, Debug)]
pub struct SsdLite {
    /// MobileNetV2 feature extractor.
    pub backbone: MobileNetV2,
    /// Prediction heads.
    pub heads: SsdHeads,
    /// Where the stride-16 map is read.
    #[module(skip)]
    pub tap16: Stride16Tap,
}

/// How the heads sit on the backbone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadLayout {
    /// Hidden width of each head (0 = single depthwise-separable layer).
    pub hidden: usize,
    /// Where the stride-16 map is read.
    pub tap16: Stride16Tap,
}

impl SsdLite {
    /// Fresh heads on an existing (e.g. ImageNet-pretrained) backbone.
    pub fn from_backbone(backbone: MobileNetV2, anchors: &AnchorConfig, device: &Device) -> Self {
        Self::with_heads(backbone, anchors, HeadLayout::default(), device)
    }

    /// Fresh heads laid out as `layout` on `backbone`.
    pub fn with_heads(
        backbone: MobileNetV2,
        anchors: &AnchorConfig,
        layout: HeadLayout,
        device: &Device,
    ) -> Self {
        let heads = SsdHeadsConfig::for_backbone_at(&backbone, anchors, layout.tap16)
            .with_hidden(layout.hidden)
            .init(device);
        Self {
            backbone,
            heads,
            tap16: layout.tap16,
        }
    }

    /// Images `[N, 3, S, S]` (preprocessed by `sleeve_shared::preprocess`) → (box deltas
    /// `[N, A, 4]`, logits `[N, A]`), anchors in [`AnchorConfig::anchors`] order.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<3>, Tensor<2>) {
        let (c16, c32) = self.backbone.pyramid_at(x, self.tap16);
        self.heads.forward(c16, c32)
    }

    /// [`forward`](Self::forward) from the backbone's activation entering block
    /// `first_block` (at most [`MobileNetV2::first_stride32_block`]): fine-tuning the last
    /// blocks on cached activations.
    pub fn forward_from(&self, x: Tensor<4>, first_block: usize) -> (Tensor<3>, Tensor<2>) {
        let (c16, c32) = self.backbone.pyramid_from(x, first_block, self.tap16);
        self.heads.forward(c16, c32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sleeve_shared::detect::{DecodeParams, decode_detections};

    fn tiny(device: &Device) -> (SsdLite, AnchorConfig) {
        let anchors = anchor_config_for(64);
        let cfg = SsdLiteConfig {
            backbone: MobileNetV2Config::new(1).with_width_mult(0.25),
            anchors: anchors.clone(),
            input_size: 64,
            tap16: Default::default(),
        };
        (cfg.init(device), anchors)
    }

    #[test]
    fn anchor_config_scales_maps_with_input() {
        assert_eq!(anchor_config_for(320), AnchorConfig::ssdlite_320());
        let a = anchor_config_for(256);
        assert_eq!(a.feature_maps[0].size, 16);
        assert_eq!(a.feature_maps[1].size, 8);
        assert_eq!(a.num_anchors(), (256 + 64) * 6);
    }

    #[test]
    fn output_shapes_match_anchor_count() {
        let device = Device::flex();
        device.seed(3);
        let (model, anchors) = tiny(&device);
        let (b, l) = model.forward(Tensor::zeros([2, 3, 64, 64], &device));
        assert_eq!(b.dims(), [2, anchors.num_anchors(), 4]);
        assert_eq!(l.dims(), [2, anchors.num_anchors()]);
        // The prior bias makes every initial score ≈ 1 %.
        let l = l.into_data().try_to_vec::<f32>().unwrap();
        assert!(l.iter().all(|v| (v + 4.6).abs() < 0.5), "{:?}", &l[..4]);
    }

    /// Continuing from a cached block input gives the full forward pass, for both taps and
    /// every allowed first block.
    #[test]
    fn forward_from_cached_activation_matches_forward() {
        let device = Device::flex();
        device.seed(5);
        for tap in [Stride16Tap::Projection, Stride16Tap::Expansion] {
            let cfg = SsdLiteConfig {
                backbone: MobileNetV2Config::new(1).with_width_mult(0.25),
                anchors: anchor_config_for(64),
                input_size: 64,
                tap16: tap,
            };
            let model = cfg.init_with_heads(8, &device);
            let x = Tensor::<4>::random(
                [2, 3, 64, 64],
                burn::tensor::Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let (b, l) = model.forward(x.clone());
            let want = [b.into_data(), l.into_data()];
            for first in [0, 7, model.backbone.first_stride32_block()] {
                let cached = model.backbone.forward_prefix(x.clone(), first);
                let (b2, l2) = model.forward_from(cached, first);
                for (w, got) in want.iter().zip([b2.into_data(), l2.into_data()]) {
                    w.assert_approx_eq::<f32>(&got, burn::tensor::Tolerance::absolute(1e-5));
                }
            }
        }
    }

    #[test]
    fn hidden_heads_keep_output_layout() {
        let device = Device::flex();
        device.seed(4);
        let anchors = anchor_config_for(64);
        let cfg = SsdLiteConfig {
            backbone: MobileNetV2Config::new(1).with_width_mult(0.25),
            anchors: anchors.clone(),
            input_size: 64,
            tap16: Default::default(),
        };
        let model = cfg.init_with_heads(16, &device);
        assert!(model.heads.cls16.expand.is_some());
        assert!(cfg.init(&device).heads.cls16.expand.is_none());
        let (b, l) = model.forward(Tensor::zeros([1, 3, 64, 64], &device));
        assert_eq!(b.dims(), [1, anchors.num_anchors(), 4]);
        assert_eq!(l.dims(), [1, anchors.num_anchors()]);
    }

    #[test]
    fn cell_major_reorders_channels_last() {
        let device = Device::flex();
        // [1, 2, 1, 3]: channel 0 = 0,1,2 ; channel 1 = 10,11,12
        let t = Tensor::<1>::from_floats([0.0, 1.0, 2.0, 10.0, 11.0, 12.0], &device)
            .reshape([1, 2, 1, 3]);
        let m = cell_major(t).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(m, vec![0.0, 10.0, 1.0, 11.0, 2.0, 12.0]);
    }

    /// A logit planted in one conv output channel at one cell decodes to exactly the anchor
    /// [`AnchorConfig::anchors`] puts at that (map, row, column, scale, ratio).
    #[test]
    fn planted_logit_decodes_to_its_anchor() {
        let device = Device::flex();
        let anchors = anchor_config_for(64); // maps 4×4 and 2×2, 6 anchors per cell
        let all = anchors.anchors();
        let k = 6;
        for (map, row, col, ch) in [(0usize, 1usize, 2usize, 4usize), (1, 1, 0, 3), (0, 3, 3, 0)] {
            let size = anchors.feature_maps[map].size as usize;
            let mut cls = [vec![-10.0f32; k * 16], vec![-10.0f32; k * 4]];
            cls[map][ch * size * size + row * size + col] = 5.0;
            let t16 = Tensor::<1>::from_floats(cls[0].as_slice(), &device).reshape([1, k, 4, 4]);
            let t32 = Tensor::<1>::from_floats(cls[1].as_slice(), &device).reshape([1, k, 2, 2]);
            let logits = Tensor::cat(
                vec![
                    cell_major(t16).reshape([1, 16 * k]),
                    cell_major(t32).reshape([1, 4 * k]),
                ],
                1,
            )
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
            let deltas = vec![0.0f32; 4 * all.len()];
            let dets = decode_detections(
                &all,
                anchors.variances,
                &deltas,
                &logits,
                &DecodeParams::default(),
            )
            .unwrap();
            assert_eq!(dets.len(), 1);
            let offset = if map == 0 { 0 } else { 16 * k };
            let want = all[offset + (row * size + col) * k + ch];
            let step = 1.0 / size as f32;
            assert!((want.cx - (col as f32 + 0.5) * step).abs() < 1e-6);
            assert!((want.cy - (row as f32 + 0.5) * step).abs() < 1e-6);
            let b = want.to_box().clipped();
            assert!((dets[0].bbox.x0 - b.x0).abs() < 1e-6 && (dets[0].bbox.y1 - b.y1).abs() < 1e-6);
        }
    }

    /// Box channels `(anchor k, coordinate c)` land at `boxes[anchor, c]`.
    #[test]
    fn box_channels_follow_anchor_then_coordinate() {
        let device = Device::flex();
        let k = 2;
        // [1, 4k, 1, 2]: value = 100·channel + cell
        let vals: Vec<f32> = (0..4 * k)
            .flat_map(|c| (0..2).map(move |cell| (100 * c + cell) as f32))
            .collect();
        let t = Tensor::<1>::from_floats(vals.as_slice(), &device).reshape([1, 4 * k, 1, 2]);
        let m = cell_major(t)
            .reshape([1, 2 * k, 4])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // anchor index = cell·k + kk ; coordinate c is channel kk·4 + c
        for cell in 0..2 {
            for kk in 0..k {
                for c in 0..4 {
                    assert_eq!(
                        m[(cell * k + kk) * 4 + c],
                        (100 * (kk * 4 + c) + cell) as f32
                    );
                }
            }
        }
    }
}

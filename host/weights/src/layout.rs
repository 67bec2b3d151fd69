//! The framework-neutral MobileNetV2 weight layout every reader produces.
//!
//! # Conventions (read these before loading the weights into a framework)
//!
//! * **Tensors are `f32`, row-major.** Convolution weights are **OIHW**
//!   (`[out_channels, in_channels / groups, kh, kw]`); a depthwise convolution over `C`
//!   channels is `[C, 1, kh, kw]` with `groups = C`. Linear weights are `[out, in]`
//!   (PyTorch / burn-import convention; `y = W·x + b`).
//! * **Batch norm is already folded** into each convolution's weight and bias; there are no
//!   BN layers left. Every convolution has a bias.
//! * **Activations** after a convolution are given by [`ConvWeights::activation`]: ReLU6 after
//!   the stem, every expansion and every depthwise convolution, and after the last 1×1
//!   convolution; none after the projection (linear bottleneck).
//! * **Residual**: a block adds its input to its output exactly when
//!   [`InvertedResidual::has_residual`] (stride 1 and equal in/out channels).
//! * **Head**: global average pooling over the whole feature map, then
//!   [`MobileNetV2Weights::classifier`] (no dropout at inference).
//! * **Input**: one RGB image, NCHW, normalised as [`MobileNetV2Weights::input_norm`] says
//!   (Coral TFLite: `[-1, 1]`, i.e. `PreprocessConfig::signed_unit`; torchvision: ImageNet
//!   mean/std, i.e. `PreprocessConfig::imagenet`).
//! * **Padding** is explicit per convolution ([`Padding`]): TFLite files use TensorFlow
//!   `SAME` padding, which for the stride-2 3×3 convolutions on even-sized inputs pads
//!   **0 before and 1 after** (asymmetric); torchvision pads 1 on every side. Use
//!   [`Padding::amounts`] to get the exact (before, after) pixels for a given input size.
//! * **Classes**: Coral's TFLite classifier has 1001 outputs, index 0 being "background"
//!   (`imagenet_labels.txt` line 1); torchvision has 1000 (no background). See
//!   [`MobileNetV2Weights::background_class`].

use sleeve_shared::PreprocessConfig;

use crate::error::{Result, WeightsError};

/// A dense 4-D `f32` tensor, row-major (last index fastest).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor4 {
    /// The four dimensions (OIHW for convolution weights).
    pub shape: [usize; 4],
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

impl Tensor4 {
    /// Wraps `data`; fails when its length does not match `shape`.
    pub fn new(shape: [usize; 4], data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(WeightsError::Invalid(format!(
                "tensor of shape {shape:?} needs {n} values, got {}",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: [usize; 4]) -> Self {
        Self {
            shape,
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// Flat index of `[a, b, c, d]`.
    pub fn index(&self, a: usize, b: usize, c: usize, d: usize) -> usize {
        let [_, sb, sc, sd] = self.shape;
        ((a * sb + b) * sc + c) * sd + d
    }

    /// The value at `[a, b, c, d]` (panics when out of range, like slice indexing).
    pub fn at(&self, a: usize, b: usize, c: usize, d: usize) -> f32 {
        self.data[self.index(a, b, c, d)]
    }
}

/// How a convolution pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// TensorFlow `SAME`: output size `ceil(in / stride)`, total padding
    /// `max((out - 1)·stride + k - in, 0)`, of which `total / 2` (rounded down) goes
    /// before (top/left) and the rest after (bottom/right). For the 3×3 stride-2
    /// convolutions of MobileNetV2 on even sizes that is 0 before, 1 after; for stride 1
    /// it is 1 and 1; for 1×1 convolutions it is 0.
    TfSame,
    /// The same number of pixels on every side (PyTorch `padding=p`); output size
    /// `(in + 2p - k) / stride + 1`.
    Symmetric(usize),
}

impl Padding {
    /// `(before, after)` padding in pixels along one axis of size `input`.
    pub fn amounts(&self, input: usize, kernel: usize, stride: usize) -> (usize, usize) {
        match *self {
            Padding::TfSame => {
                let out = input.div_ceil(stride.max(1));
                let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(input);
                (total / 2, total - total / 2)
            }
            Padding::Symmetric(p) => (p, p),
        }
    }

    /// Output size along one axis of size `input` (0 when the kernel does not fit).
    pub fn output_size(&self, input: usize, kernel: usize, stride: usize) -> usize {
        let (before, after) = self.amounts(input, kernel, stride);
        let padded = input + before + after;
        if padded < kernel || stride == 0 {
            0
        } else {
            (padded - kernel) / stride + 1
        }
    }

    /// The symmetric padding that gives the same result for this input size, if any
    /// (`Some(p)` when before == after).
    pub fn symmetric_equivalent(
        &self,
        input: usize,
        kernel: usize,
        stride: usize,
    ) -> Option<usize> {
        let (before, after) = self.amounts(input, kernel, stride);
        (before == after).then_some(before)
    }
}

/// The activation applied right after a convolution (after its bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Identity (the projection convolutions).
    None,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

impl Activation {
    /// Applies the activation to one value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu6 => x.clamp(0.0, 6.0),
        }
    }
}

/// One convolution with batch norm folded in.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvWeights {
    /// OIHW weight; depthwise: `[C, 1, kh, kw]`.
    pub weight: Tensor4,
    /// One bias per output channel (BN folded).
    pub bias: Vec<f32>,
    /// Stride, same along height and width.
    pub stride: usize,
    /// Groups: 1 for a full convolution, `C` for a depthwise one.
    pub groups: usize,
    /// Padding rule (see [`Padding`]).
    pub padding: Padding,
    /// Activation after the convolution.
    pub activation: Activation,
}

impl ConvWeights {
    /// Output channels (`O`).
    pub fn out_channels(&self) -> usize {
        self.weight.shape[0]
    }

    /// Input channels (`I · groups`).
    pub fn in_channels(&self) -> usize {
        self.weight.shape[1] * self.groups
    }

    /// Kernel size `(kh, kw)`.
    pub fn kernel(&self) -> (usize, usize) {
        (self.weight.shape[2], self.weight.shape[3])
    }

    /// Whether this is a depthwise convolution (`groups == C_in == C_out`).
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.weight.shape[1] == 1 && self.groups == self.out_channels()
    }

    /// Number of parameters (weights and biases).
    pub fn parameter_count(&self) -> usize {
        self.weight.data.len() + self.bias.len()
    }

    fn check(&self, what: &str) -> std::result::Result<(), String> {
        let o = self.out_channels();
        if self.bias.len() != o {
            return Err(format!(
                "{what}: {} biases for {o} output channels",
                self.bias.len()
            ));
        }
        if self.groups == 0 || !o.is_multiple_of(self.groups) || self.stride == 0 {
            return Err(format!(
                "{what}: bad groups {} / stride {} for {o} output channels",
                self.groups, self.stride
            ));
        }
        if self.weight.data.len() != self.weight.shape.iter().product::<usize>() {
            return Err(format!("{what}: weight data does not match its shape"));
        }
        if self
            .weight
            .data
            .iter()
            .chain(&self.bias)
            .any(|v| !v.is_finite())
        {
            return Err(format!("{what}: non-finite weight or bias"));
        }
        Ok(())
    }
}

/// A fully connected layer, `y = W·x + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// `[out_features, in_features]`, row-major.
    pub weight: Vec<f32>,
    /// `out_features` biases.
    pub bias: Vec<f32>,
    /// Inputs.
    pub in_features: usize,
    /// Outputs.
    pub out_features: usize,
}

/// One MobileNetV2 inverted-residual block: optional 1×1 expansion (ReLU6), 3×3 depthwise
/// (ReLU6, carries the stride), 1×1 linear projection, plus the residual when
/// [`has_residual`](Self::has_residual).
#[derive(Clone, Debug, PartialEq)]
pub struct InvertedResidual {
    /// 1×1 expansion to `hidden` channels; `None` for expansion ratio 1 (the first block).
    pub expand: Option<ConvWeights>,
    /// 3×3 depthwise convolution over `hidden` channels.
    pub depthwise: ConvWeights,
    /// 1×1 projection to the block's output channels, no activation.
    pub project: ConvWeights,
}

impl InvertedResidual {
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        match &self.expand {
            Some(e) => e.in_channels(),
            None => self.depthwise.in_channels(),
        }
    }

    /// Hidden (expanded) channels.
    pub fn hidden_channels(&self) -> usize {
        self.depthwise.out_channels()
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.project.out_channels()
    }

    /// The block's stride (the depthwise convolution's).
    pub fn stride(&self) -> usize {
        self.depthwise.stride
    }

    /// Whether the block input is added to its output (stride 1, same channels).
    pub fn has_residual(&self) -> bool {
        self.stride() == 1 && self.in_channels() == self.out_channels()
    }
}

/// Input normalisation the weights expect: `x = (pixel / 255 - mean) / std`, per RGB channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputNorm {
    /// Per-channel mean (RGB) in `[0, 1]` pixel units.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
}

impl InputNorm {
    /// `[-1, 1]` inputs (mean 0.5, std 0.5): Coral/TF MobileNetV2.
    pub const SIGNED_UNIT: InputNorm = InputNorm {
        mean: [0.5; 3],
        std: [0.5; 3],
    };

    /// torchvision's ImageNet mean/std.
    pub const IMAGENET: InputNorm = InputNorm {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// The shared preprocessing configuration for this normalisation at `input_size`.
    pub fn preprocess_config(&self, input_size: u32) -> PreprocessConfig {
        PreprocessConfig {
            mean: self.mean,
            std: self.std,
            ..PreprocessConfig::signed_unit(input_size)
        }
    }
}

/// A whole MobileNetV2 (any width multiplier), BN folded, in the layout described in the
/// module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetV2Weights {
    /// 3×3 stride-2 convolution from RGB, ReLU6.
    pub stem: ConvWeights,
    /// The 17 inverted-residual blocks, in order.
    pub blocks: Vec<InvertedResidual>,
    /// 1×1 convolution to the feature width (1280 for width ≤ 1.0), ReLU6.
    pub last: ConvWeights,
    /// Classifier applied to the globally average-pooled features.
    pub classifier: Linear,
    /// `classifier.out_features`: 1001 for Coral TFLite, 1000 for torchvision ImageNet.
    pub num_classes: usize,
    /// Whether output 0 is TF's "background" class, so ImageNet class `k` (0-based, as in
    /// torchvision) is output `k + 1`. True for the Coral TFLite file.
    pub background_class: bool,
    /// The input normalisation the weights were trained with.
    pub input_norm: InputNorm,
    /// Native input side in pixels (224 for both sources here; the network is fully
    /// convolutional, other sizes work).
    pub input_size: usize,
    /// Where the weights came from (file name and format), for logs and manifests.
    pub source: String,
}

/// MobileNetV2's block table: (expansion ratio t, output channels c at width 1.0,
/// repeats n, first stride s).
pub const BLOCK_SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Number of inverted-residual blocks in MobileNetV2.
pub const NUM_BLOCKS: usize = 17;

/// `(expansion ratio, base output channels, stride)` of each of the 17 blocks, in order.
pub fn block_plan() -> Vec<(usize, usize, usize)> {
    BLOCK_SETTINGS
        .iter()
        .flat_map(|&(t, c, n, s)| (0..n).map(move |i| (t, c, if i == 0 { s } else { 1 })))
        .collect()
}

/// torchvision's / TF-slim's `_make_divisible`: round `v` to the nearest multiple of
/// `divisor` (at least `divisor`), never going more than 10 % below `v`.
pub fn make_divisible(v: f32, divisor: usize) -> usize {
    let d = divisor as f32;
    let mut new_v = (((v + d / 2.0) / d).floor() * d).max(d);
    if new_v < 0.9 * v {
        new_v += d;
    }
    new_v as usize
}

/// Channel counts of MobileNetV2 at `width_mult` (torchvision rules):
/// `(stem, [(hidden, out) per block], last)`.
pub fn expected_channels(width_mult: f32) -> (usize, Vec<(usize, usize)>, usize) {
    let stem = make_divisible(32.0 * width_mult, 8);
    let last = make_divisible(1280.0 * width_mult.max(1.0), 8);
    let mut input = stem;
    let mut blocks = Vec::with_capacity(NUM_BLOCKS);
    for (t, c, _) in block_plan() {
        let out = make_divisible(c as f32 * width_mult, 8);
        let hidden = (input as f32 * t as f32).round() as usize;
        blocks.push((hidden, out));
        input = out;
    }
    (stem, blocks, last)
}

impl MobileNetV2Weights {
    /// Width of the pooled feature vector (the last convolution's output channels).
    pub fn feature_dim(&self) -> usize {
        self.last.out_channels()
    }

    /// Every convolution in forward order (stem, blocks' expand/depthwise/project, last).
    pub fn convs(&self) -> Vec<&ConvWeights> {
        let mut v = vec![&self.stem];
        for b in &self.blocks {
            v.extend(b.expand.iter());
            v.push(&b.depthwise);
            v.push(&b.project);
        }
        v.push(&self.last);
        v
    }

    /// Total number of parameters (weights and biases, BN folded).
    pub fn parameter_count(&self) -> usize {
        self.convs()
            .iter()
            .map(|c| c.parameter_count())
            .sum::<usize>()
            + self.classifier.weight.len()
            + self.classifier.bias.len()
    }

    /// The 0-based ImageNet class (torchvision numbering) of output `index`, or `None` for
    /// TF's background output.
    pub fn imagenet_class(&self, index: usize) -> Option<usize> {
        if self.background_class {
            index.checked_sub(1)
        } else {
            Some(index)
        }
    }

    /// One-line description: source, width, parameter count.
    pub fn summary(&self) -> String {
        format!(
            "MobileNetV2 from {}: stem {} ch, {} blocks, features {}, {} classes{}, {} parameters",
            self.source,
            self.stem.out_channels(),
            self.blocks.len(),
            self.feature_dim(),
            self.num_classes,
            if self.background_class {
                " (0 = background)"
            } else {
                ""
            },
            self.parameter_count()
        )
    }

    /// Checks the structure is a MobileNetV2 (any width): stem 3→C stride 2, 17 blocks
    /// whose channels chain, depthwise groups, the stride plan of [`BLOCK_SETTINGS`],
    /// expansion only where t > 1, 1×1 last convolution, classifier shapes, finite values.
    pub fn validate(&self) -> Result<()> {
        self.check_structure()
            .map_err(|m| WeightsError::arch(self.source.clone(), m))
    }

    /// Like [`validate`](Self::validate), and additionally requires the exact channel
    /// counts of MobileNetV2 at `width_mult`.
    pub fn validate_width(&self, width_mult: f32) -> Result<()> {
        self.validate()?;
        let (stem, blocks, last) = expected_channels(width_mult);
        let err = |m: String| Err(WeightsError::arch(self.source.clone(), m));
        if self.stem.out_channels() != stem {
            return err(format!(
                "stem has {} channels, MobileNetV2 {width_mult} has {stem}",
                self.stem.out_channels()
            ));
        }
        for (i, (b, &(hidden, out))) in self.blocks.iter().zip(&blocks).enumerate() {
            if b.hidden_channels() != hidden || b.out_channels() != out {
                return err(format!(
                    "block {i} is {}→{}→{}, MobileNetV2 {width_mult} has hidden {hidden}, out {out}",
                    b.in_channels(),
                    b.hidden_channels(),
                    b.out_channels()
                ));
            }
        }
        if self.last.out_channels() != last {
            return err(format!(
                "last convolution has {} channels, MobileNetV2 {width_mult} has {last}",
                self.last.out_channels()
            ));
        }
        Ok(())
    }

    fn check_structure(&self) -> std::result::Result<(), String> {
        let s = &self.stem;
        s.check("stem")?;
        if s.in_channels() != 3 || s.groups != 1 || s.kernel() != (3, 3) || s.stride != 2 {
            return Err(format!(
                "stem must be a 3×3 stride-2 convolution from 3 channels, got {:?} stride {}",
                s.weight.shape, s.stride
            ));
        }
        if self.blocks.len() != NUM_BLOCKS {
            return Err(format!(
                "{} blocks, expected {NUM_BLOCKS}",
                self.blocks.len()
            ));
        }
        let mut channels = s.out_channels();
        for (i, (b, (t, _, stride))) in self.blocks.iter().zip(block_plan()).enumerate() {
            let what = format!("block {i}");
            if b.in_channels() != channels {
                return Err(format!(
                    "{what} takes {} channels but the previous layer gives {channels}",
                    b.in_channels()
                ));
            }
            match (&b.expand, t) {
                (None, 1) => {}
                (Some(e), t) if t > 1 => {
                    e.check(&format!("{what} expand"))?;
                    if e.kernel() != (1, 1) || e.groups != 1 || e.stride != 1 {
                        return Err(format!(
                            "{what}: expansion must be a 1×1 stride-1 convolution"
                        ));
                    }
                }
                (e, t) => {
                    return Err(format!(
                        "{what}: expansion ratio {t} but expansion convolution {}",
                        if e.is_some() { "present" } else { "missing" }
                    ));
                }
            }
            let dw = &b.depthwise;
            dw.check(&format!("{what} depthwise"))?;
            let hidden = b.expand.as_ref().map_or(channels, |e| e.out_channels());
            if !dw.is_depthwise() || dw.out_channels() != hidden || dw.kernel() != (3, 3) {
                return Err(format!(
                    "{what}: expected a 3×3 depthwise convolution over {hidden} channels, got {:?} groups {}",
                    dw.weight.shape, dw.groups
                ));
            }
            if dw.stride != stride {
                return Err(format!(
                    "{what}: stride {}, MobileNetV2 has {stride}",
                    dw.stride
                ));
            }
            let p = &b.project;
            p.check(&format!("{what} project"))?;
            if p.kernel() != (1, 1) || p.groups != 1 || p.in_channels() != hidden || p.stride != 1 {
                return Err(format!(
                    "{what}: projection must be 1×1 from {hidden} channels, got {:?}",
                    p.weight.shape
                ));
            }
            channels = p.out_channels();
        }
        let l = &self.last;
        l.check("last convolution")?;
        if l.kernel() != (1, 1) || l.groups != 1 || l.in_channels() != channels {
            return Err(format!(
                "last convolution must be 1×1 from {channels} channels, got {:?}",
                l.weight.shape
            ));
        }
        let c = &self.classifier;
        if c.in_features != l.out_channels()
            || c.out_features != self.num_classes
            || c.weight.len() != c.in_features * c.out_features
            || c.bias.len() != c.out_features
        {
            return Err(format!(
                "classifier is {}→{} ({} weights, {} biases), expected {}→{}",
                c.in_features,
                c.out_features,
                c.weight.len(),
                c.bias.len(),
                l.out_channels(),
                self.num_classes
            ));
        }
        if c.weight.iter().chain(&c.bias).any(|v| !v.is_finite()) {
            return Err("classifier has non-finite values".into());
        }
        Ok(())
    }
}

/// Batch-norm parameters of one layer (PyTorch names).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// Scale `γ` (PyTorch `weight`).
    pub gamma: Vec<f32>,
    /// Shift `β` (PyTorch `bias`).
    pub beta: Vec<f32>,
    /// Running mean.
    pub mean: Vec<f32>,
    /// Running variance.
    pub var: Vec<f32>,
    /// Added to the variance (torchvision MobileNetV2: `1e-5`).
    pub eps: f32,
}

/// Folds batch norm into the preceding bias-free convolution:
/// `s[o] = γ[o] / sqrt(var[o] + eps)`, `W'[o, ...] = W[o, ...] · s[o]`,
/// `b'[o] = β[o] - mean[o] · s[o]`. Returns `(W', b')`; fails when the BN vectors do not all
/// have `W.shape[0]` entries or a variance is negative/non-finite.
pub fn fold_batch_norm(weight: &Tensor4, bn: &BatchNorm) -> Result<(Tensor4, Vec<f32>)> {
    let o = weight.shape[0];
    for (name, v) in [
        ("gamma", &bn.gamma),
        ("beta", &bn.beta),
        ("running_mean", &bn.mean),
        ("running_var", &bn.var),
    ] {
        if v.len() != o {
            return Err(WeightsError::Invalid(format!(
                "batch norm {name} has {} entries for {o} output channels",
                v.len()
            )));
        }
    }
    if bn
        .var
        .iter()
        .any(|v| !v.is_finite() || (*v + bn.eps).is_nan() || *v + bn.eps <= 0.0)
    {
        return Err(WeightsError::Invalid(
            "batch norm running_var + eps must be positive and finite".into(),
        ));
    }
    let per_out = weight.data.len() / o.max(1);
    let mut folded = weight.clone();
    let mut bias = Vec::with_capacity(o);
    for c in 0..o {
        let s = bn.gamma[c] / (bn.var[c] + bn.eps).sqrt();
        for w in &mut folded.data[c * per_out..(c + 1) * per_out] {
            *w *= s;
        }
        bias.push(bn.beta[c] - bn.mean[c] * s);
    }
    Ok((folded, bias))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_same_padding_is_asymmetric_for_stride_two_on_even_sizes() {
        assert_eq!(Padding::TfSame.amounts(224, 3, 2), (0, 1));
        assert_eq!(Padding::TfSame.output_size(224, 3, 2), 112);
        assert_eq!(Padding::TfSame.amounts(7, 3, 2), (1, 1));
        assert_eq!(Padding::TfSame.output_size(7, 3, 2), 4);
        assert_eq!(Padding::TfSame.amounts(56, 3, 1), (1, 1));
        assert_eq!(Padding::TfSame.amounts(7, 1, 1), (0, 0));
        assert_eq!(Padding::TfSame.symmetric_equivalent(112, 3, 2), None);
        assert_eq!(Padding::Symmetric(1).output_size(224, 3, 2), 112);
        assert_eq!(Padding::Symmetric(1).output_size(7, 3, 1), 7);
    }

    #[test]
    fn channel_plan_matches_mobilenet_v2() {
        let (stem, blocks, last) = expected_channels(1.0);
        assert_eq!(stem, 32);
        assert_eq!(last, 1280);
        let outs: Vec<usize> = blocks.iter().map(|b| b.1).collect();
        assert_eq!(
            outs,
            [
                16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320
            ]
        );
        assert_eq!(blocks[0].0, 32);
        assert_eq!(blocks[1].0, 96);
        assert_eq!(blocks[16].0, 960);
        let strides: Vec<usize> = block_plan().iter().map(|b| b.2).collect();
        assert_eq!(strides, [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]);
        let (stem, _, last) = expected_channels(0.35);
        assert_eq!((stem, last), (16, 1280));
        assert_eq!(make_divisible(1280.0 * 1.4, 8), 1792);
    }

    #[test]
    fn fold_batch_norm_matches_the_formula() {
        let w = Tensor4::new([2, 1, 1, 2], vec![1.0, 2.0, -3.0, 4.0]).unwrap();
        let bn = BatchNorm {
            gamma: vec![2.0, 0.5],
            beta: vec![0.1, -0.2],
            mean: vec![1.0, 3.0],
            var: vec![3.0, 0.0],
            eps: 1.0,
        };
        let (fw, fb) = fold_batch_norm(&w, &bn).unwrap();
        assert_eq!(fw.data, vec![1.0, 2.0, -1.5, 2.0]);
        assert_eq!(fb, vec![0.1 - 1.0, -0.2 - 1.5]);
        let bad = BatchNorm {
            var: vec![1.0],
            ..bn
        };
        assert!(fold_batch_norm(&w, &bad).is_err());
    }
}

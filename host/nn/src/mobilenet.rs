//! MobileNetV2 (Sandler et al., 2018) in burn: the genre classifier's backbone and the
//! SSD-Lite detector's feature extractor.
//!
//! Layout (torchvision's naming): a 3×3 stride-2 stem, 17 inverted-residual blocks
//! (`1×1 expand → 3×3 depthwise → 1×1 linear projection`, residual when shape allows), a
//! final 1×1 conv to `last_channels`, global average pooling, dropout and a linear head.
//! Every conv is followed by BatchNorm; activations are ReLU6 written as
//! `relu(x) − relu(x − 6)` (exact, and exportable: burn-onnx has no Clamp).
//!
//! burn 0.22 tensors carry their backend in the [`Device`], so the model has no backend
//! type parameter: `Tensor<4>` instead of `Tensor<B, 4>`. Create it on `Device::flex()` for
//! inference and on `Device::flex().autodiff()` for training.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The inverted-residual stages of MobileNetV2: (expansion `t`, output channels `c` at
/// width 1.0, repeats `n`, stride of the first block `s`); the one table, in the weights crate.
pub use sleeve_weights::layout::BLOCK_SETTINGS as STAGES;

/// Output channels of the stem at width 1.0.
pub const STEM_CHANNELS: usize = 32;
/// Output channels of the final 1×1 conv at width ≤ 1.0.
pub const LAST_CHANNELS: usize = 1280;

/// What the linear head of the classifier sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingKind {
    /// Global average of the final 1×1 conv (`last_channels` values): the standard head.
    #[default]
    Pooled,
    /// Style statistics: per-channel spatial mean and standard deviation of three expansion
    /// activations (first block of the stride-8→16 stage, first block of the stride-16→32
    /// stage, last block; 192 + 576 + 960 channels at width 1.0), then the pooled final
    /// conv. Cover genre is more a matter of style than of objects; these statistics carry
    /// colour and texture that the final pooled map averages away.
    Style,
}

/// Which tensor the detector reads at stride 16.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stride16Tap {
    /// Output of the last stride-16 block (the 96·α-channel linear bottleneck).
    #[default]
    Projection,
    /// The 1×1 expansion (after BatchNorm and ReLU6) of the first stride-32 block, still at
    /// stride 16 (576·α channels): SSDLite's choice, richer than the bottleneck.
    Expansion,
}

/// ReLU6 as `relu(x) − relu(x − 6)`: identical to `clamp(x, 0, 6)` and made of ops every
/// ONNX exporter and runtime supports.
pub fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x.clone()) - relu(x.sub_scalar(6.0))
}

/// Rounds `v` to the nearest multiple of `divisor` (at least `divisor`), never going more
/// than 10% below `v` (the rule of the MobileNet reference implementations).
pub fn make_divisible(v: f32, divisor: usize) -> usize {
    let d = divisor as f32;
    let mut new_v = (((v + d / 2.0) / d).floor() * d).max(d) as usize;
    if (new_v as f32) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// Where stride-2 3×3 convs put their padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingMode {
    /// One pixel on every side (PyTorch/torchvision).
    #[default]
    Symmetric,
    /// TensorFlow `SAME` for even input sizes: stride-2 convs pad 0 top/left and 1
    /// bottom/right; stride-1 convs pad 1 everywhere. Needed to reproduce TFLite weights
    /// exactly; use input sizes divisible by 32 so every stride-2 input is even.
    TfSame,
}

impl PaddingMode {
    fn conv_padding(self, kernel: usize, stride: usize) -> PaddingConfig2d {
        let p = kernel / 2;
        match (self, stride) {
            (_, 1) | (Self::Symmetric, _) => PaddingConfig2d::Explicit(p, p, p, p),
            (Self::TfSame, _) => {
                // total padding k − s for even inputs, the extra pixel after.
                let total = kernel.saturating_sub(stride);
                let before = total / 2;
                let after = total - before;
                PaddingConfig2d::Explicit(before, before, after, after)
            }
        }
    }
}

/// Configuration of a [`MobileNetV2`].
#[derive(Config, Debug)]
pub struct MobileNetV2Config {
    /// Number of output classes of the linear head.
    pub num_classes: usize,
    /// Width multiplier α: every layer's channels are scaled by α and rounded to a multiple
    /// of 8 (the last conv is never made narrower than 1280).
    #[config(default = 1.0)]
    pub width_mult: f32,
    /// Dropout probability before the linear head (training only).
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Padding convention of stride-2 convs (TF `SAME` for TFLite weights).
    #[config(default = "PaddingMode::Symmetric")]
    pub padding: PaddingMode,
    /// BatchNorm epsilon (torchvision 1e-5, TF 1e-3).
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
    /// What the linear head sees; `None` (and checkpoints written before the field existed)
    /// means [`EmbeddingKind::Pooled`]. Read it with [`embedding_kind`](Self::embedding_kind).
    #[config(default = "None")]
    pub embedding: Option<EmbeddingKind>,
}

/// Channel plan of one inverted-residual block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    /// Input channels.
    pub input: usize,
    /// Expanded (hidden) channels; equal to `input` when the expansion factor is 1.
    pub hidden: usize,
    /// Output channels.
    pub output: usize,
    /// Stride of the depthwise conv.
    pub stride: usize,
    /// Expansion factor `t`.
    pub expansion: usize,
}

impl BlockSpec {
    /// Whether the block adds its input to its output.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.input == self.output
    }
}

impl MobileNetV2Config {
    /// Stem output channels after width scaling.
    pub fn stem_channels(&self) -> usize {
        make_divisible(STEM_CHANNELS as f32 * self.width_mult, 8)
    }

    /// Channels of the final 1×1 conv (the embedding size).
    pub fn last_channels(&self) -> usize {
        make_divisible(LAST_CHANNELS as f32 * self.width_mult.max(1.0), 8)
    }

    /// The 17 inverted-residual blocks in order.
    pub fn block_specs(&self) -> Vec<BlockSpec> {
        let mut input = self.stem_channels();
        let mut out = Vec::new();
        for (t, c, n, s) in STAGES {
            let output = make_divisible(c as f32 * self.width_mult, 8);
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                out.push(BlockSpec {
                    input,
                    hidden: input * t,
                    output,
                    stride,
                    expansion: t,
                });
                input = output;
            }
        }
        out
    }

    /// Index (into [`block_specs`](Self::block_specs)) of the last block at stride 16: the
    /// last block of the 96-channel stage.
    pub fn stride16_block(&self) -> usize {
        STAGES[..5].iter().map(|(_, _, n, _)| n).sum::<usize>() - 1
    }

    /// Blocks whose expansion feeds the [`EmbeddingKind::Style`] statistics: the first block
    /// of the 64·α and 160·α stages (the expansions just before the stride-2 depthwise convs
    /// to strides 16 and 32) and the last block.
    pub fn style_blocks(&self) -> [usize; 3] {
        let start = |stage: usize| STAGES[..stage].iter().map(|(_, _, n, _)| n).sum::<usize>();
        [start(3), start(5), start(6)]
    }

    /// What the linear head sees.
    pub fn embedding_kind(&self) -> EmbeddingKind {
        self.embedding.unwrap_or_default()
    }

    /// Length of the embedding the linear head sees.
    pub fn embed_dim(&self) -> usize {
        match self.embedding_kind() {
            EmbeddingKind::Pooled => self.last_channels(),
            EmbeddingKind::Style => {
                let specs = self.block_specs();
                let taps: usize = self.style_blocks().iter().map(|&b| specs[b].hidden).sum();
                2 * taps + self.last_channels()
            }
        }
    }

    /// Checks the configuration is usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_classes == 0 {
            return Err("num_classes must be at least 1".into());
        }
        if !(self.width_mult > 0.0 && self.width_mult <= 4.0) {
            return Err(format!("width_mult {} outside (0, 4]", self.width_mult));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} outside [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// Creates a randomly initialised model (He-style conv init, BN γ=1 β=0).
    ///
    /// # Panics
    /// When [`validate`](Self::validate) fails (a programming error: validate user input
    /// first).
    pub fn init(&self, device: &Device) -> MobileNetV2 {
        if let Err(e) = self.validate() {
            panic!("invalid MobileNetV2Config: {e}");
        }
        let stem = ConvBnAct::new(
            3,
            self.stem_channels(),
            3,
            2,
            1,
            true,
            self.padding,
            self.bn_epsilon,
            device,
        );
        let blocks: Vec<InvertedResidual> = self
            .block_specs()
            .iter()
            .map(|s| InvertedResidual::new(s, self.padding, self.bn_epsilon, device))
            .collect();
        let last_in = blocks.last().map(|b| b.spec_output).unwrap_or(0);
        let last = ConvBnAct::new(
            last_in,
            self.last_channels(),
            1,
            1,
            1,
            true,
            self.padding,
            self.bn_epsilon,
            device,
        );
        MobileNetV2 {
            stem,
            blocks,
            last,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(self.embed_dim(), self.num_classes).init(device),
            stride16_block: self.stride16_block(),
            embedding: self.embedding_kind(),
            style_blocks: self.style_blocks(),
        }
    }
}

/// Conv (no bias) → BatchNorm → optional ReLU6.
#[derive(Module, Debug)]
pub struct ConvBnAct {
    /// The convolution (bias-free; the BN carries the shift).
    pub conv: Conv2d,
    /// Batch normalisation after the conv.
    pub bn: BatchNorm,
    /// Whether ReLU6 follows.
    #[module(skip)]
    pub act: bool,
}

impl ConvBnAct {
    /// A `k×k` conv from `cin` to `cout` channels with the given stride and groups.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        groups: usize,
        act: bool,
        padding: PaddingMode,
        bn_epsilon: f64,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [kernel, kernel])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(padding.conv_padding(kernel, stride))
            .with_bias(false)
            .with_initializer(burn::nn::Initializer::KaimingNormal {
                gain: 2f64.sqrt(),
                fan_out_only: true,
            })
            .init(device);
        let bn = BatchNormConfig::new(cout)
            .with_epsilon(bn_epsilon)
            .init(device);
        Self { conv, bn, act }
    }

    /// Freezes the BatchNorm (statistics, scale and shift): in training it then applies the
    /// stored statistics like in inference, so a pretrained (BN-folded) layer keeps its
    /// function while its conv weights are fine-tuned.
    pub fn freeze_bn(self) -> Self {
        Self {
            bn: self.bn.freeze(),
            ..self
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.bn.forward(self.conv.forward(x));
        if self.act { relu6(y) } else { y }
    }
}

/// One inverted-residual block: optional 1×1 expansion, 3×3 depthwise, 1×1 linear
/// projection, and a residual connection when stride is 1 and channels match.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1×1 expansion with ReLU6 (absent when the expansion factor is 1).
    pub expand: Option<ConvBnAct>,
    /// 3×3 depthwise conv with ReLU6.
    pub depthwise: ConvBnAct,
    /// 1×1 linear projection (no activation).
    pub project: ConvBnAct,
    /// Whether the input is added to the output.
    #[module(skip)]
    pub residual: bool,
    #[module(skip)]
    spec_output: usize,
}

impl InvertedResidual {
    /// Builds the block described by `spec`.
    pub fn new(spec: &BlockSpec, padding: PaddingMode, eps: f64, device: &Device) -> Self {
        let expand = (spec.expansion != 1)
            .then(|| ConvBnAct::new(spec.input, spec.hidden, 1, 1, 1, true, padding, eps, device));
        let depthwise = ConvBnAct::new(
            spec.hidden,
            spec.hidden,
            3,
            spec.stride,
            spec.hidden,
            true,
            padding,
            eps,
            device,
        );
        let project = ConvBnAct::new(
            spec.hidden,
            spec.output,
            1,
            1,
            1,
            false,
            padding,
            eps,
            device,
        );
        Self {
            expand,
            depthwise,
            project,
            residual: spec.residual(),
            spec_output: spec.output,
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_expanded(x).1
    }

    /// Forward pass that also returns the expansion's output (the input itself when the
    /// block has no expansion): `(expanded, output)`.
    pub fn forward_expanded(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let h = match &self.expand {
            Some(e) => e.forward(x.clone()),
            None => x.clone(),
        };
        let y = self.project.forward(self.depthwise.forward(h.clone()));
        (h, if self.residual { x + y } else { y })
    }

    /// Channels of the expansion's output.
    pub fn hidden_channels(&self) -> usize {
        self.depthwise.conv.weight.dims()[0]
    }

    /// Output channels.
    pub fn output_channels(&self) -> usize {
        self.spec_output
    }

    /// Freezes every BatchNorm of the block ([`ConvBnAct::freeze_bn`]).
    pub fn freeze_bn(self) -> Self {
        Self {
            expand: self.expand.map(ConvBnAct::freeze_bn),
            depthwise: self.depthwise.freeze_bn(),
            project: self.project.freeze_bn(),
            ..self
        }
    }
}

/// The MobileNetV2 network. Build it with [`MobileNetV2Config::init`].
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// 3×3 stride-2 stem.
    pub stem: ConvBnAct,
    /// The 17 inverted-residual blocks.
    pub blocks: Vec<InvertedResidual>,
    /// Final 1×1 conv to `last_channels`.
    pub last: ConvBnAct,
    /// Global average pooling.
    pub pool: AdaptiveAvgPool2d,
    /// Dropout before the head (active only in training mode on an autodiff device).
    pub dropout: Dropout,
    /// Linear classification head.
    pub classifier: Linear,
    #[module(skip)]
    stride16_block: usize,
    #[module(skip)]
    embedding: EmbeddingKind,
    #[module(skip)]
    style_blocks: [usize; 3],
}

impl MobileNetV2 {
    /// What the head reads.
    pub fn embedding_kind(&self) -> EmbeddingKind {
        self.embedding
    }

    /// Images `[N, 3, S, S]` → class logits `[N, num_classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.embed(x))
    }

    /// Images → what the linear head sees `[N, embed_dim]`: the globally average-pooled
    /// output of the final 1×1 conv, or the style statistics ([`EmbeddingKind`]).
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        match self.embedding {
            EmbeddingKind::Pooled => self.pool_features(self.features(x)),
            EmbeddingKind::Style => self.style_embed(x),
        }
    }

    /// [`EmbeddingKind::Style`] statistics `[N, 2·(taps) + last_channels]`: for each tapped
    /// expansion its channel means then standard deviations, then the pooled final conv.
    pub fn style_embed(&self, x: Tensor<4>) -> Tensor<2> {
        let n = self.blocks.len();
        let (x, taps) = self.style_prefix(x, n);
        self.style_from(x, n, taps)
    }

    /// Stem plus the first `n_blocks` blocks, as [`forward_prefix`](Self::forward_prefix),
    /// also returning the style statistics `[N, …]` of the tapped blocks among them (`None`
    /// when none is tapped).
    pub fn style_prefix(&self, x: Tensor<4>, n_blocks: usize) -> (Tensor<4>, Option<Tensor<2>>) {
        let mut parts = Vec::new();
        let x = self.blocks_with_taps(self.stem.forward(x), 0, n_blocks, &mut parts);
        let taps = (!parts.is_empty()).then(|| Tensor::cat(parts, 1));
        (x, taps)
    }

    /// The style statistics continued from `(x, prefix_taps) = style_prefix(images,
    /// first_block)`: the tapped blocks from `first_block` on, then the pooled final conv,
    /// after the prefix's statistics. `style_from(style_prefix(x, k), k)` equals
    /// [`style_embed`](Self::style_embed)`(x)` for every `k`.
    pub fn style_from(
        &self,
        x: Tensor<4>,
        first_block: usize,
        prefix_taps: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let mut parts: Vec<Tensor<2>> = prefix_taps.into_iter().collect();
        let x = self.blocks_with_taps(x, first_block, self.blocks.len(), &mut parts);
        parts.push(self.pool_features(self.last.forward(x)));
        Tensor::cat(parts, 1)
    }

    /// Blocks `from..to` applied to `x`, pushing each tapped block's expansion means and
    /// deviations onto `parts`.
    fn blocks_with_taps(
        &self,
        mut x: Tensor<4>,
        from: usize,
        to: usize,
        parts: &mut Vec<Tensor<2>>,
    ) -> Tensor<4> {
        for (i, b) in self.blocks.iter().enumerate().take(to).skip(from) {
            if self.style_blocks.contains(&i) {
                let (h, y) = b.forward_expanded(x);
                let (mean, std) = self.channel_mean_std(h);
                parts.push(mean);
                parts.push(std);
                x = y;
            } else {
                x = b.forward(x);
            }
        }
        x
    }

    /// Per-channel spatial mean and standard deviation `[N, C]` of `[N, C, H, W]`, from
    /// average pooling of `x` and `x²` (exportable ops only: pool, Mul, Sub, Relu, Sqrt).
    fn channel_mean_std(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let mean = self.pool_features(x.clone());
        let mean_sq = self.pool_features(x.clone() * x);
        let var = relu(mean_sq - mean.clone() * mean.clone());
        (mean, (var + 1e-6).sqrt())
    }

    /// Images → `(stride-16 map [N, 96·α, S/16, S/16], stride-32 map [N, last_channels,
    /// S/32, S/32])`: the output of the last stride-16 block and of the final 1×1 conv. The
    /// SSD-Lite detector's inputs.
    pub fn pyramid(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        self.pyramid_at(x, Stride16Tap::Projection)
    }

    /// [`pyramid`](Self::pyramid) with the stride-16 map taken at `tap`.
    pub fn pyramid_at(&self, x: Tensor<4>, tap: Stride16Tap) -> (Tensor<4>, Tensor<4>) {
        self.pyramid_from(self.forward_prefix(x, 0), 0, tap)
    }

    /// [`pyramid_at`](Self::pyramid_at) continued from `x = forward_prefix(images,
    /// first_block)`: what fine-tuning the blocks `first_block..` on cached activations
    /// computes. `first_block` must be at most [`first_stride32_block`](Self::first_stride32_block)
    /// (the stride-16 map is computed from `x`).
    pub fn pyramid_from(
        &self,
        x: Tensor<4>,
        first_block: usize,
        tap: Stride16Tap,
    ) -> (Tensor<4>, Tensor<4>) {
        let first32 = self.first_stride32_block();
        debug_assert!(
            first_block <= first32,
            "block {first_block} is past stride 16"
        );
        let mut b16 = x;
        for b in self.blocks.iter().take(first32).skip(first_block) {
            b16 = b.forward(b16);
        }
        match tap {
            Stride16Tap::Projection => {
                let c32 = self.forward_from(b16.clone(), first32);
                (b16, c32)
            }
            Stride16Tap::Expansion => {
                let (c16, y) = self.blocks[first32].forward_expanded(b16);
                (c16, self.forward_from(y, first32 + 1))
            }
        }
    }

    /// Index of the first stride-32 block (the one after the last stride-16 block).
    pub fn first_stride32_block(&self) -> usize {
        self.stride16_block + 1
    }

    /// Images → final feature map `[N, last_channels, S/32, S/32]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        let n = self.blocks.len();
        self.forward_from(self.forward_prefix(x, n), n)
    }

    /// Stem plus the first `n_blocks` inverted-residual blocks (`n_blocks ≤ num_blocks`).
    pub fn forward_prefix(&self, x: Tensor<4>, n_blocks: usize) -> Tensor<4> {
        let mut x = self.stem.forward(x);
        for b in self.blocks.iter().take(n_blocks) {
            x = b.forward(x);
        }
        x
    }

    /// Blocks `first_block..` plus the final 1×1 conv, applied to the output of
    /// [`forward_prefix`](Self::forward_prefix)`(x, first_block)`.
    pub fn forward_from(&self, x: Tensor<4>, first_block: usize) -> Tensor<4> {
        let mut x = x;
        for b in self.blocks.iter().skip(first_block) {
            x = b.forward(x);
        }
        self.last.forward(x)
    }

    /// Global average pooling of a feature map: `[N, C, H, W]` → `[N, C]`.
    pub fn pool_features(&self, f: Tensor<4>) -> Tensor<2> {
        let [n, c, _, _] = f.dims();
        self.pool.forward(f).reshape([n, c])
    }

    /// Embeddings `[N, last_channels]` → logits (dropout, then the linear head).
    pub fn head(&self, e: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(self.dropout.forward(e))
    }

    /// Freezes the BatchNorms of blocks `first_block..` and of the final 1×1 conv, for
    /// fine-tuning pretrained weights: imported BNs are folded (identity statistics), and
    /// batch statistics on small fine-tuning batches would replace the pretrained function
    /// instead of adapting it. Conv weights and the head stay trainable.
    pub fn freeze_batch_norms_from(self, first_block: usize) -> Self {
        let blocks = self
            .blocks
            .into_iter()
            .enumerate()
            .map(|(i, b)| if i >= first_block { b.freeze_bn() } else { b })
            .collect();
        Self {
            blocks,
            last: self.last.freeze_bn(),
            ..self
        }
    }

    /// Number of inverted-residual blocks (17).
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Channels of the final 1×1 conv: the stride-32 map and the pooled embedding.
    pub fn last_channels(&self) -> usize {
        self.last.conv.weight.dims()[0]
    }

    /// Length of [`embed`](Self::embed)'s output (the linear head's input).
    pub fn embed_dim(&self) -> usize {
        self.classifier.weight.dims()[0]
    }

    /// Channels of the stride-16 map returned by [`pyramid`](Self::pyramid).
    pub fn stride16_channels(&self) -> usize {
        self.blocks[self.stride16_block].output_channels()
    }

    /// Channels of the stride-16 map returned by [`pyramid_at`](Self::pyramid_at).
    pub fn stride16_channels_at(&self, tap: Stride16Tap) -> usize {
        match tap {
            Stride16Tap::Projection => self.stride16_channels(),
            Stride16Tap::Expansion => self.blocks[self.stride16_block + 1].hidden_channels(),
        }
    }

    /// Number of classes of the head.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_reference_values() {
        assert_eq!(make_divisible(32.0, 8), 32);
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16);
        assert_eq!(make_divisible(16.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(96.0 * 0.35, 8), 32);
        assert_eq!(make_divisible(24.0 * 0.75, 8), 24);
        assert_eq!(make_divisible(1280.0 * 1.4, 8), 1792);
    }

    #[test]
    fn block_plan_is_mobilenet_v2() {
        let cfg = MobileNetV2Config::new(5);
        let specs = cfg.block_specs();
        assert_eq!(specs.len(), 17);
        assert_eq!(specs[0].hidden, 32);
        assert_eq!(specs[16].output, 320);
        assert_eq!(specs[cfg.stride16_block()].output, 96);
        assert_eq!(specs.iter().filter(|s| s.residual()).count(), 10);
        let strides: usize = specs.iter().map(|s| s.stride).product();
        assert_eq!(strides * 2, 32);
    }

    #[test]
    fn style_statistics_split_at_any_block_equal_the_whole() {
        let device = Device::flex();
        device.seed(3);
        let model = MobileNetV2Config::new(3)
            .with_width_mult(0.25)
            .with_embedding(Some(EmbeddingKind::Style))
            .init(&device);
        let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Default, &device);
        let whole = model
            .style_embed(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(whole.len(), 2 * model.embed_dim());
        for k in [1, 6, 7, 13, 14, 17] {
            let (acts, taps) = model.style_prefix(x.clone(), k);
            // blocks before 6 carry no tap
            assert_eq!(taps.is_some(), k > 6, "block {k}");
            let split = model
                .style_from(acts, k, taps)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(split.len(), whole.len(), "block {k}");
            let worst = whole
                .iter()
                .zip(&split)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "block {k}: differs by {worst}");
        }
    }

    #[test]
    fn shapes_of_forward_embed_and_pyramid() {
        let device = Device::flex();
        device.seed(1);
        let model = MobileNetV2Config::new(3)
            .with_width_mult(0.25)
            .init(&device);
        let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
        assert_eq!(model.forward(x.clone()).dims(), [2, 3]);
        assert_eq!(model.embed(x.clone()).dims(), [2, 1280]);
        let (c16, c32) = model.pyramid(x.clone());
        assert_eq!(model.stride16_channels(), 24);
        assert_eq!(c16.dims(), [2, 24, 2, 2]);
        assert_eq!(c32.dims(), [2, 1280, 1, 1]);
        assert_eq!(model.last_channels(), 1280);
        // the pyramid's stride-32 map pooled is the embedding
        let pooled = model
            .pool_features(c32)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let e = model.embed(x).into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in pooled.iter().zip(&e) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn expansion_tap_is_the_first_stride32_blocks_expansion() {
        let device = Device::flex();
        device.seed(2);
        let model = MobileNetV2Config::new(2).with_width_mult(0.5).init(&device);
        let x = Tensor::<4>::random(
            [1, 3, 64, 64],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let (p16, p32) = model.pyramid(x.clone());
        let (e16, e32) = model.pyramid_at(x, Stride16Tap::Expansion);
        // same stride, the expanded width (6 × 48 at width 0.5), same stride-32 map
        assert_eq!(e16.dims(), [1, 288, 4, 4]);
        assert_eq!(model.stride16_channels_at(Stride16Tap::Expansion), 288);
        assert_eq!(
            model.stride16_channels_at(Stride16Tap::Projection),
            p16.dims()[1]
        );
        let (a, b) = (
            p32.into_data().try_to_vec::<f32>().unwrap(),
            e32.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5));
        // ReLU6 output
        let v = e16.into_data().try_to_vec::<f32>().unwrap();
        assert!(v.iter().all(|&t| (0.0..=6.0).contains(&t)));
    }

    #[test]
    fn style_embedding_holds_tap_statistics_and_the_pooled_map() {
        let device = Device::flex();
        device.seed(3);
        let cfg = MobileNetV2Config::new(4)
            .with_width_mult(0.25)
            .with_embedding(Some(EmbeddingKind::Style));
        assert_eq!(cfg.style_blocks(), [6, 13, 16]);
        let model = cfg.init(&device);
        // width 0.25: taps 6·8, 6·24, 6·40 hidden channels (inputs 32α, 96α, 160α); last conv 1280
        assert_eq!(cfg.embed_dim(), 2 * (48 + 144 + 240) + 1280);
        assert_eq!(model.embed_dim(), cfg.embed_dim());
        assert_eq!(model.last_channels(), 1280);
        let x = Tensor::<4>::random(
            [2, 3, 64, 64],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let e = model.embed(x.clone());
        assert_eq!(e.dims(), [2, cfg.embed_dim()]);
        assert_eq!(model.forward(x.clone()).dims(), [2, 4]);
        // the tail is the pooled final map; the first block is the mean/std of the first tap
        let v = e.into_data().try_to_vec::<f32>().unwrap();
        let pooled = model
            .pool_features(model.features(x.clone()))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let d = cfg.embed_dim();
        for (a, b) in v[d - 1280..d].iter().zip(&pooled[..1280]) {
            assert!((a - b).abs() < 1e-5);
        }
        let h = model.forward_prefix(x, 6);
        let (tap, _) = model.blocks[6].forward_expanded(h);
        let t = tap.into_data().try_to_vec::<f32>().unwrap();
        let hw = 8 * 8;
        let ch0: Vec<f32> = t[..hw].to_vec();
        let m = ch0.iter().sum::<f32>() / hw as f32;
        let sd = (ch0.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / hw as f32).sqrt();
        assert!((v[0] - m).abs() < 1e-4, "{} vs {m}", v[0]);
        assert!((v[48] - sd).abs() < 1e-3, "{} vs {sd}", v[48]);
    }

    #[test]
    fn configs_without_the_embedding_field_still_load() {
        let old = r#"{"num_classes": 5, "width_mult": 1.0, "dropout": 0.2,
            "padding": "tf_same", "bn_epsilon": 0.00001}"#;
        let cfg: MobileNetV2Config = serde_json::from_str(old).unwrap();
        assert_eq!(cfg.embedding_kind(), EmbeddingKind::Pooled);
        let style = MobileNetV2Config::new(5).with_embedding(Some(EmbeddingKind::Style));
        let back: MobileNetV2Config =
            serde_json::from_str(&serde_json::to_string(&style).unwrap()).unwrap();
        assert_eq!(back.embedding_kind(), EmbeddingKind::Style);
    }

    #[test]
    fn tf_same_padding_keeps_shapes() {
        let device = Device::flex();
        let model = MobileNetV2Config::new(2)
            .with_width_mult(0.25)
            .with_padding(PaddingMode::TfSame)
            .init(&device);
        let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
        let (c16, c32) = model.pyramid(x);
        assert_eq!(c16.dims()[2..], [4, 4]);
        assert_eq!(c32.dims()[2..], [2, 2]);
    }

    fn running_mean(bn: &BatchNorm) -> Vec<f32> {
        bn.running_mean
            .value_sync()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn frozen_batch_norms_keep_statistics_and_function_in_training() {
        let device = Device::flex();
        device.seed(3);
        let model = MobileNetV2Config::new(2)
            .with_width_mult(0.25)
            .init(&device);
        let n = model.num_blocks();
        let train_device = device.clone().autodiff();
        let x = Tensor::<4>::random(
            [2, 3, 32, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &train_device,
        );
        let mean0 = running_mean(&model.last.bn);
        // unfrozen: a training forward normalises with batch statistics and updates them
        let plain = model.clone().train();
        let _ = plain.features(x.clone());
        assert_ne!(running_mean(&plain.last.bn), mean0);
        // frozen from block n-2: statistics untouched, and the suffix computes in training
        // exactly what it computes in inference
        let frozen = model.freeze_batch_norms_from(n - 2).train();
        let prefix = frozen.valid().forward_prefix(x.clone().inner(), n - 2);
        let a = frozen
            .forward_from(Tensor::from_inner(prefix.clone()), n - 2)
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(running_mean(&frozen.last.bn), mean0);
        let b = frozen
            .valid()
            .forward_from(prefix, n - 2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(a.len(), b.len());
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-4, "{u} vs {v}");
        }
    }

    #[test]
    fn relu6_clamps() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([-3.0, 0.5, 6.0, 9.0], &device);
        let y = relu6(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![0.0, 0.5, 6.0, 6.0]);
    }
}

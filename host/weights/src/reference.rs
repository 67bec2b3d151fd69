//! A naive, dependency-free f32 forward pass over [`MobileNetV2Weights`]: the numerical
//! oracle for any framework implementation (burn, ONNX/tract).
//!
//! Semantics, exactly:
//! * input: one image, NCHW `[1, 3, H, W]` row-major, already normalised as
//!   `weights.input_norm` says;
//! * every convolution: zero padding per its [`Padding`](crate::Padding) rule (TF `SAME` pads
//!   0 before / 1 after for stride 2 on even sizes), cross-correlation (no kernel flip),
//!   `+ bias`, then its activation (ReLU6 = clamp to `[0, 6]`);
//! * block: expand? → depthwise → project, `+ input` when `has_residual()`;
//! * head: mean over all `H·W` positions of the last convolution's output (global average
//!   pooling), then `logits = W·x + b`. No softmax.
//!
//! Accumulation is plain f32, bias first, then input channel, kernel row, kernel column; a
//! well-implemented framework agrees to about 1e-4 relative on the logits. It is
//! single-threaded and unoptimised (roughly a second for a 224×224 MobileNetV2 1.0 in an
//! optimised build): for tests and checks, not serving.

use crate::error::{Result, WeightsError};
use crate::layout::{ConvWeights, InvertedResidual, Linear, MobileNetV2Weights};

/// A single-image feature map, CHW row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMap {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// `channels · height · width` values, CHW.
    pub data: Vec<f32>,
}

impl FeatureMap {
    /// Wraps CHW data; fails when the length does not match.
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != channels * height * width {
            return Err(WeightsError::Invalid(format!(
                "feature map {channels}×{height}×{width} needs {} values, got {}",
                channels * height * width,
                data.len()
            )));
        }
        Ok(Self {
            channels,
            height,
            width,
            data,
        })
    }
}

/// Every intermediate result of one forward pass, for layer-by-layer comparison.
#[derive(Clone, Debug)]
pub struct Trace {
    /// After the stem convolution (+ ReLU6).
    pub stem: FeatureMap,
    /// After each of the 17 blocks (residual included).
    pub blocks: Vec<FeatureMap>,
    /// After the last 1×1 convolution (+ ReLU6).
    pub features: FeatureMap,
    /// Global average pool of `features` (the embedding, `feature_dim` values).
    pub pooled: Vec<f32>,
    /// Classifier output (`num_classes` values, no softmax).
    pub logits: Vec<f32>,
}

/// Logits for one square NCHW image (`input_nchw.len() == 3·S·S`).
pub fn forward(weights: &MobileNetV2Weights, input_nchw: &[f32]) -> Result<Vec<f32>> {
    let side = ((input_nchw.len() / 3) as f64).sqrt().round() as usize;
    if side == 0 || 3 * side * side != input_nchw.len() {
        return Err(WeightsError::Invalid(format!(
            "input has {} values, not 3·S·S for a square image (use forward_hw)",
            input_nchw.len()
        )));
    }
    forward_hw(weights, input_nchw, side, side)
}

/// Logits for one NCHW image of `height × width`.
pub fn forward_hw(
    weights: &MobileNetV2Weights,
    input_nchw: &[f32],
    height: usize,
    width: usize,
) -> Result<Vec<f32>> {
    Ok(trace(weights, input_nchw, height, width)?.logits)
}

/// The full forward pass with every intermediate result.
pub fn trace(
    weights: &MobileNetV2Weights,
    input_nchw: &[f32],
    height: usize,
    width: usize,
) -> Result<Trace> {
    let input = FeatureMap::new(3, height, width, input_nchw.to_vec())?;
    let stem = conv2d(&input, &weights.stem)?;
    let mut blocks = Vec::with_capacity(weights.blocks.len());
    let mut x = stem.clone();
    for block in &weights.blocks {
        x = inverted_residual(&x, block)?;
        blocks.push(x.clone());
    }
    let features = conv2d(&x, &weights.last)?;
    let pooled = global_average_pool(&features);
    let logits = linear(&pooled, &weights.classifier)?;
    Ok(Trace {
        stem,
        blocks,
        features,
        pooled,
        logits,
    })
}

/// One inverted-residual block.
pub fn inverted_residual(x: &FeatureMap, block: &InvertedResidual) -> Result<FeatureMap> {
    let hidden = match &block.expand {
        Some(e) => conv2d(x, e)?,
        None => x.clone(),
    };
    let dw = conv2d(&hidden, &block.depthwise)?;
    let mut out = conv2d(&dw, &block.project)?;
    if block.has_residual() {
        if out.data.len() != x.data.len() {
            return Err(WeightsError::Invalid("residual shapes differ".into()));
        }
        out.data.iter_mut().zip(&x.data).for_each(|(o, i)| *o += i);
    }
    Ok(out)
}

/// A grouped 2-D convolution with bias and activation, per the conventions above.
pub fn conv2d(x: &FeatureMap, conv: &ConvWeights) -> Result<FeatureMap> {
    let [o, i_per_group, kh, kw] = conv.weight.shape;
    let groups = conv.groups.max(1);
    if x.channels != i_per_group * groups || o % groups != 0 || conv.bias.len() != o {
        return Err(WeightsError::Invalid(format!(
            "convolution {:?} (groups {}) cannot take {} input channels",
            conv.weight.shape, conv.groups, x.channels
        )));
    }
    let s = conv.stride.max(1);
    let (pt, _) = conv.padding.amounts(x.height, kh, s);
    let (pl, _) = conv.padding.amounts(x.width, kw, s);
    let oh = conv.padding.output_size(x.height, kh, s);
    let ow = conv.padding.output_size(x.width, kw, s);
    if oh == 0 || ow == 0 {
        return Err(WeightsError::Invalid(format!(
            "{}×{} input is too small for a {kh}×{kw} convolution",
            x.height, x.width
        )));
    }
    let o_per_group = o / groups;
    let plane = x.height * x.width;
    let mut out = vec![0.0f32; o * oh * ow];
    for (oc, dst) in out.chunks_exact_mut(oh * ow).enumerate() {
        dst.fill(conv.bias[oc]);
        let g = oc / o_per_group;
        for icl in 0..i_per_group {
            let src = &x.data[(g * i_per_group + icl) * plane..][..plane];
            for ky in 0..kh {
                for kx in 0..kw {
                    let w = conv.weight.at(oc, icl, ky, kx);
                    // Output columns whose input column ox·s + kx - pl lies in [0, width).
                    let ox_lo = pl.saturating_sub(kx).div_ceil(s);
                    let ox_hi = ((x.width + pl).saturating_sub(kx + 1) / s + 1).min(ow);
                    if (x.width + pl) <= kx || ox_lo >= ox_hi {
                        continue;
                    }
                    for oy in 0..oh {
                        let iy = (oy * s + ky) as isize - pt as isize;
                        if iy < 0 || iy as usize >= x.height {
                            continue;
                        }
                        let row = &src[iy as usize * x.width..][..x.width];
                        let out_row = &mut dst[oy * ow..][..ow];
                        for ox in ox_lo..ox_hi {
                            out_row[ox] += w * row[ox * s + kx - pl];
                        }
                    }
                }
            }
        }
        for v in dst.iter_mut() {
            *v = conv.activation.apply(*v);
        }
    }
    FeatureMap::new(o, oh, ow, out)
}

/// Mean of each channel over all positions.
pub fn global_average_pool(x: &FeatureMap) -> Vec<f32> {
    let plane = (x.height * x.width).max(1);
    x.data
        .chunks_exact(plane)
        .map(|c| c.iter().sum::<f32>() / plane as f32)
        .collect()
}

/// `W·x + b`.
pub fn linear(x: &[f32], layer: &Linear) -> Result<Vec<f32>> {
    if x.len() != layer.in_features || layer.weight.len() != layer.in_features * layer.out_features
    {
        return Err(WeightsError::Invalid(format!(
            "linear {}→{} cannot take {} inputs",
            layer.in_features,
            layer.out_features,
            x.len()
        )));
    }
    Ok(layer
        .weight
        .chunks_exact(layer.in_features)
        .zip(&layer.bias)
        .map(|(row, b)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>())
        .collect())
}

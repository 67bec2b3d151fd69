//! Reader for TFLite MobileNetV2 files, e.g. Coral's `mobilenet_v2_1.0_224_quant.tflite`.
//!
//! The flatbuffer is parsed with the schema bindings `tract-tflite` exports. The operator
//! list is walked in order and must be the MobileNetV2 chain:
//!
//! ```text
//! CONV_2D (stem, s2) · [CONV_2D expand] · DEPTHWISE_CONV_2D · CONV_2D project · [ADD] (×17)
//! · CONV_2D 1×1 → 1280 · AVERAGE_POOL_2D (or MEAN) · CONV_2D 1×1 or FULLY_CONNECTED (classifier)
//! · [RESHAPE / SQUEEZE] · [SOFTMAX]
//! ```
//!
//! (QUANTIZE / DEQUANTIZE may appear anywhere and are skipped.) Each operator's input must
//! be the previous operator's output; each ADD must add a block's input to its projection.
//!
//! Weights are dequantised as `real = (q - zero_point) · scale`, per tensor or per output
//! channel (`quantized_dimension`); int32 biases use their own scale (TFLite stores
//! `input_scale · weight_scale` there). Layouts are converted to OIHW: `CONV_2D` weights
//! are OHWI, `DEPTHWISE_CONV_2D` weights are `[1, kh, kw, C]`. Padding is recorded as
//! [`Padding::TfSame`] (`SAME`) or `Symmetric(0)` (`VALID`). Fused `RELU6` becomes
//! [`Activation::Relu6`].
//!
//! The result is an *f32* network: activations are not re-quantised, so outputs differ
//! slightly from the integer TFLite kernels (top classes agree).

use std::path::Path;

use tract_tflite::tflite;

use crate::error::{Result, WeightsError};

/// Decodes one little-endian element of a constant tensor's buffer to `f32`.
type ByteDecoder = Box<dyn Fn(&[u8]) -> f32>;
use crate::layout::{
    Activation, ConvWeights, InputNorm, InvertedResidual, Linear, MobileNetV2Weights, NUM_BLOCKS,
    Padding, Tensor4,
};

/// Reads a TFLite MobileNetV2 file and checks it is MobileNetV2 1.0 (exact channel counts).
pub fn read_tflite(path: impl AsRef<Path>) -> Result<MobileNetV2Weights> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| WeightsError::io(path, e))?;
    let weights = parse_tflite(&bytes, path)?;
    weights.validate_width(1.0)?;
    Ok(weights)
}

/// Parses TFLite bytes into weights of any MobileNetV2 width (structure checked, channel
/// counts not pinned). `path` is only used in messages.
pub fn parse_tflite(bytes: &[u8], path: &Path) -> Result<MobileNetV2Weights> {
    if bytes.len() < 8 || &bytes[4..8] != b"TFL3" {
        return Err(WeightsError::format(
            path,
            "not a TFLite file (no `TFL3` identifier at byte 4)",
        ));
    }
    let model = tflite::root_as_model(bytes)
        .map_err(|e| WeightsError::format(path, format!("invalid TFLite flatbuffer: {e}")))?;
    let ops = Graph::new(model, path)?.layers()?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut weights = assemble(ops, &format!("{name} (TFLite)"))?;
    (weights.input_norm, weights.input_size) = input_norm(model, path)?;
    weights.validate()?;
    tracing::debug!("{}", weights.summary());
    Ok(weights)
}

/// One operator of the chain, with its weights converted.
#[derive(Debug)]
enum Layer {
    Conv {
        conv: ConvWeights,
        input: i32,
        output: i32,
    },
    FullyConnected {
        linear: Linear,
        input: i32,
        output: i32,
    },
    Add {
        a: i32,
        b: i32,
        output: i32,
    },
    /// Average pooling or MEAN over the spatial axes.
    Pool {
        input: i32,
        output: i32,
    },
    /// An operator that does not change values that matter here (RESHAPE, SOFTMAX, ...).
    Tail {
        input: i32,
        output: i32,
    },
}

impl Layer {
    /// A short name for messages (never the weights).
    fn kind(&self) -> &'static str {
        match self {
            Layer::Conv { conv, .. } if conv.groups > 1 => "a depthwise convolution",
            Layer::Conv { .. } => "a convolution",
            Layer::FullyConnected { .. } => "a fully-connected layer",
            Layer::Add { .. } => "an ADD",
            Layer::Pool { .. } => "a pooling",
            Layer::Tail { .. } => "a reshape/softmax/quantize",
        }
    }
}

struct Graph<'a> {
    model: tflite::Model<'a>,
    graph: tflite::SubGraph<'a>,
    tensors: flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<tflite::Tensor<'a>>>,
    path: &'a Path,
}

fn opcode(code: tflite::OperatorCode<'_>) -> tflite::BuiltinOperator {
    // Old files only fill the deprecated i8 field; new ones fill both.
    tflite::BuiltinOperator((code.deprecated_builtin_code() as i32).max(code.builtin_code().0))
}

impl<'a> Graph<'a> {
    fn new(model: tflite::Model<'a>, path: &'a Path) -> Result<Self> {
        let fmt = |m: &str| WeightsError::format(path, m.to_string());
        let subgraphs = model.subgraphs().ok_or_else(|| fmt("no subgraphs"))?;
        if subgraphs.is_empty() {
            return Err(fmt("no subgraphs"));
        }
        let graph = subgraphs.get(0);
        let tensors = graph
            .tensors()
            .ok_or_else(|| fmt("subgraph has no tensors"))?;
        Ok(Self {
            model,
            graph,
            tensors,
            path,
        })
    }

    fn err(&self, message: String) -> WeightsError {
        WeightsError::format(self.path, message)
    }

    fn tensor(&self, index: i32) -> Result<tflite::Tensor<'a>> {
        usize::try_from(index)
            .ok()
            .filter(|&i| i < self.tensors.len())
            .map(|i| self.tensors.get(i))
            .ok_or_else(|| self.err(format!("tensor index {index} out of range")))
    }

    fn shape(&self, index: i32) -> Result<Vec<usize>> {
        let t = self.tensor(index)?;
        t.shape()
            .map(|s| s.iter().map(|d| d.max(0) as usize).collect())
            .ok_or_else(|| self.err(format!("tensor {index} has no shape")))
    }

    fn tensor_name(&self, index: i32) -> String {
        self.tensor(index)
            .ok()
            .and_then(|t| t.name())
            .map_or_else(|| format!("#{index}"), |n| format!("`{n}`"))
    }

    /// The constant tensor `index`, dequantised to f32, with its shape.
    fn constant(&self, index: i32) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.tensor(index)?;
        let name = self.tensor_name(index);
        let shape = self.shape(index)?;
        let count: usize = shape.iter().product();
        let buffers = self
            .model
            .buffers()
            .ok_or_else(|| self.err("model has no buffers".into()))?;
        let b = t.buffer() as usize;
        let raw = (b < buffers.len())
            .then(|| buffers.get(b).data())
            .flatten()
            .map(|d| d.bytes())
            .filter(|d| !d.is_empty())
            .ok_or_else(|| self.err(format!("tensor {name} is not a constant (no data)")))?;
        let (width, values): (usize, ByteDecoder) = match t.type_() {
            tflite::TensorType::FLOAT32 => (
                4,
                Box::new(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            tflite::TensorType::INT32 => (
                4,
                Box::new(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32),
            ),
            tflite::TensorType::UINT8 => (1, Box::new(|c| c[0] as f32)),
            tflite::TensorType::INT8 => (1, Box::new(|c| c[0] as i8 as f32)),
            other => {
                return Err(self.err(format!(
                    "tensor {name} has unsupported type {:?}",
                    other.variant_name().unwrap_or("unknown")
                )));
            }
        };
        if raw.len() != count * width {
            return Err(self.err(format!(
                "tensor {name} of shape {shape:?} has {} bytes, expected {}",
                raw.len(),
                count * width
            )));
        }
        let mut data: Vec<f32> = raw.chunks_exact(width).map(values).collect();
        if t.type_() != tflite::TensorType::FLOAT32 {
            self.dequantize(&t, &name, &shape, &mut data)?;
        }
        Ok((shape, data))
    }

    fn dequantize(
        &self,
        t: &tflite::Tensor<'_>,
        name: &str,
        shape: &[usize],
        data: &mut [f32],
    ) -> Result<()> {
        let q = t.quantization().ok_or_else(|| {
            self.err(format!(
                "integer tensor {name} has no quantisation parameters"
            ))
        })?;
        let scales: Vec<f32> = q.scale().map(|s| s.iter().collect()).unwrap_or_default();
        let zeros: Vec<i64> = q
            .zero_point()
            .map(|z| z.iter().collect())
            .unwrap_or_default();
        if scales.is_empty() {
            return Err(self.err(format!("integer tensor {name} has no scale")));
        }
        if scales.len() == 1 {
            let (s, z) = (scales[0], zeros.first().copied().unwrap_or(0) as f32);
            data.iter_mut().for_each(|v| *v = (*v - z) * s);
            return Ok(());
        }
        let axis = q.quantized_dimension() as usize;
        if axis >= shape.len()
            || shape[axis] != scales.len()
            || !(zeros.len() <= 1 || zeros.len() == scales.len())
        {
            return Err(self.err(format!(
                "tensor {name}: {} per-axis scales along axis {axis} of shape {shape:?}",
                scales.len()
            )));
        }
        let inner: usize = shape[axis + 1..].iter().product();
        for (i, v) in data.iter_mut().enumerate() {
            let c = (i / inner) % shape[axis];
            let z = zeros.get(c).or(zeros.first()).copied().unwrap_or(0) as f32;
            *v = (*v - z) * scales[c];
        }
        Ok(())
    }

    fn layers(&self) -> Result<Vec<Layer>> {
        let codes = self
            .model
            .operator_codes()
            .ok_or_else(|| self.err("model has no operator codes".into()))?;
        let ops = self
            .graph
            .operators()
            .ok_or_else(|| self.err("subgraph has no operators".into()))?;
        let mut layers = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            let idx = op.opcode_index() as usize;
            if idx >= codes.len() {
                return Err(self.err(format!("operator {n}: opcode index {idx} out of range")));
            }
            let code = opcode(codes.get(idx));
            let inputs: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
            let outputs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
            let what = || format!("operator {n} ({})", code.variant_name().unwrap_or("custom"));
            if inputs.is_empty() || outputs.len() != 1 {
                return Err(self.err(format!("{}: unexpected inputs/outputs", what())));
            }
            let (input, output) = (inputs[0], outputs[0]);
            let layer = match code {
                tflite::BuiltinOperator::CONV_2D => {
                    let o = op
                        .builtin_options_as_conv_2_doptions()
                        .ok_or_else(|| self.err(format!("{}: no options", what())))?;
                    let spec = ConvSpec {
                        stride: (o.stride_h(), o.stride_w()),
                        dilation: (o.dilation_h_factor(), o.dilation_w_factor()),
                        padding: o.padding(),
                        activation: o.fused_activation_function(),
                        depthwise: false,
                    };
                    let conv = self
                        .conv(&inputs, spec)
                        .map_err(|e| self.context(e, &what()))?;
                    Layer::Conv {
                        conv,
                        input,
                        output,
                    }
                }
                tflite::BuiltinOperator::DEPTHWISE_CONV_2D => {
                    let o = op
                        .builtin_options_as_depthwise_conv_2_doptions()
                        .ok_or_else(|| self.err(format!("{}: no options", what())))?;
                    let in_c = *self.shape(input)?.last().unwrap_or(&0);
                    let w_c = *self
                        .shape(inputs.get(1).copied().unwrap_or(-1))?
                        .last()
                        .unwrap_or(&0);
                    if in_c != w_c {
                        return Err(self.err(format!(
                            "{}: depth multiplier {} (only 1 is MobileNetV2)",
                            what(),
                            o.depth_multiplier()
                        )));
                    }
                    let spec = ConvSpec {
                        stride: (o.stride_h(), o.stride_w()),
                        dilation: (o.dilation_h_factor(), o.dilation_w_factor()),
                        padding: o.padding(),
                        activation: o.fused_activation_function(),
                        depthwise: true,
                    };
                    let conv = self
                        .conv(&inputs, spec)
                        .map_err(|e| self.context(e, &what()))?;
                    Layer::Conv {
                        conv,
                        input,
                        output,
                    }
                }
                tflite::BuiltinOperator::FULLY_CONNECTED => {
                    let linear = self
                        .fully_connected(&inputs)
                        .map_err(|e| self.context(e, &what()))?;
                    Layer::FullyConnected {
                        linear,
                        input,
                        output,
                    }
                }
                tflite::BuiltinOperator::ADD => {
                    if inputs.len() != 2 {
                        return Err(self.err(format!("{}: expected 2 inputs", what())));
                    }
                    Layer::Add {
                        a: inputs[0],
                        b: inputs[1],
                        output,
                    }
                }
                tflite::BuiltinOperator::AVERAGE_POOL_2D | tflite::BuiltinOperator::MEAN => {
                    Layer::Pool { input, output }
                }
                tflite::BuiltinOperator::RESHAPE
                | tflite::BuiltinOperator::SQUEEZE
                | tflite::BuiltinOperator::SOFTMAX
                | tflite::BuiltinOperator::QUANTIZE
                | tflite::BuiltinOperator::DEQUANTIZE => Layer::Tail { input, output },
                other => {
                    return Err(WeightsError::arch(
                        self.path.display().to_string(),
                        format!(
                            "operator {n} is {}, which MobileNetV2 does not use",
                            other.variant_name().unwrap_or("a custom operator")
                        ),
                    ));
                }
            };
            layers.push(layer);
        }
        Ok(layers)
    }

    fn context(&self, e: WeightsError, what: &str) -> WeightsError {
        match e {
            WeightsError::Format { path, message } => WeightsError::Format {
                path,
                message: format!("{what}: {message}"),
            },
            other => other,
        }
    }

    fn conv(&self, inputs: &[i32], spec: ConvSpec) -> Result<ConvWeights> {
        if inputs.len() < 2 {
            return Err(self.err("convolution without a weight tensor".into()));
        }
        if spec.dilation != (1, 1) || spec.stride.0 != spec.stride.1 || spec.stride.0 < 1 {
            return Err(self.err(format!(
                "unsupported stride {:?} / dilation {:?}",
                spec.stride, spec.dilation
            )));
        }
        let (shape, data) = self.constant(inputs[1])?;
        let [a, kh, kw, d] = shape[..] else {
            return Err(self.err(format!("weight shape {shape:?} is not 4-D")));
        };
        // CONV_2D: [O, kh, kw, I] → [O, I, kh, kw]; DEPTHWISE: [1, kh, kw, C] → [C, 1, kh, kw].
        let (o, i, groups) = if spec.depthwise {
            if a != 1 {
                return Err(self.err(format!(
                    "depthwise weight shape {shape:?} must start with 1"
                )));
            }
            (d, 1, d)
        } else {
            (a, d, 1)
        };
        let mut weight = Tensor4::zeros([o, i, kh, kw]);
        for oc in 0..o {
            for ic in 0..i {
                for y in 0..kh {
                    for x in 0..kw {
                        let src = if spec.depthwise {
                            (y * kw + x) * d + oc
                        } else {
                            ((oc * kh + y) * kw + x) * d + ic
                        };
                        let dst = weight.index(oc, ic, y, x);
                        weight.data[dst] = data[src];
                    }
                }
            }
        }
        let bias = self.bias(inputs.get(2).copied(), o)?;
        Ok(ConvWeights {
            weight,
            bias,
            stride: spec.stride.0 as usize,
            groups,
            padding: match spec.padding {
                tflite::Padding::SAME => Padding::TfSame,
                _ => Padding::Symmetric(0),
            },
            activation: self.activation(spec.activation)?,
        })
    }

    fn bias(&self, index: Option<i32>, n: usize) -> Result<Vec<f32>> {
        match index {
            Some(b) if b >= 0 => {
                let (shape, data) = self.constant(b)?;
                if data.len() != n {
                    return Err(self.err(format!("bias shape {shape:?} for {n} outputs")));
                }
                Ok(data)
            }
            _ => Ok(vec![0.0; n]),
        }
    }

    fn fully_connected(&self, inputs: &[i32]) -> Result<Linear> {
        let (shape, weight) = self.constant(*inputs.get(1).unwrap_or(&-1))?;
        let [out_features, in_features] = shape[..] else {
            return Err(self.err(format!("fully-connected weight shape {shape:?} is not 2-D")));
        };
        Ok(Linear {
            weight,
            bias: self.bias(inputs.get(2).copied(), out_features)?,
            in_features,
            out_features,
        })
    }

    fn activation(&self, a: tflite::ActivationFunctionType) -> Result<Activation> {
        match a {
            tflite::ActivationFunctionType::NONE => Ok(Activation::None),
            tflite::ActivationFunctionType::RELU6 => Ok(Activation::Relu6),
            other => Err(self.err(format!(
                "fused activation {} (MobileNetV2 uses RELU6 or none)",
                other.variant_name().unwrap_or("unknown")
            ))),
        }
    }
}

struct ConvSpec {
    stride: (i32, i32),
    dilation: (i32, i32),
    padding: tflite::Padding,
    activation: tflite::ActivationFunctionType,
    depthwise: bool,
}

/// Takes the next convolution, skipping transparent operators, and checks it reads the
/// current activation.
fn next_conv(
    it: &mut impl Iterator<Item = Layer>,
    current: &mut Vec<i32>,
    source: &str,
    what: &str,
) -> Result<ConvWeights> {
    let arch = |m: String| WeightsError::arch(source, m);
    loop {
        match it.next() {
            Some(Layer::Tail { input, output })
                if current.is_empty() || current.contains(&input) =>
            {
                current.push(output);
            }
            Some(Layer::Conv {
                conv,
                input,
                output,
            }) => {
                if !current.is_empty() && !current.contains(&input) {
                    return Err(arch(format!(
                        "{what} convolution does not read the previous layer's output"
                    )));
                }
                *current = vec![output];
                return Ok(conv);
            }
            Some(other) => {
                return Err(arch(format!(
                    "expected the {what} convolution, found {}",
                    other.kind()
                )));
            }
            None => {
                return Err(arch(format!(
                    "the graph ends before the {what} convolution"
                )));
            }
        }
    }
}

/// Walks the layer list as the MobileNetV2 chain, checking the data flow.
fn assemble(layers: Vec<Layer>, source: &str) -> Result<MobileNetV2Weights> {
    let arch = |m: String| WeightsError::arch(source, m);
    let mut it = layers.into_iter();
    // Tensor ids that carry the current activation (aliases through Tail ops).
    let mut current: Vec<i32> = Vec::new();
    let stem = next_conv(&mut it, &mut current, source, "stem")?;
    let mut blocks = Vec::with_capacity(NUM_BLOCKS);
    for i in 0..NUM_BLOCKS {
        let block_input = current.clone();
        let first = next_conv(&mut it, &mut current, source, &format!("block {i} first"))?;
        let (expand, depthwise) = if first.groups > 1 {
            (None, first)
        } else {
            let dw = next_conv(
                &mut it,
                &mut current,
                source,
                &format!("block {i} depthwise"),
            )?;
            (Some(first), dw)
        };
        if !depthwise.is_depthwise() {
            return Err(arch(format!("block {i}: expected a depthwise convolution")));
        }
        let project = next_conv(
            &mut it,
            &mut current,
            source,
            &format!("block {i} projection"),
        )?;
        let block = InvertedResidual {
            expand,
            depthwise,
            project,
        };
        if block.has_residual() {
            match it.next() {
                Some(Layer::Add { a, b, output })
                    if (current.contains(&a) && block_input.contains(&b))
                        || (current.contains(&b) && block_input.contains(&a)) =>
                {
                    current = vec![output];
                }
                _ => {
                    return Err(arch(format!(
                        "block {i} should end with a residual ADD of its input"
                    )));
                }
            }
        }
        blocks.push(block);
    }
    let last = next_conv(&mut it, &mut current, source, "last 1×1")?;
    match it.next() {
        Some(Layer::Pool { input, output }) if current.contains(&input) => current = vec![output],
        _ => {
            return Err(arch(
                "expected global average pooling after the last convolution".into(),
            ));
        }
    }
    let classifier = match it.next() {
        Some(Layer::Conv {
            conv,
            input,
            output,
        }) if current.contains(&input) => {
            if conv.kernel() != (1, 1) || conv.groups != 1 || conv.activation != Activation::None {
                return Err(arch(
                    "classifier convolution must be 1×1 without activation".into(),
                ));
            }
            current = vec![output];
            Linear {
                in_features: conv.in_channels(),
                out_features: conv.out_channels(),
                weight: conv.weight.data,
                bias: conv.bias,
            }
        }
        Some(Layer::FullyConnected {
            linear,
            input,
            output,
        }) if current.contains(&input) => {
            current = vec![output];
            linear
        }
        _ => return Err(arch("expected the classifier after pooling".into())),
    };
    for rest in it {
        match rest {
            Layer::Tail { input, output } if current.contains(&input) => current.push(output),
            other => {
                return Err(arch(format!(
                    "unexpected {} after the classifier",
                    other.kind()
                )));
            }
        }
    }
    let num_classes = classifier.out_features;
    Ok(MobileNetV2Weights {
        stem,
        blocks,
        last,
        classifier,
        num_classes,
        background_class: num_classes == 1001,
        input_norm: InputNorm::SIGNED_UNIT,
        input_size: 224,
        source: source.to_string(),
    })
}

/// The input normalisation implied by the graph input's quantisation: a uint8 input `q`
/// means `(q - zp) · scale`, i.e. mean `zp / 255` and std `1 / (255 · scale)` in `[0, 1]`
/// pixel units. Coral's file has zp 128, scale 1/128 (≈ mean 0.502, std 0.502), which is
/// reported as exactly [`InputNorm::SIGNED_UNIT`]. A float input is assumed to be `[-1, 1]`
/// (TF MobileNet convention). Also returns the input side (`H` of `[1, H, W, 3]`).
fn input_norm(model: tflite::Model<'_>, path: &Path) -> Result<(InputNorm, usize)> {
    let graph = Graph::new(model, path)?;
    let Some(input) = graph
        .graph
        .inputs()
        .and_then(|v| (!v.is_empty()).then(|| v.get(0)))
    else {
        return Err(WeightsError::format(path, "graph has no input"));
    };
    let t = graph.tensor(input)?;
    let shape = graph.shape(input)?;
    if shape.len() != 4 || shape[3] != 3 {
        return Err(WeightsError::arch(
            path.display().to_string(),
            format!("input shape {shape:?} is not NHWC RGB"),
        ));
    }
    let q = t.quantization();
    let scale = q
        .and_then(|q| q.scale())
        .and_then(|s| (s.len() == 1).then(|| s.get(0)));
    let zero = q
        .and_then(|q| q.zero_point())
        .and_then(|z| (z.len() == 1).then(|| z.get(0)));
    let norm = match (t.type_(), scale, zero) {
        (tflite::TensorType::FLOAT32, _, _) => InputNorm::SIGNED_UNIT,
        (tflite::TensorType::UINT8, Some(s), Some(z)) if s > 0.0 => {
            let mean = z as f32 / 255.0;
            let std = 1.0 / (255.0 * s);
            if (mean - 0.5).abs() < 0.01 && (std - 0.5).abs() < 0.01 {
                InputNorm::SIGNED_UNIT
            } else {
                InputNorm {
                    mean: [mean; 3],
                    std: [std; 3],
                }
            }
        }
        _ => {
            return Err(WeightsError::format(
                path,
                "input is neither float32 nor per-tensor quantised uint8",
            ));
        }
    };
    Ok((norm, shape[1]))
}

//! Writes [`MobileNetV2Weights`] as a TFLite flatbuffer with the Coral file's operator
//! chain, so the TFLite reader can be tested without the real file.
//!
//! Only the *weights* are quantised (per [`WeightQuant`]); activation tensors are float32
//! and every convolution is written with `SAME` padding (what TFLite can express), so the
//! file is meant for round-trip tests of [`read_tflite`](crate::read_tflite), not for
//! serving.

use std::path::Path;

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use tract_tflite::tflite;

use crate::error::{Result, WeightsError};
use crate::layout::{Activation, ConvWeights, Linear, MobileNetV2Weights};

/// How weight tensors are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightQuant {
    /// float32 weights and biases.
    Float32,
    /// uint8 weights, one scale and a non-zero zero point per tensor (like Coral's file);
    /// int32 biases.
    Uint8PerTensor,
    /// int8 weights with one scale per output channel (`quantized_dimension` 0 for
    /// CONV_2D, 3 for DEPTHWISE_CONV_2D), zero point 0; int32 biases per channel.
    Int8PerAxis,
}

/// Encodes `weights` (at input side `input_size`) as TFLite bytes.
pub fn tflite_bytes(
    weights: &MobileNetV2Weights,
    input_size: usize,
    quant: WeightQuant,
) -> Result<Vec<u8>> {
    let mut w = Writer {
        fbb: FlatBufferBuilder::new(),
        tensors: Vec::new(),
        buffers: Vec::new(),
        ops: Vec::new(),
        codes: Vec::new(),
        quant,
    };
    let empty = tflite::Buffer::create(&mut w.fbb, &tflite::BufferArgs { data: None });
    w.buffers.push(empty);
    let s = input_size as i32;
    let input = w.activation(&[1, s, s, 3], "input");
    let mut x = input;
    x = w.conv(&weights.stem, x, "stem")?;
    for (i, b) in weights.blocks.iter().enumerate() {
        let block_in = x;
        if let Some(e) = &b.expand {
            x = w.conv(e, x, &format!("block{i}/expand"))?;
        }
        x = w.conv(&b.depthwise, x, &format!("block{i}/depthwise"))?;
        x = w.conv(&b.project, x, &format!("block{i}/project"))?;
        if b.has_residual() {
            let shape = w.shapes(x);
            let out = w.activation(&shape, &format!("block{i}/add"));
            let opts = tflite::AddOptions::create(&mut w.fbb, &tflite::AddOptionsArgs::default());
            w.op(
                tflite::BuiltinOperator::ADD,
                &[x, block_in],
                out,
                tflite::BuiltinOptions::AddOptions,
                opts.as_union_value(),
            );
            x = out;
        }
    }
    x = w.conv(&weights.last, x, "last")?;
    let [_, h, wd, c] = w.shapes(x)[..] else {
        return Err(WeightsError::Invalid("bad feature shape".into()));
    };
    let pooled = w.activation(&[1, 1, 1, c], "pool");
    let opts = tflite::Pool2DOptions::create(
        &mut w.fbb,
        &tflite::Pool2DOptionsArgs {
            padding: tflite::Padding::VALID,
            stride_w: 1,
            stride_h: 1,
            filter_width: wd,
            filter_height: h,
            fused_activation_function: tflite::ActivationFunctionType::NONE,
        },
    );
    w.op(
        tflite::BuiltinOperator::AVERAGE_POOL_2D,
        &[x],
        pooled,
        tflite::BuiltinOptions::Pool2DOptions,
        opts.as_union_value(),
    );
    let logits = w.classifier(&weights.classifier, pooled)?;
    let n = weights.classifier.out_features as i32;
    let flat = w.activation(&[1, n], "reshape");
    w.op_plain(tflite::BuiltinOperator::RESHAPE, &[logits], flat);
    let probs = w.activation(&[1, n], "softmax");
    w.op_plain(tflite::BuiltinOperator::SOFTMAX, &[flat], probs);
    Ok(w.finish(input, probs))
}

/// Writes [`tflite_bytes`] to `path` atomically.
pub fn write_tflite(
    path: impl AsRef<Path>,
    weights: &MobileNetV2Weights,
    input_size: usize,
    quant: WeightQuant,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = tflite_bytes(weights, input_size, quant)?;
    sleeve_shared::fsutil::write_atomic(path, &bytes).map_err(|e| WeightsError::io(path, e))
}

struct Writer<'a> {
    fbb: FlatBufferBuilder<'a>,
    tensors: Vec<(WIPOffset<tflite::Tensor<'a>>, Vec<i32>)>,
    buffers: Vec<WIPOffset<tflite::Buffer<'a>>>,
    ops: Vec<WIPOffset<tflite::Operator<'a>>>,
    codes: Vec<tflite::BuiltinOperator>,
    quant: WeightQuant,
}

/// Quantised representation of one constant: raw bytes, type, scales, zero points, axis.
struct Encoded {
    bytes: Vec<u8>,
    type_: tflite::TensorType,
    scales: Vec<f32>,
    zeros: Vec<i64>,
    axis: i32,
}

impl<'a> Writer<'a> {
    fn shapes(&self, t: i32) -> Vec<i32> {
        self.tensors[t as usize].1.clone()
    }

    fn tensor(
        &mut self,
        shape: &[i32],
        name: &str,
        buffer: u32,
        type_: tflite::TensorType,
        q: Option<&Encoded>,
    ) -> i32 {
        let shape_v = self.fbb.create_vector(shape);
        let name_v = self.fbb.create_string(name);
        let quantization = q.filter(|q| !q.scales.is_empty()).map(|q| {
            let scale = self.fbb.create_vector(&q.scales);
            let zero_point = self.fbb.create_vector(&q.zeros);
            tflite::QuantizationParameters::create(
                &mut self.fbb,
                &tflite::QuantizationParametersArgs {
                    scale: Some(scale),
                    zero_point: Some(zero_point),
                    quantized_dimension: q.axis,
                    ..Default::default()
                },
            )
        });
        let t = tflite::Tensor::create(
            &mut self.fbb,
            &tflite::TensorArgs {
                shape: Some(shape_v),
                type_,
                buffer,
                name: Some(name_v),
                quantization,
                ..Default::default()
            },
        );
        self.tensors.push((t, shape.to_vec()));
        (self.tensors.len() - 1) as i32
    }

    fn activation(&mut self, shape: &[i32], name: &str) -> i32 {
        self.tensor(shape, name, 0, tflite::TensorType::FLOAT32, None)
    }

    fn constant(&mut self, shape: &[i32], name: &str, e: Encoded) -> i32 {
        let data = self.fbb.create_vector(&e.bytes);
        let b = tflite::Buffer::create(&mut self.fbb, &tflite::BufferArgs { data: Some(data) });
        self.buffers.push(b);
        let idx = (self.buffers.len() - 1) as u32;
        self.tensor(shape, name, idx, e.type_, Some(&e))
    }

    /// Quantises `values` laid out with `axis` of size `channels` (per-axis mode only).
    fn encode_weights(&self, values: &[f32], shape: &[i32], axis: usize) -> Encoded {
        match self.quant {
            WeightQuant::Float32 => float(values),
            WeightQuant::Uint8PerTensor => {
                let lo = values.iter().copied().fold(0.0f32, f32::min);
                let hi = values.iter().copied().fold(0.0f32, f32::max);
                let scale = ((hi - lo) / 255.0).max(1e-8);
                let zero = (-lo / scale).round().clamp(0.0, 255.0);
                let bytes = values
                    .iter()
                    .map(|v| (v / scale + zero).round().clamp(0.0, 255.0) as u8)
                    .collect();
                Encoded {
                    bytes,
                    type_: tflite::TensorType::UINT8,
                    scales: vec![scale],
                    zeros: vec![zero as i64],
                    axis: 0,
                }
            }
            WeightQuant::Int8PerAxis => {
                let channels = shape[axis] as usize;
                let inner: usize = shape[axis + 1..].iter().map(|&d| d as usize).product();
                let mut scales = vec![1e-8f32; channels];
                for (i, v) in values.iter().enumerate() {
                    let c = (i / inner) % channels;
                    scales[c] = scales[c].max(v.abs() / 127.0);
                }
                let bytes = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        (v / scales[(i / inner) % channels])
                            .round()
                            .clamp(-127.0, 127.0) as i8 as u8
                    })
                    .collect();
                Encoded {
                    bytes,
                    type_: tflite::TensorType::INT8,
                    scales,
                    zeros: vec![0; channels],
                    axis: axis as i32,
                }
            }
        }
    }

    /// Biases: float32, or int32 with scales `weight_scale` (activations are float, so
    /// the "input scale" factor is 1).
    fn encode_bias(&self, bias: &[f32], weight: &Encoded) -> Encoded {
        if self.quant == WeightQuant::Float32 {
            return float(bias);
        }
        let scales: Vec<f32> = if weight.scales.len() == 1 {
            vec![weight.scales[0]]
        } else {
            weight.scales.clone()
        };
        let bytes = bias
            .iter()
            .enumerate()
            .flat_map(|(i, b)| ((b / scales[i.min(scales.len() - 1)]).round() as i32).to_le_bytes())
            .collect();
        let zeros = vec![0; scales.len()];
        Encoded {
            bytes,
            type_: tflite::TensorType::INT32,
            scales,
            zeros,
            axis: 0,
        }
    }

    fn conv(&mut self, c: &ConvWeights, x: i32, name: &str) -> Result<i32> {
        let [o, i, kh, kw] = c.weight.shape;
        let depthwise = c.is_depthwise();
        // OIHW → OHWI (CONV_2D) or [1, kh, kw, C] (DEPTHWISE).
        let (shape, axis): ([usize; 4], usize) = if depthwise {
            ([1, kh, kw, o], 3)
        } else {
            ([o, kh, kw, i], 0)
        };
        let mut data = vec![0.0f32; c.weight.data.len()];
        for oc in 0..o {
            for ic in 0..i {
                for y in 0..kh {
                    for xx in 0..kw {
                        let dst = if depthwise {
                            (y * kw + xx) * o + oc
                        } else {
                            ((oc * kh + y) * kw + xx) * i + ic
                        };
                        data[dst] = c.weight.at(oc, ic, y, xx);
                    }
                }
            }
        }
        let shape: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let we = self.encode_weights(&data, &shape, axis);
        let be = self.encode_bias(&c.bias, &we);
        let wt = self.constant(&shape, &format!("{name}/weights"), we);
        let bt = self.constant(&[o as i32], &format!("{name}/bias"), be);
        let in_shape = self.shapes(x);
        let s = c.stride as i32;
        let out_shape = [
            1,
            (in_shape[1] + s - 1) / s,
            (in_shape[2] + s - 1) / s,
            o as i32,
        ];
        let out = self.activation(&out_shape, name);
        let act = match c.activation {
            Activation::None => tflite::ActivationFunctionType::NONE,
            Activation::Relu6 => tflite::ActivationFunctionType::RELU6,
        };
        if depthwise {
            let opts = tflite::DepthwiseConv2DOptions::create(
                &mut self.fbb,
                &tflite::DepthwiseConv2DOptionsArgs {
                    padding: tflite::Padding::SAME,
                    stride_w: s,
                    stride_h: s,
                    depth_multiplier: 1,
                    fused_activation_function: act,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                },
            );
            self.op(
                tflite::BuiltinOperator::DEPTHWISE_CONV_2D,
                &[x, wt, bt],
                out,
                tflite::BuiltinOptions::DepthwiseConv2DOptions,
                opts.as_union_value(),
            );
        } else {
            let opts = tflite::Conv2DOptions::create(
                &mut self.fbb,
                &tflite::Conv2DOptionsArgs {
                    padding: tflite::Padding::SAME,
                    stride_w: s,
                    stride_h: s,
                    fused_activation_function: act,
                    dilation_w_factor: 1,
                    dilation_h_factor: 1,
                },
            );
            self.op(
                tflite::BuiltinOperator::CONV_2D,
                &[x, wt, bt],
                out,
                tflite::BuiltinOptions::Conv2DOptions,
                opts.as_union_value(),
            );
        }
        Ok(out)
    }

    /// The classifier as Coral writes it: a 1×1 CONV_2D on the pooled `[1, 1, 1, F]` map.
    fn classifier(&mut self, l: &Linear, x: i32) -> Result<i32> {
        let conv = ConvWeights {
            weight: crate::layout::Tensor4::new(
                [l.out_features, l.in_features, 1, 1],
                l.weight.clone(),
            )?,
            bias: l.bias.clone(),
            stride: 1,
            groups: 1,
            padding: crate::layout::Padding::TfSame,
            activation: Activation::None,
        };
        self.conv(&conv, x, "classifier")
    }

    fn opcode(&mut self, code: tflite::BuiltinOperator) -> u32 {
        match self.codes.iter().position(|&c| c == code) {
            Some(i) => i as u32,
            None => {
                self.codes.push(code);
                (self.codes.len() - 1) as u32
            }
        }
    }

    fn op(
        &mut self,
        code: tflite::BuiltinOperator,
        inputs: &[i32],
        output: i32,
        kind: tflite::BuiltinOptions,
        opts: WIPOffset<flatbuffers::UnionWIPOffset>,
    ) {
        let opcode_index = self.opcode(code);
        let inputs = self.fbb.create_vector(inputs);
        let outputs = self.fbb.create_vector(&[output]);
        let op = tflite::Operator::create(
            &mut self.fbb,
            &tflite::OperatorArgs {
                opcode_index,
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type: kind,
                builtin_options: Some(opts),
                ..Default::default()
            },
        );
        self.ops.push(op);
    }

    fn op_plain(&mut self, code: tflite::BuiltinOperator, inputs: &[i32], output: i32) {
        let opcode_index = self.opcode(code);
        let inputs = self.fbb.create_vector(inputs);
        let outputs = self.fbb.create_vector(&[output]);
        let op = tflite::Operator::create(
            &mut self.fbb,
            &tflite::OperatorArgs {
                opcode_index,
                inputs: Some(inputs),
                outputs: Some(outputs),
                ..Default::default()
            },
        );
        self.ops.push(op);
    }

    fn finish(mut self, input: i32, output: i32) -> Vec<u8> {
        let tensors: Vec<_> = self.tensors.iter().map(|t| t.0).collect();
        let tensors = self.fbb.create_vector(&tensors);
        let inputs = self.fbb.create_vector(&[input]);
        let outputs = self.fbb.create_vector(&[output]);
        let operators = self.fbb.create_vector(&self.ops);
        let graph = tflite::SubGraph::create(
            &mut self.fbb,
            &tflite::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name: None,
            },
        );
        let codes: Vec<_> = self
            .codes
            .clone()
            .into_iter()
            .map(|c| {
                tflite::OperatorCode::create(
                    &mut self.fbb,
                    &tflite::OperatorCodeArgs {
                        deprecated_builtin_code: c.0.min(127) as i8,
                        custom_code: None,
                        version: 1,
                        builtin_code: c,
                    },
                )
            })
            .collect();
        let codes = self.fbb.create_vector(&codes);
        let subgraphs = self.fbb.create_vector(&[graph]);
        let buffers = self.fbb.create_vector(&self.buffers);
        let description = self.fbb.create_string("sleeve-weights test writer");
        let model = tflite::Model::create(
            &mut self.fbb,
            &tflite::ModelArgs {
                version: 3,
                operator_codes: Some(codes),
                subgraphs: Some(subgraphs),
                description: Some(description),
                buffers: Some(buffers),
                ..Default::default()
            },
        );
        tflite::finish_model_buffer(&mut self.fbb, model);
        self.fbb.finished_data().to_vec()
    }
}

fn float(values: &[f32]) -> Encoded {
    Encoded {
        bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        type_: tflite::TensorType::FLOAT32,
        scales: Vec::new(),
        zeros: Vec::new(),
        axis: 0,
    }
}

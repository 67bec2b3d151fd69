//! Weight-only int8 ([`Precision::Int8Weights`](sleeve_shared::manifest::Precision)):
//! every Conv and MatMul weight initializer becomes int8 plus a `DequantizeLinear` node —
//! losslessly (per tensor, with a zero point) when the weight already lies on an int8 grid,
//! as the frozen layers imported from the quantized Coral model do; otherwise per output
//! channel, symmetric. tract folds the dequantization into a constant at load
//! time, so the file is about 4× smaller and inference runs at f32 speed.

use std::collections::HashSet;

use tract_onnx::pb::{GraphProto, NodeProto};

use super::math::{lossless_grid_i8, quantize_per_channel_inner, quantize_per_channel_outer};
use crate::ExportError;
use crate::proto::{self, fresh_name, initializer_index};

/// Weights smaller than this stay f32 (the DequantizeLinear node would cost more bytes).
pub const MIN_QUANTIZED_ELEMENTS: usize = 64;

/// Which weight of a node is quantizable and along which axis its channels lie.
fn weight_slot(n: &NodeProto) -> Option<(usize, i64)> {
    match n.op_type.as_str() {
        "Conv" => Some((1, 0)),
        "MatMul" => Some((1, 1)),
        _ => None,
    }
}

/// Replaces eligible weight initializers by int8 + `DequantizeLinear`. `skip` names
/// initializers to leave alone (already quantized by another pass).
pub fn quantize_weights(
    g: &mut GraphProto,
    skip: &HashSet<String>,
) -> Result<WeightQuantStats, ExportError> {
    let mut stats = WeightQuantStats::default();
    let idx = initializer_index(g);
    let mut taken = proto::all_names(g);
    let mut done: HashSet<String> = HashSet::new();
    let mut new_nodes = Vec::new();
    let mut new_inits = Vec::new();
    for n in &g.node {
        let Some((slot, axis)) = weight_slot(n) else {
            continue;
        };
        let Some(w_name) = n.input.get(slot) else {
            continue;
        };
        if skip.contains(w_name) || done.contains(w_name) {
            continue;
        }
        let Some(&i) = idx.get(w_name) else { continue };
        let t = &g.initializer[i];
        if t.data_type != tract_onnx::pb::tensor_proto::DataType::Float as i32
            || proto::element_count(t) < MIN_QUANTIZED_ELEMENTS
        {
            continue;
        }
        let values = proto::tensor_f32(t)?;
        let q_name = fresh_name(&mut taken, &format!("{w_name}.q"));
        let s_name = fresh_name(&mut taken, &format!("{w_name}.scale"));
        let z_name = fresh_name(&mut taken, &format!("{w_name}.zero_point"));
        let dq_name = fresh_name(&mut taken, &format!("{w_name}.dequantize"));
        let dq_inputs = [q_name.as_str(), s_name.as_str(), z_name.as_str()];
        let dq = if let Some((q, p)) = lossless_grid_i8(&values) {
            new_inits.push(proto::i8_tensor(&q_name, &t.dims, &q));
            new_inits.push(proto::f32_tensor(&s_name, &[], &[p.scale]));
            new_inits.push(proto::i8_tensor(&z_name, &[], &[p.zero_point as i8]));
            stats.lossless += 1;
            proto::node(&dq_name, "DequantizeLinear", &dq_inputs, &[w_name])
        } else {
            let (q, scales) = match (axis, t.dims.len()) {
                (0, r) if r >= 2 => quantize_per_channel_outer(&values, t.dims[0] as usize),
                (1, 2) => quantize_per_channel_inner(&values, t.dims[1] as usize),
                _ => continue,
            };
            let c = scales.len() as i64;
            new_inits.push(proto::i8_tensor(&q_name, &t.dims, &q));
            new_inits.push(proto::f32_tensor(&s_name, &[c], &scales));
            new_inits.push(proto::i8_tensor(&z_name, &[c], &vec![0; scales.len()]));
            stats.per_channel += 1;
            let mut dq = proto::node(&dq_name, "DequantizeLinear", &dq_inputs, &[w_name]);
            dq.attribute.push(proto::int_attr("axis", axis));
            dq
        };
        new_nodes.push(dq);
        done.insert(w_name.clone());
    }
    g.initializer.retain(|t| !done.contains(&t.name));
    g.initializer.extend(new_inits);
    // Constants first: every DequantizeLinear only reads initializers.
    let rest = std::mem::take(&mut g.node);
    g.node = new_nodes;
    g.node.extend(rest);
    Ok(stats)
}

/// How [`quantize_weights`] encoded the weights it quantized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WeightQuantStats {
    /// Weights already on an int8 grid, stored exactly (per tensor, with a zero point).
    pub lossless: usize,
    /// Weights requantized per output channel, symmetric.
    pub per_channel: usize,
}

impl WeightQuantStats {
    /// All weights quantized.
    pub fn total(&self) -> usize {
        self.lossless + self.per_channel
    }
}

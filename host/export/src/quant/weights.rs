//! Weight-only int8 ([`Precision::Int8Weights`](sleeve_shared::manifest::Precision)):
//! every Conv and MatMul weight initializer becomes int8 (per output channel, symmetric)
//! plus a `DequantizeLinear` node. tract folds the dequantization into a constant at load
//! time, so the file is about 4× smaller and inference runs at f32 speed.

use std::collections::HashSet;

use tract_onnx::pb::{GraphProto, NodeProto};

use super::math::{quantize_per_channel_inner, quantize_per_channel_outer};
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
/// initializers to leave alone (already quantized by another pass). Returns how many
/// weights were quantized.
pub fn quantize_weights(g: &mut GraphProto, skip: &HashSet<String>) -> Result<usize, ExportError> {
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
        let (q, scales) = match (axis, t.dims.len()) {
            (0, r) if r >= 2 => quantize_per_channel_outer(&values, t.dims[0] as usize),
            (1, 2) => quantize_per_channel_inner(&values, t.dims[1] as usize),
            _ => continue,
        };
        let q_name = fresh_name(&mut taken, &format!("{w_name}.q"));
        let s_name = fresh_name(&mut taken, &format!("{w_name}.scale"));
        let z_name = fresh_name(&mut taken, &format!("{w_name}.zero_point"));
        let c = scales.len() as i64;
        new_inits.push(proto::i8_tensor(&q_name, &t.dims, &q));
        new_inits.push(proto::f32_tensor(&s_name, &[c], &scales));
        new_inits.push(proto::i8_tensor(&z_name, &[c], &vec![0; scales.len()]));
        let mut dq = proto::node(
            &fresh_name(&mut taken, &format!("{w_name}.dequantize")),
            "DequantizeLinear",
            &[&q_name, &s_name, &z_name],
            &[w_name],
        );
        dq.attribute.push(proto::int_attr("axis", axis));
        new_nodes.push(dq);
        done.insert(w_name.clone());
    }
    g.initializer.retain(|t| !done.contains(&t.name));
    g.initializer.extend(new_inits);
    // Constants first: every DequantizeLinear only reads initializers.
    let rest = std::mem::take(&mut g.node);
    g.node = new_nodes;
    g.node.extend(rest);
    Ok(done.len())
}

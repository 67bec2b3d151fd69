//! Weight-only int8 ([`Precision::Int8Weights`](sleeve_shared::manifest::Precision)):
//! every Conv and MatMul weight initializer becomes int8 plus a `DequantizeLinear` node —
//! losslessly (per tensor, with a zero point) when the weight already lies on an int8 grid,
//! as the frozen layers imported from the quantized Coral model do; otherwise symmetric per
//! channel: per output channel for Conv, per input row for MatMul (`[in, out]`, see
//! [`weight_slot`]). tract folds the dequantization into a constant at load
//! time, so the file is about 4× smaller and inference runs at f32 speed.

use std::collections::HashSet;

use tract_onnx::pb::{GraphProto, NodeProto};

use super::math::{lossless_grid_i8, quantize_per_channel_outer};
use crate::ExportError;
use crate::proto::{self, fresh_name, initializer_index};

/// Weights smaller than this stay f32 (the DequantizeLinear node would cost more bytes).
pub const MIN_QUANTIZED_ELEMENTS: usize = 64;

/// Which weight of a node is quantizable and along which axis its scales run. MatMul
/// weights `[in, out]` get one scale per input row, not per output column: a classifier head
/// with a standardisation folded in (the style head) has rows of very different magnitudes,
/// and per-column scales would round the small rows to zero (measured: top-1 agreement 0.897
/// per column, see docs/export.md). The extra scales cost 4 bytes per input.
fn weight_slot(n: &NodeProto) -> Option<(usize, i64)> {
    match n.op_type.as_str() {
        "Conv" | "MatMul" => Some((1, 0)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_weights_get_one_scale_per_input_row() {
        // [in 3, out 2]: rows a million times apart, like a folded standardisation
        let w = [1000.0, -500.0, 1.0, 0.25, 0.001, -0.0007];
        // padded with zero rows: 3 × 2 is below the size floor of quantization
        let big: Vec<f32> = w
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0.0, 64))
            .collect();
        let mut g = GraphProto::default();
        g.initializer.push(proto::f32_tensor("w", &[35, 2], &big));
        g.node
            .push(proto::node("mm", "MatMul", &["x", "w"], &["y"]));
        let stats = quantize_weights(&mut g, &HashSet::new()).unwrap();
        assert_eq!((stats.per_channel, stats.lossless), (1, 0));
        let dq = g
            .node
            .iter()
            .find(|n| n.op_type == "DequantizeLinear")
            .unwrap();
        assert_eq!(proto::get_int_attr(dq, "axis"), Some(0));
        let idx = initializer_index(&g);
        let scales = proto::tensor_f32(&g.initializer[idx[&dq.input[1]]]).unwrap();
        assert_eq!(scales.len(), 35);
        let q = &g.initializer[idx[&dq.input[0]]].raw_data;
        // every non-zero row keeps ~1/127 relative precision, the small ones included
        for r in 0..3 {
            for c in 0..2 {
                let back = (q[r * 2 + c] as i8) as f32 * scales[r];
                let want = w[r * 2 + c];
                let row_max = w[r * 2].abs().max(w[r * 2 + 1].abs());
                // half a step of the row's own scale
                assert!(
                    (back - want).abs() <= row_max / 254.0 * 1.001,
                    "{back} vs {want}"
                );
            }
        }
    }
}

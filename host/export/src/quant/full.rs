//! Full-integer int8 ([`Precision::Int8Full`](sleeve_shared::manifest::Precision)):
//! each Conv becomes `QLinearConv` on uint8 activations and per-channel int8 weights with
//! an int32 bias; a following ReLU/ReLU6 (`Relu` or `Clip(0, ·)`) is fused into the output
//! range. Chained convolutions pass uint8 straight through; anything else (residual adds,
//! pooling, the classifier's MatMul) stays float behind `DequantizeLinear`.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{GraphProto, NodeProto};

use super::calib::Range;
use super::math::{QParams, asymmetric_u8, quantize_per_channel_outer, round_half_even};
use crate::ExportError;
use crate::proto::{self, consumers, fresh_name, initializer_index};

/// A conv the full-integer pass will rewrite, and the tensors whose ranges it needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSite {
    /// Index of the Conv node.
    pub conv: usize,
    /// Index of a fused activation node (Relu or Clip) after it, if any.
    pub act: Option<usize>,
    /// The conv's activation input.
    pub input: String,
    /// The value the rewritten conv produces (the activation's output when fused).
    pub output: String,
}

fn is_fusable_activation(g: &GraphProto, n: &NodeProto) -> bool {
    match n.op_type.as_str() {
        "Relu" => true,
        "Clip" => {
            let min = n.input.get(1).and_then(|m| {
                g.initializer
                    .iter()
                    .find(|t| &t.name == m)
                    .and_then(|t| proto::tensor_f32(t).ok())
            });
            matches!(min.as_deref(), Some([v]) if *v == 0.0)
        }
        _ => false,
    }
}

/// Finds the Conv nodes with constant 4-D weights (and constant bias) to quantize.
pub fn conv_sites(g: &GraphProto) -> Vec<ConvSite> {
    let idx = initializer_index(g);
    let cons = consumers(g);
    let outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    let mut sites = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        if n.op_type != "Conv" || n.input.len() < 2 {
            continue;
        }
        let weight_ok = idx
            .get(&n.input[1])
            .is_some_and(|&w| g.initializer[w].dims.len() == 4);
        let bias_ok = n.input.get(2).is_none_or(|b| idx.contains_key(b));
        if !weight_ok || !bias_ok || idx.contains_key(&n.input[0]) {
            continue;
        }
        let y = &n.output[0];
        let act = match cons.get(y).map(Vec::as_slice) {
            Some([a]) if !outputs.contains(y.as_str()) && is_fusable_activation(g, &g.node[*a]) => {
                Some(*a)
            }
            _ => None,
        };
        sites.push(ConvSite {
            conv: i,
            act,
            input: n.input[0].clone(),
            output: act.map_or_else(|| y.clone(), |a| g.node[a].output[0].clone()),
        });
    }
    sites
}

/// Names of every tensor whose range [`quantize_full`] needs.
pub fn calibration_tensors(g: &GraphProto) -> Vec<String> {
    let mut seen = HashSet::new();
    conv_sites(g)
        .into_iter()
        .flat_map(|s| [s.input, s.output])
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// What [`quantize_full`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FullReport {
    /// Convs rewritten to QLinearConv.
    pub convs: usize,
    /// Activations fused into a conv's output range.
    pub fused_activations: usize,
    /// QuantizeLinear nodes inserted (float → uint8 boundaries).
    pub quantize_nodes: usize,
}

/// Rewrites every conv site to QLinearConv using calibrated `ranges`.
pub fn quantize_full(
    g: &mut GraphProto,
    ranges: &HashMap<String, Range>,
) -> Result<FullReport, ExportError> {
    let sites = conv_sites(g);
    let idx = initializer_index(g);
    let mut taken = proto::all_names(g);
    let range_of = |t: &str| {
        ranges
            .get(t)
            .copied()
            .ok_or_else(|| ExportError::Graph(format!("no calibrated range for tensor '{t}'")))
    };
    // Quantized twin of each float value produced so far: (u8 name, params).
    let mut quantized: HashMap<String, (String, QParams)> = HashMap::new();
    let mut params_of: HashMap<String, (String, String)> = HashMap::new();
    let mut report = FullReport::default();
    let mut new_inits = Vec::new();
    let mut replaced: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    for site in &sites {
        let conv = &g.node[site.conv];
        let mut nodes = Vec::new();
        // Input: reuse a uint8 twin, or quantize the float value here.
        let (xq, xp) = match quantized.get(&site.input) {
            Some(v) => v.clone(),
            None => {
                let r = range_of(&site.input)?;
                let p = asymmetric_u8(r.min, r.max);
                let (s, z) = add_params(&mut params_of, &site.input, p, &mut taken, &mut new_inits);
                let xq = fresh_name(&mut taken, &format!("{}.u8", site.input));
                let qn = fresh_name(&mut taken, &format!("{}.quantize", site.input));
                nodes.push(proto::node(
                    &qn,
                    "QuantizeLinear",
                    &[&site.input, &s, &z],
                    &[&xq],
                ));
                report.quantize_nodes += 1;
                quantized.insert(site.input.clone(), (xq.clone(), p));
                (xq, p)
            }
        };
        let (xs, xz) = params_of[&site.input].clone();
        // Weights: per-channel symmetric int8.
        let w_t = &g.initializer[idx[&conv.input[1]]];
        let out_ch = w_t.dims[0] as usize;
        let w = proto::tensor_f32(w_t)?;
        let (wq, ws) = quantize_per_channel_outer(&w, out_ch);
        let wq_name = fresh_name(&mut taken, &format!("{}.q", conv.input[1]));
        let ws_name = fresh_name(&mut taken, &format!("{}.scale", conv.input[1]));
        let wz_name = fresh_name(&mut taken, &format!("{}.zero_point", conv.input[1]));
        new_inits.push(proto::i8_tensor(&wq_name, &w_t.dims, &wq));
        new_inits.push(proto::f32_tensor(&ws_name, &[out_ch as i64], &ws));
        new_inits.push(proto::i8_tensor(
            &wz_name,
            &[out_ch as i64],
            &vec![0; out_ch],
        ));
        // Output range: the activation's output when fused.
        let r = range_of(&site.output)?;
        let yp = asymmetric_u8(r.min, r.max);
        let (ys, yz) = add_params(&mut params_of, &site.output, yp, &mut taken, &mut new_inits);
        let mut inputs = vec![
            xq.clone(),
            xs,
            xz,
            wq_name,
            ws_name,
            wz_name,
            ys.clone(),
            yz.clone(),
        ];
        if let Some(b) = conv.input.get(2) {
            let bias = proto::tensor_f32(&g.initializer[idx[b]])?;
            let bq: Vec<i32> = bias
                .iter()
                .zip(&ws)
                .map(|(&b, &s)| {
                    round_half_even(b / (xp.scale * s)).clamp(i32::MIN as f32, i32::MAX as f32)
                        as i32
                })
                .collect();
            let b_name = fresh_name(&mut taken, &format!("{b}.i32"));
            new_inits.push(proto::i32_tensor(&b_name, &[out_ch as i64], &bq));
            inputs.push(b_name);
        }
        let yq = fresh_name(&mut taken, &format!("{}.u8", site.output));
        let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let mut qconv = proto::node(
            &fresh_name(&mut taken, &format!("{}.qlinear", conv.name)),
            "QLinearConv",
            &input_refs,
            &[&yq],
        );
        qconv.attribute = conv.attribute.clone();
        nodes.push(qconv);
        nodes.push(proto::node(
            &fresh_name(&mut taken, &format!("{}.dequantize", site.output)),
            "DequantizeLinear",
            &[&yq, &ys, &yz],
            &[&site.output],
        ));
        quantized.insert(site.output.clone(), (yq, yp));
        replaced.insert(site.conv, nodes);
        if let Some(a) = site.act {
            removed.insert(a);
            report.fused_activations += 1;
        }
        report.convs += 1;
    }

    // Rebuild the node list; a fused activation's position is taken by the conv's nodes,
    // which is still topological because the activation only reads the conv.
    let old = std::mem::take(&mut g.node);
    let mut act_to_conv: HashMap<usize, usize> = HashMap::new();
    for s in &sites {
        if let Some(a) = s.act {
            act_to_conv.insert(a, s.conv);
        }
    }
    let mut pending: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    for (i, n) in old.into_iter().enumerate() {
        if let Some(nodes) = replaced.remove(&i) {
            if sites.iter().any(|s| s.conv == i && s.act.is_some()) {
                pending.insert(i, nodes);
            } else {
                g.node.extend(nodes);
            }
        } else if removed.contains(&i) {
            let conv = act_to_conv[&i];
            g.node.extend(pending.remove(&conv).unwrap_or_default());
        } else {
            g.node.push(n);
        }
    }
    g.initializer.extend(new_inits);
    rewire_quantized_inputs(g);
    proto::prune(g);
    Ok(report)
}

/// Scale and zero-point initializers of a value, created once.
fn add_params(
    params_of: &mut HashMap<String, (String, String)>,
    value: &str,
    q: QParams,
    taken: &mut HashSet<String>,
    inits: &mut Vec<tract_onnx::pb::TensorProto>,
) -> (String, String) {
    params_of
        .entry(value.to_string())
        .or_insert_with(|| {
            let s = fresh_name(taken, &format!("{value}.scale"));
            let z = fresh_name(taken, &format!("{value}.zero_point"));
            inits.push(proto::f32_tensor(&s, &[], &[q.scale]));
            inits.push(proto::u8_tensor(&z, &[], &[q.zero_point as u8]));
            (s, z)
        })
        .clone()
}

/// A QLinearConv whose input is `DequantizeLinear(y_q)` of a value that another
/// QLinearConv produced, with the same parameters, reads `y_q` directly (the pass already
/// does this in order; this also covers QuantizeLinear(DequantizeLinear(x)) pairs left
/// behind). Returns nothing; dead nodes are pruned by the caller.
fn rewire_quantized_inputs(g: &mut GraphProto) {
    let dq: HashMap<String, (String, String, String)> = g
        .node
        .iter()
        .filter(|n| n.op_type == "DequantizeLinear" && n.input.len() == 3)
        .map(|n| {
            (
                n.output[0].clone(),
                (n.input[0].clone(), n.input[1].clone(), n.input[2].clone()),
            )
        })
        .collect();
    let mut alias: HashMap<String, String> = HashMap::new();
    for n in &g.node {
        if n.op_type == "QuantizeLinear"
            && n.input.len() == 3
            && let Some((q, s, z)) = dq.get(&n.input[0])
            && *s == n.input[1]
            && *z == n.input[2]
        {
            alias.insert(n.output[0].clone(), q.clone());
        }
    }
    for n in &mut g.node {
        for i in &mut n.input {
            if let Some(a) = alias.get(i) {
                *i = a.clone();
            }
        }
    }
}

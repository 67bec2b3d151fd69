//! One graph for both models: the classifier and the detector exported from burn share a
//! frozen MobileNetV2 backbone, so the kiosk need not compute it twice. [`merge_joint`]
//! unites the two ONNX graphs and computes every node they have in common once.
//!
//! Two nodes are "the same" when their operator, attributes and inputs are: inputs are
//! identified by content — the graph input, an initializer by the SHA-256 of its bytes, a
//! node's output by the identity of that node — so sharing is verified by weight hashes,
//! node by node from the input. What is shared is therefore always a prefix (a node is
//! shared only when everything it reads is), and a classifier whose upper blocks were
//! fine-tuned shares only the blocks below them. Backbones that differ from the first
//! convolution share nothing, and the merge is refused ([`JointError::NotShared`]).
//!
//! The joint graph takes the detector's input (its size is fixed by the detector's anchor
//! layout); the classifier's part must not depend on the input size (MobileNetV2 with
//! global pooling does not). [`check_joint`] proves the joint graph gives the separate
//! graphs' outputs in tract.

use std::collections::{HashMap, HashSet};

use prost::Message;
use sleeve_shared::fsutil::sha256_hex;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};

use crate::runtime::{F32Tensor, TractModel};
use crate::{ExportError, proto};

/// Output names of the joint graph, in order: classifier logits, detector box deltas,
/// detector logits.
pub const JOINT_OUTPUTS: [&str; 3] = ["genre_logits", "boxes", "pa_logits"];

/// Prefix of the classifier's own (unshared) tensor names in the joint graph.
const CLASSIFIER_PREFIX: &str = "classifier/";

/// Settings of [`merge_joint`].
#[derive(Clone, Copy, Debug)]
pub struct JointOptions {
    /// Fewest convolutions the two graphs must share; fewer is refused (a joint graph
    /// that shares nothing is two models glued together).
    pub min_shared_convs: usize,
}

impl Default for JointOptions {
    fn default() -> Self {
        Self {
            min_shared_convs: 1,
        }
    }
}

/// What a merge shared.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JointReport {
    /// Nodes of the classifier graph.
    pub classifier_nodes: usize,
    /// Nodes of the detector graph.
    pub detector_nodes: usize,
    /// Nodes of the joint graph.
    pub joint_nodes: usize,
    /// Classifier nodes computed by the detector's graph instead.
    pub shared_nodes: usize,
    /// Convolutions among them.
    pub shared_convs: usize,
    /// Convolutions the classifier computes on its own.
    pub classifier_only_convs: usize,
    /// SHA-256 over the hashes of the shared weights, in graph order.
    pub shared_weights_sha256: String,
    /// Name (in the classifier graph) of the first weight the classifier does not share.
    pub first_unshared: Option<String>,
}

/// Why two graphs cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum JointError {
    /// Too few layers are shared: the backbones differ.
    #[error(
        "the classifier and the detector do not share their backbone: {shared} convolution(s) \
         in common, at least {required} needed. First difference: the classifier's weight \
         '{classifier_weight}' (sha256 {classifier_sha}) vs the detector's '{detector_weight}' \
         (sha256 {detector_sha}).{} A joint model needs both trained on the same frozen \
         backbone weights; ship them as separate models instead",
        equal_weights_note(*.weights_equal)
    )]
    NotShared {
        /// Convolutions shared.
        shared: usize,
        /// Convolutions required.
        required: usize,
        /// The classifier's first unshared weight.
        classifier_weight: String,
        /// Its content hash.
        classifier_sha: String,
        /// The detector's weight at the same position.
        detector_weight: String,
        /// Its content hash.
        detector_sha: String,
        /// The two weights are equal (something else about the convolution differs).
        weights_equal: bool,
    },
    /// A graph is not shaped as expected.
    #[error("joint model: {0}")]
    Graph(String),
    /// Encoding, decoding or running failed.
    #[error(transparent)]
    Export(#[from] ExportError),
}

fn graph_err(m: impl Into<String>) -> JointError {
    JointError::Graph(m.into())
}

/// Content identity of a tensor: "input", an initializer's bytes, or a node output.
fn tensor_key(t: &TensorProto) -> String {
    let mut anonymous = t.clone();
    anonymous.name.clear();
    anonymous.doc_string.clear();
    sha256_hex(&anonymous.encode_to_vec())
}

/// Content identity of a node's outputs, from its operator, attributes and input keys.
fn node_key(n: &NodeProto, input_keys: &[String]) -> String {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(n.op_type.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(n.domain.as_bytes());
    bytes.push(0);
    for a in &n.attribute {
        bytes.extend_from_slice(&a.encode_to_vec());
        bytes.push(0);
    }
    for k in input_keys {
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(1);
    }
    sha256_hex(&bytes)
}

/// The one real (non-initializer) input of a graph.
fn single_input(g: &GraphProto, what: &str) -> Result<ValueInfoProto, JointError> {
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let real: Vec<&ValueInfoProto> = g
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .collect();
    match real.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(graph_err(format!(
            "the {what} graph has {} inputs, expected one image",
            real.len()
        ))),
    }
}

/// Keys of every tensor of a graph, computed in node order (ONNX graphs are topologically
/// sorted). Returns name → key.
fn tensor_keys(
    g: &GraphProto,
    input: &str,
    what: &str,
) -> Result<HashMap<String, String>, JointError> {
    let mut keys: HashMap<String, String> = HashMap::new();
    keys.insert(input.to_string(), "input".into());
    for t in &g.initializer {
        keys.insert(t.name.clone(), tensor_key(t));
    }
    for n in &g.node {
        let ins = input_keys(n, &keys, what)?;
        let k = node_key(n, &ins);
        for (i, o) in n.output.iter().enumerate() {
            if !o.is_empty() {
                keys.insert(o.clone(), format!("{k}:{i}"));
            }
        }
    }
    Ok(keys)
}

fn input_keys(
    n: &NodeProto,
    keys: &HashMap<String, String>,
    what: &str,
) -> Result<Vec<String>, JointError> {
    n.input
        .iter()
        .map(|i| {
            if i.is_empty() {
                Ok("none".to_string())
            } else {
                keys.get(i).cloned().ok_or_else(|| {
                    graph_err(format!(
                        "{what} node '{}' reads '{i}' before it is produced (graph not sorted?)",
                        n.name
                    ))
                })
            }
        })
        .collect()
}

/// Whether a node is a convolution (float or quantized).
fn is_conv(n: &NodeProto) -> bool {
    n.op_type == "Conv" || n.op_type == "QLinearConv"
}

/// The weight (initializer, possibly behind a DequantizeLinear) a conv reads, by name.
fn conv_weight<'a>(g: &'a GraphProto, conv: &'a NodeProto) -> Option<&'a str> {
    let w = conv
        .input
        .get(if conv.op_type == "QLinearConv" { 3 } else { 1 })?;
    if g.initializer.iter().any(|t| &t.name == w) {
        return Some(w.as_str());
    }
    let producer = g.node.iter().find(|n| n.output.iter().any(|o| o == w))?;
    let src = producer.input.first()?;
    g.initializer
        .iter()
        .any(|t| &t.name == src)
        .then_some(src.as_str())
}

/// Merges a classifier graph (`image` → logits) and a detector graph (`image` → boxes,
/// logits) into one graph with outputs [`JOINT_OUTPUTS`], computing what they share once.
pub fn merge_joint(
    classifier: &ModelProto,
    detector: &ModelProto,
    opts: &JointOptions,
) -> Result<(ModelProto, JointReport), JointError> {
    let gc = proto::graph(classifier)?;
    let gd = proto::graph(detector)?;
    if classifier.opset_import != detector.opset_import {
        return Err(graph_err(format!(
            "the graphs import different opsets ({:?} vs {:?})",
            classifier.opset_import, detector.opset_import
        )));
    }
    if gc.output.len() != 1 || gd.output.len() != 2 {
        return Err(graph_err(format!(
            "expected a classifier with 1 output and a detector with 2, got {} and {}",
            gc.output.len(),
            gd.output.len()
        )));
    }
    let c_in = single_input(gc, "classifier")?;
    let d_in = single_input(gd, "detector")?;
    let c_keys = tensor_keys(gc, &c_in.name, "classifier")?;
    let d_keys = tensor_keys(gd, &d_in.name, "detector")?;
    // Detector tensor by key (first producer wins: the detector's own duplicates stay).
    let mut by_key: HashMap<&str, &str> = HashMap::new();
    for (name, key) in &d_keys {
        by_key
            .entry(key.as_str())
            .and_modify(|n| {
                if name.as_str() < *n {
                    *n = name.as_str();
                }
            })
            .or_insert(name.as_str());
    }

    let mut joint = detector.clone();
    let g = proto::graph_mut(&mut joint)?;
    // Rename the detector's outputs to the joint names; the input keeps its name.
    let (d_boxes, d_logits) = (gd.output[0].name.clone(), gd.output[1].name.clone());
    let mut taken = proto::all_names(g);
    for (from, to) in [(&d_boxes, JOINT_OUTPUTS[1]), (&d_logits, JOINT_OUTPUTS[2])] {
        if from != to {
            if taken.contains(to) {
                let tmp = proto::fresh_name(&mut taken, to);
                proto::rename_value(g, to, &tmp);
            }
            proto::rename_value(g, from, to);
            taken.insert(to.to_string());
        }
    }
    let renamed_det = |n: &str| -> String {
        if n == d_boxes {
            JOINT_OUTPUTS[1].into()
        } else if n == d_logits {
            JOINT_OUTPUTS[2].into()
        } else {
            n.to_string()
        }
    };

    // Classifier tensor name → joint name.
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert(c_in.name.clone(), d_in.name.clone());
    let c_inits: HashMap<&str, &TensorProto> = gc
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let fresh = |base: &str, taken: &mut HashSet<String>| {
        proto::fresh_name(taken, &format!("{CLASSIFIER_PREFIX}{base}"))
    };
    let mut shared_nodes = 0;
    let mut shared_convs = 0;
    let mut own_convs = 0;
    let mut shared_weights = Vec::new();
    let mut first_unshared: Option<String> = None;
    let mut new_nodes = Vec::new();
    let mut new_inits = Vec::new();
    for n in &gc.node {
        let outs: Vec<&String> = n.output.iter().filter(|o| !o.is_empty()).collect();
        let shared = !outs.is_empty()
            && outs
                .iter()
                .all(|o| by_key.contains_key(c_keys[o.as_str()].as_str()));
        let weights: Vec<&String> = n
            .input
            .iter()
            .filter(|i| c_inits.contains_key(i.as_str()))
            .collect();
        if shared {
            shared_nodes += 1;
            if is_conv(n) {
                shared_convs += 1;
            }
            for o in outs {
                let d = by_key[c_keys[o.as_str()].as_str()];
                map.insert(o.clone(), renamed_det(d));
            }
            for w in weights {
                shared_weights.extend_from_slice(c_keys[w.as_str()].as_bytes());
            }
            continue;
        }
        if is_conv(n) {
            own_convs += 1;
        }
        if first_unshared.is_none() {
            // A weight matrix or kernel, not a shape operand, scalar or bias.
            first_unshared = weights
                .iter()
                .find(|w| c_inits[w.as_str()].dims.len() >= 2)
                .map(|w| w.to_string());
        }
        let mut node = n.clone();
        for i in node.input.iter_mut().filter(|i| !i.is_empty()) {
            if let Some(m) = map.get(i.as_str()) {
                *i = m.clone();
                continue;
            }
            let t = c_inits.get(i.as_str()).ok_or_else(|| {
                graph_err(format!(
                    "classifier node '{}' reads unknown tensor '{i}'",
                    n.name
                ))
            })?;
            // The same constant (clip bounds, shapes) may already be in the joint graph.
            let joint_name = match by_key.get(c_keys[i.as_str()].as_str()) {
                Some(d) => renamed_det(d),
                None => {
                    let name = fresh(i, &mut taken);
                    let mut t = (*t).clone();
                    t.name = name.clone();
                    new_inits.push(t);
                    name
                }
            };
            map.insert(i.clone(), joint_name.clone());
            *i = joint_name;
        }
        for o in node.output.iter_mut().filter(|o| !o.is_empty()) {
            let name = fresh(o, &mut taken);
            map.insert(o.clone(), name.clone());
            *o = name;
        }
        node.name = proto::fresh_name(&mut taken, &format!("{CLASSIFIER_PREFIX}{}", n.name));
        new_nodes.push(node);
    }
    if shared_convs < opts.min_shared_convs {
        return Err(not_shared(gc, gd, &c_keys, &d_keys, shared_convs, opts));
    }
    let c_out = &gc.output[0];
    let c_out_joint = map
        .get(&c_out.name)
        .cloned()
        .ok_or_else(|| graph_err("the classifier's output is never produced"))?;
    if !new_nodes
        .iter()
        .any(|n| n.output.iter().any(|o| o == &c_out_joint))
    {
        return Err(graph_err(
            "the classifier's output is the detector's: the graphs compute the same thing",
        ));
    }
    g.node.extend(new_nodes);
    g.initializer.extend(new_inits);
    if taken.contains(JOINT_OUTPUTS[0]) {
        let tmp = proto::fresh_name(&mut taken, JOINT_OUTPUTS[0]);
        proto::rename_value(g, JOINT_OUTPUTS[0], &tmp);
    }
    proto::rename_value(g, &c_out_joint, JOINT_OUTPUTS[0]);
    let mut out_info = c_out.clone();
    out_info.name = JOINT_OUTPUTS[0].into();
    g.output.insert(0, out_info);
    // Intermediate shapes recorded for the classifier's own size would be wrong here.
    g.value_info.clear();
    g.name = "sleeve_joint".into();
    let report = JointReport {
        classifier_nodes: gc.node.len(),
        detector_nodes: gd.node.len(),
        joint_nodes: g.node.len(),
        shared_nodes,
        shared_convs,
        classifier_only_convs: own_convs,
        shared_weights_sha256: sha256_hex(&shared_weights),
        first_unshared,
    };
    Ok((joint, report))
}

/// The error for graphs that share too little, naming the first differing conv weights.
fn not_shared(
    gc: &GraphProto,
    gd: &GraphProto,
    c_keys: &HashMap<String, String>,
    d_keys: &HashMap<String, String>,
    shared: usize,
    opts: &JointOptions,
) -> JointError {
    let weights = |g: &GraphProto| -> Vec<String> {
        g.node
            .iter()
            .filter(|n| is_conv(n))
            .filter_map(|n| conv_weight(g, n).map(str::to_string))
            .collect()
    };
    let (cw, dw) = (weights(gc), weights(gd));
    let i = shared.min(cw.len().saturating_sub(1));
    let pick = |w: &[String], keys: &HashMap<String, String>| match w.get(i) {
        Some(name) => (name.clone(), keys.get(name).cloned().unwrap_or_default()),
        None => ("(none)".into(), "-".into()),
    };
    let (classifier_weight, classifier_sha) = pick(&cw, c_keys);
    let (detector_weight, detector_sha) = pick(&dw, d_keys);
    JointError::NotShared {
        weights_equal: classifier_sha == detector_sha,
        shared,
        required: opts.min_shared_convs,
        classifier_weight,
        classifier_sha,
        detector_weight,
        detector_sha,
    }
}

/// The sentence [`JointError::NotShared`] adds when the first unshared weights are equal.
fn equal_weights_note(weights_equal: bool) -> &'static str {
    if weights_equal {
        " The weights are equal; the convolution's other inputs differ (in an int8-full \
         graph: the activation scales, calibrated on each model's own data)."
    } else {
        ""
    }
}

/// A copy of `model` whose image input is declared `[1, 3, size, size]`.
pub fn with_input_size(model: &ModelProto, size: usize) -> Result<ModelProto, JointError> {
    use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension::Value};
    let mut m = model.clone();
    let g = proto::graph_mut(&mut m)?;
    let name = single_input(g, "model")?.name;
    let input = g
        .input
        .iter_mut()
        .find(|i| i.name == name)
        .expect("found above");
    let shape = input
        .r#type
        .as_mut()
        .and_then(|t| t.value.as_mut())
        .and_then(|v| match v {
            tract_onnx::pb::type_proto::Value::TensorType(t) => t.shape.as_mut(),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .ok_or_else(|| graph_err(format!("input '{name}' has no tensor shape")))?;
    let dims = [1, 3, size as i64, size as i64];
    shape.dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    g.value_info.clear();
    Ok(m)
}

/// Largest difference between the joint graph's outputs and the separate graphs' (both run
/// in tract at the joint graph's input size), over `inputs`.
pub fn check_joint(
    joint: &ModelProto,
    classifier: &ModelProto,
    detector: &ModelProto,
    inputs: &[F32Tensor],
) -> Result<f32, JointError> {
    let size = inputs
        .first()
        .and_then(|x| x.shape.last().copied())
        .ok_or_else(|| graph_err("no inputs to compare on"))?;
    let load = |m: &ModelProto| -> Result<TractModel, JointError> {
        Ok(TractModel::load(&proto::encode(&with_input_size(
            m, size,
        )?))?)
    };
    let j = load(joint)?;
    let c = load(classifier)?;
    let d = load(detector)?;
    let mut worst = 0.0f32;
    for x in inputs {
        let jo = j.run(x)?;
        let mut separate = c.run(x)?;
        separate.extend(d.run(x)?);
        if jo.len() != 3 || separate.len() != 3 {
            return Err(graph_err(format!(
                "{} joint outputs vs {} separate ones, expected 3",
                jo.len(),
                separate.len()
            )));
        }
        for (a, b) in jo.iter().zip(&separate) {
            worst = worst.max(a.max_abs_diff(b));
        }
    }
    Ok(worst)
}

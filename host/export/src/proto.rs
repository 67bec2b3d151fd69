//! Small helpers over tract-onnx's prost ONNX types: decode/encode, typed access to
//! initializers and attributes, and node construction.

use std::collections::{HashMap, HashSet};

use prost::Message;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, attribute_proto::AttributeType,
    tensor_proto::DataType,
};

use crate::ExportError;

/// Decodes a serialized ONNX model.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, ExportError> {
    ModelProto::decode(bytes).map_err(|e| ExportError::Graph(format!("not an ONNX model: {e}")))
}

/// Serializes an ONNX model.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// The model's graph, or an error when it has none.
pub fn graph(model: &ModelProto) -> Result<&GraphProto, ExportError> {
    model
        .graph
        .as_ref()
        .ok_or_else(|| ExportError::Graph("ONNX model has no graph".into()))
}

/// The model's graph, mutably.
pub fn graph_mut(model: &mut ModelProto) -> Result<&mut GraphProto, ExportError> {
    model
        .graph
        .as_mut()
        .ok_or_else(|| ExportError::Graph("ONNX model has no graph".into()))
}

/// An f32 initializer's values, from `raw_data` or `float_data`.
pub fn tensor_f32(t: &TensorProto) -> Result<Vec<f32>, ExportError> {
    if t.data_type != DataType::Float as i32 {
        return Err(ExportError::Graph(format!(
            "initializer '{}' has data type {}, expected float",
            t.name, t.data_type
        )));
    }
    let n = element_count(t);
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        t.float_data.clone()
    };
    if values.len() != n {
        return Err(ExportError::Graph(format!(
            "initializer '{}' holds {} values for shape {:?}",
            t.name,
            values.len(),
            t.dims
        )));
    }
    Ok(values)
}

/// An i64 initializer's values (shape operands of Reshape and friends).
pub fn tensor_i64(t: &TensorProto) -> Result<Vec<i64>, ExportError> {
    if t.data_type != DataType::Int64 as i32 {
        return Err(ExportError::Graph(format!(
            "initializer '{}' is not int64",
            t.name
        )));
    }
    if !t.raw_data.is_empty() {
        Ok(t.raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    } else {
        Ok(t.int64_data.clone())
    }
}

/// Number of elements of a tensor proto from its dims.
pub fn element_count(t: &TensorProto) -> usize {
    t.dims.iter().map(|&d| d.max(0) as usize).product()
}

/// A float initializer.
pub fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An int8 initializer.
pub fn i8_tensor(name: &str, dims: &[i64], values: &[i8]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int8 as i32,
        raw_data: values.iter().map(|&v| v as u8).collect(),
        ..Default::default()
    }
}

/// A uint8 initializer.
pub fn u8_tensor(name: &str, dims: &[i64], values: &[u8]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Uint8 as i32,
        raw_data: values.to_vec(),
        ..Default::default()
    }
}

/// An int32 initializer.
pub fn i32_tensor(name: &str, dims: &[i64], values: &[i32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int32 as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// A node with no attributes.
pub fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// An integer attribute.
pub fn int_attr(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

/// An integer attribute of a node, if present.
pub fn get_int_attr(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// A float attribute of a node, if present.
pub fn get_float_attr(node: &NodeProto, name: &str) -> Option<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

/// Index of initializers by name.
pub fn initializer_index(g: &GraphProto) -> HashMap<String, usize> {
    g.initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect()
}

/// For each value name, the nodes (by index) that read it.
pub fn consumers(g: &GraphProto) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for inp in &n.input {
            map.entry(inp.clone()).or_default().push(i);
        }
    }
    map
}

/// For each value name, the node (by index) that writes it.
pub fn producers(g: &GraphProto) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for out in &n.output {
            map.insert(out.clone(), i);
        }
    }
    map
}

/// Renames a value everywhere it appears (node inputs/outputs, graph inputs/outputs).
pub fn rename_value(g: &mut GraphProto, from: &str, to: &str) {
    for n in &mut g.node {
        for v in n.input.iter_mut().chain(n.output.iter_mut()) {
            if v == from {
                *v = to.into();
            }
        }
    }
    for vi in g
        .input
        .iter_mut()
        .chain(g.output.iter_mut())
        .chain(g.value_info.iter_mut())
    {
        if vi.name == from {
            vi.name = to.into();
        }
    }
    for t in &mut g.initializer {
        if t.name == from {
            t.name = to.into();
        }
    }
}

/// Drops nodes whose outputs nobody uses and initializers nobody reads.
pub fn prune(g: &mut GraphProto) {
    loop {
        let graph_outputs: HashSet<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
        let used: HashSet<String> = g
            .node
            .iter()
            .flat_map(|n| n.input.iter().cloned())
            .chain(graph_outputs.iter().map(|s| s.to_string()))
            .collect();
        let before = g.node.len();
        g.node
            .retain(|n| n.output.iter().any(|o| used.contains(o.as_str())));
        if g.node.len() == before {
            g.initializer.retain(|t| used.contains(&t.name));
            return;
        }
    }
}

/// A name not yet used by any value of the graph, derived from `base`.
pub fn fresh_name(taken: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut i = 1;
    while taken.contains(&name) {
        name = format!("{base}_{i}");
        i += 1;
    }
    taken.insert(name.clone());
    name
}

/// Every value name in the graph.
pub fn all_names(g: &GraphProto) -> HashSet<String> {
    let mut s: HashSet<String> = HashSet::new();
    for n in &g.node {
        s.extend(n.input.iter().cloned());
        s.extend(n.output.iter().cloned());
        s.insert(n.name.clone());
    }
    s.extend(g.initializer.iter().map(|t| t.name.clone()));
    s.extend(g.input.iter().map(|t| t.name.clone()));
    s.extend(g.output.iter().map(|t| t.name.clone()));
    s
}

/// Static dims of a graph value info (input or output); `None` for symbolic dims.
pub fn value_dims(vi: &tract_onnx::pb::ValueInfoProto) -> Vec<Option<i64>> {
    use tract_onnx::pb::{tensor_shape_proto::dimension::Value, type_proto};
    let Some(t) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return vec![];
    };
    let type_proto::Value::TensorType(tt) = t;
    tt.shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(Value::DimValue(v)) => Some(*v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Census of operator types, sorted by name (for logs and reports).
pub fn op_histogram(g: &GraphProto) -> Vec<(String, usize)> {
    let mut m: std::collections::BTreeMap<String, usize> = Default::default();
    for n in &g.node {
        *m.entry(n.op_type.clone()).or_default() += 1;
    }
    m.into_iter().collect()
}

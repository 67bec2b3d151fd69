//! Stride-2 depthwise convolutions rewritten as four stride-1 ones on the ONNX graph,
//! before tract optimises it.
//!
//! tract 0.23.9's x86 depthwise kernel is vectorised at stride 1 only: a 3×3 stride-2
//! depthwise convolution runs scalar. In the joint model the four such layers hold 2 % of
//! the multiply-adds and took a quarter of the inference.
//!
//! Splitting the input into its four polyphase components (even or odd rows × even or odd
//! columns) turns one such convolution into four stride-1 convolutions whose kernels are
//! the taps that land on each component (2×2, 2×1, 1×2 and 1×1, taken from the original
//! kernel by strided slices that tract folds into constants); their sum is the original
//! output up to float rounding. Taking the components of the wide expanded tensor costs
//! tract about what it saves, so the rewrite takes them of the block's narrow input and
//! runs the 1×1 expansion and its activation once per component (the same multiply-adds in
//! all). It applies where a 3×3 stride-2 depthwise convolution reads `Conv 1×1 →
//! Clip/Relu`, each read by the next alone, as in MobileNetV2's downsampling blocks; other
//! convolutions are left as they are.
//!
//! Plans split by default on x86-64 only ([`super::PlanOptions`]): on aarch64, whose tract
//! kernel vectorises stride 2 for up to four taps, the split counted more instructions under
//! qemu than it saves (docs/deploy.md).

use std::collections::{BTreeMap, HashMap, HashSet};

use tract_onnx::pb;

/// The input height and width of convolutions, by node name, where tract knows them.
pub type SpatialSizes = HashMap<String, [usize; 2]>;

/// One convolution to rewrite: the nodes it replaces and how each axis reads each
/// component.
struct Site {
    expand: usize,
    act: usize,
    depthwise: usize,
    /// `[rows, columns]`, each `[even, odd]` component.
    taps: [[PhaseTaps; 2]; 2],
}

/// Rewrites every stride-2 depthwise convolution of `model` that has the pattern above and
/// whose input size `sizes` knows; returns how many were rewritten.
pub fn split_strided_depthwise(model: &mut pb::ModelProto, sizes: &SpatialSizes) -> usize {
    let pad_op = model
        .opset_import
        .iter()
        .any(|o| matches!(o.domain.as_str(), "" | "ai.onnx") && o.version >= 11);
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let sites = find_sites(graph, sizes);
    if sites.is_empty() {
        return 0;
    }
    let taken: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().cloned())
        .chain(graph.initializer.iter().map(|t| t.name.clone()))
        .chain(graph.input.iter().map(|v| v.name.clone()))
        .collect();
    let mut names = Names {
        taken,
        consts: BTreeMap::new(),
    };
    let mut replaced: HashMap<usize, Vec<pb::NodeProto>> = HashMap::new();
    let mut dropped = HashSet::new();
    for site in &sites {
        let nodes = rewrite(graph, site, &mut names, pad_op);
        replaced.insert(site.depthwise, nodes);
        dropped.extend([site.expand, site.act]);
    }
    let old = std::mem::take(&mut graph.node);
    for (i, node) in old.into_iter().enumerate() {
        if dropped.contains(&i) {
            continue;
        }
        match replaced.remove(&i) {
            Some(nodes) => graph.node.extend(nodes),
            None => graph.node.push(node),
        }
    }
    graph.initializer.extend(names.consts.into_values());
    sites.len()
}

fn find_sites(graph: &pb::GraphProto, sizes: &SpatialSizes) -> Vec<Site> {
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for name in graph.node.iter().flat_map(|n| n.input.iter()) {
        *readers.entry(name.as_str()).or_default() += 1;
    }
    for out in &graph.output {
        *readers.entry(out.name.as_str()).or_default() += 1;
    }
    let read_once = |name: &str| readers.get(name) == Some(&1);
    let mut sites = Vec::new();
    for (i, dw) in graph.node.iter().enumerate() {
        if !is_conv(dw) || dw.input.len() < 2 {
            continue;
        }
        let group = int(dw, "group").unwrap_or(1);
        let Some([c, 1, 3, 3]) = weight_dims(graph, &producer, &dw.input[1]) else {
            continue;
        };
        if group < 2 || c != group || ints(dw, "strides").as_deref() != Some(&[2, 2]) {
            continue;
        }
        if !matches!(ints(dw, "dilations").as_deref(), None | Some([1, 1])) || !no_auto_pad(dw) {
            continue;
        }
        let pads = ints(dw, "pads").unwrap_or_else(|| vec![0; 4]);
        let [top, left, bottom, right] = pads[..] else {
            continue;
        };
        if [top, left, bottom, right]
            .iter()
            .any(|&p| !(0..=1).contains(&p))
        {
            continue;
        }
        let Some(&act_ix) = producer.get(dw.input[0].as_str()) else {
            continue;
        };
        let act = &graph.node[act_ix];
        if !matches!(act.op_type.as_str(), "Clip" | "Relu") || !read_once(&dw.input[0]) {
            continue;
        }
        let Some(&expand_ix) = act.input.first().and_then(|x| producer.get(x.as_str())) else {
            continue;
        };
        let expand = &graph.node[expand_ix];
        if !is_pointwise(graph, &producer, expand) || !read_once(&act.input[0]) {
            continue;
        }
        let Some(&[h, w]) = sizes.get(&dw.name) else {
            continue;
        };
        let out_len = |n: usize, a: i64, b: i64| (n as i64 + a + b - 3).div_euclid(2) + 1;
        let out = [out_len(h, top, bottom), out_len(w, left, right)];
        if h < 2 || w < 2 || out.iter().any(|&o| o < 1) {
            continue;
        }
        let axis = |len: usize, pad: i64, out: i64| {
            let tap = |phase| phase_taps(len, pad as usize, out as usize, phase);
            Some([tap(0)?, tap(1)?])
        };
        let (Some(rows), Some(cols)) = (axis(h, top, out[0]), axis(w, left, out[1])) else {
            continue;
        };
        sites.push(Site {
            expand: expand_ix,
            act: act_ix,
            depthwise: i,
            taps: [rows, cols],
        });
    }
    sites
}

/// How one axis of a 3-tap stride-2 convolution reads component `phase` (0: the even,
/// 1: the odd input positions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PhaseTaps {
    /// The first kernel tap that lands on the component.
    first: usize,
    /// How many taps land on it (every second one).
    count: usize,
    /// Zero padding the stride-1 convolution over the component needs before and after.
    before: usize,
    after: usize,
    /// Component positions it reads (the last ones may lie past every output's taps).
    keep: usize,
}

/// [`PhaseTaps`] for an axis of `len` input positions, `pad_begin` of padding before them
/// and `out` output positions; `None` if the component is empty.
fn phase_taps(len: usize, pad_begin: usize, out: usize, phase: usize) -> Option<PhaseTaps> {
    let first = (phase + pad_begin) % 2;
    let count = (3 - first).div_ceil(2);
    // Tap k reads input position 2·o − pad_begin + k, i.e. component position
    // o + (k − pad_begin − phase) / 2; the first tap's offset is at most 0.
    let before = (pad_begin + phase - first) / 2;
    let positions = len.checked_sub(phase)?.div_ceil(2);
    // The stride-1 convolution gives keep + before + after − count + 1 values.
    let wanted = (out + count) as i64 - 1 - before as i64;
    let keep = positions.min(usize::try_from(wanted).ok()?);
    (keep >= 1).then_some(PhaseTaps {
        first,
        count,
        before,
        after: wanted as usize - keep,
        keep,
    })
}

/// `pad_op`: the graph's opset has `Pad` with its pads as an input (11 and later).
fn rewrite(
    graph: &pb::GraphProto,
    site: &Site,
    names: &mut Names,
    pad_op: bool,
) -> Vec<pb::NodeProto> {
    let (expand, act, dw) = (
        &graph.node[site.expand],
        &graph.node[site.act],
        &graph.node[site.depthwise],
    );
    let base = if dw.name.is_empty() {
        dw.output[0].clone()
    } else {
        dw.name.clone()
    };
    let axes = names.constant(&[2, 3]);
    let steps = names.constant(&[2, 2]);
    let to_end = names.constant(&[i64::MAX, i64::MAX]);
    let mut nodes = Vec::new();
    let mut parts = Vec::new();
    for (row, col) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let (r, k) = (site.taps[0][row], site.taps[1][col]);
        let tag = format!("{base}.phase{row}{col}");
        let x = names.fresh(&format!("{tag}.input"));
        nodes.push(slice(
            &tag,
            &expand.input[0],
            names.constant(&[row as i64, col as i64]),
            &names.constant(&[(row + 2 * r.keep) as i64, (col + 2 * k.keep) as i64]),
            &axes,
            &steps,
            &x,
        ));
        let mut e = expand.clone();
        e.name = format!("{tag}.expand");
        e.input[0] = x;
        e.output = vec![names.fresh(&format!("{tag}.expanded"))];
        let mut a = act.clone();
        a.name = format!("{tag}.act");
        a.input[0] = e.output[0].clone();
        a.output = vec![names.fresh(&format!("{tag}.activated"))];
        let sliced = names.fresh(&format!("{tag}.kernel"));
        nodes.push(slice(
            &format!("{tag}.kernel"),
            &dw.input[1],
            names.constant(&[r.first as i64, k.first as i64]),
            &to_end,
            &axes,
            &steps,
            &sliced,
        ));
        // tract runs a one-row, two-column depthwise kernel about four times slower than
        // a 2×2 one (measured: 0.93 vs 0.26 ms on the first block), so that component
        // gets a row of zero taps below (read past the component: zero padding).
        let widen = r.count == 1 && k.count == 2 && pad_op;
        let (kernel, rows, below) = if widen {
            let padded = names.fresh(&format!("{tag}.kernel.padded"));
            nodes.push(pb::NodeProto {
                name: format!("{tag}.kernel.pad"),
                op_type: "Pad".into(),
                input: vec![sliced, names.constant(&[0, 0, 0, 0, 0, 0, 1, 0])],
                output: vec![padded.clone()],
                ..Default::default()
            });
            (padded, 2, r.after + 1)
        } else {
            (sliced, r.count, r.after)
        };
        let mut c = dw.clone();
        c.name = format!("{tag}.conv");
        c.input = vec![a.output[0].clone(), kernel];
        if row == 1 && col == 1 {
            c.input.extend(dw.input.get(2).cloned());
        }
        c.output = vec![names.fresh(&format!("{tag}.out"))];
        c.attribute.retain(|at| {
            !matches!(
                at.name.as_str(),
                "strides" | "pads" | "kernel_shape" | "dilations"
            )
        });
        c.attribute.extend([
            attr_ints("strides", &[1, 1]),
            attr_ints("kernel_shape", &[rows as i64, k.count as i64]),
            attr_ints(
                "pads",
                &[r.before, k.before, below, k.after].map(|p| p as i64),
            ),
        ]);
        parts.push(c.output[0].clone());
        nodes.extend([e, a, c]);
    }
    let [p00, p01, p10, p11] = &parts[..] else {
        unreachable!("four components")
    };
    let (upper, lower) = (
        names.fresh(&format!("{base}.sum0")),
        names.fresh(&format!("{base}.sum1")),
    );
    nodes.push(add(&format!("{base}.sum0"), p00, p01, &upper));
    nodes.push(add(&format!("{base}.sum1"), p10, p11, &lower));
    nodes.push(add(&format!("{base}.sum"), &upper, &lower, &dw.output[0]));
    nodes
}

/// Fresh tensor names and the shared int64 constants of the rewritten graph.
struct Names {
    taken: HashSet<String>,
    consts: BTreeMap<Vec<i64>, pb::TensorProto>,
}

impl Names {
    fn fresh(&mut self, want: &str) -> String {
        let mut name = want.to_string();
        let mut n = 1;
        while self.taken.contains(&name) {
            name = format!("{want}.{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    fn constant(&mut self, values: &[i64]) -> String {
        if let Some(t) = self.consts.get(values) {
            return t.name.clone();
        }
        let name = self.fresh(&format!("phase_split.const{}", self.consts.len()));
        self.consts.insert(
            values.to_vec(),
            pb::TensorProto {
                name: name.clone(),
                dims: vec![values.len() as i64],
                data_type: pb::tensor_proto::DataType::Int64 as i32,
                int64_data: values.to_vec(),
                ..Default::default()
            },
        );
        name
    }
}

fn slice(
    name: &str,
    data: &str,
    starts: String,
    ends: &str,
    axes: &str,
    steps: &str,
    out: &str,
) -> pb::NodeProto {
    pb::NodeProto {
        name: name.to_string(),
        op_type: "Slice".into(),
        input: vec![
            data.to_string(),
            starts,
            ends.to_string(),
            axes.to_string(),
            steps.to_string(),
        ],
        output: vec![out.to_string()],
        ..Default::default()
    }
}

fn add(name: &str, a: &str, b: &str, out: &str) -> pb::NodeProto {
    pb::NodeProto {
        name: name.to_string(),
        op_type: "Add".into(),
        input: vec![a.to_string(), b.to_string()],
        output: vec![out.to_string()],
        ..Default::default()
    }
}

/// An ONNX attribute holding integers.
pub(crate) fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn is_conv(n: &pb::NodeProto) -> bool {
    n.op_type == "Conv" && matches!(n.domain.as_str(), "" | "ai.onnx")
}

fn no_auto_pad(n: &pb::NodeProto) -> bool {
    n.attribute
        .iter()
        .find(|a| a.name == "auto_pad")
        .is_none_or(|a| a.s.is_empty() || a.s == b"NOTSET")
}

/// A 1×1, stride-1, unpadded, ungrouped convolution.
fn is_pointwise(
    graph: &pb::GraphProto,
    producer: &HashMap<&str, usize>,
    n: &pb::NodeProto,
) -> bool {
    is_conv(n)
        && n.input.len() >= 2
        && int(n, "group").unwrap_or(1) == 1
        && ints(n, "strides").is_none_or(|s| s.iter().all(|&v| v == 1))
        && ints(n, "pads").is_none_or(|p| p.iter().all(|&v| v == 0))
        && no_auto_pad(n)
        && matches!(
            weight_dims(graph, producer, &n.input[1]),
            Some([_, _, 1, 1])
        )
}

/// The dimensions of a weight: an initializer, or the int8 initializer a
/// `DequantizeLinear` reads.
fn weight_dims(
    graph: &pb::GraphProto,
    producer: &HashMap<&str, usize>,
    name: &str,
) -> Option<[i64; 4]> {
    let name = match producer.get(name) {
        Some(&i) if graph.node[i].op_type == "DequantizeLinear" => graph.node[i].input.first()?,
        Some(_) => return None,
        None => name,
    };
    let t = graph.initializer.iter().find(|t| t.name == *name)?;
    t.dims.as_slice().try_into().ok()
}

fn int(n: &pb::NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn ints(n: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::prelude::*;

    fn lcg(seed: u32) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        }
    }

    fn f32_tensor(name: &str, dims: &[i64], rand: &mut impl FnMut() -> f32) -> pb::TensorProto {
        let n = dims.iter().product::<i64>() as usize;
        pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: (0..n).map(|_| rand()).collect(),
            ..Default::default()
        }
    }

    fn node(
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<pb::AttributeProto>,
    ) -> pb::NodeProto {
        pb::NodeProto {
            name: format!("{op}_{output}"),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    fn value_info(name: &str) -> pb::ValueInfoProto {
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `x → Conv 1×1 (3 → 6) → Clip(0, 6) → depthwise 3×3 stride 2 (pads) → y`, the
    /// depthwise kernel stored as int8 + `DequantizeLinear` when `int8`.
    fn block(pads: [i64; 4], int8: bool, act_also_output: bool) -> pb::ModelProto {
        let mut rand = lcg(pads.iter().sum::<i64>() as u32 + 7);
        let mut init = vec![
            f32_tensor("we", &[6, 3, 1, 1], &mut rand),
            f32_tensor("be", &[6], &mut rand),
            f32_tensor("bd", &[6], &mut rand),
            pb::TensorProto {
                name: "lo".into(),
                data_type: pb::tensor_proto::DataType::Float as i32,
                float_data: vec![0.0],
                ..Default::default()
            },
            pb::TensorProto {
                name: "hi".into(),
                data_type: pb::tensor_proto::DataType::Float as i32,
                float_data: vec![6.0],
                ..Default::default()
            },
        ];
        let mut nodes = vec![
            node("Conv", &["x", "we", "be"], "e", vec![]),
            node("Clip", &["e", "lo", "hi"], "a", vec![]),
        ];
        if int8 {
            init.push(pb::TensorProto {
                name: "wq".into(),
                dims: vec![6, 1, 3, 3],
                data_type: pb::tensor_proto::DataType::Int8 as i32,
                int32_data: (0..54).map(|i| (i * 37 % 255) - 127).collect(),
                ..Default::default()
            });
            init.push(pb::TensorProto {
                name: "ws".into(),
                data_type: pb::tensor_proto::DataType::Float as i32,
                float_data: vec![0.01],
                ..Default::default()
            });
            nodes.push(node("DequantizeLinear", &["wq", "ws"], "wd", vec![]));
        } else {
            init.push(f32_tensor("wd", &[6, 1, 3, 3], &mut rand));
        }
        let attrs = vec![
            pb::AttributeProto {
                name: "group".into(),
                r#type: pb::attribute_proto::AttributeType::Int as i32,
                i: 6,
                ..Default::default()
            },
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &pads),
        ];
        let mut dw = node("Conv", &["a", "wd", "bd"], "y", attrs);
        dw.name = "depthwise".into();
        nodes.push(dw);
        let mut output = vec![value_info("y")];
        if act_also_output {
            output.push(value_info("a"));
        }
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(pb::GraphProto {
                name: "block".into(),
                node: nodes,
                initializer: init,
                input: vec![value_info("x")],
                output,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Splits `proto` (when `split`) and runs it on a generated `[1, 3, h, w]` input:
    /// the first output's shape and values, and how many convolutions were split.
    fn run(
        mut proto: pb::ModelProto,
        h: usize,
        w: usize,
        split: bool,
    ) -> (Vec<usize>, Vec<f32>, usize) {
        let onnx = tract_onnx::onnx();
        let typed = |proto: &pb::ModelProto| {
            onnx.model_for_proto_model(proto)?
                .with_input_fact(0, f32::fact([1, 3, h, w]).into())?
                .into_typed()
        };
        let sizes = super::super::conv_input_sizes(&typed(&proto).unwrap());
        let count = if split {
            split_strided_depthwise(&mut proto, &sizes)
        } else {
            0
        };
        let plan = typed(&proto)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let mut rand = lcg(99);
        let x = Tensor::from_shape(
            &[1, 3, h, w],
            &(0..3 * h * w).map(|_| rand()).collect::<Vec<_>>(),
        )
        .unwrap();
        let out = plan.run(tvec![x.into()]).unwrap();
        let y = out[0].to_plain_array_view::<f32>().unwrap();
        (y.shape().to_vec(), y.iter().copied().collect(), count)
    }

    #[test]
    fn four_stride_one_convolutions_equal_the_strided_one() {
        for pads in [
            [0, 0, 1, 1],
            [1, 1, 1, 1],
            [0, 1, 1, 0],
            [1, 0, 0, 1],
            [0, 0, 0, 0],
        ] {
            for (h, w) in [(8, 8), (9, 7), (3, 5), (11, 12)] {
                for int8 in [false, true] {
                    for opset10 in [false, true] {
                        // Opset 10 has no `Pad` taking its pads as an input: no widened kernel.
                        let model = || {
                            let mut m = block(pads, int8, false);
                            if opset10 {
                                m.opset_import[0].version = 10;
                                let g = m.graph.as_mut().unwrap();
                                let clip = g.node.iter_mut().find(|n| n.op_type == "Clip").unwrap();
                                clip.op_type = "Relu".into();
                                clip.input.truncate(1);
                            }
                            m
                        };
                        let (shape, want, _) = run(model(), h, w, false);
                        let (got_shape, got, count) = run(model(), h, w, true);
                        let case =
                            format!("pads {pads:?}, {h}×{w}, int8 {int8}, opset 10 {opset10}");
                        assert_eq!(count, 1, "{case}: not split");
                        assert_eq!(got_shape, shape, "{case}");
                        let diff = want
                            .iter()
                            .zip(&got)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0.0, f32::max);
                        assert!(diff < 1e-5, "{case}: differs by {diff}");
                    }
                }
            }
        }
    }

    #[test]
    fn an_expansion_read_elsewhere_is_left_alone() {
        let (_, _, count) = run(block([0, 0, 1, 1], false, true), 8, 8, true);
        assert_eq!(count, 0);
        // Padding of two (a component no output reads) is not handled.
        let (_, _, count) = run(block([2, 1, 0, 2], false, false), 8, 8, true);
        assert_eq!(count, 0);
        // Without tract's sizes nothing is split either.
        assert_eq!(
            split_strided_depthwise(&mut block([0, 0, 1, 1], false, false), &SpatialSizes::new()),
            0
        );
    }
}

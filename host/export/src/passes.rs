//! Graph clean-up passes on the ONNX protobuf, run after burn-onnx's export:
//! meaningful input/output names, `relu(x) − relu(x − 6)` back to `Clip(0, 6)`, batch norm
//! folded into the preceding convolution, and dead values pruned.

use std::collections::HashSet;

use tract_onnx::pb::{GraphProto, ModelProto, NodeProto};

use crate::ExportError;
use crate::proto::{self, consumers, fresh_name, initializer_index, producers};

/// What [`clean_up`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// `relu − relu` patterns replaced by `Clip`.
    pub clips: usize,
    /// Batch norms folded into convolutions.
    pub folded_bn: usize,
    /// Nodes in the final graph.
    pub nodes: usize,
}

/// Runs every pass: names, Clip, BN folding, pruning. Also stamps producer metadata.
pub fn clean_up(
    model: &mut ModelProto,
    input_name: &str,
    output_names: &[&str],
) -> Result<PassReport, ExportError> {
    model.producer_name = "sleeve-export".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    let g = proto::graph_mut(model)?;
    rename_io(g, input_name, output_names)?;
    let clips = relu6_to_clip(g);
    let folded_bn = fold_batch_norm(g)?;
    proto::prune(g);
    Ok(PassReport {
        clips,
        folded_bn,
        nodes: g.node.len(),
    })
}

/// Renames the single graph input and the graph outputs (in order).
pub fn rename_io(
    g: &mut GraphProto,
    input_name: &str,
    output_names: &[&str],
) -> Result<(), ExportError> {
    if g.input.len() != 1 {
        return Err(ExportError::Graph(format!(
            "expected one graph input, found {}",
            g.input.len()
        )));
    }
    if g.output.len() != output_names.len() {
        return Err(ExportError::Graph(format!(
            "model has {} outputs but {} names were given ({output_names:?})",
            g.output.len(),
            output_names.len()
        )));
    }
    let names = proto::all_names(g);
    let mut renames: Vec<(String, String)> = vec![(g.input[0].name.clone(), input_name.into())];
    for (o, n) in g.output.iter().zip(output_names) {
        renames.push((o.name.clone(), n.to_string()));
    }
    let wanted: HashSet<&str> = renames.iter().map(|(_, n)| n.as_str()).collect();
    if wanted.len() != renames.len() {
        return Err(ExportError::Graph(
            "input/output names must be distinct".into(),
        ));
    }
    for (from, to) in &renames {
        if from != to && names.contains(to.as_str()) && !renames.iter().any(|(f, _)| f == to) {
            return Err(ExportError::Graph(format!(
                "cannot rename '{from}' to '{to}': the name is taken"
            )));
        }
    }
    // Two steps through unique temporaries, so swaps cannot collide.
    for (i, (from, _)) in renames.iter().enumerate() {
        proto::rename_value(g, from, &format!("__sleeve_io_{i}"));
    }
    for (i, (_, to)) in renames.iter().enumerate() {
        proto::rename_value(g, &format!("__sleeve_io_{i}"), to);
    }
    Ok(())
}

/// Scalar value of an initializer (any shape with exactly one element), if it is one.
fn scalar_initializer(g: &GraphProto, name: &str) -> Option<f32> {
    let t = g.initializer.iter().find(|t| t.name == name)?;
    let v = proto::tensor_f32(t).ok()?;
    (v.len() == 1).then(|| v[0])
}

/// Replaces `Sub(Relu(x), Relu(Sub(x, 6)))` (how ReLU6 is written so burn can export it)
/// with `Clip(x, 0, 6)`. Returns how many were replaced.
pub fn relu6_to_clip(g: &mut GraphProto) -> usize {
    let mut count = 0;
    loop {
        let prod = producers(g);
        let cons = consumers(g);
        let outputs: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
        let single_use = |v: &str| cons.get(v).map(|c| c.len()) == Some(1) && !outputs.contains(v);
        let mut found = None;
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type != "Sub" || n.input.len() != 2 {
                continue;
            }
            let (Some(&ia), Some(&ib)) = (prod.get(&n.input[0]), prod.get(&n.input[1])) else {
                continue;
            };
            let (a, b) = (&g.node[ia], &g.node[ib]);
            if a.op_type != "Relu" || b.op_type != "Relu" {
                continue;
            }
            let Some(&is) = prod.get(&b.input[0]) else {
                continue;
            };
            let s = &g.node[is];
            if s.op_type != "Sub"
                || s.input.len() != 2
                || s.input[0] != a.input[0]
                || scalar_initializer(g, &s.input[1]) != Some(6.0)
            {
                continue;
            }
            if !(single_use(&a.output[0]) && single_use(&b.output[0]) && single_use(&s.output[0])) {
                continue;
            }
            found = Some((i, ia, ib, is));
            break;
        }
        let Some((i, ia, ib, is)) = found else {
            return count;
        };
        let x = g.node[ia].input[0].clone();
        let y = g.node[i].output[0].clone();
        let mut taken = proto::all_names(g);
        let lo = fresh_name(&mut taken, "clip_min_0");
        let hi = fresh_name(&mut taken, "clip_max_6");
        let name = fresh_name(&mut taken, &format!("{}_relu6", g.node[i].name));
        if !g.initializer.iter().any(|t| t.name == lo) {
            g.initializer.push(proto::f32_tensor(&lo, &[], &[0.0]));
            g.initializer.push(proto::f32_tensor(&hi, &[], &[6.0]));
        }
        let clip = proto::node(&name, "Clip", &[&x, &lo, &hi], &[&y]);
        // Replace the final Sub in place (keeps topological order), drop the other three.
        g.node[i] = clip;
        let mut dead = [ia, ib, is];
        dead.sort_unstable();
        for d in dead.into_iter().rev() {
            g.node.remove(d);
        }
        count += 1;
    }
}

fn conv_out_channels(g: &GraphProto, conv: &NodeProto) -> Option<usize> {
    let idx = initializer_index(g);
    let w = &g.initializer[*idx.get(&conv.input[1])?];
    (w.dims.len() == 4).then(|| w.dims[0] as usize)
}

/// Folds `BatchNormalization` (inference form) into the `Conv` that feeds it, when the
/// conv output has no other reader and all parameters are initializers. Returns the count.
pub fn fold_batch_norm(g: &mut GraphProto) -> Result<usize, ExportError> {
    let mut count = 0;
    loop {
        let prod = producers(g);
        let cons = consumers(g);
        let idx = initializer_index(g);
        let outputs: HashSet<String> = g.output.iter().map(|o| o.name.clone()).collect();
        let mut found = None;
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type != "BatchNormalization" || n.input.len() != 5 || n.output.len() != 1 {
                continue;
            }
            let Some(&ic) = prod.get(&n.input[0]) else {
                continue;
            };
            let c = &g.node[ic];
            if c.op_type != "Conv"
                || cons.get(&c.output[0]).map(|v| v.len()) != Some(1)
                || outputs.contains(&c.output[0])
                || !n.input[1..].iter().all(|p| idx.contains_key(p))
                || !idx.contains_key(&c.input[1])
                || c.input.get(2).is_some_and(|b| !idx.contains_key(b))
            {
                continue;
            }
            found = Some((i, ic));
            break;
        }
        let Some((ib, ic)) = found else {
            return Ok(count);
        };
        let bn = g.node[ib].clone();
        let conv = g.node[ic].clone();
        let eps = proto::get_float_attr(&bn, "epsilon").unwrap_or(1e-5);
        let get = |name: &str| proto::tensor_f32(&g.initializer[idx[name]]);
        let (gamma, beta, mean, var) = (
            get(&bn.input[1])?,
            get(&bn.input[2])?,
            get(&bn.input[3])?,
            get(&bn.input[4])?,
        );
        let w_t = &g.initializer[idx[&conv.input[1]]];
        let w_dims = w_t.dims.clone();
        let mut w = proto::tensor_f32(w_t)?;
        let out_ch = conv_out_channels(g, &conv)
            .ok_or_else(|| ExportError::Graph(format!("conv '{}' weight is not 4-D", conv.name)))?;
        if [gamma.len(), beta.len(), mean.len(), var.len()] != [out_ch; 4] {
            return Err(ExportError::Graph(format!(
                "batch norm '{}' has parameters for {} channels, conv has {out_ch}",
                bn.name,
                gamma.len()
            )));
        }
        let mut bias = match conv.input.get(2) {
            Some(b) => get(b)?,
            None => vec![0.0; out_ch],
        };
        let per = w.len() / out_ch;
        for o in 0..out_ch {
            let s = gamma[o] / (var[o] + eps).sqrt();
            for v in &mut w[o * per..(o + 1) * per] {
                *v *= s;
            }
            bias[o] = (bias[o] - mean[o]) * s + beta[o];
        }
        let mut taken = proto::all_names(g);
        let w_name = fresh_name(&mut taken, &format!("{}.bnfold", conv.input[1]));
        let b_name = fresh_name(&mut taken, &format!("{}.bnfold_bias", conv.input[1]));
        g.initializer.push(proto::f32_tensor(&w_name, &w_dims, &w));
        g.initializer
            .push(proto::f32_tensor(&b_name, &[out_ch as i64], &bias));
        let new_conv = &mut g.node[ic];
        new_conv.input = vec![conv.input[0].clone(), w_name, b_name];
        new_conv.output = vec![bn.output[0].clone()];
        g.node.remove(ib);
        proto::prune(g);
        count += 1;
    }
}

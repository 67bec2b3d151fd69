//! Where tract's inference time goes: per-operator time of one ONNX model, summed over
//! runs on a generated input, as JSON (by operator type, and the slowest
//! `OP_PROFILE_NODES` nodes, default 20). Stride-2 depthwise convolutions are split as
//! the kiosk does on x86-64 (`sleeve_edge::plan::split_strided_depthwise`) unless
//! `--strided-depthwise keep`.
//!
//!     cargo run --release -p sleeve-edge --example op_profile -- MODEL.onnx SIZE [RUNS] [--strided-depthwise keep]
use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail};
use sleeve_edge::plan::typed_for_input;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimpleState, eval};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keep = args
        .windows(2)
        .any(|w| w[0] == "--strided-depthwise" && w[1] == "keep");
    let pos: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with("--") && !matches!(a.as_str(), "keep" | "split"))
        .collect();
    let (Some(path), Some(size)) = (pos.first(), pos.get(1)) else {
        bail!("usage: op_profile MODEL.onnx SIZE [RUNS] [--strided-depthwise keep]");
    };
    let s: usize = size.parse().with_context(|| format!("SIZE {size:?}"))?;
    let runs: usize = match pos.get(2) {
        Some(r) => r.parse().with_context(|| format!("RUNS {r:?}"))?,
        None => 20,
    };
    anyhow::ensure!(runs > 0 && s > 0, "SIZE and RUNS must be positive");
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_path(path.as_str())
        .with_context(|| format!("reading {path}"))?;
    let model = onnx.model_for_proto_model(&proto)?;
    let (model, split) = typed_for_input(&onnx, proto, model, s as u32, !keep)?;
    let plan = model.into_optimized()?.into_runnable()?;
    let input: Tensor =
        tract_ndarray::Array4::<f32>::from_shape_fn((1, 3, s, s), |(_, c, y, x)| {
            ((x * 7 + y * 13 + c * 5) % 255) as f32 / 127.5 - 1.0
        })
        .into();
    // node id -> (operator, node name, total ms)
    let mut by_node: BTreeMap<usize, (String, String, f64)> = BTreeMap::new();
    let mut total = 0.0;
    let warm_up = 2;
    for r in 0..runs + warm_up {
        let mut state = SimpleState::new(&plan)?;
        let t0 = Instant::now();
        state.run_plan_with_eval(tvec!(input.clone().into()), |ctx, st, node, inputs| {
            let t = Instant::now();
            let out = eval(ctx, st, node, inputs);
            if r >= warm_up {
                let e = by_node
                    .entry(node.id)
                    .or_insert_with(|| (node.op().name().to_string(), node.name.clone(), 0.0));
                e.2 += t.elapsed().as_secs_f64() * 1e3;
            }
            out
        })?;
        if r >= warm_up {
            total += t0.elapsed().as_secs_f64() * 1e3;
        }
    }
    let per_run = |ms: f64| ms / runs as f64;
    let mut by_op: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for (op, _, ms) in by_node.values() {
        let e = by_op.entry(op).or_default();
        e.0 += 1;
        e.1 += per_run(*ms);
    }
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    let mut nodes: Vec<_> = by_node.values().collect();
    nodes.sort_by(|a, b| b.2.total_cmp(&a.2));
    let report = serde_json::json!({
        "model": path,
        "input_size": s,
        "runs": runs,
        "strided_depthwise_split": split,
        "ms_per_run": per_run(total),
        "nodes": by_node.len(),
        "by_operator": ops.iter().map(|(op, (n, ms))| serde_json::json!({
            "op": op, "nodes": n, "ms": ms,
        })).collect::<Vec<_>>(),
        "slowest_nodes": nodes.iter().take(std::env::var("OP_PROFILE_NODES").ok().and_then(|n| n.parse().ok()).unwrap_or(20)).map(|(op, name, ms)| serde_json::json!({
            "op": op, "node": name, "ms": per_run(*ms),
        })).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

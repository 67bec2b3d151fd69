//! tract plans: an ONNX file of a verified bundle loaded, optimised once, checked against the
//! outputs the manifest promises, and run on one preprocessed input.

use std::path::Path;
use std::sync::Arc;

use sleeve_shared::PreprocessConfig;
use tract_onnx::prelude::*;

use crate::error::{EdgeError, Result};

mod phase_split;
#[cfg(feature = "testkit")]
pub(crate) use phase_split::attr_ints;
use phase_split::{SpatialSizes, split_strided_depthwise};

/// An optimised tract plan and the element type its input takes (f16 for `--f16` plans),
/// resolved once at load.
#[derive(Clone)]
pub struct Plan {
    runnable: Arc<TypedRunnableModel>,
    input_type: DatumType,
}

/// How tract plans are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Inference threads (> 1 needs the `multithread` feature).
    pub threads: usize,
    /// Run in half precision (tract's `f32_to_f16` transform): for ARM cores with fp16
    /// arithmetic (e.g. Cortex-A76, Raspberry Pi 5); elsewhere f16 is emulated and slow.
    pub half: bool,
    /// Rewrite stride-2 depthwise convolutions as four stride-1 ones before tract
    /// optimises the graph ([`split_strided_depthwise`]): tract's x86 kernel runs the
    /// stride-2 form scalar. The same outputs up to float rounding. Default: on x86-64
    /// only (on aarch64 it costs 6 % more instructions per inference, counted under qemu).
    pub split_strided_depthwise: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            half: false,
            split_strided_depthwise: cfg!(target_arch = "x86_64"),
        }
    }
}

/// What a bundle's manifest says a model file produces: checked at load so that a wrong
/// or swapped file gets "this file has outputs X, the manifest says Y", not tract internals.
#[derive(Clone, Debug)]
pub struct ExpectedOutputs {
    /// Output names, in order, as listed in the manifest.
    pub names: Vec<String>,
    /// Number of values of each output (e.g. `[labels]`, or `[4·A, A]`).
    pub lens: Vec<usize>,
}

/// Builds an optimised, runnable tract plan for a `[1, 3, S, S]` f32 input.
pub fn load_plan(path: &Path, input_size: u32, opts: PlanOptions) -> Result<Plan> {
    load_plan_checked(path, input_size, opts, None)
}

fn outputs_mismatch(path: &Path, have: &str, expect: &ExpectedOutputs) -> EdgeError {
    EdgeError::Model {
        path: path.to_path_buf(),
        message: format!(
            "this file has outputs {have}, the manifest says [{}] with {:?} values: \
             wrong or swapped model file?",
            expect.names.join(", "),
            expect.lens
        ),
    }
}

/// Like [`load_plan`], first checking the file's output names (and, once typed, their
/// sizes) against `expect`.
pub fn load_plan_checked(
    path: &Path,
    input_size: u32,
    opts: PlanOptions,
    expect: Option<&ExpectedOutputs>,
) -> Result<Plan> {
    let err = |e: TractError| EdgeError::Model {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    };
    let onnx = tract_onnx::onnx();
    let proto = onnx.proto_model_for_path(path).map_err(err)?;
    let model = onnx.model_for_proto_model(&proto).map_err(err)?;
    if let Some(expect) = expect {
        let names: Vec<String> = model
            .output_outlets()
            .map_err(err)?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .unwrap_or(model.node(o.node).name.as_str())
                    .to_string()
            })
            .collect();
        if names != expect.names {
            return Err(outputs_mismatch(
                path,
                &format!("[{}]", names.join(", ")),
                expect,
            ));
        }
    }
    let (mut model, split) = typed_for_input(
        &onnx,
        proto,
        model,
        input_size,
        opts.split_strided_depthwise,
    )
    .map_err(err)?;
    if split > 0 {
        tracing::debug!(
            model = %path.display(),
            split,
            "stride-2 depthwise convolutions split into stride-1 ones for tract"
        );
    }
    if opts.half {
        let to_f16 = tract_onnx::tract_core::transform::get_transform("f32_to_f16")
            .map_err(err)?
            .ok_or_else(|| EdgeError::Model {
                path: path.to_path_buf(),
                message: "this tract has no f32_to_f16 transform".into(),
            })?;
        model = to_f16.transform_into(model).map_err(err)?;
    }
    if let Some(expect) = expect {
        let lens: Vec<Option<usize>> = (0..model.output_outlets().map_err(err)?.len())
            .map(|i| {
                model
                    .output_fact(i)
                    .ok()
                    .and_then(|f| f.shape.as_concrete().map(|d| d.iter().product()))
            })
            .collect();
        // Compared as multisets: the detector's outputs are identified by size.
        let sorted = |mut v: Vec<usize>| {
            v.sort_unstable();
            v
        };
        let known: Option<Vec<usize>> = lens.iter().copied().collect();
        if known.is_some_and(|l| sorted(l) != sorted(expect.lens.clone())) {
            let have: Vec<String> = lens
                .iter()
                .map(|l| l.map_or("?".into(), |n| n.to_string()))
                .collect();
            return Err(outputs_mismatch(
                path,
                &format!("with value counts [{}]", have.join(", ")),
                expect,
            ));
        }
    }
    let model = model.into_optimized().map_err(err)?;
    let input_type = model.input_fact(0).map_err(err)?.datum_type;
    let options = RunOptions {
        executor: executor(opts.threads.max(1)),
        ..RunOptions::default()
    };
    let runnable = model.into_runnable_with_options(&options).map_err(err)?;
    Ok(Plan {
        runnable,
        input_type,
    })
}

/// `model` (parsed from `proto`) typed for a `[1, 3, S, S]` f32 input; when `split`, its
/// stride-2 depthwise convolutions are first split ([`split_strided_depthwise`], which
/// needs the typed sizes) and the rewritten `proto` parsed and typed again. Returns the
/// typed model and how many convolutions were split.
pub fn typed_for_input(
    onnx: &tract_onnx::Onnx,
    mut proto: tract_onnx::pb::ModelProto,
    model: InferenceModel,
    input_size: u32,
    split: bool,
) -> TractResult<(TypedModel, usize)> {
    let s = input_size as usize;
    let typed = |model: InferenceModel| {
        model
            .with_input_fact(0, f32::fact([1, 3, s, s]).into())?
            .into_typed()
    };
    let model = typed(model)?;
    if !split {
        return Ok((model, 0));
    }
    let count = split_strided_depthwise(&mut proto, &conv_input_sizes(&model));
    if count == 0 {
        return Ok((model, 0));
    }
    drop(model); // one graph in memory at a time
    Ok((typed(onnx.model_for_proto_model(&proto)?)?, count))
}

/// The input height and width of every convolution of a typed (not yet optimised) model
/// whose input shape is known, by node name: what [`split_strided_depthwise`] needs.
fn conv_input_sizes(model: &TypedModel) -> SpatialSizes {
    model
        .nodes()
        .iter()
        .filter(|n| n.op_is::<tract_onnx::tract_core::ops::cnn::Conv>())
        .filter_map(|n| {
            let shape = model
                .outlet_fact(*n.inputs.first()?)
                .ok()?
                .shape
                .as_concrete()?;
            match *shape {
                [_, _, h, w] => Some((n.name.clone(), [h, w])),
                _ => None,
            }
        })
        .collect()
}

#[cfg(feature = "multithread")]
fn executor(threads: usize) -> Option<multithread::Executor> {
    (threads > 1).then(|| multithread::Executor::multithread(threads))
}

#[cfg(not(feature = "multithread"))]
fn executor(threads: usize) -> Option<multithread::Executor> {
    if threads > 1 {
        tracing::warn!(
            threads,
            "built without the `multithread` feature: running single-threaded"
        );
    }
    None
}

/// True when this build can run tract multithreaded.
pub const MULTITHREAD: bool = cfg!(feature = "multithread");

pub(crate) fn run_plan(
    plan: &Plan,
    cfg: &PreprocessConfig,
    input: Vec<f32>,
    model: &'static str,
) -> Result<TVec<TValue>> {
    let err = |e: TractError| EdgeError::Inference {
        model,
        message: format!("{e:#}"),
    };
    let tensor = Tensor::from_shape(&cfg.shape(), &input).map_err(err)?;
    // A half-precision plan takes f16: convert at the boundary.
    let tensor = if plan.input_type == f32::datum_type() {
        tensor
    } else {
        tensor
            .cast_to_dt(plan.input_type)
            .map_err(err)?
            .into_owned()
    };
    plan.runnable.run(tvec![tensor.into()]).map_err(err)
}

/// Runs `plan` on one preprocessed input and returns every output as f32 values.
pub(crate) fn run_values(
    plan: &Plan,
    cfg: &PreprocessConfig,
    input: Vec<f32>,
    model: &'static str,
) -> Result<Vec<Vec<f32>>> {
    run_plan(plan, cfg, input, model)?
        .iter()
        .map(|v| values(v, model))
        .collect()
}

pub(crate) fn values(v: &TValue, model: &'static str) -> Result<Vec<f32>> {
    let err = |e: TractError| EdgeError::Inference {
        model,
        message: format!("output is not a float tensor: {e:#}"),
    };
    let v = v.cast_to::<f32>().map_err(err)?;
    v.to_plain_array_view::<f32>()
        .map(|a| a.iter().copied().collect())
        .map_err(err)
}

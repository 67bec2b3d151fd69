//! The export pipeline for one model: trace in burn, clean the graph up, prove parity
//! with burn in tract, and derive the int8 forms.

use burn::module::Module;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use tracing::info;
use tract_onnx::pb::ModelProto;

use crate::burn_export::{ModelOutputs, export_raw, run_burn};
use crate::parity::{Agreement, compare};
use crate::passes::{PassReport, clean_up};
use crate::quant::calib::{RangeMethod, calibrate};
use crate::quant::full::{FullReport, calibration_tensors, quantize_full};
use crate::quant::weights::{WeightQuantStats, quantize_weights};
use crate::runtime::{F32Tensor, TractModel};
use crate::{ExportError, proto};

/// Default burn-vs-tract tolerance on logits.
pub const PARITY_TOLERANCE: f32 = 1e-4;

/// What to export: graph names and input shape.
#[derive(Clone, Debug)]
pub struct ExportSpec {
    /// Name of the graph input (`"image"`).
    pub input_name: String,
    /// Names of the graph outputs, in forward-output order.
    pub output_names: Vec<String>,
    /// Static input shape `[1, 3, S, S]`.
    pub input_shape: [usize; 4],
}

impl ExportSpec {
    /// The classifier: `image` → `logits`.
    pub fn classifier(size: usize) -> Self {
        Self {
            input_name: "image".into(),
            output_names: vec!["logits".into()],
            input_shape: [1, 3, size, size],
        }
    }

    /// The detector: `image` → `boxes`, `logits`.
    pub fn detector(size: usize) -> Self {
        Self {
            input_name: "image".into(),
            output_names: vec!["boxes".into(), "logits".into()],
            input_shape: [1, 3, size, size],
        }
    }
}

/// An exported, cleaned-up and parity-checked f32 model.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The graph.
    pub model: ModelProto,
    /// Its serialization.
    pub bytes: Vec<u8>,
    /// What the clean-up passes did.
    pub passes: PassReport,
    /// burn vs tract on the parity inputs.
    pub parity: Agreement,
}

/// Exports `module` with `forward`, cleans the graph up and checks that tract reproduces
/// burn on `parity_inputs` within `tolerance` (max abs diff on every output); fails with
/// [`ExportError::Parity`] otherwise.
pub fn export_checked<M, O, F>(
    module: &M,
    spec: &ExportSpec,
    forward: F,
    parity_inputs: &[F32Tensor],
    tolerance: f32,
) -> Result<Exported, ExportError>
where
    M: Module,
    O: ModelOutputs,
    F: Fn(&M, Tensor<4>) -> O,
{
    // burn first: tracing initialises lazy parameters on the capture device, and burn cannot
    // move tensors back from it, so the reference outputs must exist before the trace.
    let reference = parity_inputs
        .iter()
        .map(|x| run_burn(module, x, &forward))
        .collect::<Result<Vec<_>, ExportError>>()?;
    let raw = export_raw(module, spec.input_shape, &forward)?;
    let mut model = proto::decode(&raw)?;
    let names: Vec<&str> = spec.output_names.iter().map(String::as_str).collect();
    let passes = clean_up(&mut model, &spec.input_name, &names)?;
    let bytes = proto::encode(&model);
    info!(
        clips = passes.clips,
        folded_bn = passes.folded_bn,
        nodes = passes.nodes,
        bytes = bytes.len(),
        "exported ONNX graph"
    );
    let tract = TractModel::load(&bytes)?;
    let pairs = reference
        .into_iter()
        .zip(parity_inputs)
        .map(|(burn_out, x)| Ok((burn_out, tract.run(x)?)))
        .collect::<Result<Vec<_>, ExportError>>()?;
    let parity = compare(&pairs)?;
    if parity.worst() > tolerance || parity.worst().is_nan() {
        return Err(ExportError::Parity {
            max_abs_diff: parity.worst(),
            tolerance,
        });
    }
    info!(
        max_abs_diff = parity.worst(),
        inputs = parity.inputs,
        "burn vs tract parity"
    );
    Ok(Exported {
        model,
        bytes,
        passes,
        parity,
    })
}

/// Weight-only int8 form of an f32 graph. Returns the graph and how its weights were
/// quantized.
pub fn int8_weights(model: &ModelProto) -> Result<(ModelProto, WeightQuantStats), ExportError> {
    let mut m = model.clone();
    let n = quantize_weights(proto::graph_mut(&mut m)?, &Default::default())?;
    Ok((m, n))
}

/// Calibration settings of the full-integer form.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FullIntReport {
    /// Convs rewritten to QLinearConv.
    pub convs: usize,
    /// Activations fused into conv output ranges.
    pub fused_activations: usize,
    /// Float → uint8 boundaries.
    pub quantize_nodes: usize,
    /// Remaining weights (MatMul) stored as int8 + DequantizeLinear.
    pub int8_weight_only: usize,
}

impl From<(FullReport, WeightQuantStats)> for FullIntReport {
    fn from((r, w): (FullReport, WeightQuantStats)) -> Self {
        Self {
            convs: r.convs,
            fused_activations: r.fused_activations,
            quantize_nodes: r.quantize_nodes,
            int8_weight_only: w.total(),
        }
    }
}

/// Full-integer int8 form of an f32 graph, calibrated on `calib_inputs`.
pub fn int8_full(
    model: &ModelProto,
    calib_inputs: &[F32Tensor],
    method: RangeMethod,
    progress: &indicatif::ProgressBar,
) -> Result<(ModelProto, FullIntReport), ExportError> {
    let tensors = calibration_tensors(proto::graph(model)?);
    let ranges = calibrate(model, &tensors, calib_inputs, method, progress)?;
    let mut m = model.clone();
    let g = proto::graph_mut(&mut m)?;
    let full = quantize_full(g, &ranges)?;
    let w = quantize_weights(g, &Default::default())?;
    Ok((m, (full, w).into()))
}

//! Running ONNX bytes in tract (the edge runtime): load, optimize, run on f32 tensors.

use std::sync::Arc;
use std::time::Instant;

use tract_onnx::prelude::*;

use crate::ExportError;

/// An f32 tensor with its shape (row-major), as passed between burn, tract and files.
#[derive(Clone, Debug, PartialEq)]
pub struct F32Tensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

impl F32Tensor {
    /// Wraps values with a shape; fails when the element count does not match.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, ExportError> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(ExportError::Shape(format!(
                "{} values for shape {shape:?} ({n} expected)",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// Largest absolute element-wise difference; `f32::INFINITY` when shapes differ.
    pub fn max_abs_diff(&self, other: &Self) -> f32 {
        if self.shape != other.shape {
            return f32::INFINITY;
        }
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| {
                if a.is_nan() || b.is_nan() {
                    f32::INFINITY
                } else {
                    (a - b).abs()
                }
            })
            .fold(0.0, f32::max)
    }
}

type Plan = Arc<TypedRunnableModel>;

/// An ONNX model loaded and optimized by tract, ready to run.
pub struct TractModel {
    plan: Plan,
}

fn tract_err(what: &str, e: impl std::fmt::Display) -> ExportError {
    ExportError::Tract(format!("{what}: {e:#}"))
}

impl TractModel {
    /// Loads serialized ONNX bytes, optimizes them and builds an execution plan.
    pub fn load(bytes: &[u8]) -> Result<Self, ExportError> {
        let mut reader = bytes;
        let model = tract_onnx::onnx()
            .model_for_read(&mut reader)
            .map_err(|e| tract_err("tract cannot parse the ONNX model", e))?;
        let typed = model
            .into_optimized()
            .map_err(|e| tract_err("tract cannot optimize the ONNX model", e))?;
        let plan = typed
            .into_runnable()
            .map_err(|e| tract_err("tract cannot plan the ONNX model", e))?;
        Ok(Self { plan })
    }

    /// Number of graph outputs.
    pub fn num_outputs(&self) -> usize {
        self.plan.model().outputs.len()
    }

    /// Runs one input and returns every output as f32.
    pub fn run(&self, input: &F32Tensor) -> Result<Vec<F32Tensor>, ExportError> {
        let t = Tensor::from_shape(&input.shape, &input.data)
            .map_err(|e| tract_err("bad input tensor", e))?;
        let outputs = self
            .plan
            .run(tvec!(t.into_tvalue()))
            .map_err(|e| tract_err("tract run failed", e))?;
        outputs
            .iter()
            .map(|o| {
                let o = o
                    .cast_to::<f32>()
                    .map_err(|e| tract_err("output is not numeric", e))?;
                let view = o
                    .try_as_plain_ram()
                    .map_err(|e| tract_err("output not readable", e))?;
                let data = view
                    .as_slice::<f32>()
                    .map_err(|e| tract_err("output not f32", e))?
                    .to_vec();
                F32Tensor::new(o.shape().to_vec(), data)
            })
            .collect()
    }

    /// Median wall time of `runs` runs (after `warmup` runs), in milliseconds, on the
    /// calling thread only.
    pub fn time_ms(
        &self,
        input: &F32Tensor,
        warmup: usize,
        runs: usize,
    ) -> Result<f64, ExportError> {
        for _ in 0..warmup {
            self.run(input)?;
        }
        let mut times = Vec::with_capacity(runs.max(1));
        for _ in 0..runs.max(1) {
            let t0 = Instant::now();
            self.run(input)?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }
}

//! The joint model of a format-2 bundle: one tract plan that computes the shared backbone
//! once and gives the classifier's logits and the detector's box deltas and logits.

use sleeve_shared::manifest::{JointEntry, Precision};
use sleeve_shared::preprocess::PreprocessConfig;

use crate::error::Result;
use crate::plan::{ExpectedOutputs, Plan, PlanOptions, load_plan_checked, run_values};

/// The three outputs of one joint inference.
#[derive(Clone, Debug)]
pub struct JointOutputs {
    /// Classifier logits `[labels]`.
    pub logits: Vec<f32>,
    /// Detector box deltas `[4·A]`.
    pub boxes: Vec<f32>,
    /// Detector logits `[A]`.
    pub pa_logits: Vec<f32>,
}

/// A loaded joint model.
pub struct JointModel {
    plan: Plan,
    precision: Precision,
    preprocess: PreprocessConfig,
}

impl JointModel {
    /// Builds the plan of `path` (the joint entry's file of `precision`), checking its
    /// outputs against the manifest: `[labels, 4·anchors, anchors]` values.
    pub fn load(
        path: &std::path::Path,
        entry: &JointEntry,
        precision: Precision,
        labels: usize,
        anchors: usize,
        opts: PlanOptions,
    ) -> Result<Self> {
        let expect = ExpectedOutputs {
            names: entry.model.output_names.clone(),
            lens: vec![labels, 4 * anchors, anchors],
        };
        let size = entry.model.preprocess.input_size;
        Ok(Self {
            plan: load_plan_checked(path, size, opts, Some(&expect))?,
            precision,
            preprocess: entry.model.preprocess.clone(),
        })
    }

    /// The numeric form of the loaded file.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Preprocessing of the one input.
    pub fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    /// Runs one preprocessed input. Outputs come in the manifest's order (checked by name
    /// at load): classifier logits, box deltas, detector logits.
    pub fn run(&self, input: Vec<f32>) -> Result<JointOutputs> {
        let mut out = run_values(&self.plan, &self.preprocess, input, "joint")?.into_iter();
        match (out.next(), out.next(), out.next()) {
            (Some(logits), Some(boxes), Some(pa_logits)) => Ok(JointOutputs {
                logits,
                boxes,
                pa_logits,
            }),
            _ => Err(crate::error::EdgeError::Inference {
                model: "joint",
                message: "fewer than 3 outputs".into(),
            }),
        }
    }
}

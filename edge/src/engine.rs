//! The models: tract plans built once from a verified bundle, and what one image yields.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;
use sleeve_shared::calibration::ClassifierCalibration;
use sleeve_shared::detect::{Anchor, DecodeParams, decode_detections};
use sleeve_shared::fusion::FusionParams;
use sleeve_shared::manifest::{ModelEntry, Precision};
use sleeve_shared::preprocess::preprocess;
use sleeve_shared::results::softmax;
use sleeve_shared::{Classification, LabelSet, PaBox, PreprocessConfig, RgbView};

use crate::bundle::Bundle;
use crate::error::{EdgeError, Result};
use crate::joint::JointModel;
pub use crate::plan::{
    ExpectedOutputs, MULTITHREAD, Plan, PlanOptions, load_plan, load_plan_checked,
};
use crate::plan::{run_plan, values};

/// Abstain threshold used when the manifest has no calibration (bundles written before it).
pub const DEFAULT_ABSTAIN: f32 = 0.5;

fn no_plan(model: &'static str) -> EdgeError {
    EdgeError::Inference {
        model,
        message: "this bundle runs the joint model: the separate model has no plan".into(),
    }
}

/// The genre classifier (without a plan of its own when the bundle's joint model runs it).
pub struct Classifier {
    plan: Option<Plan>,
    precision: Precision,
    preprocess: PreprocessConfig,
    labels: usize,
    temperature: f32,
}

impl Classifier {
    /// The numeric form of the loaded file.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Preprocessing of this model's input.
    pub fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    /// Calibrated class probabilities of a preprocessed input.
    pub fn probabilities(&self, input: Vec<f32>) -> Result<Vec<f32>> {
        let plan = self.plan.as_ref().ok_or_else(|| no_plan("classifier"))?;
        let out = run_plan(plan, &self.preprocess, input, "classifier")?;
        let first = out.first().ok_or(EdgeError::Inference {
            model: "classifier",
            message: "no output".into(),
        })?;
        self.probabilities_from_logits(values(first, "classifier")?)
    }

    /// Calibrated class probabilities from the model's logits.
    pub fn probabilities_from_logits(&self, logits: Vec<f32>) -> Result<Vec<f32>> {
        if logits.len() != self.labels {
            return Err(EdgeError::Inference {
                model: "classifier",
                message: format!("{} logits for {} labels", logits.len(), self.labels),
            });
        }
        if logits.iter().any(|l| !l.is_finite()) {
            return Err(EdgeError::Inference {
                model: "classifier",
                message: "non-finite logits (is the input size right for this model?)".into(),
            });
        }
        let t = self.temperature;
        Ok(softmax(&logits.iter().map(|l| l / t).collect::<Vec<_>>()))
    }
}

/// The Parental Advisory detector (without a plan of its own when the bundle's joint model
/// runs it).
pub struct Detector {
    plan: Option<Plan>,
    precision: Precision,
    preprocess: PreprocessConfig,
    anchors: Vec<Anchor>,
    variances: [f32; 2],
    decode: DecodeParams,
}

impl Detector {
    /// The numeric form of the loaded file.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Preprocessing of this model's input.
    pub fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    /// Decoded, non-maximum-suppressed labels of a preprocessed input, best first.
    pub fn detect(&self, input: Vec<f32>) -> Result<Vec<PaBox>> {
        let plan = self.plan.as_ref().ok_or_else(|| no_plan("detector"))?;
        let out = run_plan(plan, &self.preprocess, input, "detector")?;
        let a = self.anchors.len();
        // Identify the outputs by size (boxes: 4·A values, logits: A), whatever their order.
        let mut boxes = None;
        let mut logits = None;
        for v in out.iter() {
            let vals = values(v, "detector")?;
            if vals.len() == 4 * a {
                boxes = Some(vals);
            } else if vals.len() == a {
                logits = Some(vals);
            }
        }
        let (Some(boxes), Some(logits)) = (boxes, logits) else {
            let shapes: Vec<_> = out.iter().map(|v| format!("{:?}", v.shape())).collect();
            return Err(EdgeError::Inference {
                model: "detector",
                message: format!(
                    "outputs {} do not fit {a} anchors ([1,{a},4] and [1,{a}])",
                    shapes.join(", ")
                ),
            });
        };
        self.decode(&boxes, &logits)
    }

    /// Decoded, non-maximum-suppressed labels from the model's box deltas `[4·A]` and
    /// logits `[A]`, best first.
    pub fn decode(&self, boxes: &[f32], logits: &[f32]) -> Result<Vec<PaBox>> {
        decode_detections(&self.anchors, self.variances, boxes, logits, &self.decode).map_err(|e| {
            EdgeError::Inference {
                model: "detector",
                message: e.to_string(),
            }
        })
    }
}

/// Time spent per stage of [`Engine::analyze`], in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct EngineTimes {
    /// Preprocessing (both models).
    pub preprocess: f64,
    /// Classifier inference + softmax; with a joint model, the joint inference (backbone
    /// and both heads) + softmax.
    pub classify: f64,
    /// Detector inference + decoding; with a joint model, decoding and NMS only.
    pub detect: f64,
}

/// What the models say about one (rectified) cover image.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// Calibrated classifier probabilities, label order.
    pub raw_probs: Vec<f32>,
    /// Probabilities after Parental Advisory fusion (equal to `raw_probs` without fusion).
    pub probs: Vec<f32>,
    /// Detected labels, best first (empty without detector).
    pub pa: Vec<PaBox>,
    /// Best label score, 0 when none.
    pub pa_score: f32,
    /// Stage timings.
    pub times: EngineTimes,
}

impl Analysis {
    /// This result, the mean over `views` analysed views of one hold, merged with one more
    /// view: probabilities and the PA score become the mean over `views + 1` views; boxes
    /// and timings are the newest view's (the sleeve moves between frames).
    pub fn merge_view(self, newest: Analysis, views: u32) -> Analysis {
        let n = views.max(1) as f32;
        let mean = |held: &[f32], new: &[f32]| -> Vec<f32> {
            if held.len() != new.len() {
                return new.to_vec();
            }
            held.iter()
                .zip(new)
                .map(|(h, x)| (h * n + x) / (n + 1.0))
                .collect()
        };
        Analysis {
            raw_probs: mean(&self.raw_probs, &newest.raw_probs),
            probs: mean(&self.probs, &newest.probs),
            pa_score: (self.pa_score * n + newest.pa_score) / (n + 1.0),
            pa: newest.pa,
            times: newest.times,
        }
    }

    /// The `k` best genres after fusion.
    pub fn top_k(&self, k: usize) -> Classification {
        Classification::top_k(&self.probs, k)
    }
}

/// Which models of a bundle run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// The joint model when the bundle has one, else the two models.
    #[default]
    Auto,
    /// The two separate models (a bundle without their files is an error).
    Separate,
    /// The joint model (a bundle without one is an error).
    Joint,
}

/// Classifier, optional detector and fusion, loaded once.
pub struct Engine {
    labels: LabelSet,
    classifier: Classifier,
    detector: Option<Detector>,
    joint: Option<JointModel>,
    fusion: Option<FusionParams>,
    pa_threshold: f32,
    abstain_threshold: f32,
}

fn selected_path(
    bundle: &Bundle,
    role: &str,
    entry: &ModelEntry,
    precision: Option<Precision>,
) -> Result<(std::path::PathBuf, Precision)> {
    let want = match precision {
        Some(p) if entry.file(p).is_some() => p,
        Some(p) => {
            tracing::warn!(
                model = role,
                requested = p.as_str(),
                using = entry.selected.as_str(),
                "no file of the requested precision: using the selected one"
            );
            entry.selected
        }
        None => entry.selected,
    };
    let f = entry.file(want).ok_or_else(|| {
        let have: Vec<&str> = entry.files.iter().map(|f| f.precision.as_str()).collect();
        EdgeError::BundleRefused {
            path: bundle.dir().to_path_buf(),
            reason: format!(
                "{role} has no {} file (it has: {})",
                want.as_str(),
                have.join(", ")
            ),
        }
    })?;
    Ok((bundle.path_of(f), want))
}

impl Engine {
    /// Builds the plans of a verified bundle; `threads` > 1 uses tract's thread pool when
    /// the `multithread` feature is on.
    pub fn load(bundle: &Bundle, threads: usize) -> Result<Self> {
        let opts = PlanOptions {
            threads,
            ..PlanOptions::default()
        };
        Self::load_with(bundle, opts, None)
    }

    /// Like [`Engine::load`] with plan options, loading the files of `precision` (both
    /// models) instead of the manifest's selected ones when given; a model without a file
    /// of that precision is an error.
    pub fn load_with(
        bundle: &Bundle,
        opts: PlanOptions,
        precision: Option<Precision>,
    ) -> Result<Self> {
        Self::load_layout(bundle, opts, precision, Layout::Auto)
    }

    /// Like [`Engine::load_with`], choosing between the joint model and the two models.
    pub fn load_layout(
        bundle: &Bundle,
        opts: PlanOptions,
        precision: Option<Precision>,
        layout: Layout,
    ) -> Result<Self> {
        let m = bundle.manifest();
        let joint_entry = match (layout, &m.joint) {
            (Layout::Separate, _) => None,
            (_, Some(j)) => Some(j),
            (Layout::Joint, None) => {
                return Err(EdgeError::BundleRefused {
                    path: bundle.dir().to_path_buf(),
                    reason: "the bundle has no joint model (format 2 `joint` entry)".into(),
                });
            }
            (Layout::Auto, None) => None,
        };
        let joint = match (joint_entry, &m.detector) {
            (Some(j), Some(d)) => {
                let (path, p) = selected_path(bundle, "joint", &j.model, precision)?;
                let a = d.anchors.num_anchors();
                Some(JointModel::load(&path, j, p, m.labels.len(), a, opts)?)
            }
            _ => None,
        };
        // typed and range-checked by the manifest; bundles without it get T = 1 and 0.5
        let calibration = m.calibration.clone().unwrap_or(ClassifierCalibration {
            temperature: 1.0,
            abstain_threshold: DEFAULT_ABSTAIN,
        });
        let temperature = calibration.temperature;
        let c = &m.classifier;
        let classifier = match &joint {
            Some(j) => Classifier {
                plan: None,
                precision: j.precision(),
                preprocess: j.preprocess_config().clone(),
                labels: m.labels.len(),
                temperature,
            },
            None => {
                let (c_path, c_precision) = selected_path(bundle, "classifier", c, precision)?;
                let c_expect = ExpectedOutputs {
                    names: c.output_names.clone(),
                    lens: vec![m.labels.len()],
                };
                Classifier {
                    plan: Some(load_plan_checked(
                        &c_path,
                        c.preprocess.input_size,
                        opts,
                        Some(&c_expect),
                    )?),
                    precision: c_precision,
                    preprocess: c.preprocess.clone(),
                    labels: m.labels.len(),
                    temperature,
                }
            }
        };
        let detector = match &m.detector {
            Some(d) if joint.is_some() => Some(Detector {
                plan: None,
                precision: classifier.precision,
                preprocess: classifier.preprocess.clone(),
                anchors: d.anchors.anchors(),
                variances: d.anchors.variances,
                decode: d.decode.clone(),
            }),
            Some(d) => Some({
                let (path, precision) = selected_path(bundle, "detector", &d.model, precision)?;
                let a = d.anchors.num_anchors();
                let expect = ExpectedOutputs {
                    names: d.model.output_names.clone(),
                    lens: vec![4 * a, a],
                };
                Detector {
                    plan: Some(load_plan_checked(
                        &path,
                        d.model.preprocess.input_size,
                        opts,
                        Some(&expect),
                    )?),
                    precision,
                    preprocess: d.model.preprocess.clone(),
                    anchors: d.anchors.anchors(),
                    variances: d.anchors.variances,
                    decode: d.decode.clone(),
                }
            }),
            None => None,
        };
        // The detector's calibrated `pa_threshold`; older manifests: the fusion's, then the
        // decoding threshold.
        let pa_threshold = m.pa_decision_threshold().unwrap_or(0.5);
        tracing::info!(
            classifier = classifier.precision.as_str(),
            detector = detector
                .as_ref()
                .map(|d| d.precision.as_str())
                .unwrap_or("none"),
            joint = joint.is_some(),
            fusion = m.fusion.is_some(),
            temperature,
            half = opts.half,
            "models ready"
        );
        Ok(Self {
            labels: m.labels.clone(),
            classifier,
            detector,
            joint,
            fusion: m.fusion.clone(),
            pa_threshold,
            abstain_threshold: calibration.abstain_threshold,
        })
    }

    /// Genre labels, model output order.
    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// Whether the bundle has a Parental Advisory detector.
    pub fn has_detector(&self) -> bool {
        self.detector.is_some()
    }

    /// Score at or above which a Parental Advisory label counts as present.
    pub fn pa_threshold(&self) -> f32 {
        self.pa_threshold
    }

    /// The bundle's abstain threshold (manifest calibration or [`DEFAULT_ABSTAIN`]).
    pub fn abstain_threshold(&self) -> f32 {
        self.abstain_threshold
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The detector, if any.
    pub fn detector(&self) -> Option<&Detector> {
        self.detector.as_ref()
    }

    /// The joint model, when it runs instead of the two models.
    pub fn joint(&self) -> Option<&JointModel> {
        self.joint.as_ref()
    }

    /// Preprocesses, classifies, detects and fuses one cover image.
    pub fn analyze(&self, cover: &RgbImage) -> Result<Analysis> {
        let mut times = EngineTimes::default();
        let view = RgbView::from_image(cover)?;
        if let (Some(j), Some(d)) = (&self.joint, &self.detector) {
            let t = Instant::now();
            let input = preprocess(&view, j.preprocess_config())?;
            times.preprocess = ms(t);
            let t = Instant::now();
            let out = j.run(input)?;
            let raw_probs = self.classifier.probabilities_from_logits(out.logits)?;
            times.classify = ms(t);
            let t = Instant::now();
            let pa = d.decode(&out.boxes, &out.pa_logits)?;
            times.detect = ms(t);
            return Ok(self.finish(raw_probs, pa, times));
        }
        let t = Instant::now();
        let c_in = preprocess(&view, &self.classifier.preprocess)?;
        let d_in = match &self.detector {
            // Same configuration: reuse the tensor instead of preprocessing twice.
            Some(d) if d.preprocess == self.classifier.preprocess => Some(c_in.clone()),
            Some(d) => Some(preprocess(&view, &d.preprocess)?),
            None => None,
        };
        times.preprocess = ms(t);
        let t = Instant::now();
        let raw_probs = self.classifier.probabilities(c_in)?;
        times.classify = ms(t);
        let t = Instant::now();
        let pa = match (&self.detector, d_in) {
            (Some(d), Some(input)) => d.detect(input)?,
            _ => Vec::new(),
        };
        times.detect = ms(t);
        Ok(self.finish(raw_probs, pa, times))
    }

    /// Fusion of the models' answers into an [`Analysis`].
    fn finish(&self, raw_probs: Vec<f32>, pa: Vec<PaBox>, times: EngineTimes) -> Analysis {
        let pa_score = pa.first().map(|b| b.score).unwrap_or(0.0);
        let probs = match &self.fusion {
            Some(f) if self.detector.is_some() => f.apply(&raw_probs, pa_score),
            _ => raw_probs.clone(),
        };
        Analysis {
            raw_probs,
            probs,
            pa,
            pa_score,
            times,
        }
    }
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

//! The model bundle manifest (`manifest.json`): what is in a bundle directory and how to
//! use it. Written by `sleeve export`, verified by `sleeve-edge` before anything runs.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::calibration::ClassifierCalibration;
use crate::detect::{AnchorConfig, DecodeParams};
use crate::fusion::FusionParams;
use crate::labels::LabelSet;
use crate::preprocess::PreprocessConfig;

/// Version of the manifest format this crate reads and writes.
pub const BUNDLE_FORMAT_VERSION: u32 = 1;

/// File name of the manifest inside a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Numeric form of a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Plain f32 weights and activations.
    F32,
    /// int8 weights dequantized at load time (small file, f32 speed).
    Int8Weights,
    /// Integer convolutions (QLinearConv) with float residual adds.
    Int8Full,
}

impl Precision {
    /// Stable lower-case name, as in the manifest.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Int8Weights => "int8-weights",
            Self::Int8Full => "int8-full",
        }
    }
}

/// One ONNX file of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Its numeric form.
    pub precision: Precision,
    /// Path relative to the bundle directory.
    pub path: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
}

/// A model in one or more precisions, with the one the edge should load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Available files, at most one per precision.
    pub files: Vec<ModelFile>,
    /// The precision chosen by measurement for the target.
    pub selected: Precision,
    /// Name of the graph's input.
    pub input_name: String,
    /// Names of the graph's outputs, in order.
    pub output_names: Vec<String>,
    /// How images become this model's input.
    pub preprocess: PreprocessConfig,
}

impl ModelEntry {
    /// The file of a given precision.
    pub fn file(&self, precision: Precision) -> Option<&ModelFile> {
        self.files.iter().find(|f| f.precision == precision)
    }

    /// The selected file.
    pub fn selected_file(&self) -> Option<&ModelFile> {
        self.file(self.selected)
    }
}

/// The Parental Advisory detector and how to decode it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectorEntry {
    /// The ONNX model (outputs: box deltas `[1, A, 4]`, logits `[1, A]`).
    pub model: ModelEntry,
    /// Anchor layout the heads were trained with.
    pub anchors: AnchorConfig,
    /// Score, NMS and count thresholds.
    pub decode: DecodeParams,
    /// The kiosk's Parental Advisory decision: a cover "has a label" when its best box
    /// scores at least this (in `(0, 1]`, and not below `decode.score_threshold`, which
    /// would hide the boxes it needs). Calibrated on real covers (`sleeve eval detector
    /// --real ... --calibrate`). Absent in older manifests: see
    /// [`BundleManifest::pa_decision_threshold`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pa_threshold: Option<f32>,
}

/// Where a bundle came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Training data description (path or name and size).
    pub data: String,
    /// Random seed of training.
    pub seed: u64,
    /// Source commit the models were built from.
    pub commit: String,
    /// Commands that produced the bundle.
    pub commands: Vec<String>,
    /// UTC timestamp (RFC 3339) of export.
    pub created_utc: String,
}

/// The whole manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// [`BUNDLE_FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// Human-readable bundle name.
    pub name: String,
    /// Genre classes in classifier output order.
    pub labels: LabelSet,
    /// The genre classifier (outputs logits `[1, labels.len()]`).
    pub classifier: ModelEntry,
    /// The Parental Advisory detector, when the bundle has one.
    pub detector: Option<DetectorEntry>,
    /// How detector hits adjust genre probabilities, when fitted and found useful.
    pub fusion: Option<FusionParams>,
    /// Softmax temperature and abstain threshold fitted on validation data (absent in
    /// bundles written before calibration: the edge then uses temperature 1 and 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<ClassifierCalibration>,
    /// Where it came from.
    pub provenance: Provenance,
    /// Measured test metrics (`"classifier.test.accuracy"` → 0.66, …).
    pub metrics: BTreeMap<String, f64>,
}

/// Why a manifest is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// A manifest format this build does not read.
    FormatVersion(u32),
    /// A model lists no file, or its selected precision has no file.
    MissingFile(String),
    /// A file path that is absolute or leaves the bundle directory.
    UnsafePath(String),
    /// A SHA-256 that is not 64 lower-case hex digits.
    BadHash(String),
    /// Something else, described.
    Invalid(String),
}

impl core::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::FormatVersion(v) => write!(
                f,
                "bundle format version {v} is not supported (this build reads {BUNDLE_FORMAT_VERSION})"
            ),
            Self::MissingFile(m) => write!(f, "missing model file: {m}"),
            Self::UnsafePath(p) => write!(
                f,
                "model path '{p}' must be relative and stay inside the bundle"
            ),
            Self::BadHash(p) => write!(f, "sha256 of '{p}' is not 64 lower-case hex digits"),
            Self::Invalid(m) => write!(f, "{m}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ManifestError {}

/// True when `p` is a plain relative path that cannot leave its directory.
pub fn is_safe_relative_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.starts_with('\\')
        && !p.contains(':')
        && p.split(['/', '\\'])
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

impl BundleManifest {
    /// The score at or above which the kiosk reports a Parental Advisory label: the
    /// detector's `pa_threshold`, else (older manifests) the fusion's threshold, else the
    /// decoding score threshold; `None` without a detector.
    pub fn pa_decision_threshold(&self) -> Option<f32> {
        let d = self.detector.as_ref()?;
        Some(
            d.pa_threshold
                .or(self.fusion.as_ref().map(|f| f.pa_threshold))
                .unwrap_or(d.decode.score_threshold),
        )
    }

    /// Checks everything that can be checked without reading the model files.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format_version != BUNDLE_FORMAT_VERSION {
            return Err(ManifestError::FormatVersion(self.format_version));
        }
        let mut models = alloc::vec![("classifier", &self.classifier)];
        if let Some(d) = &self.detector {
            models.push(("detector", &d.model));
            if d.anchors.num_anchors() == 0 {
                return Err(ManifestError::Invalid("detector has no anchors".into()));
            }
            if let Some(t) = d.pa_threshold {
                if !(t > 0.0 && t <= 1.0) {
                    return Err(ManifestError::Invalid(alloc::format!(
                        "detector pa_threshold {t} is outside (0, 1]"
                    )));
                }
                if t < d.decode.score_threshold {
                    return Err(ManifestError::Invalid(alloc::format!(
                        "detector pa_threshold {t} is below decode.score_threshold {}: \
                         boxes scoring in between are never decoded",
                        d.decode.score_threshold
                    )));
                }
            }
        }
        for (name, m) in models {
            if m.selected_file().is_none() {
                return Err(ManifestError::MissingFile(alloc::format!(
                    "{name} has no {} file",
                    m.selected.as_str()
                )));
            }
            m.preprocess
                .validate()
                .map_err(|e| ManifestError::Invalid(alloc::format!("{name} preprocessing: {e}")))?;
            for f in &m.files {
                if !is_safe_relative_path(&f.path) {
                    return Err(ManifestError::UnsafePath(f.path.clone()));
                }
                if f.sha256.len() != 64
                    || !f
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(ManifestError::BadHash(f.path.clone()));
                }
            }
        }
        if let Some(c) = &self.calibration {
            c.validate().map_err(ManifestError::Invalid)?;
        }
        if let Some(fu) = &self.fusion
            && fu.p_pa_given_genre.len() != self.labels.len()
        {
            return Err(ManifestError::Invalid(alloc::format!(
                "fusion has {} genre priors for {} labels",
                fu.p_pa_given_genre.len(),
                self.labels.len()
            )));
        }
        Ok(())
    }

    /// Parses and validates a manifest from JSON.
    #[cfg(feature = "std")]
    pub fn from_json(text: &str) -> Result<Self, ManifestError> {
        let m: Self = serde_json::from_str(text).map_err(|e| {
            ManifestError::Invalid(alloc::format!("manifest.json is not valid: {e}"))
        })?;
        m.validate()?;
        Ok(m)
    }

    /// Pretty JSON.
    #[cfg(feature = "std")]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::AnchorConfig;

    pub(crate) fn sample() -> BundleManifest {
        let file = |p: Precision, path: &str| ModelFile {
            precision: p,
            path: path.into(),
            sha256: "ab".repeat(32),
            bytes: 10,
        };
        BundleManifest {
            format_version: BUNDLE_FORMAT_VERSION,
            name: "test".into(),
            labels: LabelSet::covers5(),
            classifier: ModelEntry {
                files: alloc::vec![
                    file(Precision::F32, "classifier.onnx"),
                    file(Precision::Int8Weights, "classifier.int8.onnx")
                ],
                selected: Precision::Int8Weights,
                input_name: "image".into(),
                output_names: alloc::vec!["logits".into()],
                preprocess: PreprocessConfig::default(),
            },
            detector: Some(DetectorEntry {
                model: ModelEntry {
                    files: alloc::vec![file(Precision::F32, "detector.onnx")],
                    selected: Precision::F32,
                    input_name: "image".into(),
                    output_names: alloc::vec!["boxes".into(), "logits".into()],
                    preprocess: PreprocessConfig::signed_unit(320),
                },
                anchors: AnchorConfig::ssdlite_320(),
                decode: DecodeParams::default(),
                pa_threshold: None,
            }),
            fusion: None,
            calibration: Some(ClassifierCalibration {
                temperature: 1.7,
                abstain_threshold: 0.42,
            }),
            provenance: Provenance::default(),
            metrics: BTreeMap::new(),
        }
    }

    #[test]
    fn calibration_round_trips_and_old_manifests_load_without_it() {
        let m = sample();
        let json = m.to_json();
        assert!(json.contains("\"temperature\": 1.7"), "{json}");
        let back = BundleManifest::from_json(&json).unwrap();
        assert_eq!(back.calibration, m.calibration);
        // a manifest written before the field existed
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old.as_object_mut().unwrap().remove("calibration");
        let back = BundleManifest::from_json(&old.to_string()).unwrap();
        assert_eq!(back.calibration, None);
        // out-of-range numbers are refused with the field's name
        let mut bad = sample();
        bad.calibration = Some(ClassifierCalibration {
            temperature: 1.0,
            abstain_threshold: 5.0,
        });
        let err = BundleManifest::from_json(&bad.to_json()).unwrap_err();
        assert!(err.to_string().contains("abstain_threshold"), "{err}");
    }

    #[test]
    fn json_round_trip() {
        let m = sample();
        let back = BundleManifest::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert!(m.to_json().contains("\"int8-weights\""));
    }

    #[test]
    fn validation_catches_problems() {
        let mut m = sample();
        m.format_version = 9;
        assert_eq!(m.validate(), Err(ManifestError::FormatVersion(9)));

        let mut m = sample();
        m.classifier.selected = Precision::Int8Full;
        assert!(matches!(m.validate(), Err(ManifestError::MissingFile(_))));

        let mut m = sample();
        m.classifier.files[0].path = "../etc/passwd".into();
        assert!(matches!(m.validate(), Err(ManifestError::UnsafePath(_))));

        let mut m = sample();
        m.classifier.files[1].sha256 = "XYZ".into();
        assert!(matches!(m.validate(), Err(ManifestError::BadHash(_))));

        assert!(BundleManifest::from_json("{\"format_version\": 1}").is_err());
    }

    #[test]
    fn pa_threshold_is_typed_optional_and_checked() {
        // Older manifests (no field) load and fall back to the fusion's, then the decode
        // threshold.
        let mut m = sample();
        let json = m.to_json();
        assert!(!json.contains("pa_threshold"));
        let old = BundleManifest::from_json(&json).unwrap();
        assert_eq!(old.pa_decision_threshold(), Some(0.5));
        m.fusion = Some(FusionParams {
            p_pa_given_genre: alloc::vec![0.1; 5],
            strength: 1.0,
            pa_threshold: 0.7,
        });
        assert_eq!(m.pa_decision_threshold(), Some(0.7));
        // The typed field wins and round-trips.
        let d = m.detector.as_mut().unwrap();
        d.decode.score_threshold = 0.2;
        d.pa_threshold = Some(0.25);
        let back = BundleManifest::from_json(&m.to_json()).unwrap();
        assert_eq!(back.pa_decision_threshold(), Some(0.25));
        assert_eq!(back, m);
        // Out of range, or below the decode threshold: refused with a message.
        for (t, want) in [(0.0, "outside"), (1.5, "outside"), (0.1, "below")] {
            let mut bad = m.clone();
            bad.detector.as_mut().unwrap().pa_threshold = Some(t);
            match bad.validate() {
                Err(ManifestError::Invalid(msg)) => assert!(msg.contains(want), "{msg}"),
                other => panic!("{t}: {other:?}"),
            }
        }
        let mut none = m.clone();
        none.detector = None;
        assert_eq!(none.pa_decision_threshold(), None);
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_relative_path("a/b.onnx"));
        for p in ["", "/abs", "a/../b", "./a", "c:\\x", "a//b"] {
            assert!(!is_safe_relative_path(p), "{p}");
        }
    }
}

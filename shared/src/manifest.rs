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

/// Version of the manifest format this crate writes. Format 2 adds the optional
/// [`BundleManifest::joint`] model; format 1 manifests (no joint model) still load.
pub const BUNDLE_FORMAT_VERSION: u32 = 2;

/// Oldest manifest format this crate reads.
pub const MIN_BUNDLE_FORMAT_VERSION: u32 = 1;

/// Whether this crate reads manifests of format `v`.
pub fn is_supported_format(v: u64) -> bool {
    (u64::from(MIN_BUNDLE_FORMAT_VERSION)..=u64::from(BUNDLE_FORMAT_VERSION)).contains(&v)
}

/// File name of the manifest inside a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Manifest metric holding the classifier's softmax temperature (calibration).
pub const METRIC_TEMPERATURE: &str = "classifier.temperature";
/// Manifest metric holding the calibrated confidence below which the kiosk abstains.
pub const METRIC_ABSTAIN: &str = "classifier.abstain_threshold";

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

/// One graph that computes the classifier and the detector from one input, the backbone
/// prefix both share computed once (format 2). Its outputs, in `model.output_names`
/// order: the classifier's logits `[1, labels]`, the detector's box deltas `[1, A, 4]` and
/// its logits `[1, A]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JointEntry {
    /// The ONNX files, input name, output names and preprocessing (one input size for both
    /// heads).
    pub model: ModelEntry,
    /// What the two source graphs share, as verified by weight hashes at export.
    pub shared: SharedPrefix,
}

/// The part of the two source graphs that a joint model computes once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedPrefix {
    /// Graph nodes computed once instead of twice.
    pub nodes: u32,
    /// Convolutions among them.
    pub convs: u32,
    /// SHA-256 over the shared weights' hashes, in graph order (what export verified equal).
    pub weights_sha256: String,
    /// Name of the classifier's first weight that is not shared (its own tail), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_unshared: Option<String>,
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
    /// The joint model (format 2): when present, the kiosk runs it instead of the two
    /// models, whose entries may then list no files (they still describe labels, anchors
    /// and decoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint: Option<JointEntry>,
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
                "bundle format version {v} is not supported (this build reads \
                 {MIN_BUNDLE_FORMAT_VERSION} to {BUNDLE_FORMAT_VERSION})"
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

/// Smallest model input side a bundle may declare, in pixels.
pub const MIN_INPUT_SIZE: u32 = 16;
/// Largest model input side a bundle may declare, in pixels (a Pi runs 1024² in seconds).
pub const MAX_INPUT_SIZE: u32 = 1024;
/// Most genre labels a bundle may have.
pub const MAX_LABELS: usize = 1000;
/// Largest model file a bundle may list, in bytes (1 GiB).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;
/// Most detector feature maps.
pub const MAX_FEATURE_MAPS: usize = 8;
/// Largest detector feature map side, in cells.
pub const MAX_FEATURE_MAP_SIZE: u32 = 512;
/// Most scales per map, and most aspect ratios.
pub const MAX_ANCHOR_SHAPES: usize = 16;
/// Most anchors in all (the default 320² layout has 3000).
pub const MAX_ANCHORS: usize = 1_000_000;
/// Most detections a bundle may ask to keep.
pub const MAX_DETECTIONS: usize = 1000;
/// Range of the classifier's softmax temperature metric.
pub const TEMPERATURE_RANGE: (f64, f64) = (0.01, 100.0);

fn invalid(m: alloc::string::String) -> ManifestError {
    ManifestError::Invalid(m)
}

/// `v` is a number in `[lo, hi]` (so not NaN).
fn in_range(v: f64, lo: f64, hi: f64) -> bool {
    v >= lo && v <= hi
}

fn check_unit(what: &str, v: f32) -> Result<(), ManifestError> {
    if in_range(f64::from(v), 0.0, 1.0) {
        Ok(())
    } else {
        Err(invalid(alloc::format!("{what} is {v}, outside [0, 1]")))
    }
}

fn check_anchors(a: &AnchorConfig) -> Result<(), ManifestError> {
    let n = a.feature_maps.len();
    if n == 0 || n > MAX_FEATURE_MAPS {
        return Err(invalid(alloc::format!(
            "detector has {n} anchor feature maps, expected 1 to {MAX_FEATURE_MAPS}"
        )));
    }
    let shapes_ok = |v: &[f32], hi: f32| {
        !v.is_empty() && v.len() <= MAX_ANCHOR_SHAPES && v.iter().all(|x| *x > 0.0 && *x <= hi)
    };
    for (i, m) in a.feature_maps.iter().enumerate() {
        if m.size == 0 || m.size > MAX_FEATURE_MAP_SIZE {
            return Err(invalid(alloc::format!(
                "detector feature map #{i} size is {}, expected 1 to {MAX_FEATURE_MAP_SIZE}",
                m.size
            )));
        }
        if !shapes_ok(&m.scales, 4.0) {
            return Err(invalid(alloc::format!(
                "detector feature map #{i} scales {:?}: expected 1 to {MAX_ANCHOR_SHAPES} values in (0, 4]",
                m.scales
            )));
        }
    }
    if !shapes_ok(&a.aspect_ratios, 100.0) {
        return Err(invalid(alloc::format!(
            "detector aspect ratios {:?}: expected 1 to {MAX_ANCHOR_SHAPES} values in (0, 100]",
            a.aspect_ratios
        )));
    }
    if !a.variances.iter().all(|v| *v > 0.0 && *v <= 10.0) {
        return Err(invalid(alloc::format!(
            "detector variances {:?}: expected values in (0, 10]",
            a.variances
        )));
    }
    let total = a.num_anchors();
    if total > MAX_ANCHORS {
        return Err(invalid(alloc::format!(
            "detector has {total} anchors, more than {MAX_ANCHORS}"
        )));
    }
    Ok(())
}

fn check_model(name: &str, m: &ModelEntry, outputs: usize) -> Result<(), ManifestError> {
    let size = m.preprocess.input_size;
    if !(MIN_INPUT_SIZE..=MAX_INPUT_SIZE).contains(&size) {
        return Err(invalid(alloc::format!(
            "{name} input_size is {size}, expected {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE}"
        )));
    }
    if m.output_names.len() != outputs || m.output_names.iter().any(|n| n.is_empty()) {
        return Err(invalid(alloc::format!(
            "{name} lists outputs {:?}, expected {outputs} non-empty name(s)",
            m.output_names
        )));
    }
    for (i, f) in m.files.iter().enumerate() {
        if f.bytes == 0 || f.bytes > MAX_MODEL_BYTES {
            return Err(invalid(alloc::format!(
                "{name} file '{}' size is {} bytes, expected 1 to {MAX_MODEL_BYTES}",
                f.path,
                f.bytes
            )));
        }
        if m.files[..i].iter().any(|g| g.precision == f.precision) {
            return Err(invalid(alloc::format!(
                "{name} lists two {} files",
                f.precision.as_str()
            )));
        }
    }
    Ok(())
}

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
        if !is_supported_format(u64::from(self.format_version)) {
            return Err(ManifestError::FormatVersion(self.format_version));
        }
        if let Some(j) = &self.joint {
            if self.format_version < 2 {
                return Err(invalid(alloc::format!(
                    "a joint model needs bundle format 2, this manifest says {}",
                    self.format_version
                )));
            }
            if self.detector.is_none() {
                return Err(invalid(
                    "a joint model needs the detector entry (anchors, decoding)".into(),
                ));
            }
            check_model("joint", &j.model, 3)?;
            if j.shared.weights_sha256.len() != 64
                || !j
                    .shared
                    .weights_sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
            {
                return Err(ManifestError::BadHash("joint shared weights".into()));
            }
        }
        if self.labels.len() > MAX_LABELS {
            return Err(invalid(alloc::format!(
                "{} labels, more than {MAX_LABELS}",
                self.labels.len()
            )));
        }
        // With a joint model the two separate models may ship no files.
        let separate_optional = self.joint.is_some();
        let mut models = alloc::vec![("classifier", &self.classifier)];
        check_model("classifier", &self.classifier, 1)?;
        if let Some(j) = &self.joint {
            models.push(("joint", &j.model));
        }
        if let Some(d) = &self.detector {
            models.push(("detector", &d.model));
            check_model("detector", &d.model, 2)?;
            check_anchors(&d.anchors)?;
            check_unit("detector score_threshold", d.decode.score_threshold)?;
            check_unit("detector iou_threshold", d.decode.iou_threshold)?;
            if d.decode.max_detections == 0 || d.decode.max_detections > MAX_DETECTIONS {
                return Err(invalid(alloc::format!(
                    "detector max_detections is {}, expected 1 to {MAX_DETECTIONS}",
                    d.decode.max_detections
                )));
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
        if let Some(fu) = &self.fusion {
            for (i, q) in fu.p_pa_given_genre.iter().enumerate() {
                check_unit(&alloc::format!("fusion p_pa_given_genre[{i}]"), *q)?;
            }
            check_unit("fusion pa_threshold", fu.pa_threshold)?;
            if !in_range(f64::from(fu.strength), 0.0, 100.0) {
                return Err(invalid(alloc::format!(
                    "fusion strength is {}, outside [0, 100]",
                    fu.strength
                )));
            }
        }
        for (k, v) in &self.metrics {
            if !v.is_finite() {
                return Err(invalid(alloc::format!("metric {k} is not a finite number")));
            }
        }
        if let Some(v) = self.metrics.get(METRIC_ABSTAIN) {
            check_unit(METRIC_ABSTAIN, *v as f32)?;
        }
        if let Some(v) = self.metrics.get(METRIC_TEMPERATURE)
            && !in_range(*v, TEMPERATURE_RANGE.0, TEMPERATURE_RANGE.1)
        {
            return Err(invalid(alloc::format!(
                "{METRIC_TEMPERATURE} is {v}, outside [{}, {}]",
                TEMPERATURE_RANGE.0,
                TEMPERATURE_RANGE.1
            )));
        }
        for (name, m) in models {
            let may_be_empty = separate_optional && name != "joint" && m.files.is_empty();
            if m.selected_file().is_none() && !may_be_empty {
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
        // The version first, so an old, new or mistyped one gets a clear message instead
        // of a confusing schema error.
        let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            ManifestError::Invalid(alloc::format!("{MANIFEST_FILE} is not JSON: {e}"))
        })?;
        match raw.get("format_version") {
            None => {
                return Err(ManifestError::Invalid(alloc::format!(
                    "{MANIFEST_FILE} has no format_version"
                )));
            }
            Some(v) => match v.as_u64() {
                Some(n) if is_supported_format(n) => {}
                Some(n) => {
                    return Err(ManifestError::FormatVersion(
                        u32::try_from(n).unwrap_or(u32::MAX),
                    ));
                }
                None => {
                    return Err(ManifestError::Invalid(alloc::format!(
                        "{MANIFEST_FILE} format_version must be a whole number like \
                         {BUNDLE_FORMAT_VERSION}, not {v}"
                    )));
                }
            },
        }
        let m: Self = serde_json::from_str(text).map_err(|e| {
            ManifestError::Invalid(alloc::format!("{MANIFEST_FILE} is not valid: {e}"))
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
    use crate::fusion::FusionParams;

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
            joint: None,
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

    /// Metrics come back bit for bit: an f32 temperature widened to f64 once read back one
    /// ulp off with serde_json's default float parser (a CI failure, 2026-12-06).
    #[test]
    fn metrics_round_trip_exactly() {
        let mut m = sample();
        let widened = f64::from(0.222_443_07_f32);
        m.metrics.insert("t".into(), widened);
        m.metrics.insert("third".into(), 1.0 / 3.0);
        let back = BundleManifest::from_json(&m.to_json()).unwrap();
        assert_eq!(back.metrics["t"].to_bits(), widened.to_bits());
        assert_eq!(back.metrics["third"].to_bits(), (1.0f64 / 3.0).to_bits());
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
        // Issue 18 (6): a wrong-typed version is named as such.
        let err = BundleManifest::from_json("{\"format_version\": \"1\"}").unwrap_err();
        assert!(err.to_string().contains("must be a whole number"), "{err}");
        let err = BundleManifest::from_json("{\"format_version\": 7}").unwrap_err();
        assert_eq!(err, ManifestError::FormatVersion(7));
    }

    /// Issue 18 (1, 6): every manifest number has a range, checked at load.
    #[test]
    fn numbers_out_of_range_are_refused() {
        type Edit = fn(&mut BundleManifest);
        let cases: alloc::vec::Vec<(&str, Edit)> = alloc::vec![
            ("feature map #0 size is 100000", |m| {
                m.detector.as_mut().unwrap().anchors.feature_maps[0].size = 100_000
            }),
            ("feature map #1 size is 0", |m| {
                m.detector.as_mut().unwrap().anchors.feature_maps[1].size = 0
            }),
            ("scales", |m| {
                m.detector.as_mut().unwrap().anchors.feature_maps[0].scales = alloc::vec![]
            }),
            ("aspect ratios", |m| {
                m.detector.as_mut().unwrap().anchors.aspect_ratios = alloc::vec![-1.0]
            }),
            ("variances", |m| {
                m.detector.as_mut().unwrap().anchors.variances = [0.0, 0.2]
            }),
            ("anchor feature maps", |m| {
                m.detector.as_mut().unwrap().anchors.feature_maps.clear()
            }),
            ("classifier input_size is 1,", |m| m
                .classifier
                .preprocess
                .input_size = 1),
            ("classifier input_size is 4096", |m| {
                m.classifier.preprocess.input_size = 4096
            }),
            ("detector input_size is 2000", |m| {
                m.detector.as_mut().unwrap().model.preprocess.input_size = 2000
            }),
            ("score_threshold is 2", |m| {
                m.detector.as_mut().unwrap().decode.score_threshold = 2.0
            }),
            ("iou_threshold is -0.1", |m| {
                m.detector.as_mut().unwrap().decode.iou_threshold = -0.1
            }),
            ("max_detections is 0", |m| {
                m.detector.as_mut().unwrap().decode.max_detections = 0
            }),
            ("classifier.abstain_threshold is 5", |m| {
                m.metrics.insert(METRIC_ABSTAIN.into(), 5.0);
            }),
            ("classifier.temperature is 0", |m| {
                m.metrics.insert(METRIC_TEMPERATURE.into(), 0.0);
            }),
            ("fusion pa_threshold is 3", |m| {
                m.fusion = Some(FusionParams {
                    p_pa_given_genre: alloc::vec![0.1; 5],
                    strength: 1.0,
                    pa_threshold: 3.0,
                })
            }),
            ("fusion strength is -1", |m| {
                m.fusion = Some(FusionParams {
                    p_pa_given_genre: alloc::vec![0.1; 5],
                    strength: -1.0,
                    pa_threshold: 0.5,
                })
            }),
            ("p_pa_given_genre[2] is 1.5", |m| {
                m.fusion = Some(FusionParams {
                    p_pa_given_genre: alloc::vec![0.1, 0.1, 1.5, 0.1, 0.1],
                    strength: 1.0,
                    pa_threshold: 0.5,
                })
            }),
            ("classifier lists outputs", |m| m
                .classifier
                .output_names
                .clear()),
            ("detector lists outputs", |m| {
                m.detector.as_mut().unwrap().model.output_names.pop();
            }),
            ("size is 0 bytes", |m| m.classifier.files[0].bytes = 0),
            ("two f32 files", |m| {
                m.classifier.files[1].precision = Precision::F32
            }),
        ];
        for (want, edit) in cases {
            let mut m = sample();
            edit(&mut m);
            let err = m.validate().expect_err(want).to_string();
            assert!(err.contains(want), "expected '{want}' in: {err}");
            // The same through JSON, as a bundle is loaded.
            let err = BundleManifest::from_json(&m.to_json()).expect_err(want);
            assert!(err.to_string().contains(want), "{err}");
        }
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn duplicate_or_blank_labels_are_refused_at_load() {
        let json = sample().to_json();
        let dup = json.replacen("\"electronic\"", "\"country\"", 1);
        let err = BundleManifest::from_json(&dup).unwrap_err().to_string();
        assert!(err.contains("'country' is listed twice"), "{err}");
        let blank = json.replacen("\"electronic\"", "\" \"", 1);
        let err = BundleManifest::from_json(&blank).unwrap_err().to_string();
        assert!(err.contains("genre #1 is blank"), "{err}");
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

    fn with_joint(mut m: BundleManifest) -> BundleManifest {
        m.joint = Some(JointEntry {
            model: ModelEntry {
                files: alloc::vec![ModelFile {
                    precision: Precision::Int8Weights,
                    path: "sleeve.int8-weights.onnx".into(),
                    sha256: "cd".repeat(32),
                    bytes: 12,
                }],
                selected: Precision::Int8Weights,
                input_name: "image".into(),
                output_names: alloc::vec![
                    "genre_logits".into(),
                    "boxes".into(),
                    "pa_logits".into()
                ],
                preprocess: PreprocessConfig::signed_unit(320),
            },
            shared: SharedPrefix {
                nodes: 120,
                convs: 52,
                weights_sha256: "ef".repeat(32),
                first_unshared: Some("classifier.weight".into()),
            },
        });
        m
    }

    /// Format 1 manifests (written before the joint model) still load; format 2 adds the
    /// joint model, with which the separate models may ship no files.
    #[test]
    fn format_1_loads_and_format_2_carries_a_joint_model() {
        let mut v1: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v1["format_version"] = 1.into();
        let old = BundleManifest::from_json(&v1.to_string()).unwrap();
        assert_eq!(old.format_version, 1);
        assert_eq!(old.joint, None);

        let joint = with_joint(sample());
        let json = joint.to_json();
        assert!(json.contains("\"joint\""), "{json}");
        let back = BundleManifest::from_json(&json).unwrap();
        assert_eq!(back, joint);

        // Only the joint file: the separate entries keep labels/anchors but no files.
        let mut only = joint.clone();
        only.classifier.files.clear();
        only.detector.as_mut().unwrap().model.files.clear();
        assert_eq!(BundleManifest::from_json(&only.to_json()).unwrap(), only);
        // ... which without the joint model is a missing file.
        let mut none = only.clone();
        none.joint = None;
        assert!(matches!(
            none.validate(),
            Err(ManifestError::MissingFile(_))
        ));

        // A joint model in a format-1 manifest, without a detector, with two outputs or
        // a bad digest: refused with the reason.
        type Edit = fn(&mut BundleManifest);
        let cases: [(&str, Edit); 4] = [
            ("needs bundle format 2", |m| m.format_version = 1),
            ("needs the detector entry", |m| m.detector = None),
            ("joint lists outputs", |m| {
                m.joint.as_mut().unwrap().model.output_names.pop();
            }),
            ("joint shared weights", |m| {
                m.joint.as_mut().unwrap().shared.weights_sha256 = "x".into()
            }),
        ];
        for (want, edit) in cases {
            let mut m = joint.clone();
            edit(&mut m);
            let err = BundleManifest::from_json(&m.to_json()).expect_err(want);
            assert!(
                err.to_string().contains(want),
                "expected '{want}' in: {err}"
            );
        }
        let err = BundleManifest::from_json("{\"format_version\": 3}").unwrap_err();
        assert!(err.to_string().contains("reads 1 to 2"), "{err}");
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_relative_path("a/b.onnx"));
        for p in ["", "/abs", "a/../b", "./a", "c:\\x", "a//b"] {
            assert!(!is_safe_relative_path(p), "{p}");
        }
    }
}

//! Model bundles: a directory with the ONNX files, `manifest.json`
//! ([`BundleManifest`]) and `MODEL_CARD.md`. Every write is atomic; the manifest is
//! written last, so a directory with a manifest is complete. [`verify_bundle`] checks one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use sleeve_shared::calibration::ClassifierCalibration;
use sleeve_shared::catalogue::CATALOGUE_FILE;
use sleeve_shared::detect::{AnchorConfig, DecodeParams};
use sleeve_shared::fsutil::{sha256_hex, verify_model_file, write_atomic};
use sleeve_shared::fusion::FusionParams;
use sleeve_shared::labels::LabelSet;
use sleeve_shared::manifest::{
    BUNDLE_FORMAT_VERSION, BundleManifest, DetectorEntry, MANIFEST_FILE, ModelEntry, ModelFile,
    Precision, Provenance,
};
use sleeve_shared::preprocess::PreprocessConfig;

use crate::runtime::{F32Tensor, TractModel};

/// File name of the detailed measurement report `sleeve export bundle` writes next to the
/// manifest.
pub const REPORT_FILE: &str = "export_report.json";

/// Reliability diagram of the test split after temperature scaling, written next to the
/// manifest when the bundle is calibrated.
pub const CALIBRATION_PNG: &str = "calibration.png";

/// File name of the model card inside a bundle.
pub const MODEL_CARD_FILE: &str = "MODEL_CARD.md";

/// One model to put in a bundle: serialized ONNX per precision.
#[derive(Clone, Debug)]
pub struct ModelPayload {
    /// Base file name (`"classifier"` → `classifier.onnx`, `classifier.int8-weights.onnx`).
    pub stem: String,
    /// ONNX bytes per precision.
    pub files: Vec<(Precision, Vec<u8>)>,
    /// Precision the edge should load.
    pub selected: Precision,
    /// Graph input name.
    pub input_name: String,
    /// Graph output names.
    pub output_names: Vec<String>,
    /// Preprocessing of the input.
    pub preprocess: PreprocessConfig,
}

/// The detector part of a [`BundleSpec`].
#[derive(Clone, Debug)]
pub struct DetectorPayload {
    /// Its ONNX files.
    pub model: ModelPayload,
    /// Anchor layout the heads were trained with.
    pub anchors: AnchorConfig,
    /// Score, NMS and count thresholds.
    pub decode: DecodeParams,
    /// The kiosk's PA decision threshold, when already calibrated on real covers (carried
    /// over from an earlier bundle); `None` until `sleeve eval detector --calibrate`.
    pub pa_threshold: Option<f32>,
}

/// What [`detector_from_bundle`] takes from an existing bundle.
#[derive(Clone, Debug)]
pub struct BundleDetector {
    /// The detector's files (read back and checked against the manifest), anchors, decoding
    /// and calibrated PA threshold.
    pub payload: DetectorPayload,
    /// The bundle's PA-aware fusion (fitted with that bundle's classifier).
    pub fusion: Option<FusionParams>,
    /// The bundle's `detector.*` and `export.detector.*` metrics.
    pub metrics: BTreeMap<String, f64>,
}

/// The detector of an existing bundle, for a new bundle that re-exports only the classifier
/// (`sleeve export bundle --detector-bundle DIR`): the bundle is verified first (SHA-256 of
/// every file, tract loads it), so what is carried over is exactly what was shipped.
pub fn detector_from_bundle(dir: &Path) -> Result<BundleDetector> {
    verify_bundle(dir).with_context(|| format!("--detector-bundle {}", dir.display()))?;
    let m = read_manifest(dir)?;
    let d = m.detector.as_ref().with_context(|| {
        format!(
            "--detector-bundle {}: the bundle has no detector",
            dir.display()
        )
    })?;
    let files = d
        .model
        .files
        .iter()
        .map(|f| {
            let path = dir.join(&f.path);
            fs::read(&path)
                .map(|bytes| (f.precision, bytes))
                .with_context(|| format!("reading {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let metrics = m
        .metrics
        .iter()
        .filter(|(k, _)| k.starts_with("detector.") || k.starts_with("export.detector."))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    Ok(BundleDetector {
        payload: DetectorPayload {
            model: ModelPayload {
                stem: "detector".into(),
                files,
                selected: d.model.selected,
                input_name: d.model.input_name.clone(),
                output_names: d.model.output_names.clone(),
                preprocess: d.model.preprocess.clone(),
            },
            anchors: d.anchors.clone(),
            decode: d.decode.clone(),
            pa_threshold: d.pa_threshold,
        },
        fusion: m.fusion.clone(),
        metrics,
    })
}

/// Everything a bundle holds besides the files.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    /// Human-readable name.
    pub name: String,
    /// Genre labels in classifier output order.
    pub labels: LabelSet,
    /// The classifier.
    pub classifier: ModelPayload,
    /// The detector, its anchors and decode parameters.
    pub detector: Option<DetectorPayload>,
    /// Fitted PA fusion.
    pub fusion: Option<FusionParams>,
    /// Classifier temperature and abstain threshold fitted on validation data.
    pub calibration: Option<ClassifierCalibration>,
    /// Provenance.
    pub provenance: Provenance,
    /// Metrics (flattened `a.b.c` keys).
    pub metrics: BTreeMap<String, f64>,
}

/// File name of a model in a given precision.
pub fn model_file_name(stem: &str, precision: Precision) -> String {
    match precision {
        Precision::F32 => format!("{stem}.onnx"),
        p => format!("{stem}.{}.onnx", p.as_str()),
    }
}

fn write_model(dir: &Path, m: &ModelPayload) -> Result<ModelEntry> {
    ensure!(!m.files.is_empty(), "model '{}' has no files", m.stem);
    let mut files = Vec::new();
    for (precision, bytes) in &m.files {
        ensure!(
            !files.iter().any(|f: &ModelFile| f.precision == *precision),
            "model '{}' has two {} files",
            m.stem,
            precision.as_str()
        );
        let name = model_file_name(&m.stem, *precision);
        let path = dir.join(&name);
        write_atomic(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(ModelFile {
            precision: *precision,
            path: name,
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        });
    }
    Ok(ModelEntry {
        files,
        selected: m.selected,
        input_name: m.input_name.clone(),
        output_names: m.output_names.clone(),
        preprocess: m.preprocess.clone(),
    })
}

/// True for the files a bundle directory holds (and the temporary files of atomic writes).
fn is_bundle_file(name: &str) -> bool {
    name == MANIFEST_FILE
        || name == MODEL_CARD_FILE
        || name == REPORT_FILE
        || name == CALIBRATION_PNG
        || name == CATALOGUE_FILE
        || name.ends_with(".onnx")
        || (name.starts_with('.') && name.contains(".tmp."))
}

/// Writes a bundle to `dir`, replacing a bundle already there as a whole: everything is
/// written into a sibling directory first (model files, then `MODEL_CARD.md`, then
/// `manifest.json`) and swapped in with one atomic rename, so a reader (or a kill at any
/// moment) sees the old bundle or the new one, never a mix. An existing `dir` that holds
/// anything but bundle files is refused rather than replaced. Returns the manifest.
pub fn write_bundle(dir: &Path, spec: &BundleSpec) -> Result<BundleManifest> {
    // Replace what a symlink points to, not the link.
    let dir = &match fs::canonicalize(dir) {
        Ok(real) if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) => real,
        _ => dir.to_path_buf(),
    };
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries {
            let e = e.with_context(|| format!("listing {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            ensure!(
                is_bundle_file(&name) && e.file_type().is_ok_and(|t| t.is_file()),
                "{} exists and holds '{name}', which is not part of a bundle: refusing to \
                 replace it (choose a new or empty directory, or a bundle directory)",
                dir.display()
            );
        }
    } else if dir.exists() {
        bail!("{} exists and is not a directory", dir.display());
    }
    // The store's catalogue lives in the bundle directory but is not the export's to
    // replace: it is carried over into the new bundle.
    let catalogue = dir.join(CATALOGUE_FILE);
    sleeve_shared::fsutil::replace_dir(dir, |staging| {
        if catalogue.is_file() {
            fs::copy(&catalogue, staging.join(CATALOGUE_FILE))
                .with_context(|| format!("carrying over {}", catalogue.display()))?;
        }
        write_bundle_into(staging, spec)
    })
    .with_context(|| format!("writing bundle {}", dir.display()))
}

fn write_bundle_into(dir: &Path, spec: &BundleSpec) -> Result<BundleManifest> {
    let classifier = write_model(dir, &spec.classifier)?;
    let detector = match &spec.detector {
        Some(d) => Some(DetectorEntry {
            model: write_model(dir, &d.model)?,
            anchors: d.anchors.clone(),
            decode: d.decode.clone(),
            pa_threshold: d.pa_threshold,
        }),
        None => None,
    };
    let manifest = BundleManifest {
        format_version: BUNDLE_FORMAT_VERSION,
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        classifier,
        detector,
        fusion: spec.fusion.clone(),
        calibration: spec.calibration.clone(),
        joint: None,
        provenance: spec.provenance.clone(),
        metrics: spec.metrics.clone(),
    };
    manifest
        .validate()
        .map_err(|e| anyhow::anyhow!("refusing to write an invalid manifest: {e}"))?;
    let card = dir.join(MODEL_CARD_FILE);
    write_atomic(&card, model_card(&manifest).as_bytes())
        .with_context(|| format!("writing {}", card.display()))?;
    let mpath = dir.join(MANIFEST_FILE);
    write_atomic(&mpath, manifest.to_json().as_bytes())
        .with_context(|| format!("writing {}", mpath.display()))?;
    Ok(manifest)
}

/// Reads and validates `DIR/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<BundleManifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    BundleManifest::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn describe_files(m: &ModelEntry) -> String {
    m.files
        .iter()
        .map(|f| {
            format!(
                "| `{}` | {} | {:.2} MB | `{}…` |{}",
                f.path,
                f.precision.as_str(),
                f.bytes as f64 / 1e6,
                &f.sha256[..12],
                if f.precision == m.selected {
                    " selected"
                } else {
                    ""
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A short markdown model card generated from a manifest.
pub fn model_card(m: &BundleManifest) -> String {
    let labels = m.labels.names().join(", ");
    let mut s = format!(
        "# Model card: {name}\n\n\
         Sleeve tells a record's music genre from a photo of its cover and flags Parental \
         Advisory labels. This bundle is what the kiosk (`sleeve-edge`) loads.\n\n\
         ## Genre classifier\n\n\
         MobileNetV2-style CNN, input `{input}` `{shape:?}` (preprocessing v{pv}: centre crop \
         {crop}, resize to {size}², (x − {mean:?}) / {std:?}), output `{outs}` over: {labels}.\n\n\
         | file | precision | size | sha256 | |\n|---|---|---|---|---|\n{files}\n",
        name = m.name,
        input = m.classifier.input_name,
        shape = m.classifier.preprocess.shape(),
        pv = m.classifier.preprocess.version,
        crop = m.classifier.preprocess.crop_fraction,
        size = m.classifier.preprocess.input_size,
        mean = m.classifier.preprocess.mean,
        std = m.classifier.preprocess.std,
        outs = m.classifier.output_names.join(", "),
        files = describe_files(&m.classifier),
    );
    if let Some(d) = &m.detector {
        s += &format!(
            "\n## Parental Advisory detector\n\nSSD-Lite head, input {size}², outputs `{outs}` \
             over {a} anchors, decoded on the edge (score ≥ {score}, NMS IoU {iou}).\n\n\
             | file | precision | size | sha256 | |\n|---|---|---|---|---|\n{files}\n",
            size = d.model.preprocess.input_size,
            outs = d.model.output_names.join(", "),
            a = d.anchors.num_anchors(),
            score = d.decode.score_threshold,
            iou = d.decode.iou_threshold,
            files = describe_files(&d.model),
        );
    }
    if let Some(j) = &m.joint {
        s += &format!(
            "\n## Joint model\n\nOne graph, input {size}², outputs `{outs}`: the two models' \
             shared backbone prefix ({convs} convolutions, verified by weight hashes, digest \
             `{digest}…`) computed once. The kiosk runs it instead of the two models.\n\n\
             | file | precision | size | sha256 | |\n|---|---|---|---|---|\n{files}\n",
            size = j.model.preprocess.input_size,
            outs = j.model.output_names.join(", "),
            convs = j.shared.convs,
            digest = &j.shared.weights_sha256[..12.min(j.shared.weights_sha256.len())],
            files = describe_files(&j.model),
        );
    }
    if let Some(f) = &m.fusion {
        s += &format!(
            "\n## Fusion\n\nPA-aware genre fusion with strength α = {} (PA threshold {}).\n",
            f.strength, f.pa_threshold
        );
    }
    s += "\n## Metrics\n\n";
    if m.metrics.is_empty() {
        s += "None recorded.\n";
    }
    for (k, v) in &m.metrics {
        s += &format!("- `{k}`: {v:.4}\n");
    }
    let p = &m.provenance;
    s += &format!(
        "\n## Provenance\n\n- data: {}\n- seed: {}\n- commit: {}\n- created: {}\n- commands:\n",
        p.data, p.seed, p.commit, p.created_utc
    );
    for c in &p.commands {
        s += &format!("  - `{c}`\n");
    }
    s += "\n## Limitations\n\nTrained on a few thousand album covers of five genres; covers \
          of other genres are forced into one of these. Accuracy is far from perfect: treat \
          the output as a suggestion. The PA detector was trained on synthetic composites.\n";
    s
}

/// Result of checking one model file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FileCheck {
    /// Path relative to the bundle.
    pub path: String,
    /// Precision.
    pub precision: Precision,
    /// Output shapes on a zero input.
    pub output_shapes: Vec<Vec<usize>>,
}

fn expected_shapes(m: &BundleManifest, detector: bool) -> Vec<Vec<usize>> {
    match (detector, &m.detector) {
        (true, Some(d)) => {
            let a = d.anchors.num_anchors();
            vec![vec![1, a, 4], vec![1, a]]
        }
        _ => vec![vec![1, m.labels.len()]],
    }
}

fn check_model(
    dir: &Path,
    m: &BundleManifest,
    entry: &ModelEntry,
    detector: bool,
) -> Result<Vec<FileCheck>> {
    let role = if detector { "detector" } else { "classifier" };
    check_model_shapes(dir, entry, role, expected_shapes(m, detector))
}

fn check_model_shapes(
    dir: &Path,
    entry: &ModelEntry,
    role: &str,
    want: Vec<Vec<usize>>,
) -> Result<Vec<FileCheck>> {
    ensure!(
        entry.output_names.len() == want.len(),
        "{role} lists {} outputs, expected {}",
        entry.output_names.len(),
        want.len()
    );
    let mut out = Vec::new();
    for f in &entry.files {
        let path: PathBuf = dir.join(&f.path);
        verify_model_file(dir, f)?;
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let model =
            TractModel::load(&bytes).with_context(|| format!("loading {} in tract", f.path))?;
        let shape = entry.preprocess.shape().to_vec();
        let n = shape.iter().product();
        let outs = model
            .run(&F32Tensor::new(shape, vec![0.0; n])?)
            .with_context(|| format!("running {} on a zero input", f.path))?;
        let shapes: Vec<Vec<usize>> = outs.iter().map(|o| o.shape.clone()).collect();
        ensure!(
            shapes == want,
            "{}: output shapes {shapes:?}, expected {want:?}",
            f.path
        );
        ensure!(
            outs.iter().all(|o| o.data.iter().all(|v| v.is_finite())),
            "{}: non-finite output on a zero input",
            f.path
        );
        out.push(FileCheck {
            path: f.path.clone(),
            precision: f.precision,
            output_shapes: shapes,
        });
    }
    Ok(out)
}

/// Verifies a bundle (format 1 or 2): manifest validity, every file's size and SHA-256,
/// that tract loads each file (the joint model's too) and that a zero input gives the
/// output shapes the manifest implies.
pub fn verify_bundle(dir: &Path) -> Result<Vec<FileCheck>> {
    let m = read_manifest(dir)?;
    let mut checks = check_model(dir, &m, &m.classifier, false)?;
    if let Some(d) = &m.detector {
        checks.extend(check_model(dir, &m, &d.model, true)?);
    }
    if let Some(j) = &m.joint {
        let mut want = expected_shapes(&m, false);
        want.extend(expected_shapes(&m, true));
        checks.extend(check_model_shapes(dir, &j.model, "joint", want)?);
    }
    Ok(checks)
}

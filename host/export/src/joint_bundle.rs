//! `sleeve export joint`: adds the joint model ([`crate::joint`]) to a bundle, writing a
//! format-2 bundle. Every precision that both models ship is merged; the joint graph must
//! reproduce the two models (tract, at the detector's input size) within a tolerance on
//! generated and, when given, real inputs, or nothing is written.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use sleeve_shared::fsutil::{replace_dir, sha256_file, sha256_hex, write_atomic};
use sleeve_shared::manifest::{
    BUNDLE_FORMAT_VERSION, BundleManifest, JointEntry, MANIFEST_FILE, ModelEntry, ModelFile,
    Precision, SharedPrefix,
};

use crate::bundle::{model_file_name, read_manifest, verify_bundle};
use crate::joint::{JOINT_OUTPUTS, JointOptions, JointReport, check_joint, merge_joint};
use crate::proto;
use crate::runtime::F32Tensor;

/// File stem of the joint model (`sleeve.int8-weights.onnx`, …).
pub const JOINT_STEM: &str = "sleeve";

/// Settings of [`add_joint_model`].
#[derive(Clone, Debug)]
pub struct JointBundleOptions {
    /// The bundle to read (format 1 or 2, with a detector).
    pub input: PathBuf,
    /// Where the format-2 bundle goes (may equal `input`: replaced as a whole).
    pub out: PathBuf,
    /// Keep the two separate models' files next to the joint model.
    pub keep_separate: bool,
    /// Inputs `[1, 3, S, S]` at the detector's size to compare joint and separate outputs.
    pub check_inputs: Vec<F32Tensor>,
    /// Largest allowed |joint − separate| on any output.
    pub tolerance: f32,
    /// Merge settings.
    pub merge: JointOptions,
    /// The command line, recorded in the manifest's provenance.
    pub command: String,
}

/// One precision's merge.
#[derive(Clone, Debug, Serialize)]
pub struct JointForm {
    /// Precision of the two source files and the joint file.
    pub precision: Precision,
    /// What was shared (absent when the merge was refused).
    pub report: Option<JointReport>,
    /// Largest |joint − separate| over the check inputs.
    pub max_abs_diff: Option<f32>,
    /// Joint file size in bytes.
    pub bytes: Option<u64>,
    /// Why this precision has no joint file.
    pub skipped: Option<String>,
}

/// What [`add_joint_model`] did.
#[derive(Clone, Debug, Serialize)]
pub struct JointBundleReport {
    /// Per precision.
    pub forms: Vec<JointForm>,
    /// The joint model's selected precision.
    pub selected: Precision,
    /// Input side of the joint model.
    pub input_size: u32,
    /// Inputs compared.
    pub check_inputs: usize,
}

fn read_model_file(dir: &Path, f: &ModelFile) -> Result<Vec<u8>> {
    let path = dir.join(&f.path);
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let hash = sha256_hex(&bytes);
    ensure!(
        hash == f.sha256,
        "{}: SHA-256 {hash} differs from the manifest's {}: modified file",
        path.display(),
        f.sha256
    );
    Ok(bytes)
}

/// Merges every precision both models ship into a joint model and writes the bundle as
/// format 2. The classifier's selected precision must merge; other precisions that share
/// too little (e.g. `int8-full`, whose activation ranges were calibrated per model) are
/// skipped with the reason.
pub fn add_joint_model(opts: &JointBundleOptions) -> Result<(BundleManifest, JointBundleReport)> {
    let m = read_manifest(&opts.input)?;
    let d = m
        .detector
        .as_ref()
        .context("the bundle has no detector: nothing to share a backbone with")?;
    ensure!(
        !opts.check_inputs.is_empty(),
        "no inputs to compare the joint model on"
    );
    let size = d.model.preprocess.input_size;
    let mut forms = Vec::new();
    let mut files: Vec<(ModelFile, Vec<u8>)> = Vec::new();
    for cf in &m.classifier.files {
        let Some(df) = d.model.file(cf.precision) else {
            continue;
        };
        let p = cf.precision;
        let c = proto::decode(&read_model_file(&opts.input, cf)?)?;
        let dm = proto::decode(&read_model_file(&opts.input, df)?)?;
        let (joint, report) = match merge_joint(&c, &dm, &opts.merge) {
            Ok(v) => v,
            Err(e) if p != m.classifier.selected => {
                tracing::warn!(precision = p.as_str(), "no joint model: {e}");
                forms.push(JointForm {
                    precision: p,
                    report: None,
                    max_abs_diff: None,
                    bytes: None,
                    skipped: Some(e.to_string()),
                });
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("merging the {} models", p.as_str()));
            }
        };
        let diff = check_joint(&joint, &c, &dm, &opts.check_inputs)
            .with_context(|| format!("running the {} joint model", p.as_str()))?;
        if diff.is_nan() || diff > opts.tolerance {
            bail!(
                "the {} joint model differs from the two models by {diff:e} (tolerance {:e})",
                p.as_str(),
                opts.tolerance
            );
        }
        tracing::info!(
            precision = p.as_str(),
            shared_convs = report.shared_convs,
            max_abs_diff = diff,
            "joint model"
        );
        let bytes = proto::encode(&joint);
        let name = model_file_name(JOINT_STEM, p);
        forms.push(JointForm {
            precision: p,
            report: Some(report),
            max_abs_diff: Some(diff),
            bytes: Some(bytes.len() as u64),
            skipped: None,
        });
        files.push((
            ModelFile {
                precision: p,
                path: name,
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
            },
            bytes,
        ));
    }
    let selected = m.classifier.selected;
    let chosen = forms
        .iter()
        .find(|f| f.precision == selected && f.report.is_some())
        .with_context(|| {
            format!(
                "the detector has no {} file to merge with the classifier's selected one",
                selected.as_str()
            )
        })?;
    let rep = chosen.report.clone().expect("checked");
    let mut out = m.clone();
    out.format_version = BUNDLE_FORMAT_VERSION;
    out.joint = Some(JointEntry {
        model: ModelEntry {
            files: files.iter().map(|(f, _)| f.clone()).collect(),
            selected,
            input_name: d.model.input_name.clone(),
            output_names: JOINT_OUTPUTS.iter().map(|s| s.to_string()).collect(),
            preprocess: d.model.preprocess.clone(),
        },
        shared: SharedPrefix {
            nodes: rep.shared_nodes as u32,
            convs: rep.shared_convs as u32,
            weights_sha256: rep.shared_weights_sha256.clone(),
            first_unshared: rep.first_unshared.clone(),
        },
    });
    let mut dropped: Vec<String> = Vec::new();
    if !opts.keep_separate {
        dropped.extend(out.classifier.files.drain(..).map(|f| f.path));
        if let Some(d) = &mut out.detector {
            dropped.extend(d.model.files.drain(..).map(|f| f.path));
        }
    }
    out.metrics.insert(
        "joint.max_abs_diff_vs_separate".into(),
        f64::from(chosen.max_abs_diff.unwrap_or(0.0)),
    );
    out.metrics
        .insert("joint.shared_convs".into(), rep.shared_convs as f64);
    out.provenance.commands.push(opts.command.clone());
    out.validate()
        .map_err(|e| anyhow::anyhow!("refusing to write an invalid manifest: {e}"))?;
    write_joint_bundle(opts, &out, &files, &dropped)?;
    verify_bundle(&opts.out).context("verifying the written bundle")?;
    Ok((
        out,
        JointBundleReport {
            forms,
            selected,
            input_size: size,
            check_inputs: opts.check_inputs.len(),
        },
    ))
}

/// Copies the input bundle's files (less `dropped` and the manifest), adds the joint files
/// and writes the manifest last, all in a staging directory swapped in as a whole.
fn write_joint_bundle(
    opts: &JointBundleOptions,
    manifest: &BundleManifest,
    files: &[(ModelFile, Vec<u8>)],
    dropped: &[String],
) -> Result<()> {
    if opts.out != opts.input && opts.out.exists() {
        let empty = fs::read_dir(&opts.out)
            .with_context(|| format!("listing {}", opts.out.display()))?
            .next()
            .is_none();
        ensure!(
            empty || opts.out.join(MANIFEST_FILE).is_file(),
            "{} exists and is neither empty nor a bundle: refusing to replace it",
            opts.out.display()
        );
    }
    replace_dir(&opts.out, |staging| -> Result<()> {
        for e in fs::read_dir(&opts.input)
            .with_context(|| format!("listing {}", opts.input.display()))?
        {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.file_type()?.is_file()
                || name == MANIFEST_FILE
                || name.starts_with('.')
                || dropped.contains(&name)
            {
                continue;
            }
            fs::copy(e.path(), staging.join(&name))
                .with_context(|| format!("copying {}", e.path().display()))?;
        }
        for (f, bytes) in files {
            write_atomic(&staging.join(&f.path), bytes)
                .with_context(|| format!("writing {}", f.path))?;
            let written = sha256_file(&staging.join(&f.path))?;
            ensure!(written == f.sha256, "{} did not write back intact", f.path);
        }
        let card = staging.join(crate::bundle::MODEL_CARD_FILE);
        write_atomic(&card, crate::bundle::model_card(manifest).as_bytes())?;
        write_atomic(&staging.join(MANIFEST_FILE), manifest.to_json().as_bytes())?;
        Ok(())
    })
    .with_context(|| format!("writing bundle {}", opts.out.display()))
}

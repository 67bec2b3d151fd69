//! `sleeve export …`: ONNX export, int8 quantization, comparison, bundles.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde_json::json;
use sleeve_shared::detect::DecodeParams;
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::labels::LabelSet;
use sleeve_shared::manifest::Precision;
use sleeve_shared::preprocess::PreprocessConfig;
use tracing::info;

use sleeve_export::bundle::{
    BundleSpec, DetectorPayload, ModelPayload, read_manifest, verify_bundle, write_bundle,
};
use sleeve_export::images::random_inputs;
use sleeve_export::images::{Sample, load_samples};
use sleeve_export::npy::to_npy;
use sleeve_export::parity::{Agreement, argmax, compare_models};
use sleeve_export::pipeline::{
    ExportSpec, PARITY_TOLERANCE, export_checked, int8_full, int8_weights,
};
use sleeve_export::quant::calib::RangeMethod;
use sleeve_export::runtime::{F32Tensor, TractModel};
use sleeve_export::tiny::tiny_anchor_config;
use sleeve_export::trained::{
    BundleOptions, Int8Forms, Selection, Ship, build_bundle, report_json,
};
use sleeve_export::{proto, provenance, tiny};

/// A parser for an enum spelled by its `names` (help lists them; `FromStr` converts).
fn choice<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).try_map(|s| s.parse::<T>())
}

/// Export subcommands.
#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// Quantize an f32 ONNX file to int8 (weight-only, or full-integer with calibration).
    Quantize(QuantizeArgs),
    /// Compare an f32 ONNX file with another form of it (int8) on images: top-1
    /// agreement, accuracy on labelled images, output differences, sizes, latency.
    Compare(CompareArgs),
    /// Check a bundle: SHA-256 of every file, tract loads it, output shapes on a dummy input.
    Verify(VerifyArgs),
    /// Write preprocessed inputs and tract's outputs as .npy files for every model of a
    /// bundle (for scripts/onnx_check.py).
    Dump(DumpArgs),
    /// Latency and size of f32 / int8-weights / int8-full for MobileNetV2 widths
    /// (random weights) or given ONNX files, in tract on one thread; prints JSON.
    Bench(BenchArgs),
    /// Export tiny generated models into a complete bundle (tries the whole pipeline
    /// without trained checkpoints).
    Demo(DemoArgs),
    /// Export trained checkpoints (`sleeve train classifier` output, optionally a `sleeve
    /// train detector` checkpoint) into a verified bundle: burn-vs-tract parity, int8
    /// forms, sizes, latency, agreement, test accuracy / AP, provenance, model card.
    Bundle(BundleArgs),
    /// Fit the classifier's temperature and abstain threshold of an existing bundle on the
    /// validation split of its training data (the bundle's recorded seed), measure them on
    /// the test split, and write them into the manifest (model files untouched).
    Calibrate(CalibrateArgs),
    /// Add the joint model to a bundle (format 2): one graph that computes the backbone the
    /// classifier and the detector share once (verified by weight hashes), checked against
    /// the two models in tract.
    Joint(JointArgs),
}

/// `sleeve export joint` arguments.
#[derive(Args, Debug)]
pub struct JointArgs {
    /// Bundle to read (format 1 or 2, with a detector).
    #[arg(long)]
    pub bundle: PathBuf,
    /// Output bundle directory (may be the input: replaced as a whole).
    #[arg(long)]
    pub out: PathBuf,
    /// Leave out the two separate models' files (the kiosk then always runs the joint one).
    #[arg(long)]
    pub drop_separate: bool,
    /// Images (dataset directory or folder tree) to compare joint and separate outputs on,
    /// besides generated inputs.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Number of images from --data.
    #[arg(long, default_value_t = 16)]
    pub count: usize,
    /// Largest allowed |joint − separate| on any output.
    #[arg(long, default_value_t = PARITY_TOLERANCE)]
    pub tolerance: f32,
    /// Fewest convolutions the two models must share.
    #[arg(long, default_value_t = 1)]
    pub min_shared_convs: usize,
}

fn joint_cmd(a: JointArgs) -> Result<()> {
    use sleeve_export::joint_bundle::{JointBundleOptions, add_joint_model};
    let m = read_manifest(&a.bundle)?;
    let d = m.detector.as_ref().context("the bundle has no detector")?;
    let cfg = &d.model.preprocess;
    let s = cfg.input_size as usize;
    let mut inputs = random_inputs(&[1, 3, s, s], 3, 15);
    if let Some(data) = &a.data {
        inputs.extend(
            load_samples(data, a.count, cfg)?
                .into_iter()
                .map(|x| x.tensor),
        );
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let (_, report) = add_joint_model(&JointBundleOptions {
        input: a.bundle,
        out: a.out,
        keep_separate: !a.drop_separate,
        check_inputs: inputs,
        tolerance: a.tolerance,
        merge: sleeve_export::joint::JointOptions {
            min_shared_convs: a.min_shared_convs,
        },
        command,
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `sleeve export calibrate` arguments.
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// Bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The labelled dataset the classifier was trained on (`sleeve dataset` directory).
    #[arg(long)]
    pub data: PathBuf,
    /// At most this many images per split (0: all).
    #[arg(long, default_value_t = 0)]
    pub count: usize,
    /// Selective accuracy the abstain threshold aims for on the validation split.
    #[arg(long, default_value_t = 0.70)]
    pub abstain_accuracy: f64,
    /// Least share of covers answered at that threshold.
    #[arg(long, default_value_t = 0.50)]
    pub abstain_coverage: f64,
}

fn calibrate_cmd(a: CalibrateArgs) -> Result<()> {
    let r = sleeve_export::calibrate::calibrate_bundle(
        &a.bundle,
        &a.data,
        a.count,
        &sleeve_export::calibrate::AbstainTarget {
            accuracy: a.abstain_accuracy,
            min_coverage: a.abstain_coverage,
        },
    )?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

/// Quantization form on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// int8 weights + DequantizeLinear (tract folds at load): ~4× smaller, f32 speed.
    Weights,
    /// QuantizeLinear / QLinearConv / DequantizeLinear with calibrated activation ranges.
    Full,
}

/// Calibration options shared by commands that build the full-integer form.
#[derive(Args, Debug, Clone)]
pub struct CalibArgs {
    /// Calibration images: a dataset directory or a folder-per-genre tree.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Number of calibration images (evenly spaced over the sorted records).
    #[arg(long, default_value_t = 64)]
    pub calib_count: usize,
    /// Activation range method: minmax, mse, or a percentile such as p99.99.
    #[arg(long, default_value = "p99.99")]
    pub range: RangeMethod,
}

/// `sleeve export quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// f32 ONNX input.
    #[arg(long)]
    pub model: PathBuf,
    /// Output ONNX file.
    #[arg(long)]
    pub out: PathBuf,
    /// Which int8 form.
    #[arg(long, value_enum, default_value_t = Form::Weights)]
    pub form: Form,
    /// Calibration images and range method.
    #[command(flatten)]
    pub calib: CalibArgs,
}

/// `sleeve export compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Reference (f32) ONNX file.
    #[arg(long)]
    pub reference: PathBuf,
    /// Candidate ONNX files (int8 forms).
    #[arg(long, num_args = 1.., required = true)]
    pub candidate: Vec<PathBuf>,
    /// Images: a dataset directory or a folder-per-genre tree.
    #[arg(long)]
    pub data: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Square input size of the models.
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Label set of a classifier (enables accuracy): `covers5` or comma-separated names.
    #[arg(long)]
    pub labels: Option<String>,
    /// Write the report JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `sleeve export verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
}

/// `sleeve export dump`.
#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Images to preprocess (dataset directory or folder tree).
    #[arg(long)]
    pub data: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 4)]
    pub count: usize,
    /// Output directory for the .npy files and index.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// `sleeve export bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// MobileNetV2 width multipliers to build (random weights).
    #[arg(long, num_args = 1.., default_values_t = vec![0.35f32, 0.5, 1.0])]
    pub width: Vec<f32>,
    /// ONNX files to time instead of generated MobileNetV2s.
    #[arg(long, num_args = 1..)]
    pub onnx: Vec<PathBuf>,
    /// Input size.
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Number of classes of the generated models.
    #[arg(long, default_value_t = 5)]
    pub classes: usize,
    /// Timed runs per model (median reported), after 3 warm-up runs.
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
    /// Calibration images and range method.
    #[command(flatten)]
    pub calib: CalibArgs,
    /// Write the JSON report here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `sleeve export demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Bundle directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Input size of the tiny classifier (the detector uses the SSD-Lite 320 anchors'
    /// geometry only in name: its outputs follow its own anchor count).
    #[arg(long, default_value_t = 64)]
    pub size: u32,
}

/// `sleeve export bundle`.
#[derive(Args, Debug)]
pub struct BundleArgs {
    /// Output of `sleeve train classifier` (its --out, or the classifier/ folder in it).
    #[arg(long)]
    pub classifier: PathBuf,
    /// Output of `sleeve train detector` (its --out, best/, or the .bpk/.json).
    #[arg(long, conflicts_with = "detector_bundle")]
    pub detector: Option<PathBuf>,
    /// Take the detector (its files, anchors, decoding, calibrated PA threshold, metrics)
    /// and the fusion from this existing bundle instead of a checkpoint: re-export only the
    /// classifier. `--fusion` still overrides the fusion.
    #[arg(long, value_name = "BUNDLE")]
    pub detector_bundle: Option<PathBuf>,
    /// Bundle directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// int8 forms to build besides f32 (omit for f32 only).
    #[arg(long, value_parser = choice::<Int8Forms>(Int8Forms::NAMES))]
    pub int8: Option<Int8Forms>,
    /// Calibration images and range method.
    #[command(flatten)]
    pub calib: CalibArgs,
    /// Precision the manifest selects for the edge (auto: by measurement).
    #[arg(long, default_value = "auto", value_parser = choice::<Selection>(Selection::NAMES))]
    pub select: Selection,
    /// Labelled dataset whose seeded test split (the classifier's own seed) measures
    /// accuracy of every form; it is also kept out of calibration.
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    /// At most this many test images (0: the whole test split).
    #[arg(long, default_value_t = 0)]
    pub eval_count: usize,
    /// Held-out synthetic PA composites for the detector's AP@0.5 per form (0: skip).
    #[arg(long, default_value_t = 0)]
    pub ap_count: usize,
    /// Real covers (`DIR/<genre>/*.jpg`) for the detector's calibration composites (train
    /// split) and AP composites (held-out split); procedural covers when omitted.
    #[arg(long)]
    pub pa_covers: Option<PathBuf>,
    /// Seed of the AP composites (must not be the detector's training or validation seed).
    #[arg(long, default_value_t = 9001)]
    pub ap_seed: u64,
    /// Fusion parameters (`fusion.json` of `sleeve eval fusion`; without it the bundle has no
    /// fusion unless --detector-bundle carries one).
    #[arg(long)]
    pub fusion: Option<PathBuf>,
    /// Bundle name (default: derived from the checkpoints).
    #[arg(long)]
    pub name: Option<String>,
    /// Timed runs per form (median, after 2 warm-up runs, 1 thread).
    #[arg(long, default_value_t = 10)]
    pub latency_runs: usize,
    /// Images for the burn-vs-tract parity check.
    #[arg(long, default_value_t = 4)]
    pub parity_count: usize,
    /// burn-vs-tract tolerance (max |diff| on every output).
    #[arg(long, default_value_t = PARITY_TOLERANCE)]
    pub parity_tolerance: f32,
    /// Which built files go into the bundle (every form is measured either way):
    /// all, int8 (the shipped default), or selected.
    #[arg(long = "files", default_value = "all", value_parser = choice::<Ship>(Ship::NAMES))]
    pub ship: Ship,
    /// `detector_eval.json` written by `sleeve eval detector` (its metrics go into the
    /// manifest).
    #[arg(long)]
    pub detector_eval: Option<PathBuf>,
    /// Selective accuracy the kiosk's abstain threshold aims for on the validation split
    /// (with --eval-data; the temperature is fitted there too).
    #[arg(long, default_value_t = 0.70)]
    pub abstain_accuracy: f64,
    /// Least share of covers the kiosk must answer at that threshold.
    #[arg(long, default_value_t = 0.50)]
    pub abstain_coverage: f64,
}

impl BundleArgs {
    /// The library options.
    pub fn options(&self) -> BundleOptions {
        BundleOptions {
            classifier: self.classifier.clone(),
            detector: self.detector.clone(),
            detector_bundle: self.detector_bundle.clone(),
            out: self.out.clone(),
            int8: self.int8,
            calib: self.calib.calib.clone(),
            calib_count: self.calib.calib_count,
            range: self.calib.range,
            select: self.select,
            eval_data: self.eval_data.clone(),
            eval_count: self.eval_count,
            ap_count: self.ap_count,
            pa_covers: self.pa_covers.clone(),
            ap_seed: self.ap_seed,
            fusion: self.fusion.clone(),
            name: self.name.clone(),
            latency_runs: self.latency_runs,
            parity_tolerance: self.parity_tolerance,
            parity_count: self.parity_count,
            ship: self.ship,
            detector_eval: self.detector_eval.clone(),
            abstain: sleeve_export::calibrate::AbstainTarget {
                accuracy: self.abstain_accuracy,
                min_coverage: self.abstain_coverage,
            },
        }
    }
}

fn bundle_cmd(a: BundleArgs) -> Result<()> {
    let report = build_bundle(&a.options())?;
    println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
    Ok(())
}

/// Runs an export subcommand.
pub fn run(cmd: ExportCmd) -> Result<()> {
    match cmd {
        ExportCmd::Quantize(a) => quantize(a),
        ExportCmd::Compare(a) => compare_cmd(a),
        ExportCmd::Verify(a) => verify(a),
        ExportCmd::Dump(a) => dump(a),
        ExportCmd::Bench(a) => bench(a),
        ExportCmd::Demo(a) => demo(a),
        ExportCmd::Bundle(a) => bundle_cmd(a),
        ExportCmd::Calibrate(a) => calibrate_cmd(a),
        ExportCmd::Joint(a) => joint_cmd(a),
    }
}

/// Input shape of an ONNX graph's first input (static dims required).
pub fn input_shape(model: &tract_onnx::pb::ModelProto) -> Result<Vec<usize>> {
    let g = proto::graph(model)?;
    let input = g.input.first().context("model has no input")?;
    proto::value_dims(input)
        .into_iter()
        .map(|d| d.filter(|v| *v > 0).map(|v| v as usize))
        .collect::<Option<Vec<_>>>()
        .filter(|d| d.len() == 4)
        .with_context(|| format!("input '{}' has no static 4-D shape", input.name))
}

fn read_model(path: &Path) -> Result<(Vec<u8>, tract_onnx::pb::ModelProto)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = proto::decode(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    Ok((bytes, model))
}

/// Calibration inputs: images of `--calib`, or an error explaining it is needed.
fn calib_inputs(c: &CalibArgs, size: u32) -> Result<Vec<F32Tensor>> {
    let dir = c
        .calib
        .as_ref()
        .context("the full-integer form needs calibration images: pass --calib DIR")?;
    let cfg = PreprocessConfig::signed_unit(size);
    Ok(load_samples(dir, c.calib_count, &cfg)?
        .into_iter()
        .map(|s| s.tensor)
        .collect())
}

fn quantize(a: QuantizeArgs) -> Result<()> {
    let (_, model) = read_model(&a.model)?;
    let shape = input_shape(&model)?;
    let reference = TractModel::load(&proto::encode(&model))?;
    let (q, inputs) = match a.form {
        Form::Weights => {
            let (q, n) = int8_weights(&model)?;
            info!(
                weights = n.total(),
                exact = n.lossless,
                per_channel = n.per_channel,
                "weight-only int8"
            );
            (q, random_inputs(&shape, 4, 7))
        }
        Form::Full => {
            let inputs = calib_inputs(&a.calib, shape[2] as u32)?;
            let bar = sleeve_export::progress(0, "calibrating");
            let (q, r) = int8_full(&model, &inputs, a.calib.range, &bar)?;
            bar.finish_and_clear();
            info!(?r, "full-integer int8");
            (q, inputs)
        }
    };
    let bytes = proto::encode(&q);
    let candidate = TractModel::load(&bytes).context("tract cannot load the quantized graph")?;
    let agreement = compare_models(&reference, &candidate, &inputs[..inputs.len().min(16)])?;
    write_atomic(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "out": a.out,
            "bytes": bytes.len(),
            "agreement_vs_f32": agreement,
        }))?
    );
    Ok(())
}

fn parse_labels(s: &str) -> Result<LabelSet> {
    if s == "covers5" {
        return Ok(LabelSet::covers5());
    }
    let names: Vec<&str> = s.split(',').map(str::trim).collect();
    LabelSet::new(&names).map_err(|e| anyhow::anyhow!("labels '{s}': {e}"))
}

/// Classifier accuracy of `model` on labelled samples (samples whose genre is not in
/// `labels` are ignored). Returns (accuracy, samples counted).
pub fn accuracy(model: &TractModel, samples: &[Sample], labels: &LabelSet) -> Result<(f64, usize)> {
    let mut hit = 0;
    let mut n = 0;
    for s in samples {
        let Some(truth) = labels.index_of(&s.genre) else {
            continue;
        };
        let out = model.run(&s.tensor)?;
        if argmax(&out[0].data) == Some(truth) {
            hit += 1;
        }
        n += 1;
    }
    Ok((
        if n == 0 {
            f64::NAN
        } else {
            hit as f64 / n as f64
        },
        n,
    ))
}

fn compare_cmd(a: CompareArgs) -> Result<()> {
    let cfg = PreprocessConfig::signed_unit(a.size);
    let samples = load_samples(&a.data, a.count, &cfg)?;
    let inputs: Vec<F32Tensor> = samples.iter().map(|s| s.tensor.clone()).collect();
    let labels = a.labels.as_deref().map(parse_labels).transpose()?;
    let (ref_bytes, _) = read_model(&a.reference)?;
    let reference = TractModel::load(&ref_bytes)?;
    let mut report = json!({
        "images": inputs.len(),
        "reference": { "path": a.reference, "bytes": ref_bytes.len(),
                       "latency_ms_1thread": reference.time_ms(&inputs[0], 2, 10)? },
        "candidates": [],
    });
    if let Some(l) = &labels {
        let (acc, n) = accuracy(&reference, &samples, l)?;
        report["reference"]["accuracy"] = json!(acc);
        report["labelled_images"] = json!(n);
    }
    for c in &a.candidate {
        let (bytes, _) = read_model(c)?;
        let model = TractModel::load(&bytes).with_context(|| format!("loading {}", c.display()))?;
        let agreement = compare_models(&reference, &model, &inputs)?;
        let mut entry = json!({
            "path": c, "bytes": bytes.len(), "agreement": agreement,
            "latency_ms_1thread": model.time_ms(&inputs[0], 2, 10)?,
        });
        if let Some(l) = &labels {
            entry["accuracy"] = json!(accuracy(&model, &samples, l)?.0);
        }
        report["candidates"]
            .as_array_mut()
            .expect("array")
            .push(entry);
    }
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(p) = &a.json {
        write_atomic(p, text.as_bytes()).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("{text}");
    Ok(())
}

fn verify(a: VerifyArgs) -> Result<()> {
    let checks = verify_bundle(&a.bundle)
        .with_context(|| format!("bundle {} failed verification", a.bundle.display()))?;
    for c in &checks {
        println!(
            "ok  {:<40} {:<13} outputs {:?}",
            c.path,
            c.precision.as_str(),
            c.output_shapes
        );
    }
    println!(
        "bundle {} verified ({} files)",
        a.bundle.display(),
        checks.len()
    );
    Ok(())
}

fn dump(a: DumpArgs) -> Result<()> {
    let m = read_manifest(&a.bundle)?;
    let mut models = vec![("classifier", m.classifier.clone())];
    if let Some(d) = &m.detector {
        models.push(("detector", d.model.clone()));
    }
    let mut index = Vec::new();
    for (role, entry) in models {
        let samples = load_samples(&a.data, a.count, &entry.preprocess)?;
        for (i, s) in samples.iter().enumerate() {
            let input = format!("{role}.input{i}.npy");
            write_atomic(&a.out.join(&input), &to_npy(&s.tensor))?;
            for f in &entry.files {
                let bytes = fs::read(a.bundle.join(&f.path))
                    .with_context(|| format!("reading {}", f.path))?;
                let outs = TractModel::load(&bytes)?.run(&s.tensor)?;
                let mut names = Vec::new();
                for (name, o) in entry.output_names.iter().zip(&outs) {
                    let file = format!("{role}.{}.input{i}.{name}.npy", f.precision.as_str());
                    write_atomic(&a.out.join(&file), &to_npy(o))?;
                    names.push(json!({ "name": name, "file": file }));
                }
                index.push(json!({
                    "model": f.path, "precision": f.precision.as_str(), "input_name": entry.input_name,
                    "input": input, "image": s.path, "outputs": names,
                }));
            }
        }
    }
    let path = a.out.join("index.json");
    write_atomic(&path, serde_json::to_string_pretty(&index)?.as_bytes())?;
    println!("wrote {} tract runs to {}", index.len(), path.display());
    Ok(())
}

/// Sizes, latency and agreement of the three forms of one f32 graph.
fn bench_forms(
    name: &str,
    f32_model: &tract_onnx::pb::ModelProto,
    calib: &[F32Tensor],
    c: &CalibArgs,
    runs: usize,
) -> Result<serde_json::Value> {
    let f32_bytes = proto::encode(f32_model);
    let (w, _) = int8_weights(f32_model)?;
    let bar = sleeve_export::progress(0, "calibrating");
    let (full, report) = int8_full(f32_model, calib, c.range, &bar)?;
    bar.finish_and_clear();
    let forms = [
        (Precision::F32, f32_bytes),
        (Precision::Int8Weights, proto::encode(&w)),
        (Precision::Int8Full, proto::encode(&full)),
    ];
    let reference = TractModel::load(&forms[0].1)?;
    let mut out = json!({ "model": name, "full_int8": report });
    for (p, bytes) in &forms {
        let t = TractModel::load(bytes)?;
        let agreement: Agreement = compare_models(&reference, &t, calib)?;
        out[p.as_str()] = json!({
            "bytes": bytes.len(),
            "latency_ms_1thread": t.time_ms(&calib[0], 3, runs)?,
            "top1_agreement_vs_f32": agreement.top1_agreement,
            "max_abs_diff_vs_f32": agreement.worst(),
        });
        info!("{name} {}: {} bytes", p.as_str(), bytes.len());
    }
    Ok(out)
}

fn bench(a: BenchArgs) -> Result<()> {
    let mut results = Vec::new();
    let shape = [1, 3, a.size as usize, a.size as usize];
    let calib = match &a.calib.calib {
        Some(_) => calib_inputs(&a.calib, a.size)?,
        None => random_inputs(&shape, a.calib.calib_count.min(16), 11),
    };
    if !a.onnx.is_empty() {
        for p in &a.onnx {
            let (_, m) = read_model(p)?;
            results.push(bench_forms(
                &p.display().to_string(),
                &m,
                &calib,
                &a.calib,
                a.runs,
            )?);
        }
    } else {
        let device = Device::default();
        for &w in &a.width {
            let cfg = sleeve_nn::MobileNetV2Config::new(a.classes).with_width_mult(w);
            cfg.validate()
                .map_err(|e| anyhow::anyhow!("width {w}: {e}"))?;
            let model = cfg.init(&device);
            let exported = export_checked(
                &model,
                &ExportSpec::classifier(a.size as usize),
                |m: &sleeve_nn::MobileNetV2, x| m.forward(x),
                &calib[..2.min(calib.len())],
                PARITY_TOLERANCE,
            )?;
            let mut r = bench_forms(
                &format!("mobilenet_v2_{w}"),
                &exported.model,
                &calib,
                &a.calib,
                a.runs,
            )?;
            r["width_mult"] = json!(w);
            r["parity_burn_vs_tract"] = json!(exported.parity.worst());
            results.push(r);
        }
    }
    let report = json!({
        "threads": 1,
        "input_size": a.size,
        "calibration": if a.calib.calib.is_some() { "images" } else { "random inputs" },
        "results": results,
    });
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(p) = &a.json {
        write_atomic(p, text.as_bytes()).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("{text}");
    Ok(())
}

fn demo(a: DemoArgs) -> Result<()> {
    let device = Device::default();
    let size = a.size as usize;
    ensure!(size >= 8, "--size must be at least 8");
    let labels = LabelSet::covers5();
    let shape = [1, 3, size, size];
    let inputs = random_inputs(&shape, 8, 5);
    let cls = tiny::TinyClassifier::new(labels.len(), 1, &device);
    let exported = export_checked(
        &cls,
        &ExportSpec::classifier(size),
        |m: &tiny::TinyClassifier, x| m.forward(x),
        &inputs[..2],
        PARITY_TOLERANCE,
    )?;
    let (w, _) = int8_weights(&exported.model)?;
    let bar = sleeve_export::progress(0, "calibrating");
    let (full, _) = int8_full(&exported.model, &inputs, RangeMethod::MinMax, &bar)?;
    bar.finish_and_clear();
    // A detector whose anchor count matches a one-map anchor layout of its own geometry.
    let det = tiny::TinyDetector::new(2, 2, &device);
    let det_exported = export_checked(
        &det,
        &ExportSpec::detector(size),
        |m: &tiny::TinyDetector, x| m.forward(x),
        &inputs[..2],
        PARITY_TOLERANCE,
    )?;
    let anchors = tiny_anchor_config(size);
    ensure!(
        anchors.num_anchors() == det.num_anchors(size),
        "demo anchors do not match the tiny detector"
    );
    let mut metrics = BTreeMap::new();
    metrics.insert(
        "export.classifier.parity_max_abs_diff".into(),
        exported.parity.worst() as f64,
    );
    let spec = BundleSpec {
        name: "sleeve-demo (tiny random models, not trained)".into(),
        labels,
        classifier: ModelPayload {
            stem: "classifier".into(),
            files: vec![
                (Precision::F32, exported.bytes.clone()),
                (Precision::Int8Weights, proto::encode(&w)),
                (Precision::Int8Full, proto::encode(&full)),
            ],
            selected: Precision::Int8Weights,
            input_name: "image".into(),
            output_names: vec!["logits".into()],
            preprocess: PreprocessConfig::signed_unit(a.size),
        },
        detector: Some(DetectorPayload {
            model: ModelPayload {
                stem: "detector".into(),
                files: vec![(Precision::F32, det_exported.bytes.clone())],
                selected: Precision::F32,
                input_name: "image".into(),
                output_names: vec!["boxes".into(), "logits".into()],
                preprocess: PreprocessConfig::signed_unit(a.size),
            },
            anchors,
            decode: DecodeParams::default(),
            pa_threshold: None,
        }),
        fusion: None,
        calibration: None,
        provenance: provenance::collect("random initialisation (demo)", 1, &[]),
        metrics,
    };
    let m = write_bundle(&a.out, &spec)?;
    println!("wrote demo bundle '{}' to {}", m.name, a.out.display());
    Ok(())
}

//! The `sleeve-edge` command line: `run`, `classify`, `bench`, `doctor`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use sleeve_shared::manifest::Precision;

use crate::bench::{StageStats, peak_rss_kib};
use crate::bundle::Bundle;
use crate::classify::{ClassifyOptions, classify_image};
use crate::display::Screen;
use crate::display::png::PngSnapshots;
use crate::engine::{Engine, Layout, MULTITHREAD, PlanOptions, ms};
use crate::finder::{EdgeMethod, FinderConfig};
use crate::kiosk::{Kiosk, KioskOptions};
use crate::notify::Notifier;
use crate::output::JsonLines;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::reuse::ReuseConfig;
use crate::source::files::read_rgb;
use crate::source::{FrameSource, ImageFiles, ImageSequence, RetryPolicy, Retrying};
use crate::stabilize::StabilizerConfig;

mod catalogue_args;
pub use catalogue_args::{CatalogueArgs, Retry, parse_retry};

/// Offline kiosk runtime: tells a record's genre and Parental Advisory label from its sleeve.
#[derive(Parser, Debug)]
#[command(name = "sleeve-edge", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// parsed once at start-up: the size of the largest variant costs nothing
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the kiosk loop on a camera, image files, a sequence or synthetic scenes.
    Run(RunArgs),
    /// Classify image files (each taken as a whole cover); one JSON line per image.
    Classify(ClassifyArgs),
    /// Per-stage latency percentiles, fps and peak memory, as JSON.
    Bench(BenchArgs),
    /// Cameras, CPU features and a bundle check, as JSON.
    Doctor(DoctorArgs),
}

/// Bundle and inference options shared by all subcommands.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Bundle directory (manifest.json + ONNX files).
    #[arg(long, default_value = "models/default")]
    pub bundle: PathBuf,
    /// Inference threads (tract's thread pool; needs the `multithread` build feature).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Load this precision of both models instead of the bundle's selected one.
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Run the models in half precision (tract's f32-to-f16 transform). Pays off on ARM
    /// cores with fp16 arithmetic (Raspberry Pi 5); emulated and slow on x86.
    #[arg(long)]
    pub f16: bool,
    /// How tract gets the models' stride-2 depthwise convolutions: `split` into four
    /// stride-1 ones (the same outputs; tract runs them vectorised), `keep` them as they
    /// are, or `auto`: split on x86-64 (inference 0.86x), kept elsewhere (on aarch64 the
    /// split costs 6 % more instructions, counted under qemu).
    #[arg(long, value_enum, default_value_t = StridedDepthwiseArg::Auto)]
    pub strided_depthwise: StridedDepthwiseArg,
    /// Which models run: the bundle's joint model when it has one (`auto`), or force the
    /// `joint` model or the two `separate` models.
    #[arg(long, value_enum, default_value_t = LayoutArg::Auto)]
    pub models: LayoutArg,
}

/// `--strided-depthwise` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StridedDepthwiseArg {
    /// Split on x86-64, keep elsewhere.
    Auto,
    /// Split into four stride-1 convolutions.
    Split,
    /// Give tract the graph as it is.
    Keep,
}

impl StridedDepthwiseArg {
    /// Whether plans split them.
    pub fn split(self) -> bool {
        match self {
            Self::Auto => PlanOptions::default().split_strided_depthwise,
            Self::Split => true,
            Self::Keep => false,
        }
    }
}

/// `--models` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// The joint model when the bundle has one, else the two models.
    Auto,
    /// The joint model.
    Joint,
    /// The classifier and the detector as two models.
    Separate,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Auto => Layout::Auto,
            LayoutArg::Joint => Layout::Joint,
            LayoutArg::Separate => Layout::Separate,
        }
    }
}

/// The sleeve finder's settings on the command line (`run`, `classify --find`, `bench`).
#[derive(Args, Debug, Clone)]
pub struct FinderArgs {
    /// The sleeve finder works on frames downscaled to this longer side (pixels); its
    /// corners are then refined at full resolution.
    #[arg(long, default_value_t = FinderConfig::default().work_size,
          value_parser = clap::value_parser!(u32).range(64..=4096))]
    pub finder_size: u32,
    /// Lowest score (0 to 1: edge support × squareness) of an accepted sleeve; higher
    /// rejects more clutter on an empty counter, lower finds more sleeves.
    #[arg(long, default_value_t = FinderConfig::default().min_score, value_parser = parse_unit)]
    pub finder_min_score: f32,
    /// Smallest corner angle (degrees, 0 to 90) of an accepted sleeve outline; outlines
    /// with sharper or flatter corners (slivers, a part of the sleeve cut by a hand) are
    /// rejected.
    #[arg(long, default_value_t = FinderConfig::default().min_corner_angle, value_parser = parse_angle)]
    pub finder_min_angle: f32,
    /// Propose sleeve outlines from contours only, not also from four straight lines
    /// (faster on a slow CPU, finds fewer sleeves right: docs/deploy.md).
    #[arg(long)]
    pub finder_contours_only: bool,
    /// Extra Gaussian blur (sigma, 0 to 8 pixels) before the finder's edge detection, on top
    /// of the sigma 1.4 its Canny applies; 0 skips it (faster, more edges).
    #[arg(long, default_value_t = FinderConfig::default().blur_sigma, value_parser = parse_sigma)]
    pub finder_blur: f32,
    /// The finder's edge detector: `colour` (one pass over the three channels) or
    /// `per-channel` (a Canny per channel, slower; docs/deploy.md compares them).
    #[arg(long, value_enum, default_value_t = EdgesArg::Colour)]
    pub finder_edges: EdgesArg,
    /// The finder's Canny thresholds on the gradient magnitude, `LOW,HIGH` (0 < LOW ≤ HIGH ≤
    /// 1000): edges start at HIGH and continue down to LOW. Lower finds fainter sleeve
    /// borders (a dark sleeve on a dark counter) and more clutter.
    #[arg(long, value_name = "LOW,HIGH", value_parser = parse_canny,
          default_value = "20,60")]
    pub finder_canny: (f32, f32),
}

impl FinderArgs {
    /// The finder configuration these flags ask for.
    pub fn config(&self) -> FinderConfig {
        FinderConfig {
            work_size: self.finder_size,
            min_score: self.finder_min_score,
            min_vertex_score: self.finder_min_score,
            min_corner_angle: self.finder_min_angle,
            line_proposals: !self.finder_contours_only,
            blur_sigma: self.finder_blur,
            edges: self.finder_edges.into(),
            canny_low: self.finder_canny.0,
            canny_high: self.finder_canny.1,
            ..FinderConfig::default()
        }
    }
}

/// `--finder-edges` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EdgesArg {
    /// One colour Canny: blur once, the strongest channel's gradient per pixel.
    Colour,
    /// A grey-level Canny per channel, combined (slower; the method before 2026-12-05).
    PerChannel,
}

impl From<EdgesArg> for EdgeMethod {
    fn from(e: EdgesArg) -> Self {
        match e {
            EdgesArg::Colour => EdgeMethod::Colour,
            EdgesArg::PerChannel => EdgeMethod::PerChannel,
        }
    }
}

/// A model file's numeric form on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Plain f32.
    F32,
    /// int8 weights, dequantized at load.
    Int8Weights,
    /// Integer convolutions (QLinearConv).
    Int8Full,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Int8Weights => Precision::Int8Weights,
            PrecisionArg::Int8Full => Precision::Int8Full,
        }
    }
}

/// Where frames come from (exactly one).
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct SourceArgs {
    /// Live V4L2 camera index (/dev/videoN).
    #[arg(long, value_name = "N")]
    pub camera: Option<u32>,
    /// Image files, directories or glob patterns ("shots/*.jpg").
    #[arg(long, num_args = 1.., value_name = "PATH")]
    pub files: Option<Vec<String>>,
    /// Numbered image sequence, e.g. "frames/frame_%05d.png".
    #[arg(long, value_name = "PATTERN")]
    pub sequence: Option<String>,
    /// Synthetic kiosk scenes (procedural covers) with this seed.
    #[arg(long, value_name = "SEED")]
    pub synthetic: Option<u64>,
}

/// Fine-tuning of the sources.
#[derive(Args, Debug, Clone)]
pub struct SourceOptions {
    /// First number of --sequence.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Loop over --files forever.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Camera width.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Camera height.
    #[arg(long, default_value_t = 480)]
    pub height: u32,
    /// Camera frame rate.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Ask the camera for YUYV instead of MJPEG.
    #[arg(long)]
    pub yuyv: bool,
    /// Frames per cover for --synthetic (the sleeve is held still-ish this long).
    #[arg(long, default_value_t = 8)]
    pub frames_per_cover: u64,
}

/// Decision tuning.
#[derive(Args, Debug, Clone)]
pub struct DecisionArgs {
    /// Abstain ("uncertain") below this calibrated confidence (0 to 1); default from the
    /// bundle.
    #[arg(long, value_parser = parse_unit)]
    pub abstain: Option<f32>,
    /// Frames an answer must hold before it is shown.
    #[arg(long, default_value_t = 3)]
    pub hold_frames: u32,
    /// Frames without a sleeve before the answer clears.
    #[arg(long, default_value_t = 3)]
    pub clear_frames: u32,
    /// Weight of the newest frame in the moving average (0 to 1).
    #[arg(long, default_value_t = 0.5, value_parser = parse_unit)]
    pub ema_alpha: f32,
    /// Take each frame as the whole cover (no sleeve finding).
    #[arg(long)]
    pub whole_frame: bool,
    /// The sleeve finder.
    #[command(flatten)]
    pub finder: FinderArgs,
    /// Reuse the last analysis while the sleeve looks the same: mean grey-level
    /// difference of 16x16 thumbnails up to this; 0 runs the models on every frame.
    #[arg(long, default_value_t = ReuseConfig::default().max_diff)]
    pub reuse_diff: f32,
    /// Run the models again after this many reused frames.
    #[arg(long, default_value_t = ReuseConfig::default().max_frames)]
    pub reuse_max_frames: u32,
    /// Frames of one held sleeve that are analysed and averaged before reuse starts
    /// (1: reuse the first frame's answer).
    #[arg(long, default_value_t = ReuseConfig::default().hold_views,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub hold_views: u32,
}

/// A number in `[0, 1]` (a probability or a weight).
fn parse_unit(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside 0 to 1")),
        Err(e) => Err(format!("'{s}' is not a number: {e}")),
    }
}

fn parse_sigma(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=8.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside 0 to 8 pixels")),
        Err(e) => Err(format!("'{s}' is not a number: {e}")),
    }
}

/// Parses the finder's Canny thresholds `LOW,HIGH` (0 < LOW ≤ HIGH ≤ 1000).
pub fn parse_canny(s: &str) -> Result<(f32, f32), String> {
    let (low, high) = s
        .split_once(',')
        .ok_or_else(|| format!("'{s}' is not LOW,HIGH"))?;
    let num = |t: &str| {
        t.trim()
            .parse::<f32>()
            .map_err(|e| format!("'{t}' is not a number: {e}"))
    };
    let (low, high) = (num(low)?, num(high)?);
    if !(low > 0.0 && low <= high && high <= 1000.0) {
        return Err(format!("{low},{high}: need 0 < LOW <= HIGH <= 1000"));
    }
    Ok((low, high))
}

fn parse_angle(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=90.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside 0 to 90 degrees")),
        Err(e) => Err(format!("'{s}' is not a number: {e}")),
    }
}

/// `sleeve-edge run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    source_options: SourceOptions,
    #[command(flatten)]
    decision: DecisionArgs,
    #[command(flatten)]
    catalogue: CatalogueArgs,
    #[command(flatten)]
    integration: Box<crate::integration::IntegrationArgs>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// Write PNG screens into this directory.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// Write only every Nth screen with --snapshots.
    #[arg(long, default_value_t = 1)]
    snapshot_every: u64,
    /// Show the screen on /dev/fbN.
    #[arg(long, value_name = "N")]
    framebuffer: Option<u32>,
    /// Show the screen in a desktop window (build with --features simulator).
    #[arg(long)]
    simulator: bool,
    /// Append JSON lines to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// One JSON line per frame instead of per stable decision.
    #[arg(long)]
    every_frame: bool,
    /// Consecutive source failures before giving up (default: never for cameras, 10 otherwise).
    #[arg(long)]
    max_source_failures: Option<u32>,
}

/// `sleeve-edge classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images to classify.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many genres to list.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Find and rectify the sleeve first instead of using the whole image.
    #[arg(long)]
    find: bool,
    /// Average the answer over K views of each image (the image, then slightly zoomed
    /// crops); K times the inference cost.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::views::MAX_VIEWS)))]
    views: u32,
    #[command(flatten)]
    finder: FinderArgs,
    #[command(flatten)]
    catalogue: CatalogueArgs,
}

/// `sleeve-edge bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images to run (default: synthetic scenes).
    #[arg(long, num_args = 1..)]
    files: Option<Vec<String>>,
    /// Frames to time.
    #[arg(long, default_value_t = 100)]
    frames: u64,
    /// Untimed frames first.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Take each frame as the whole cover (model-only timings).
    #[arg(long)]
    whole_frame: bool,
    #[command(flatten)]
    finder: FinderArgs,
    /// Seed of the synthetic scenes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// `sleeve-edge doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => run_kiosk(a),
        Command::Classify(a) => classify(a),
        Command::Bench(a) => bench(a),
        Command::Doctor(a) => doctor(a),
    }
}

fn load_engine(m: &ModelArgs) -> anyhow::Result<Engine> {
    let bundle = Bundle::load(&m.bundle)
        .with_context(|| format!("loading bundle {} (set --bundle)", m.bundle.display()))?;
    if m.threads > 1 && !MULTITHREAD {
        tracing::warn!(
            "--threads {} ignored: built without the `multithread` feature",
            m.threads
        );
    }
    let opts = PlanOptions {
        threads: m.threads.max(1),
        half: m.f16,
        split_strided_depthwise: m.strided_depthwise.split(),
    };
    Engine::load_layout(&bundle, opts, m.precision.map(Into::into), m.models.into())
        .context("building the inference plans")
}

fn pipeline_config(d: &DecisionArgs) -> PipelineConfig {
    PipelineConfig {
        stabilizer: StabilizerConfig {
            alpha: d.ema_alpha,
            hold_frames: d.hold_frames,
            clear_frames: d.clear_frames,
            ..StabilizerConfig::default()
        },
        abstain_override: d.abstain,
        whole_frame: d.whole_frame,
        finder: d.finder.config(),
        reuse: (d.reuse_diff > 0.0).then_some(ReuseConfig {
            max_diff: d.reuse_diff,
            max_frames: d.reuse_max_frames,
            hold_views: d.hold_views,
        }),
    }
}

/// Builds the selected source, wrapped in a retrying layer.
pub fn open_source(
    s: &SourceArgs,
    o: &SourceOptions,
    max_frames: Option<u64>,
    max_failures: Option<u32>,
) -> anyhow::Result<Box<dyn FrameSource>> {
    let files_policy = RetryPolicy {
        initial: Duration::ZERO,
        max: Duration::ZERO,
        max_failures: Some(max_failures.unwrap_or(10)),
    };
    if let Some(index) = s.camera {
        return open_camera(index, o, max_failures);
    }
    if let Some(files) = &s.files {
        let src = ImageFiles::new(files, o.looping)?;
        return Ok(Box::new(Retrying::new(src, files_policy)));
    }
    if let Some(pattern) = &s.sequence {
        let src = ImageSequence::new(pattern, o.start)?;
        return Ok(Box::new(Retrying::new(src, files_policy)));
    }
    if let Some(seed) = s.synthetic {
        return open_synthetic(seed, o.frames_per_cover, max_frames);
    }
    bail!("choose a frame source: --camera, --files, --sequence or --synthetic")
}

#[cfg(feature = "camera")]
fn open_camera(
    index: u32,
    o: &SourceOptions,
    max_failures: Option<u32>,
) -> anyhow::Result<Box<dyn FrameSource>> {
    use crate::source::camera::{CameraConfig, CameraSource};
    let cam = CameraSource::open(CameraConfig {
        index,
        width: o.width,
        height: o.height,
        fps: o.fps,
        yuyv: o.yuyv,
    })?;
    let policy = RetryPolicy {
        max_failures,
        ..RetryPolicy::default()
    };
    Ok(Box::new(Retrying::new(cam, policy)))
}

#[cfg(not(feature = "camera"))]
fn open_camera(
    _index: u32,
    _o: &SourceOptions,
    _m: Option<u32>,
) -> anyhow::Result<Box<dyn FrameSource>> {
    bail!("this sleeve-edge was built without the `camera` feature")
}

#[cfg(feature = "synthetic")]
fn open_synthetic(
    seed: u64,
    per_cover: u64,
    limit: Option<u64>,
) -> anyhow::Result<Box<dyn FrameSource>> {
    use crate::source::synthetic::{SceneCovers, SyntheticScenes};
    let cfg = sleeve_synth::scenes::SceneConfig::default();
    Ok(Box::new(SyntheticScenes::new(
        cfg,
        SceneCovers::Procedural,
        seed,
        per_cover,
        limit,
    )))
}

#[cfg(not(feature = "synthetic"))]
fn open_synthetic(
    _seed: u64,
    _per_cover: u64,
    _limit: Option<u64>,
) -> anyhow::Result<Box<dyn FrameSource>> {
    bail!("this sleeve-edge was built without the `synthetic` feature")
}

fn run_kiosk(a: RunArgs) -> anyhow::Result<()> {
    let plan = a.integration.plan()?;
    let engine = load_engine(&a.model)?;
    let integration = if a.integration.enabled() {
        let (model, catalogue) = (a.model.clone(), a.catalogue.clone());
        let factory = move || Ok((load_engine(&model)?, catalogue.recogniser(&model.bundle)?));
        Some(plan.start(&engine, &a.model.bundle, a.model.f16, Box::new(factory))?)
    } else {
        None
    };
    let pipeline = Pipeline::new(engine, pipeline_config(&a.decision))
        .with_recogniser(a.catalogue.recogniser(&a.model.bundle)?);
    let mut source = open_source(
        &a.source,
        &a.source_options,
        a.max_frames,
        a.max_source_failures,
    )?;
    let mut screens: Vec<Box<dyn Screen>> = Vec::new();
    if let Some(dir) = &a.snapshots {
        screens.push(Box::new(PngSnapshots::new(dir, a.snapshot_every)?));
    }
    if let Some(n) = a.framebuffer {
        #[cfg(feature = "framebuffer")]
        screens.push(Box::new(crate::display::fbdev::Framebuffer::open(n)?));
        #[cfg(not(feature = "framebuffer"))]
        bail!("--framebuffer {n}: built without the `framebuffer` feature");
    }
    if a.simulator {
        #[cfg(feature = "simulator")]
        screens.push(Box::new(crate::display::simulator::SimulatorScreen::new()));
        #[cfg(not(feature = "simulator"))]
        bail!("--simulator: build with `--features simulator` (needs SDL2 development files)");
    }
    if let Some(i) = &integration {
        i.hub().set_source(source.describe());
        screens.extend(i.screen());
    }
    let json = match &a.json {
        Some(p) => JsonLines::file(p)?,
        None => JsonLines::stdout(),
    };
    let stop = sleeve_shared::stop::ctrl_c("stopping the kiosk");
    let mut kiosk = Kiosk {
        pipeline,
        screens,
        json: Some(json),
        notifier: Notifier::from_env(),
        options: KioskOptions {
            max_frames: a.max_frames,
            every_frame: a.every_frame,
        },
    };
    let summary = kiosk.run(source.as_mut(), stop, |r| {
        if let Some(i) = &integration {
            i.observe(r);
        }
    })?;
    if let Some(i) = integration {
        i.finish(&summary);
    }
    tracing::info!(
        frames = summary.frames,
        sleeves = summary.sleeves,
        events = summary.events,
        failed = summary.failed_frames,
        bad_files = summary.bad_inputs,
        "run finished"
    );
    // A batch of files is a job with a result: say so in the exit status when part of it
    // failed (a live camera's occasional bad frame is not).
    if summary.failed_frames > 0 && (a.source.files.is_some() || a.source.sequence.is_some()) {
        bail!(
            "{} of {} input(s) failed ({} unreadable file(s)); see the log above",
            summary.failed_frames,
            summary.frames + summary.bad_inputs,
            summary.bad_inputs
        );
    }
    Ok(())
}

fn classify(a: ClassifyArgs) -> anyhow::Result<()> {
    let engine = load_engine(&a.model)?;
    let recogniser = a.catalogue.recogniser(&a.model.bundle)?;
    let opts = ClassifyOptions {
        top_k: a.top_k,
        find: a.find,
        views: a.views,
        finder: a.finder.config(),
    };
    let mut out = JsonLines::stdout();
    let mut failures = 0;
    for path in &a.images {
        let t = Instant::now();
        let result = read_rgb(path)
            .map_err(anyhow::Error::from)
            .and_then(|img| classify_image(&engine, recogniser.as_ref(), img, &opts));
        match result {
            Ok(mut v) => {
                v["image"] = json!(path);
                v["latency_ms"] = json!(ms(t));
                out.write(&v)?
            }
            Err(e) => {
                failures += 1;
                tracing::error!(image = %path.display(), "{e:#}");
                out.write(&json!({"image": path, "error": format!("{e:#}")}))?;
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {} image(s) failed", a.images.len());
    }
    Ok(())
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let engine = load_engine(&a.model)?;
    let m = (
        engine.classifier().preprocess_config().input_size,
        engine.detector().map(|d| d.preprocess_config().input_size),
    );
    let precisions = (
        engine.classifier().precision().as_str(),
        engine.detector().map(|d| d.precision().as_str()),
    );
    let joint = engine.joint().is_some();
    let cfg = PipelineConfig {
        whole_frame: a.whole_frame,
        finder: a.finder.config(),
        ..PipelineConfig::default()
    };
    let total = a.warmup + a.frames;
    let source_args = SourceArgs {
        camera: None,
        files: a.files.clone(),
        sequence: None,
        synthetic: a.files.is_none().then_some(a.seed),
    };
    let options = SourceOptions {
        start: 0,
        looping: true,
        width: 640,
        height: 480,
        fps: 30,
        yuyv: false,
        frames_per_cover: 8,
    };
    let mut source = open_source(&source_args, &options, Some(total), None)?;
    // Synthetic frames are rendered first and held as MJPEG, as a camera delivers them:
    // `decode` then times JPEG decoding, not the scene generator.
    let synthetic = a.files.is_none();
    let mut frames = Vec::new();
    if synthetic {
        while let Some(frame) = source.next_frame()? {
            frames.push(crate::bench::as_mjpeg(frame)?);
        }
    }
    let mut pipeline = Pipeline::new(engine, cfg);
    let mut times = Vec::new();
    let mut sleeves = 0u64;
    let t0 = Instant::now();
    let mut timed_start = None;
    for i in 0..total {
        let frame = if synthetic {
            match frames.get(i as usize) {
                Some(m) => m.decode()?,
                None => break,
            }
        } else {
            match source.next_frame()? {
                Some(f) => f,
                None => break,
            }
        };
        if i == a.warmup {
            timed_start = Some(Instant::now());
        }
        let r = pipeline.process(&frame)?;
        if i >= a.warmup {
            times.push(r.times);
            sleeves += u64::from(r.sleeve.is_some());
        }
    }
    let timed_s = timed_start
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    let stats = StageStats::of(&times);
    let report = json!({
        "bundle": a.model.bundle,
        "threads": a.model.threads,
        "f16": a.model.f16,
        "multithread_build": MULTITHREAD,
        // With the joint model `classify` is the joint inference and `detect` the decoding.
        "models": if joint { "joint" } else { "separate" },
        "classifier_input": m.0,
        "detector_input": m.1,
        "classifier_precision": precisions.0,
        "detector_precision": precisions.1,
        "source": if synthetic { "synthetic scenes, decoded from JPEG q85 (MJPEG camera)" } else { "files" },
        "whole_frame": a.whole_frame,
        "frames": times.len(),
        "frames_with_sleeve": sleeves,
        "fps": if timed_s > 0.0 { times.len() as f64 / timed_s } else { 0.0 },
        "stages_ms": stats,
        "peak_rss_kib": peak_rss_kib(),
        "wall_s": t0.elapsed().as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn doctor(a: DoctorArgs) -> anyhow::Result<()> {
    let report = crate::doctor::report(&a.model.bundle, a.model.threads.max(1));
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report["bundle"]["ok"] != json!(true) {
        bail!("bundle check failed: {}", report["bundle"]["error"]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finder_numbers_are_range_checked() {
        assert_eq!(parse_sigma("0"), Ok(0.0));
        assert_eq!(parse_sigma(" 1.2 "), Ok(1.2));
        assert!(parse_sigma("8.5").unwrap_err().contains("outside 0 to 8"));
        assert!(parse_sigma("-1").unwrap_err().contains("outside"));
        assert!(
            parse_sigma("soft")
                .unwrap_err()
                .contains("'soft' is not a number")
        );
        assert_eq!(parse_angle("45"), Ok(45.0));
        assert!(parse_angle("91").unwrap_err().contains("outside 0 to 90"));
        assert_eq!(parse_canny("10, 30"), Ok((10.0, 30.0)));
        assert!(parse_canny("30").unwrap_err().contains("not LOW,HIGH"));
        assert!(parse_canny("40,20").unwrap_err().contains("LOW <= HIGH"));
        assert!(parse_canny("0,20").unwrap_err().contains("0 < LOW"));
        assert!(
            parse_canny("5,x")
                .unwrap_err()
                .contains("'x' is not a number")
        );
    }

    #[test]
    fn finder_defaults_are_the_libraries() {
        use clap::Parser;
        #[derive(Parser)]
        struct Probe {
            #[command(flatten)]
            finder: FinderArgs,
        }
        let cfg = Probe::parse_from(["probe"]).finder.config();
        let lib = FinderConfig::default();
        assert_eq!(
            (cfg.canny_low, cfg.canny_high),
            (lib.canny_low, lib.canny_high)
        );
        assert_eq!(cfg.blur_sigma, lib.blur_sigma);
        assert_eq!(cfg.min_corner_angle, lib.min_corner_angle);
    }
}

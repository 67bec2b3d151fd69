//! `sleeve synth pa | scenes | covers | sheet | stats`: flags of the generators in
//! [`sleeve_synth::generate`].

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use sleeve_synth::designs::DesignMix;
use sleeve_synth::generate::{self, COCO_FILE, CoversOptions, PaOptions, ScenesOptions};

/// Synth subcommands.
#[derive(Subcommand, Debug)]
pub enum SynthCmd {
    /// Paste Parental Advisory labels onto covers (about half get none); writes images and
    /// COCO annotations (`annotations.json`).
    Pa(PaArgs),
    /// Render kiosk camera frames of a sleeve on a counter; writes frames and per-frame
    /// ground truth JSON (corners, genre, PA boxes) plus `scenes.json`.
    Scenes(ScenesArgs),
    /// Draw procedural covers in an ImageFolder layout (one folder per genre).
    Covers(CoversArgs),
    /// Draw a contact sheet of random outputs with their ground truth.
    Sheet(SheetArgs),
    /// Print label statistics (size, position, rotation) of a COCO file as JSON.
    Stats(StatsArgs),
}

/// Arguments of `sleeve synth pa`.
#[derive(Args, Debug)]
pub struct PaArgs {
    /// Covers: a `sleeve dataset` directory (manifest.csv), an ImageFolder tree (genre from
    /// the folder) or a flat folder of images. Procedural covers when omitted.
    #[arg(long)]
    pub covers: Option<PathBuf>,
    /// Covers to leave out: a text file with one path or file name per line (e.g. covers
    /// that already carry a printed label, which would be unannotated positives).
    #[arg(long, requires = "covers")]
    pub exclude: Option<PathBuf>,
    /// Output folder (gets `images/` and `annotations.json`).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Badge image to paste instead of the drawn one.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Printed label designs: `mix` (the real labels' mix: classic, lyrics, wide_bar,
    /// two_line, outline), `classic` (one design), or weights such as `classic=3,outline=1`.
    #[arg(long, default_value = "mix", value_parser = DesignMix::parse)]
    pub designs: DesignMix,
    /// Output side in pixels (the detector input).
    #[arg(long, default_value_t = 320)]
    pub size: u32,
    /// Fraction of images with a label.
    #[arg(long, default_value_t = 0.5)]
    pub label_prob: f32,
    /// Image format: jpg or png.
    #[arg(long, default_value = "jpg")]
    pub format: String,
    /// JPEG quality.
    #[arg(long, default_value_t = 92)]
    pub quality: u8,
    /// Print label statistics when done.
    #[arg(long)]
    pub stats: bool,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `sleeve synth scenes`.
#[derive(Args, Debug)]
pub struct ScenesArgs {
    /// Covers: a `sleeve dataset` directory, an ImageFolder tree or a flat folder;
    /// procedural covers when omitted.
    #[arg(long)]
    pub covers: Option<PathBuf>,
    /// Covers to leave out: a text file with one path or file name per line (e.g. covers
    /// that already carry a printed label, which would be unannotated positives).
    #[arg(long, requires = "covers")]
    pub exclude: Option<PathBuf>,
    /// Output folder (gets `frames/`, one JSON per frame and `scenes.json`).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of frames.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frame sizes to draw from, e.g. `640x480,1280x720`.
    #[arg(long, default_value = "640x480,1280x720")]
    pub sizes: String,
    /// Fraction of frames without a sleeve.
    #[arg(long, default_value_t = 0.12)]
    pub no_sleeve_prob: f32,
    /// Fraction of sleeves carrying a PA label.
    #[arg(long, default_value_t = 0.3)]
    pub pa_prob: f32,
    /// Badge image to paste instead of the drawn one.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Printed label designs: `mix` (the real labels' mix: classic, lyrics, wide_bar,
    /// two_line, outline), `classic` (one design), or weights such as `classic=3,outline=1`.
    #[arg(long, default_value = "mix", value_parser = DesignMix::parse)]
    pub designs: DesignMix,
    /// Frames per sleeve: each of the --count sleeves is held under a slightly shaking
    /// camera for this many frames (`frames/NNNNNN_KK.jpg`), for measuring per-hold answers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=120))]
    pub frames_per_sleeve: u16,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `sleeve synth covers`.
#[derive(Args, Debug)]
pub struct CoversArgs {
    /// Output folder (gets `<genre>/NNNNNN.jpg` and `annotations.json`).
    #[arg(long)]
    pub out: PathBuf,
    /// Covers per genre.
    #[arg(long, default_value_t = 200)]
    pub per_genre: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Cover side in pixels.
    #[arg(long, default_value_t = 300)]
    pub size: u32,
    /// Comma-separated genres (default: the covers5 set).
    #[arg(long)]
    pub genres: Option<String>,
    /// Never put a PA label on a cover.
    #[arg(long)]
    pub no_pa: bool,
    /// Badge image to paste instead of the drawn one.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Printed label designs: `mix` (the real labels' mix: classic, lyrics, wide_bar,
    /// two_line, outline), `classic` (one design), or weights such as `classic=3,outline=1`.
    #[arg(long, default_value = "mix", value_parser = DesignMix::parse)]
    pub designs: DesignMix,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `sleeve synth sheet`.
#[derive(Args, Debug)]
pub struct SheetArgs {
    /// An output folder of `synth pa`, `synth scenes` or `synth covers` (or any ImageFolder).
    #[arg(long)]
    pub input: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of random items.
    #[arg(long, default_value_t = 32)]
    pub count: usize,
    /// Random seed (which items).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Grid columns.
    #[arg(long, default_value_t = 8)]
    pub columns: u32,
}

/// Arguments of `sleeve synth stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// A COCO JSON file or a folder holding `annotations.json`.
    #[arg(long)]
    pub input: PathBuf,
}

impl From<PaArgs> for PaOptions {
    fn from(a: PaArgs) -> Self {
        Self {
            covers: a.covers,
            exclude: a.exclude,
            out: a.out,
            count: a.count,
            seed: a.seed,
            template: a.template,
            designs: a.designs,
            size: a.size,
            label_prob: a.label_prob,
            format: a.format,
            quality: a.quality,
            force: a.force,
        }
    }
}

impl From<ScenesArgs> for ScenesOptions {
    fn from(a: ScenesArgs) -> Self {
        Self {
            covers: a.covers,
            exclude: a.exclude,
            out: a.out,
            count: a.count,
            seed: a.seed,
            sizes: a.sizes,
            no_sleeve_prob: a.no_sleeve_prob,
            pa_prob: a.pa_prob,
            template: a.template,
            designs: a.designs,
            frames_per_sleeve: a.frames_per_sleeve,
            force: a.force,
        }
    }
}

impl From<CoversArgs> for CoversOptions {
    fn from(a: CoversArgs) -> Self {
        Self {
            out: a.out,
            per_genre: a.per_genre,
            seed: a.seed,
            size: a.size,
            genres: a.genres,
            no_pa: a.no_pa,
            template: a.template,
            designs: a.designs,
            force: a.force,
        }
    }
}

/// Runs a synth subcommand.
pub fn run(cmd: SynthCmd) -> Result<()> {
    match cmd {
        SynthCmd::Pa(a) => {
            let stats = a.stats;
            let coco = generate::pa(&a.into())?;
            if stats {
                print_stats(&coco)?;
            }
            Ok(())
        }
        SynthCmd::Scenes(a) => generate::scenes(&a.into()),
        SynthCmd::Covers(a) => generate::covers(&a.into()),
        SynthCmd::Sheet(a) => {
            sleeve_synth::sheet::run_sheet(&a.input, &a.out, a.count, a.seed, a.columns)
        }
        SynthCmd::Stats(a) => {
            let path = if a.input.is_dir() {
                a.input.join(COCO_FILE)
            } else {
                a.input.clone()
            };
            print_stats(&sleeve_synth::coco::read_coco(&path)?)
        }
    }
}

fn print_stats(coco: &sleeve_synth::coco::Coco) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&sleeve_synth::stats::label_stats(coco))?
    );
    Ok(())
}

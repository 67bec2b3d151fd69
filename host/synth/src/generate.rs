//! The generators behind `sleeve synth pa | scenes | covers`: each writes one whole output
//! folder (images plus COCO annotations or a scene index) from plain options.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use indicatif::ProgressBar;
use rand::Rng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::labels::{COVERS5, canonical_genre};
use tracing::{info, warn};

use crate::badge::load_template;
use crate::coco::{Coco, CocoAnnotation, CocoImage, PA_CATEGORY_ID, to_xywh, write_coco};
use crate::covers::{pa_rate, styled_cover};
use crate::designs::{DesignMix, LabelDesign};
use crate::io::{
    CoverRef, ImageKind, exclude_covers, list_covers, load_rgb, read_exclude_list, save_rgb,
};
use crate::pa::{PaConfig, PaSample, composite};
use crate::rng::{item_rng, item_seed, rng_from};
use crate::scenes::{SceneConfig, SceneRecord, render_hold, render_scene};

/// Seed streams: one per generator, so `pa` and `scenes` with the same seed differ.
const STREAM_PA: u64 = 1;
const STREAM_SCENES: u64 = 2;
const STREAM_COVERS: u64 = 3;

/// File name of the COCO annotations in an output folder.
pub const COCO_FILE: &str = "annotations.json";
/// File name of the scene index in an output folder.
pub const SCENES_FILE: &str = "scenes.json";

/// Options of [`pa`] (`sleeve synth pa`).
#[derive(Clone, Debug)]
pub struct PaOptions {
    /// Covers: a `sleeve dataset` directory (manifest.csv), an ImageFolder tree (genre from
    /// the folder) or a flat folder of images. Procedural covers when omitted.
    pub covers: Option<PathBuf>,
    /// Covers to leave out: a text file with one path or file name per line (e.g. covers
    /// that already carry a printed label, which would be unannotated positives).
    pub exclude: Option<PathBuf>,
    /// Output folder (gets `images/` and `annotations.json`).
    pub out: PathBuf,
    /// Number of images.
    pub count: usize,
    /// Random seed.
    pub seed: u64,
    /// Badge image to paste instead of the drawn one.
    pub template: Option<PathBuf>,
    /// Printed label designs and how often each is drawn.
    pub designs: DesignMix,
    /// Output side in pixels (the detector input).
    pub size: u32,
    /// Fraction of images with a label.
    pub label_prob: f32,
    /// Image format: jpg or png.
    pub format: String,
    /// JPEG quality.
    pub quality: u8,
    /// Overwrite an existing output.
    pub force: bool,
}

/// Options of [`scenes`] (`sleeve synth scenes`).
#[derive(Clone, Debug)]
pub struct ScenesOptions {
    /// Covers: a `sleeve dataset` directory, an ImageFolder tree or a flat folder;
    /// procedural covers when omitted.
    pub covers: Option<PathBuf>,
    /// Covers to leave out: a text file with one path or file name per line (e.g. covers
    /// that already carry a printed label, which would be unannotated positives).
    pub exclude: Option<PathBuf>,
    /// Output folder (gets `frames/`, one JSON per frame and `scenes.json`).
    pub out: PathBuf,
    /// Number of frames.
    pub count: usize,
    /// Random seed.
    pub seed: u64,
    /// Frame sizes to draw from, e.g. `640x480,1280x720`.
    pub sizes: String,
    /// Fraction of frames without a sleeve.
    pub no_sleeve_prob: f32,
    /// Fraction of sleeves carrying a PA label.
    pub pa_prob: f32,
    /// Badge image to paste instead of the drawn one.
    pub template: Option<PathBuf>,
    /// Printed label designs and how often each is drawn.
    pub designs: DesignMix,
    /// Frames per sleeve: each of the --count sleeves is held under a slightly shaking
    /// camera for this many frames (`frames/NNNNNN_KK.jpg`), for measuring per-hold answers.
    pub frames_per_sleeve: u16,
    /// Overwrite an existing output.
    pub force: bool,
}

/// Options of [`covers`] (`sleeve synth covers`).
#[derive(Clone, Debug)]
pub struct CoversOptions {
    /// Output folder (gets `<genre>/NNNNNN.jpg` and `annotations.json`).
    pub out: PathBuf,
    /// Covers per genre.
    pub per_genre: usize,
    /// Random seed.
    pub seed: u64,
    /// Cover side in pixels.
    pub size: u32,
    /// Comma-separated genres (default: the covers5 set).
    pub genres: Option<String>,
    /// Never put a PA label on a cover.
    pub no_pa: bool,
    /// Badge image to paste instead of the drawn one.
    pub template: Option<PathBuf>,
    /// Printed label designs and how often each is drawn.
    pub designs: DesignMix,
    /// Overwrite an existing output.
    pub force: bool,
}

fn progress(n: usize, what: &str) -> ProgressBar {
    sleeve_shared::progress::bar(n as u64, what.to_string())
}

fn refuse_existing(out: &Path, file: &str, force: bool) -> Result<()> {
    let p = out.join(file);
    if p.exists() && !force {
        bail!("{} already exists; pass --force to overwrite", p.display());
    }
    if !p.exists()
        && let Ok(mut entries) = std::fs::read_dir(out)
        && let Some(first) = entries.next()
    {
        bail!(
            "{} is not empty (it holds {:?}) and is not a synth output (no {file}): \
             choose a new or empty folder",
            out.display(),
            first.map(|e| e.file_name()).unwrap_or_default()
        );
    }
    Ok(())
}

/// Writes a whole output folder: checked by [`refuse_existing`], built by `build` in a
/// sibling staging folder and swapped in at the end, so a kill leaves the old output
/// complete and `--force` replaces it as a whole (no files left from a bigger earlier run).
fn write_output(
    out: &Path,
    marker: &str,
    force: bool,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    refuse_existing(out, marker, force)?;
    sleeve_shared::fsutil::replace_dir(out, build)
        .with_context(|| format!("writing {}", out.display()))
}

fn parse_format(format: &str, quality: u8) -> Result<ImageKind> {
    match format.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => Ok(ImageKind::Jpeg(quality.clamp(1, 100))),
        "png" => Ok(ImageKind::Png),
        other => bail!("unknown --format '{other}' (use jpg or png)"),
    }
}

/// Where covers come from: files on disk (shuffled once by the seed) or procedural.
struct CoverSource {
    files: Vec<CoverRef>,
    order: Vec<usize>,
}

/// A cover picked for one item.
struct Picked {
    image: RgbImage,
    genre: Option<String>,
    source: String,
}

impl CoverSource {
    fn open(dir: Option<&Path>, exclude: Option<&Path>, seed: u64) -> Result<Self> {
        let mut files = match dir {
            Some(d) => {
                list_covers(d).with_context(|| format!("reading covers from {}", d.display()))?
            }
            None => Vec::new(),
        };
        if let Some(list) = exclude {
            let names = read_exclude_list(list)
                .with_context(|| format!("reading the exclude list {}", list.display()))?;
            let dropped = exclude_covers(&mut files, &names);
            info!(dropped, listed = names.len(), "covers excluded");
            if files.is_empty() {
                bail!("--exclude {} leaves no covers", list.display());
            }
        }
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.shuffle(&mut rng_from(seed ^ 0x5EED));
        if !files.is_empty() {
            info!(covers = files.len(), "cover images found");
        }
        Ok(Self { files, order })
    }

    /// The cover for item `i`; unreadable files are skipped with a warning (the next one
    /// in the shuffled order is used). Procedural covers draw a genre from covers5.
    fn pick(&self, i: usize, rng: &mut impl Rng, size: u32) -> Result<Picked> {
        if self.files.is_empty() {
            let g = COVERS5[rng.random_range(0..COVERS5.len())];
            return Ok(Picked {
                image: styled_cover(g, rng.random(), size),
                genre: Some(g.to_string()),
                source: format!("procedural:{g}"),
            });
        }
        let n = self.files.len();
        for k in 0..n.min(16) {
            let f = &self.files[self.order[(i + k) % n]];
            match load_rgb(&f.path) {
                Ok(image) => {
                    return Ok(Picked {
                        image,
                        genre: f.genre.clone(),
                        source: f.path.display().to_string(),
                    });
                }
                Err(e) => warn!("skipping unreadable cover: {e}"),
            }
        }
        bail!("16 covers in a row could not be decoded (last tried near item {i})")
    }
}

/// Writes `a.count` PA composites and their COCO annotations to `a.out`; returns the
/// annotations written.
pub fn pa(a: &PaOptions) -> Result<Coco> {
    let mut written = None;
    write_output(&a.out, COCO_FILE, a.force, |out| {
        written = Some(pa_into(a, out)?);
        Ok(())
    })?;
    written.context("the PA output was not written")
}

fn pa_into(a: &PaOptions, out: &Path) -> Result<Coco> {
    let kind = parse_format(&a.format, a.quality)?;
    let template = a
        .template
        .as_deref()
        .map(load_template)
        .transpose()
        .context("loading the label template")?;
    let cfg = PaConfig {
        size: a.size.max(32),
        label_prob: a.label_prob.clamp(0.0, 1.0),
        template,
        designs: a.designs.clone(),
        ..PaConfig::default()
    };
    let source = CoverSource::open(a.covers.as_deref(), a.exclude.as_deref(), a.seed)?;
    let pb = progress(a.count, "pa");
    let start = Instant::now();
    let items: Vec<(CocoImage, Vec<CocoAnnotation>)> = (0..a.count)
        .into_par_iter()
        .map(|i| {
            let mut rng = item_rng(a.seed, STREAM_PA, i as u64);
            let cover = source.pick(i, &mut rng, cfg.size)?;
            let sample = composite(&cover.image, &cfg, rng.random());
            let file_name = format!("images/{i:06}.{}", kind.extension());
            save_rgb(&out.join(&file_name), &sample.image, kind)?;
            let id = i as u64 + 1;
            let anns = annotations(&sample, id);
            pb.inc(1);
            Ok((
                CocoImage {
                    id,
                    file_name,
                    width: sample.image.width(),
                    height: sample.image.height(),
                    genre: cover.genre,
                    source: Some(cover.source),
                    distractors: sample.distractors.iter().map(to_xywh).collect(),
                },
                anns,
            ))
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mut coco = Coco::new_pa();
    coco.info = Some(serde_json::json!({
        "generator": "sleeve synth pa",
        "seed": a.seed,
        "count": a.count,
        "size": cfg.size,
        "label_prob": cfg.label_prob,
        "template": a.template.as_ref().map(|p| p.display().to_string()),
        "designs": LabelDesign::ALL.iter().zip(cfg.designs.weights).map(|(d, w)| (d.name(), w)).collect::<std::collections::BTreeMap<_, _>>(),
        "covers": a.covers.as_ref().map(|p| p.display().to_string()),
        "exclude": a.exclude.as_ref().map(|p| p.display().to_string()),
    }));
    push_items(&mut coco, items);
    let path = out.join(COCO_FILE);
    write_coco(&path, &coco)?;
    info!(
        images = coco.images.len(),
        labels = coco.annotations.len(),
        images_per_s = format!("{:.1}", a.count as f64 / secs.max(1e-9)),
        "wrote {}",
        a.out.join(COCO_FILE).display()
    );
    Ok(coco)
}

/// The COCO annotations (ids still 0) of a composite's labels on image `image_id`.
fn annotations(sample: &PaSample, image_id: u64) -> Vec<CocoAnnotation> {
    sample
        .boxes
        .iter()
        .zip(&sample.labels)
        .map(|(b, l)| CocoAnnotation {
            id: 0,
            image_id,
            category_id: PA_CATEGORY_ID,
            bbox: to_xywh(b),
            area: b.area(),
            iscrowd: 0,
            rotation_deg: Some((l.rotation_deg * 100.0).round() / 100.0),
            position: Some(l.position.name().to_string()),
            design: Some(l.design.name().to_string()),
            inverted: Some(l.inverted),
            occluded: Some(l.occluded),
        })
        .collect()
}

/// Appends images and their annotations, numbering annotations from 1 in order.
fn push_items(coco: &mut Coco, items: Vec<(CocoImage, Vec<CocoAnnotation>)>) {
    for (im, anns) in items {
        coco.images.push(im);
        for mut ann in anns {
            ann.id = coco.annotations.len() as u64 + 1;
            coco.annotations.push(ann);
        }
    }
}

/// Parses `640x480,1280x720`.
pub fn parse_sizes(s: &str) -> Result<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (w, h) = part
            .split_once(['x', 'X'])
            .with_context(|| format!("size '{part}' is not WIDTHxHEIGHT"))?;
        let w: u32 = w
            .trim()
            .parse()
            .with_context(|| format!("bad width in '{part}'"))?;
        let h: u32 = h
            .trim()
            .parse()
            .with_context(|| format!("bad height in '{part}'"))?;
        if !(32..=8192).contains(&w) || !(32..=8192).contains(&h) {
            bail!("size '{part}' out of range (32..8192)");
        }
        out.push((w, h));
    }
    if out.is_empty() {
        bail!("--sizes is empty");
    }
    Ok(out)
}

/// Writes `a.count` kiosk scenes (or holds of `a.frames_per_sleeve` frames) with their
/// ground truth and `scenes.json` to `a.out`.
pub fn scenes(a: &ScenesOptions) -> Result<()> {
    if !(1..=120).contains(&a.frames_per_sleeve) {
        bail!(
            "frames per sleeve must be in 1..=120, not {}",
            a.frames_per_sleeve
        );
    }
    write_output(&a.out, SCENES_FILE, a.force, |out| scenes_into(a, out))
}

fn scenes_into(a: &ScenesOptions, out: &Path) -> Result<()> {
    let sizes = parse_sizes(&a.sizes)?;
    let template = a
        .template
        .as_deref()
        .map(load_template)
        .transpose()
        .context("loading the label template")?;
    let base = SceneConfig {
        no_sleeve_prob: a.no_sleeve_prob.clamp(0.0, 1.0),
        ..SceneConfig::default()
    };
    let base = SceneConfig {
        pa: PaConfig {
            label_prob: a.pa_prob.clamp(0.0, 1.0),
            template,
            designs: a.designs.clone(),
            ..base.pa.clone()
        },
        ..base
    };
    let source = CoverSource::open(a.covers.as_deref(), a.exclude.as_deref(), a.seed)?;
    let pb = progress(a.count, "scenes");
    let start = Instant::now();
    let records: Vec<SceneRecord> = (0..a.count)
        .into_par_iter()
        .map(|i| {
            let mut rng = item_rng(a.seed, STREAM_SCENES, i as u64);
            let (w, h) = sizes[rng.random_range(0..sizes.len())];
            let cfg = SceneConfig {
                width: w,
                height: h,
                ..base.clone()
            };
            let cover = source.pick(i, &mut rng, 512)?;
            let (genre, seed) = (cover.genre.as_deref(), rng.random());
            let scenes = if a.frames_per_sleeve > 1 {
                render_hold(
                    Some(&cover.image),
                    genre,
                    &cfg,
                    seed,
                    usize::from(a.frames_per_sleeve),
                )
            } else {
                vec![render_scene(Some(&cover.image), genre, &cfg, seed)]
            };
            let mut recs = Vec::with_capacity(scenes.len());
            for (k, scene) in scenes.iter().enumerate() {
                let stem = if a.frames_per_sleeve > 1 {
                    format!("frames/{i:06}_{k:02}")
                } else {
                    format!("frames/{i:06}")
                };
                let file_name = format!("{stem}.jpg");
                // The frame already went through the simulated camera's JPEG; store
                // near-lossless.
                save_rgb(&out.join(&file_name), &scene.image, ImageKind::Jpeg(95))?;
                let source = scene.corners.map(|_| cover.source.clone());
                let rec = SceneRecord::from_scene(scene, file_name, source);
                let jpath = out.join(format!("{stem}.json"));
                write_atomic(&jpath, &serde_json::to_vec_pretty(&rec)?)
                    .with_context(|| format!("writing {}", jpath.display()))?;
                recs.push(rec);
            }
            pb.inc(1);
            Ok(recs)
        })
        .collect::<Result<Vec<Vec<_>>>>()?
        .into_iter()
        .flatten()
        .collect();
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let path = out.join(SCENES_FILE);
    write_atomic(&path, &serde_json::to_vec_pretty(&records)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let empty = records.iter().filter(|r| r.corners.is_none()).count();
    let with_pa = records.iter().filter(|r| !r.pa_boxes.is_empty()).count();
    info!(
        frames = records.len(),
        without_sleeve = empty,
        with_pa,
        frames_per_s = format!("{:.1}", a.count as f64 / secs.max(1e-9)),
        "wrote {}",
        a.out.join(SCENES_FILE).display()
    );
    Ok(())
}

/// The canonical genres of `--genres` (default: covers5); blank or repeated (after
/// canonicalisation: `hiphop,Hip-Hop,rap`) genres are an error.
fn parse_genres(list: Option<&str>) -> Result<Vec<String>> {
    let Some(list) = list else {
        return Ok(COVERS5.iter().map(|g| g.to_string()).collect());
    };
    let mut genres: Vec<String> = Vec::new();
    for part in list.split(',') {
        let g = canonical_genre(part);
        if g.is_empty() {
            bail!("--genres: '{part}' names no genre");
        }
        if genres.contains(&g) {
            bail!("--genres: '{part}' is the same genre as an earlier entry ('{g}')");
        }
        genres.push(g);
    }
    Ok(genres)
}

/// Writes `a.per_genre` procedural covers per genre in an ImageFolder layout, with COCO
/// annotations of their PA labels, to `a.out`.
pub fn covers(a: &CoversOptions) -> Result<()> {
    let genres = parse_genres(a.genres.as_deref())?;
    write_output(&a.out, COCO_FILE, a.force, |out| {
        covers_into(a, &genres, out)
    })
}

fn covers_into(a: &CoversOptions, genres: &[String], out: &Path) -> Result<()> {
    let template = a
        .template
        .as_deref()
        .map(load_template)
        .transpose()
        .context("loading the label template")?;
    let size = a.size.max(32);
    let jobs: Vec<(usize, usize)> = (0..genres.len())
        .flat_map(|g| (0..a.per_genre).map(move |k| (g, k)))
        .collect();
    let pb = progress(jobs.len(), "covers");
    let start = Instant::now();
    let items: Vec<(CocoImage, Vec<CocoAnnotation>)> = jobs
        .par_iter()
        .enumerate()
        .map(|(idx, &(g, k))| {
            let genre = &genres[g];
            let seed = item_seed(a.seed, STREAM_COVERS, idx as u64);
            let mut rng = item_rng(a.seed, STREAM_COVERS + 100, idx as u64);
            let cover = styled_cover(genre, seed, size);
            let cfg = PaConfig {
                size,
                label_prob: if a.no_pa { 0.0 } else { pa_rate(genre) },
                hard_negative_prob: 0.1,
                hard_negative_with_label_prob: 0.05,
                template: template.clone(),
                designs: a.designs.clone(),
                ..PaConfig::default()
            };
            let sample = composite(&cover, &cfg, rng.random());
            let file_name = format!("{genre}/{k:06}.jpg");
            save_rgb(&out.join(&file_name), &sample.image, ImageKind::Jpeg(92))?;
            let id = idx as u64 + 1;
            let anns = annotations(&sample, id);
            pb.inc(1);
            Ok((
                CocoImage {
                    id,
                    file_name,
                    width: size,
                    height: size,
                    genre: Some(genre.clone()),
                    source: Some(format!("procedural:{genre}")),
                    distractors: sample.distractors.iter().map(to_xywh).collect(),
                },
                anns,
            ))
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mut coco = Coco::new_pa();
    coco.info = Some(serde_json::json!({
        "generator": "sleeve synth covers",
        "seed": a.seed,
        "per_genre": a.per_genre,
        "genres": genres,
        "size": size,
    }));
    push_items(&mut coco, items);
    let path = out.join(COCO_FILE);
    write_coco(&path, &coco)?;
    info!(
        covers = coco.images.len(),
        with_pa = coco.annotations.len(),
        covers_per_s = format!("{:.1}", jobs.len() as f64 / secs.max(1e-9)),
        "wrote {} (ImageFolder layout, one folder per genre)",
        a.out.display()
    );
    Ok(())
}

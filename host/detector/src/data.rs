//! Training and evaluation images: synthetic Parental Advisory composites over real or
//! procedural covers, and kiosk camera scenes rectified to the sleeve by their ground-truth
//! corners (what the edge feeds the detector after finding the sleeve).
//!
//! Everything is deterministic in `(seed, index)`. Real covers are split by a hash of
//! their file name: [`CoverPool::split`] keeps every tenth one out of training so held-out
//! evaluation uses covers the detector has never seen, on top of unseen seeds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp_into};
use rayon::prelude::*;
use sleeve_shared::detect::BoxF;
use sleeve_shared::fsutil::sha256_hex;
use sleeve_synth::pa::{PaConfig, composite};
use sleeve_synth::scenes::{SceneConfig, render_scene};
use sleeve_synth::warp::{clip_box, map_box};

/// Salt mixed into the seed for validation images (never equal to training draws).
pub const VAL_SEED_SALT: u64 = 0x0056_A11D;

/// Canonical genres used for procedural covers when no real cover is available.
const PROCEDURAL_GENRES: [&str; 5] = ["country", "electronic", "hiphop", "pop", "rock"];

/// One image for the detector: `size × size` pixels and normalised label boxes.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The image, already square at the detector's input size.
    pub image: RgbImage,
    /// Label boxes, normalised to `[0, 1]`.
    pub boxes: Vec<BoxF>,
}

/// Real cover files (with their genre folder name), or none for procedural covers only.
#[derive(Clone, Debug, Default)]
pub struct CoverPool {
    /// Cover paths and the genre folder each came from.
    pub covers: Vec<(PathBuf, String)>,
}

/// Which part of a [`CoverPool`] to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Covers whose name hash is not divisible by 10 (≈ 90 %).
    Train,
    /// The remaining ≈ 10 %.
    Holdout,
}

impl CoverPool {
    /// Images (`jpg`, `jpeg`, `png`, `webp`) in `dir/<genre>/`, sorted for determinism.
    pub fn scan(dir: &Path) -> Result<Self> {
        let mut covers = Vec::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading cover folder {}", dir.display()))?;
        for genre_dir in entries {
            let genre_dir = genre_dir
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            if !genre_dir.is_dir() {
                continue;
            }
            let genre = genre_dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            for f in std::fs::read_dir(&genre_dir)
                .with_context(|| format!("listing {}", genre_dir.display()))?
            {
                let p = f
                    .with_context(|| format!("listing {}", genre_dir.display()))?
                    .path();
                let ext = p
                    .extension()
                    .map(|e| e.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                if matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp") {
                    covers.push((p, genre.clone()));
                }
            }
        }
        covers.sort();
        anyhow::ensure!(
            !covers.is_empty(),
            "no cover images under {}/<genre>/",
            dir.display()
        );
        Ok(Self { covers })
    }

    /// The covers of one split.
    pub fn split(&self, split: Split) -> Self {
        let covers = self
            .covers
            .iter()
            .filter(|(p, _)| {
                let name = p
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let h = u64::from_str_radix(&sha256_hex(name.as_bytes())[..8], 16).unwrap_or(0);
                h.is_multiple_of(10) == (split == Split::Holdout)
            })
            .cloned()
            .collect();
        Self { covers }
    }

    /// Number of real covers.
    pub fn len(&self) -> usize {
        self.covers.len()
    }

    /// Whether there are no real covers (procedural covers are used).
    pub fn is_empty(&self) -> bool {
        self.covers.is_empty()
    }

    /// The cover for draw `pick` (a random number), decoded, with its genre; a procedural
    /// cover in a genre style when the pool is empty or the file cannot be decoded.
    pub fn cover(&self, pick: u64, size: u32) -> (RgbImage, Option<String>) {
        if !self.covers.is_empty() {
            let (path, genre) = &self.covers[(pick % self.covers.len() as u64) as usize];
            match sleeve_shared::imageio::open_rgb(path) {
                Ok(img) => return (img, Some(genre.clone())),
                Err(e) => tracing::warn!("skipping unreadable cover {}: {e}", path.display()),
            }
        }
        let genre = PROCEDURAL_GENRES[(pick % PROCEDURAL_GENRES.len() as u64) as usize];
        (
            sleeve_synth::covers::styled_cover(genre, pick, size.max(64)),
            Some(genre.to_string()),
        )
    }
}

/// SplitMix64 step: decorrelates `(seed, index)` pairs into independent 64-bit draws.
pub use sleeve_shared::rng::mix;

/// A PA composite (about half carry a label, others may carry look-alikes) at `size`.
pub fn cover_sample(pool: &CoverPool, seed: u64, index: u64, size: u32, cfg: &PaConfig) -> Sample {
    let draw = mix(seed, index);
    let (cover, _) = pool.cover(draw, size);
    let cfg = PaConfig {
        size,
        ..cfg.clone()
    };
    let s = composite(&cover, &cfg, mix(draw, 1));
    let scale = 1.0 / size as f32;
    Sample {
        boxes: s
            .boxes
            .iter()
            .map(|b| BoxF::new(b.x0 * scale, b.y0 * scale, b.x1 * scale, b.y1 * scale).clipped())
            .collect(),
        image: s.image,
    }
}

/// A camera frame with a sleeve, rectified to `size × size` by the ground-truth corners;
/// label boxes are the bounding boxes of the frame boxes mapped back (slightly loose when
/// the sleeve is rotated). Frames without a sleeve are re-drawn.
pub fn scene_sample(
    pool: &CoverPool,
    seed: u64,
    index: u64,
    size: u32,
    cfg: &SceneConfig,
) -> Sample {
    let mut attempt = 0u64;
    loop {
        let draw = mix(seed, index.wrapping_add(attempt << 40));
        let (cover, genre) = pool.cover(draw, 512);
        let scene = render_scene(Some(&cover), genre.as_deref(), cfg, mix(draw, 2));
        if let Some(s) = rectify_scene(&scene.image, scene.corners, &scene.pa_boxes, size) {
            return s;
        }
        attempt += 1;
    }
}

/// Warps the quadrilateral `corners` (TL, TR, BR, BL, frame pixels) of `frame` to a
/// `size × size` square and maps `boxes` (frame pixels) into it, normalised; `None` without
/// corners or for a degenerate quadrilateral.
pub fn rectify_scene(
    frame: &RgbImage,
    corners: Option<[(f32, f32); 4]>,
    boxes: &[BoxF],
    size: u32,
) -> Option<Sample> {
    let corners = corners?;
    let s = size as f32;
    let proj = Projection::from_control_points(corners, [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)])?;
    let mut out = RgbImage::new(size, size);
    warp_into(
        frame,
        proj,
        Interpolation::Bilinear,
        Border::Constant(Rgb([0, 0, 0])),
        &mut out,
    );
    let boxes = boxes
        .iter()
        .map(|b| clip_box(&map_box(&proj, b), size, size))
        .filter(|b| b.width() >= 2.0 && b.height() >= 2.0)
        .map(|b| BoxF::new(b.x0 / s, b.y0 / s, b.x1 / s, b.y1 / s))
        .collect();
    Some(Sample { image: out, boxes })
}

/// Training mix: a fraction `scene_fraction` of rectified scenes, the rest composites.
pub fn training_sample(
    pool: &CoverPool,
    seed: u64,
    index: u64,
    size: u32,
    scene_fraction: f32,
) -> Sample {
    let u = (mix(seed ^ 0x0005_CEE5, index) >> 40) as f32 / (1u64 << 24) as f32;
    if u < scene_fraction {
        let cfg = SceneConfig {
            pa: PaConfig {
                label_prob: 0.5,
                ..SceneConfig::default().pa
            },
            no_sleeve_prob: 0.0,
            ..SceneConfig::default()
        };
        scene_sample(pool, seed, index, size, &cfg)
    } else {
        cover_sample(pool, seed, index, size, &PaConfig::default())
    }
}

/// A `sleeve synth pa` output folder (`annotations.json` + images) as detector samples.
///
/// Images keep their size (preprocessing resizes them to the detector input); boxes are
/// normalised by each image's width and height. Images are decoded in parallel.
pub fn load_pa_dir(dir: &Path) -> Result<Vec<Sample>> {
    let json = dir.join(sleeve_synth::generate::COCO_FILE);
    let coco = sleeve_synth::coco::read_coco(&json)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", json.display()))?;
    coco.images
        .par_iter()
        .map(|im| {
            let path = dir.join(&im.file_name);
            let image = sleeve_shared::imageio::open_rgb(&path).with_context(|| {
                format!("reading {} (listed in {})", path.display(), json.display())
            })?;
            let (w, h) = (image.width() as f32, image.height() as f32);
            let boxes = coco
                .annotations_of(im.id)
                .map(|a| {
                    let b = sleeve_synth::coco::from_xywh(a.bbox);
                    BoxF::new(b.x0 / w, b.y0 / h, b.x1 / w, b.y1 / h).clipped()
                })
                .filter(|b| b.width() > 0.0 && b.height() > 0.0)
                .collect();
            Ok(Sample { image, boxes })
        })
        .collect()
}

/// A `sleeve synth scenes` output folder (`scenes.json` + frames) as detector samples: every
/// frame with a sleeve is rectified to `size × size` by its ground-truth corners (what the
/// edge feeds the detector after finding the sleeve). Returns the samples and the number of
/// frames skipped because they show no sleeve.
pub fn load_scene_dir(dir: &Path, size: u32) -> Result<(Vec<Sample>, usize)> {
    let json = dir.join(sleeve_synth::generate::SCENES_FILE);
    let records = if json.exists() {
        let bytes = std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", json.display()))?
    } else {
        frame_records(dir).with_context(|| format!("{} is missing", json.display()))?
    };
    let out: Vec<Option<Sample>> = records
        .par_iter()
        .map(|r| {
            let Some(c) = r.corners else {
                return Ok(None);
            };
            let path = dir.join(&r.file_name);
            let frame = sleeve_shared::imageio::open_rgb(&path).with_context(|| {
                format!("reading {} (listed in {})", path.display(), json.display())
            })?;
            let corners = c.map(|[x, y]| (x, y));
            Ok(rectify_scene(&frame, Some(corners), &r.pa_boxes, size))
        })
        .collect::<Result<_>>()?;
    let skipped = out.iter().filter(|s| s.is_none()).count();
    Ok((out.into_iter().flatten().collect(), skipped))
}

/// The per-frame records `frames/*.json` of a `sleeve synth scenes` folder whose index
/// `scenes.json` was not written (an interrupted run): every finished frame is usable.
fn frame_records(dir: &Path) -> Result<Vec<sleeve_synth::scenes::SceneRecord>> {
    let frames = dir.join("frames");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&frames)
        .with_context(|| format!("listing {}", frames.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no frame records in {}",
        frames.display()
    );
    tracing::warn!(
        "{}: no scenes.json, reading {} per-frame records",
        dir.display(),
        files.len()
    );
    files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))
        })
        .collect()
}

/// `image` preprocessed for the detector (`[3·S·S]` NCHW values).
pub fn preprocess_image(
    image: &RgbImage,
    cfg: &sleeve_shared::preprocess::PreprocessConfig,
) -> Result<Vec<f32>> {
    sleeve_nn::images::to_input(image, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composites_are_deterministic_and_normalised() {
        let pool = CoverPool::default();
        let a = cover_sample(&pool, 7, 3, 64, &PaConfig::default());
        let b = cover_sample(&pool, 7, 3, 64, &PaConfig::default());
        assert_eq!(a.image, b.image);
        assert_eq!(a.boxes, b.boxes);
        assert_eq!(a.image.dimensions(), (64, 64));
        let mut labelled = 0;
        for i in 0..12 {
            let s = cover_sample(&pool, 7, i, 64, &PaConfig::default());
            for bx in &s.boxes {
                assert!(bx.x0 >= 0.0 && bx.x1 <= 1.0 && bx.width() > 0.02);
            }
            labelled += usize::from(!s.boxes.is_empty());
        }
        assert!((2..=11).contains(&labelled), "{labelled} of 12 labelled");
    }

    /// `sleeve synth pa` / `sleeve synth scenes` folders load back with normalised boxes.
    #[test]
    fn synth_folders_load_as_samples() {
        use sleeve_synth::generate::{self, PaOptions, ScenesOptions};
        let dir = tempfile::tempdir().unwrap();
        let pa = dir.path().join("pa");
        generate::pa(&PaOptions {
            covers: None,
            exclude: None,
            out: pa.clone(),
            count: 12,
            seed: 5,
            template: None,
            designs: Default::default(),
            size: 96,
            label_prob: 0.5,
            format: "png".into(),
            quality: 90,
            force: false,
        })
        .unwrap();
        let samples = load_pa_dir(&pa).unwrap();
        assert_eq!(samples.len(), 12);
        let labelled = samples.iter().filter(|s| !s.boxes.is_empty()).count();
        assert!((1..12).contains(&labelled), "{labelled} of 12 labelled");
        for s in &samples {
            assert_eq!(s.image.dimensions(), (96, 96));
            for b in &s.boxes {
                assert!(b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= 1.0 && b.y1 <= 1.0);
                assert!(b.width() > 0.02 && b.height() > 0.01, "{b:?}");
            }
        }

        let sc = dir.path().join("scenes");
        generate::scenes(&ScenesOptions {
            covers: None,
            exclude: None,
            out: sc.clone(),
            count: 6,
            seed: 9,
            sizes: "160x120".into(),
            no_sleeve_prob: 0.3,
            pa_prob: 0.8,
            template: None,
            designs: Default::default(),
            frames_per_sleeve: 1,
            force: false,
        })
        .unwrap();
        let (scenes, skipped) = load_scene_dir(&sc, 64).unwrap();
        assert_eq!(scenes.len() + skipped, 6);
        assert!(!scenes.is_empty());
        for s in &scenes {
            assert_eq!(s.image.dimensions(), (64, 64));
            assert!(s.boxes.iter().all(|b| b.x1 <= 1.0 + 1e-6 && b.x0 >= -1e-6));
        }
        // An interrupted run (no index) still loads from the per-frame records.
        std::fs::remove_file(sc.join(sleeve_synth::generate::SCENES_FILE)).unwrap();
        let (again, skipped2) = load_scene_dir(&sc, 64).unwrap();
        assert_eq!((again.len(), skipped2), (scenes.len(), skipped));
        assert_eq!(again[0].boxes, scenes[0].boxes);
        assert!(load_pa_dir(&dir.path().join("missing")).is_err());
        assert!(load_scene_dir(&pa, 64).is_err());
    }

    #[test]
    fn rectifying_an_axis_aligned_quad_keeps_boxes() {
        let frame = RgbImage::from_pixel(200, 100, Rgb([9, 9, 9]));
        let corners = [(50.0, 0.0), (150.0, 0.0), (150.0, 100.0), (50.0, 100.0)];
        let s = rectify_scene(
            &frame,
            Some(corners),
            &[BoxF::new(60.0, 10.0, 100.0, 30.0)],
            50,
        )
        .unwrap();
        assert_eq!(s.image.dimensions(), (50, 50));
        let b = s.boxes[0];
        assert!(
            (b.x0 - 0.1).abs() < 1e-3 && (b.x1 - 0.5).abs() < 1e-3 && (b.y1 - 0.3).abs() < 1e-3
        );
        assert!(rectify_scene(&frame, None, &[], 50).is_none());
    }
}

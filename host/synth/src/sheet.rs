//! Contact sheets: a grid of random outputs with their ground truth drawn on top (PA boxes
//! green, look-alikes orange, sleeve outline cyan with the TL corner red), to eyeball a
//! generator's output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use embedded_graphics::Drawable;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::Point;
use embedded_graphics::text::{Baseline, Text};
use image::imageops::{self, FilterType};
use image::{ImageFormat, Rgb, RgbImage};
use imageproc::drawing::{draw_hollow_rect_mut, draw_line_segment_mut};
use imageproc::rect::Rect;
use rand::seq::SliceRandom;
use sleeve_shared::detect::BoxF;
use sleeve_shared::fsutil::write_atomic;

use crate::canvas::RgbCanvas;
use crate::coco::{from_xywh, read_coco};
use crate::covers::blend_disc;
use crate::io::{list_covers, load_rgb};
use crate::rng::rng_from;
use crate::scenes::SceneRecord;
use crate::text::FONT_6X10;

/// One tile of a sheet.
#[derive(Clone, Debug)]
pub struct Tile {
    /// The picture.
    pub image: RgbImage,
    /// PA boxes, image pixels.
    pub boxes: Vec<BoxF>,
    /// Look-alike boxes, image pixels.
    pub distractors: Vec<BoxF>,
    /// Sleeve corners TL, TR, BR, BL, image pixels.
    pub corners: Option<[(f32, f32); 4]>,
    /// Text under the tile.
    pub caption: String,
    /// Optional text drawn at the top-left corner of each PA box (same order as `boxes`;
    /// empty: none), e.g. proposal numbers on a review sheet.
    pub box_labels: Vec<String>,
}

const GREEN: Rgb<u8> = Rgb([40, 255, 60]);
const ORANGE: Rgb<u8> = Rgb([255, 150, 0]);
const CYAN: Rgb<u8> = Rgb([0, 230, 255]);
const CAPTION_H: u32 = 14;

/// Renders tiles into a grid `columns` wide; each picture is scaled to fit `cell_w` wide.
pub fn compose(tiles: &[Tile], columns: u32, cell_w: u32) -> RgbImage {
    let columns = columns.clamp(1, tiles.len().max(1) as u32);
    let rows = (tiles.len() as u32).div_ceil(columns).max(1);
    let aspect = tiles
        .iter()
        .map(|t| t.image.height() as f32 / t.image.width().max(1) as f32)
        .fold(0.0f32, f32::max)
        .clamp(0.25, 1.5);
    let pic_h = (cell_w as f32 * aspect).round() as u32;
    let gap = 4;
    let (cw, ch) = (cell_w + gap, pic_h + CAPTION_H + gap);
    let mut sheet = RgbImage::from_pixel(columns * cw + gap, rows * ch + gap, Rgb([32, 32, 36]));
    for (i, t) in tiles.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let (x0, y0) = (gap + col * cw, gap + row * ch);
        let s =
            (cell_w as f32 / t.image.width() as f32).min(pic_h as f32 / t.image.height() as f32);
        let (tw, th) = (
            ((t.image.width() as f32) * s).round().max(1.0) as u32,
            ((t.image.height() as f32) * s).round().max(1.0) as u32,
        );
        let mut thumb = imageops::resize(&t.image, tw, th, FilterType::Triangle);
        for b in &t.distractors {
            rect(&mut thumb, b, s, ORANGE, 1);
        }
        for b in &t.boxes {
            rect(&mut thumb, b, s, GREEN, 2);
        }
        for (b, label) in t.boxes.iter().zip(&t.box_labels) {
            box_label(&mut thumb, b, s, label);
        }
        if let Some(c) = t.corners {
            for k in 0..4 {
                let (a, b) = (c[k], c[(k + 1) % 4]);
                for d in [-0.5f32, 0.5] {
                    draw_line_segment_mut(
                        &mut thumb,
                        (a.0 * s + d, a.1 * s),
                        (b.0 * s + d, b.1 * s),
                        CYAN,
                    );
                }
            }
            blend_disc(&mut thumb, c[0].0 * s, c[0].1 * s, 3.5, [255, 40, 40], 1.0);
        }
        imageops::overlay(&mut sheet, &thumb, x0 as i64, y0 as i64);
        let style = MonoTextStyle::new(&FONT_6X10, Rgb888::new(230, 230, 230));
        let caption: String = t.caption.chars().take((cell_w / 6) as usize).collect();
        let _ = Text::with_baseline(
            &caption,
            Point::new(x0 as i32, (y0 + pic_h + 2) as i32),
            style,
            Baseline::Top,
        )
        .draw(&mut RgbCanvas(&mut sheet));
    }
    sheet
}

/// Writes `label` in black on a green patch just above (or, at the top edge, inside) a box.
fn box_label(img: &mut RgbImage, b: &BoxF, s: f32, label: &str) {
    let (w, h) = (label.chars().count() as i32 * 6 + 2, 11);
    let x = ((b.x0 * s).round() as i32).clamp(0, (img.width() as i32 - w).max(0));
    let above = (b.y0 * s).round() as i32 - h - 1;
    let y = if above >= 0 {
        above
    } else {
        (b.y0 * s).round() as i32 + 2
    };
    for yy in y.max(0)..(y + h).min(img.height() as i32) {
        for xx in x..(x + w).min(img.width() as i32) {
            img.put_pixel(xx as u32, yy as u32, GREEN);
        }
    }
    let style = MonoTextStyle::new(&FONT_6X10, Rgb888::new(0, 0, 0));
    let _ = Text::with_baseline(label, Point::new(x + 1, y), style, Baseline::Top)
        .draw(&mut RgbCanvas(img));
}

fn rect(img: &mut RgbImage, b: &BoxF, s: f32, c: Rgb<u8>, thickness: i32) {
    for t in 0..thickness {
        let x = (b.x0 * s).round() as i32 - t;
        let y = (b.y0 * s).round() as i32 - t;
        let w = ((b.width() * s).round() as i32 + 2 * t).max(1) as u32;
        let h = ((b.height() * s).round() as i32 + 2 * t).max(1) as u32;
        draw_hollow_rect_mut(img, Rect::at(x, y).of_size(w, h), c);
    }
}

/// Loads `count` random tiles from a synth output folder: COCO (`annotations.json`),
/// scenes (`scenes.json`) or any ImageFolder tree (caption = genre folder).
pub fn load_tiles(input: &Path, count: usize, seed: u64) -> Result<Vec<Tile>> {
    let mut rng = rng_from(seed);
    let coco_path = input.join("annotations.json");
    let scenes_path = input.join("scenes.json");
    if coco_path.exists() {
        let coco = read_coco(&coco_path)?;
        let mut idx: Vec<usize> = (0..coco.images.len()).collect();
        idx.shuffle(&mut rng);
        idx.truncate(count);
        idx.iter()
            .map(|&i| {
                let im = &coco.images[i];
                let path = input.join(&im.file_name);
                let image = load_rgb(&path)?;
                let boxes: Vec<BoxF> = coco
                    .annotations_of(im.id)
                    .map(|a| from_xywh(a.bbox))
                    .collect();
                let caption = format!(
                    "{} {}",
                    im.genre.as_deref().unwrap_or("?"),
                    if boxes.is_empty() { "" } else { "PA" }
                );
                Ok(Tile {
                    image,
                    boxes,
                    distractors: im.distractors.iter().map(|d| from_xywh(*d)).collect(),
                    corners: None,
                    caption,
                    box_labels: vec![],
                })
            })
            .collect()
    } else if scenes_path.exists() {
        let bytes = std::fs::read(&scenes_path)
            .with_context(|| format!("reading {}", scenes_path.display()))?;
        let recs: Vec<SceneRecord> = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", scenes_path.display()))?;
        let mut idx: Vec<usize> = (0..recs.len()).collect();
        idx.shuffle(&mut rng);
        idx.truncate(count);
        idx.iter()
            .map(|&i| {
                let r = &recs[i];
                let image = load_rgb(&input.join(&r.file_name))?;
                let caption = match (&r.corners, &r.genre) {
                    (None, _) => format!("{}x{} no sleeve", r.width, r.height),
                    (Some(_), g) => format!(
                        "{}x{} {}{}",
                        r.width,
                        r.height,
                        g.as_deref().unwrap_or("?"),
                        if r.pa_boxes.is_empty() { "" } else { " PA" }
                    ),
                };
                Ok(Tile {
                    image,
                    boxes: r.pa_boxes.clone(),
                    distractors: vec![],
                    corners: r.corners.map(|c| c.map(|[x, y]| (x, y))),
                    caption,
                    box_labels: vec![],
                })
            })
            .collect()
    } else {
        let mut files = list_covers(input)?;
        files.shuffle(&mut rng);
        files.truncate(count);
        files
            .iter()
            .map(|f| {
                Ok(Tile {
                    image: load_rgb(&f.path)?,
                    boxes: vec![],
                    distractors: vec![],
                    corners: None,
                    caption: f.genre.clone().unwrap_or_default(),
                    box_labels: vec![],
                })
            })
            .collect()
    }
}

/// `sleeve synth sheet`: loads random tiles and writes the PNG.
pub fn run_sheet(input: &Path, out: &Path, count: usize, seed: u64, columns: u32) -> Result<()> {
    if count == 0 {
        bail!("--count must be at least 1");
    }
    let tiles = load_tiles(input, count, seed)
        .with_context(|| format!("loading items from {}", input.display()))?;
    if tiles.is_empty() {
        bail!("{} holds no items", input.display());
    }
    let cell_w = if tiles[0].image.width() > tiles[0].image.height() {
        240
    } else {
        180
    };
    let sheet = compose(&tiles, columns, cell_w);
    let mut buf = Vec::new();
    sheet
        .write_to(&mut std::io::Cursor::new(&mut buf), ImageFormat::Png)
        .context("encoding the sheet")?;
    write_atomic(out, &buf).with_context(|| format!("writing {}", out.display()))?;
    tracing::info!(
        tiles = tiles.len(),
        "wrote {}",
        PathBuf::from(out).display()
    );
    Ok(())
}

//! Parental Advisory composites: a cover with (about half the time) a PA badge pasted
//! where real sleeves carry it, plus look-alike hard negatives, and the boxes.

use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage, Rgba, RgbaImage};
use rand::Rng;
use sleeve_shared::detect::BoxF;

use crate::canvas::{lerp_rgb, luma, to_u8};
use crate::designs::{DesignMix, LabelArt, LabelDesign, design_art};
use crate::lookalike::random_lookalike;
use crate::place::{Placed, Placement, Position, place_patch};
use crate::rng::{chance, log_uniform, rng_from, uniform};
use crate::words;

pub use crate::coco::{
    Coco, CocoAnnotation, CocoCategory, CocoImage, PA_CATEGORY_ID, PA_CATEGORY_NAME, from_xywh,
    read_coco, to_xywh, write_coco,
};

/// How composites are made. Every field is public; `Default` is Sleeve's training mix.
#[derive(Clone, Debug)]
pub struct PaConfig {
    /// Output side in pixels (the cover is centre-cropped to a square and resized).
    pub size: u32,
    /// Probability that an image carries a label (the rest are negatives).
    pub label_prob: f32,
    /// Label width as a fraction of the cover width, `(min, max)`, drawn log-uniformly.
    pub width_frac: (f32, f32),
    /// Where labels go and how much they rotate.
    pub placement: Placement,
    /// Which printed designs are drawn, and how often.
    pub designs: DesignMix,
    /// Stretch of the label's width/height against its design, `(min, max)` factor (real
    /// classic labels measure 1.35–1.64 wide per unit of height against the design's 1.6).
    pub aspect_jitter: (f32, f32),
    /// Probability of the inverted variant (white bands, black middle).
    pub inverted_prob: f32,
    /// Probability of a thin keyline around the badge (as printed on dark covers).
    pub keyline_prob: f32,
    /// Probability that the label is soft: printed or scanned at low resolution (rendered at
    /// 35–80 % of its size, never under 20 px across, and scaled back up), as many small
    /// real labels are.
    pub soft_prob: f32,
    /// Probability of a low-contrast print (washed-out black, greyish paper).
    pub low_contrast_prob: f32,
    /// Probability that the label is printed in colour (tinted paper, coloured ink).
    pub ink_colour_prob: f32,
    /// Probability that something (sticker, shrink-wrap glare) covers part of the label.
    pub occlusion_prob: f32,
    /// Probability that an image WITHOUT a label gets look-alike hard negatives.
    pub hard_negative_prob: f32,
    /// Probability that an image WITH a label also gets a look-alike.
    pub hard_negative_with_label_prob: f32,
    /// Badge image to use instead of the drawn one (grey levels), e.g. from `--template`.
    pub template: Option<Arc<GrayImage>>,
}

impl Default for PaConfig {
    fn default() -> Self {
        Self {
            size: 320,
            label_prob: 0.5,
            width_frac: (0.06, 0.30),
            placement: Placement::default(),
            designs: DesignMix::default(),
            aspect_jitter: (0.85, 1.03),
            inverted_prob: 0.15,
            keyline_prob: 0.3,
            soft_prob: 0.35,
            low_contrast_prob: 0.2,
            ink_colour_prob: 0.12,
            occlusion_prob: 0.08,
            hard_negative_prob: 0.6,
            hard_negative_with_label_prob: 0.2,
            template: None,
        }
    }
}

/// Facts about one pasted label (for COCO extras and statistics).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelInfo {
    /// The printed design.
    pub design: LabelDesign,
    /// The spot it went to.
    pub position: Position,
    /// Clockwise rotation in degrees.
    pub rotation_deg: f32,
    /// White bands / black middle variant.
    pub inverted: bool,
    /// Partly covered.
    pub occluded: bool,
    /// Badge width / cover width (before rotation).
    pub width_frac: f32,
}

/// One composite.
#[derive(Clone, Debug)]
pub struct PaSample {
    /// The image, `size × size`.
    pub image: RgbImage,
    /// Label boxes in pixels (empty for a negative).
    pub boxes: Vec<BoxF>,
    /// One entry per box, same order.
    pub labels: Vec<LabelInfo>,
    /// Boxes of the look-alikes drawn (hard negatives; not labels), pixels.
    pub distractors: Vec<BoxF>,
}

/// Composites one sample from `cover`; deterministic for `(cover, cfg, seed)`.
pub fn composite(cover: &RgbImage, cfg: &PaConfig, seed: u64) -> PaSample {
    let mut rng = rng_from(seed);
    let mut image = square_resize(cover, cfg.size.max(16));
    let mut boxes = Vec::new();
    let mut labels = Vec::new();
    let mut distractors = Vec::new();

    if chance(&mut rng, cfg.label_prob)
        && let Some((placed, info)) = paste_label(&mut image, &mut rng, cfg)
    {
        boxes.push(placed.bbox);
        labels.push(info);
    }
    let p_neg = if boxes.is_empty() {
        cfg.hard_negative_prob
    } else {
        cfg.hard_negative_with_label_prob
    };
    if chance(&mut rng, p_neg) {
        let n = if chance(&mut rng, 0.3) { 2 } else { 1 };
        for _ in 0..n {
            let (_, patch) = random_lookalike(&mut rng, image.width(), cfg.width_frac);
            let mut avoid = boxes.clone();
            avoid.extend(distractors.iter().copied());
            if let Some(p) = place_patch(&mut image, &patch, &mut rng, &cfg.placement, &avoid) {
                distractors.push(p.bbox);
            }
        }
    }
    PaSample {
        image,
        boxes,
        labels,
        distractors,
    }
}

/// Centre-crops `img` to a square and resizes it to `size × size`.
pub fn square_resize(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = w.min(h).max(1);
    let cropped = imageops::crop_imm(
        img,
        (w - s.min(w)) / 2,
        (h - s.min(h)) / 2,
        s.min(w),
        s.min(h),
    )
    .to_image();
    if cropped.width() == size && cropped.height() == size {
        cropped
    } else {
        imageops::resize(&cropped, size, size, FilterType::Triangle)
    }
}

/// Renders one label for the cover in `image` and pastes it; `None` if it did not fit.
fn paste_label(
    image: &mut RgbImage,
    rng: &mut impl Rng,
    cfg: &PaConfig,
) -> Option<(Placed, LabelInfo)> {
    let cover_w = image.width() as f32;
    let design = cfg.designs.sample(rng);
    let width_frac = log_uniform(rng, cfg.width_frac.0, cfg.width_frac.1);
    let aspect = design.aspect() * uniform(rng, cfg.aspect_jitter.0, cfg.aspect_jitter.1);
    let lw = (width_frac * cover_w).round().max(8.0) as u32;
    let lh = ((lw as f32 / aspect).round() as u32).max(5);
    let look = LabelLook::sample(rng, cfg, design, average_colour(image));
    let art = design_art(design, cfg.template.as_deref(), lw, lh);
    let patch = label_patch(&art, &look, rng);
    let mut placed = place_patch(image, &patch, rng, &cfg.placement, &[])?;
    let occluded = chance(rng, cfg.occlusion_prob);
    if occluded {
        occlude(image, &placed.bbox, rng);
    }
    placed.bbox = crate::warp::clip_box(&placed.bbox, image.width(), image.height());
    let info = LabelInfo {
        design,
        position: placed.position,
        rotation_deg: placed.rotation_deg,
        inverted: look.inverted,
        occluded,
        width_frac: lw as f32 / cover_w,
    };
    Some((placed, info))
}

/// How one label is printed: colours, contrast, sharpness.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelLook {
    /// Paper and ink swapped (white bands, black middle; white strokes for an outline).
    pub inverted: bool,
    /// A thin paper-coloured keyline around an opaque label.
    pub keyline: bool,
    /// Colour of the ink (the black of the design).
    pub ink: [u8; 3],
    /// Colour of the paper (the white of the design).
    pub paper: [u8; 3],
    /// Render at this fraction of the size and scale back up (1 = sharp).
    pub sharpness: f32,
}

impl LabelLook {
    /// Draws a look for `design` on a cover of mean colour `cover_mean`.
    pub fn sample(
        rng: &mut impl Rng,
        cfg: &PaConfig,
        design: LabelDesign,
        cover_mean: [u8; 3],
    ) -> Self {
        let (black, white) = if chance(rng, cfg.low_contrast_prob) {
            (uniform(rng, 45.0, 110.0), uniform(rng, 150.0, 215.0))
        } else {
            (uniform(rng, 0.0, 40.0), uniform(rng, 210.0, 255.0))
        };
        let cast = uniform(rng, 0.0, 0.12);
        let mut ink = lerp_rgb([to_u8(black); 3], cover_mean, cast);
        let mut paper = lerp_rgb([to_u8(white); 3], cover_mean, cast);
        if chance(rng, cfg.ink_colour_prob) {
            let hue = [
                to_u8(uniform(rng, 0.0, 255.0)),
                to_u8(uniform(rng, 0.0, 255.0)),
                to_u8(uniform(rng, 0.0, 255.0)),
            ];
            if rng.random_bool(0.5) {
                paper = lerp_rgb(paper, hue, uniform(rng, 0.3, 0.8));
            } else {
                ink = lerp_rgb(ink, hue, uniform(rng, 0.2, 0.5));
            }
        }
        // Outline prints contrast with the art under them: dark strokes on light covers.
        let inverted = if design.is_outline() {
            luma(cover_mean) < 110.0
        } else {
            chance(rng, cfg.inverted_prob)
        };
        let sharpness = if chance(rng, cfg.soft_prob) {
            uniform(rng, 0.35, 0.8)
        } else {
            1.0
        };
        Self {
            inverted,
            keyline: !design.is_outline() && chance(rng, cfg.keyline_prob),
            ink,
            paper,
            sharpness,
        }
    }
}

/// The label as an RGBA patch: the design's grey levels mapped to `look`'s ink and paper,
/// an optional keyline, softened when the look says so; transparent where an outline
/// design prints nothing.
pub fn label_patch(art: &LabelArt, look: &LabelLook, rng: &mut impl Rng) -> RgbaImage {
    let (w, h) = art.grey.dimensions();
    let pad = if look.keyline { (w / 36).max(1) } else { 0 };
    let (pw, ph) = (w + 2 * pad, h + 2 * pad);
    let mut patch = RgbaImage::from_fn(pw, ph, |x, y| {
        let inside = x >= pad && y >= pad && x < pad + w && y < pad + h;
        // The keyline has the colour of the badge's middle band (paper), flipped with the
        // rest for the inverted variant.
        let (v, a) = if inside {
            let (ix, iy) = (x - pad, y - pad);
            let a = art.alpha.as_ref().map_or(255, |m| m.get_pixel(ix, iy).0[0]);
            (art.grey.get_pixel(ix, iy).0[0] as f32, a)
        } else {
            (255.0, 255)
        };
        let v = if look.inverted { 255.0 - v } else { v };
        let c = lerp_rgb(look.ink, look.paper, v / 255.0);
        Rgba([c[0], c[1], c[2], a])
    });
    if look.sharpness < 1.0 {
        // Never below ~20 px across: the real labels' blur keeps their band structure.
        let f = look.sharpness.max((20.0 / pw as f32).min(1.0));
        let sw = ((pw as f32 * f).round() as u32).max(2);
        let sh = ((ph as f32 * f).round() as u32).max(2);
        let filter = if rng.random_bool(0.5) {
            FilterType::Triangle
        } else {
            FilterType::CatmullRom
        };
        let small = imageops::resize(&patch, sw, sh, FilterType::Triangle);
        patch = imageops::resize(&small, pw, ph, filter);
    }
    patch
}

/// Covers part of a label: a price sticker over one end, or a shrink-wrap glare streak.
fn occlude(image: &mut RgbImage, b: &BoxF, rng: &mut impl Rng) {
    let (bw, bh) = (b.width(), b.height());
    if rng.random_bool(0.6) {
        // A sticker overlapping 20-40 % of the label from the left or right end.
        let sw = bw * uniform(rng, 0.2, 0.4);
        let sh = bh * uniform(rng, 0.6, 1.3);
        let from_left = rng.random_bool(0.5);
        let x0 = if from_left {
            b.x0 - sw * 0.3
        } else {
            b.x1 - sw * 0.7
        };
        let y0 = b.y0 + (bh - sh) * uniform(rng, 0.0, 1.0);
        let colours = [
            [250, 225, 60],
            [245, 245, 240],
            [235, 70, 50],
            [250, 150, 30],
        ];
        let c = colours[rng.random_range(0..colours.len())];
        let mut sticker = RgbaImage::from_pixel(
            sw.max(2.0) as u32,
            sh.max(2.0) as u32,
            Rgba([c[0], c[1], c[2], 255]),
        );
        let text = words::sticker(rng);
        if let Some(mask) = crate::text::text_mask(&text, &crate::text::FONT_6X10, 1) {
            let fitted = crate::text::fit_mask(
                &mask,
                (sticker.width() * 8 / 10).max(1),
                (sticker.height() / 3).max(1),
            );
            let (sx, sy) = ((sticker.width() / 10) as i64, (sticker.height() / 3) as i64);
            crate::canvas::stamp_mask_rgba(&mut sticker, &fitted, sx, sy, [20, 20, 20]);
        }
        let proj = imageproc::geometric_transformations::Projection::translate(x0, y0);
        crate::warp::paste_projected(image, &sticker, &proj, 1.0);
    } else {
        // A bright diagonal streak of glare on the shrink-wrap.
        let (cx, cy) = (b.x0 + bw * uniform(rng, 0.2, 0.8), b.y0 + bh * 0.5);
        let slope = uniform(rng, -1.5, 1.5);
        let half = bw * uniform(rng, 0.06, 0.15);
        let strength = uniform(rng, 0.5, 0.85);
        let (x0, x1) = (
            (b.x0 - bw * 0.2).max(0.0) as u32,
            ((b.x1 + bw * 0.2) as u32).min(image.width()),
        );
        let (y0, y1) = (b.y0.max(0.0) as u32, (b.y1 as u32).min(image.height()));
        for y in y0..y1 {
            for x in x0..x1 {
                let d = (x as f32 - cx) - slope * (y as f32 - cy);
                let a = (1.0 - (d / half).abs()).max(0.0) * strength;
                if a > 0.0 {
                    let p = image.get_pixel_mut(x, y);
                    p.0 = lerp_rgb(p.0, [255, 255, 255], a);
                }
            }
        }
    }
}

/// Mean colour of an image (sampled on a sparse grid).
pub fn average_colour(img: &RgbImage) -> [u8; 3] {
    let mut s = [0u64; 3];
    let mut n = 0u64;
    let step = (img.width().max(img.height()) / 32).max(1) as usize;
    for y in (0..img.height()).step_by(step) {
        for x in (0..img.width()).step_by(step) {
            let p = img.get_pixel(x, y).0;
            for c in 0..3 {
                s[c] += p[c] as u64;
            }
            n += 1;
        }
    }
    if n == 0 {
        return [128; 3];
    }
    [(s[0] / n) as u8, (s[1] / n) as u8, (s[2] / n) as u8]
}

//! Kiosk camera frames: a square sleeve under perspective and rotation on a cluttered
//! counter (other sleeves, hands, objects), with uneven light, glare, blur, sensor noise
//! and JPEG artefacts, plus the ground truth (corners, genre, PA boxes in frame pixels).

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, RgbImage};
use imageproc::drawing::draw_polygon_mut;
use imageproc::filter::{gaussian_blur_f32, horizontal_filter, vertical_filter};
use imageproc::geometric_transformations::Projection;
use imageproc::point::Point as IpPoint;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sleeve_shared::detect::BoxF;
use sleeve_shared::labels::{COVERS5, canonical_genre};

use crate::canvas::{blend_pixel, lerp_rgb, to_u8};
use crate::covers::{blend_disc, procedural_cover, styled_cover};
use crate::noise::value_noise;
use crate::pa::{PaConfig, composite, square_resize};
use crate::rng::{chance, gauss, rng_from, uniform, weighted_index};
use crate::warp::{bounds, clip_box, image_corners, map_box, map_points, opaque, paste_projected};

/// How frames are rendered. Every field is public; `Default` is a 640×480 kiosk camera.
#[derive(Clone, Debug)]
pub struct SceneConfig {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Probability of a frame with no sleeve at all.
    pub no_sleeve_prob: f32,
    /// Sleeve side as a fraction of the frame's shorter side, `(min, max)`.
    pub sleeve_scale: (f32, f32),
    /// Largest in-plane rotation of the sleeve, degrees (either way).
    pub max_rotation_deg: f32,
    /// Keystone (camera tilt) strength: the far edge shrinks by up to this fraction.
    pub max_keystone: f32,
    /// Extra independent corner jitter as a fraction of the sleeve side (σ).
    pub corner_jitter: f32,
    /// How a PA label is put on the sleeve's cover (`size` is ignored; `label_prob` is the
    /// chance a sleeve shows one).
    pub pa: PaConfig,
    /// Probability of other sleeves partly in view.
    pub other_sleeves_prob: f32,
    /// Probability of a hand holding or reaching for the sleeve.
    pub hand_prob: f32,
    /// Probability of small objects (receipts, coins, pens) on the counter.
    pub clutter_prob: f32,
    /// Strength of uneven light, 0 = flat.
    pub uneven_light: f32,
    /// Exposure gain range (auto-exposure hunting, dim or bright shops); `(1, 1)` = none.
    pub exposure: (f32, f32),
    /// White-balance error: red and blue gains drawn from `1 ± this` (green fixed); 0 = none.
    pub white_balance: f32,
    /// Probability of a glare spot.
    pub glare_prob: f32,
    /// Probability of defocus blur, and its largest σ in pixels (at 640 px width; scaled).
    pub blur_prob: f32,
    /// Largest defocus blur σ in pixels for a 640-pixel-wide frame.
    pub max_blur_sigma: f32,
    /// Probability of motion blur.
    pub motion_blur_prob: f32,
    /// Sensor noise σ range in grey levels.
    pub noise_sigma: (f32, f32),
    /// JPEG quality range applied to the frame (artefacts); `(100, 100)` still re-encodes.
    pub jpeg_quality: (u8, u8),
    /// Whether to JPEG round-trip the frame at all.
    pub jpeg: bool,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            no_sleeve_prob: 0.12,
            sleeve_scale: (0.45, 0.88),
            max_rotation_deg: 20.0,
            max_keystone: 0.15,
            corner_jitter: 0.012,
            pa: PaConfig {
                label_prob: 0.3,
                hard_negative_prob: 0.15,
                hard_negative_with_label_prob: 0.1,
                ..PaConfig::default()
            },
            other_sleeves_prob: 0.45,
            hand_prob: 0.45,
            clutter_prob: 0.6,
            uneven_light: 0.5,
            exposure: (0.75, 1.2),
            white_balance: 0.1,
            glare_prob: 0.45,
            blur_prob: 0.5,
            max_blur_sigma: 1.6,
            motion_blur_prob: 0.12,
            noise_sigma: (1.0, 7.0),
            jpeg_quality: (40, 92),
            jpeg: true,
        }
    }
}

/// One rendered frame and its ground truth.
#[derive(Clone, Debug)]
pub struct Scene {
    /// The frame, `width × height`.
    pub image: RgbImage,
    /// The sleeve's corners TL, TR, BR, BL (the cover's own top-left etc., not sorted by
    /// position in the frame) in continuous pixel coordinates; `None` without a sleeve.
    pub corners: Option<[(f32, f32); 4]>,
    /// Canonical genre of the cover shown, when known.
    pub genre: Option<String>,
    /// PA label boxes in frame pixels (axis-aligned hulls of the warped label boxes).
    pub pa_boxes: Vec<BoxF>,
}

/// Ground truth of one frame as written to JSON (`<frame>.json` and `scenes.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneRecord {
    /// Image path relative to the output folder.
    pub file_name: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// TL, TR, BR, BL corners in pixels, or `null` for a frame without a sleeve.
    pub corners: Option<[[f32; 2]; 4]>,
    /// Canonical genre of the cover, when known.
    pub genre: Option<String>,
    /// PA boxes in frame pixels.
    pub pa_boxes: Vec<BoxF>,
    /// The cover used (path or `procedural:<genre>`), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl SceneRecord {
    /// The record of a rendered scene.
    pub fn from_scene(scene: &Scene, file_name: String, source: Option<String>) -> Self {
        Self {
            file_name,
            width: scene.image.width(),
            height: scene.image.height(),
            corners: scene.corners.map(|c| c.map(|(x, y)| [x, y])),
            genre: scene.genre.clone(),
            pa_boxes: scene.pa_boxes.clone(),
            source,
        }
    }
}

/// Renders one frame; deterministic for `(cover, genre, cfg, seed)`. Without a cover a
/// procedural one is drawn (in `genre`'s style when given).
pub fn render_scene(
    cover: Option<&RgbImage>,
    genre: Option<&str>,
    cfg: &SceneConfig,
    seed: u64,
) -> Scene {
    let mut rng = rng_from(seed);
    let (w, h) = (cfg.width.max(32), cfg.height.max(32));
    let short = w.min(h) as f32;
    let mut frame = counter_background(&mut rng, w, h);
    if chance(&mut rng, cfg.clutter_prob) {
        draw_clutter(&mut frame, &mut rng);
    }
    if chance(&mut rng, cfg.other_sleeves_prob) {
        for _ in 0..rng.random_range(1..=2) {
            draw_other_sleeve(&mut frame, &mut rng, cfg);
        }
    }

    let mut corners = None;
    let mut pa_boxes = Vec::new();
    let mut genre_out = None;
    if !chance(&mut rng, cfg.no_sleeve_prob) {
        let quad = sample_quad(&mut rng, cfg, w, h);
        let side = quad_side(&quad);
        // Resample the cover near the size it will appear at (bilinear warps alias when
        // shrinking a lot), and put a label on it sometimes.
        let px = ((side * 1.15).ceil() as u32).clamp(32, 1024);
        let cover_seed: u64 = rng.random();
        let (mut sleeve, g) = match cover {
            Some(c) => (
                square_resize(c, px),
                genre.map(canonical_genre).filter(|g| !g.is_empty()),
            ),
            None => match genre {
                Some(g) => (
                    styled_cover(g, cover_seed, px),
                    Some(canonical_genre(g)).filter(|g| !g.is_empty()),
                ),
                None => {
                    let g = COVERS5[(cover_seed % COVERS5.len() as u64) as usize];
                    (styled_cover(g, cover_seed, px), Some(g.to_string()))
                }
            },
        };
        genre_out = g;
        let pa_cfg = PaConfig {
            size: px,
            ..cfg.pa.clone()
        };
        let sample = composite(&sleeve, &pa_cfg, rng.random());
        sleeve = sample.image;
        let proj = Projection::from_control_points(image_corners(px, px), quad)
            .unwrap_or_else(|| Projection::translate(quad[0].0, quad[0].1));
        draw_shadow(&mut frame, &quad, &mut rng, short);
        paste_projected(&mut frame, &opaque(&sleeve), &proj, 1.0);
        for b in &sample.boxes {
            let fb = clip_box(&map_box(&proj, b), w, h);
            if fb.area() > 1.0 {
                pa_boxes.push(fb);
            }
        }
        corners = Some(quad);
    }
    if chance(&mut rng, cfg.hand_prob) {
        draw_hand(&mut frame, &mut rng, corners.as_ref(), short);
    }
    apply_light(&mut frame, &mut rng, cfg, corners.as_ref());
    apply_blur(&mut frame, &mut rng, cfg);
    apply_noise(&mut frame, &mut rng, cfg);
    if cfg.jpeg {
        let lo = cfg.jpeg_quality.0.clamp(1, 100);
        let hi = cfg.jpeg_quality.1.clamp(lo, 100);
        let q = rng.random_range(lo..=hi);
        frame = jpeg_round_trip(&frame, q);
    }
    Scene {
        image: frame,
        corners,
        genre: genre_out,
        pa_boxes,
    }
}

/// Renders `frames` frames of one sleeve held under the camera: the same counter, sleeve,
/// light and clutter, seen through a slightly shaking camera (shift, rotation and zoom of
/// under a few percent), each frame with its own blur, sensor noise and JPEG. Deterministic
/// for `(cover, genre, cfg, seed, frames)`; the frames' ground truth follows the shake.
pub fn render_hold(
    cover: Option<&RgbImage>,
    genre: Option<&str>,
    cfg: &SceneConfig,
    seed: u64,
    frames: usize,
) -> Vec<Scene> {
    let clean = SceneConfig {
        blur_prob: 0.0,
        motion_blur_prob: 0.0,
        noise_sigma: (0.0, 0.0),
        jpeg: false,
        ..cfg.clone()
    };
    let base = render_scene(cover, genre, &clean, seed);
    let (w, h) = base.image.dimensions();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let short = w.min(h) as f32;
    (0..frames)
        .map(|k| {
            let mut rng = rng_from(seed ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // zoom in a little so the shaken frame has no empty border
            let zoom = uniform(&mut rng, 1.02, 1.045);
            let angle = uniform(&mut rng, -0.8, 0.8).to_radians();
            let (dx, dy) = (
                gauss(&mut rng) * 0.004 * short,
                gauss(&mut rng) * 0.004 * short,
            );
            let shake = Projection::translate(cx + dx, cy + dy)
                * Projection::rotate(angle)
                * Projection::scale(zoom, zoom)
                * Projection::translate(-cx, -cy);
            let mut image = RgbImage::new(w, h);
            imageproc::geometric_transformations::warp_into(
                &base.image,
                shake,
                imageproc::geometric_transformations::Interpolation::Bilinear,
                imageproc::geometric_transformations::Border::Replicate,
                &mut image,
            );
            apply_blur(&mut image, &mut rng, cfg);
            apply_noise(&mut image, &mut rng, cfg);
            if cfg.jpeg {
                let lo = cfg.jpeg_quality.0.clamp(1, 100);
                let hi = cfg.jpeg_quality.1.clamp(lo, 100);
                image = jpeg_round_trip(&image, rng.random_range(lo..=hi));
            }
            Scene {
                image,
                corners: base.corners.map(|c| map_points(&shake, c)),
                genre: base.genre.clone(),
                pa_boxes: base
                    .pa_boxes
                    .iter()
                    .map(|b| clip_box(&map_box(&shake, b), w, h))
                    .filter(|b| b.area() > 1.0)
                    .collect(),
            }
        })
        .collect()
}

/// Samples the sleeve's quadrilateral TL, TR, BR, BL: a square, keystoned (camera tilt),
/// rotated, jittered, placed fully inside the frame.
fn sample_quad(rng: &mut impl Rng, cfg: &SceneConfig, w: u32, h: u32) -> [(f32, f32); 4] {
    let (wf, hf) = (w as f32, h as f32);
    let short = wf.min(hf);
    let mut scale = uniform(
        rng,
        cfg.sleeve_scale.0,
        cfg.sleeve_scale.1.max(cfg.sleeve_scale.0),
    );
    for _ in 0..20 {
        let s = scale * short;
        let kx = uniform(rng, -cfg.max_keystone, cfg.max_keystone);
        let ky = uniform(rng, -cfg.max_keystone, cfg.max_keystone) * 0.5;
        let half = s / 2.0;
        let base = [
            (-half * (1.0 - kx), -half * (1.0 - ky)),
            (half * (1.0 - kx), -half * (1.0 + ky)),
            (half * (1.0 + kx), half * (1.0 + ky)),
            (-half * (1.0 + kx), half * (1.0 - ky)),
        ];
        let a = uniform(rng, -cfg.max_rotation_deg, cfg.max_rotation_deg).to_radians();
        let (sn, cs) = a.sin_cos();
        let q = base.map(|(x, y)| {
            (
                x * cs - y * sn + gauss(rng) * cfg.corner_jitter * s,
                x * sn + y * cs + gauss(rng) * cfg.corner_jitter * s,
            )
        });
        let b = bounds(&q);
        let m = 0.02 * short;
        let (lo_x, hi_x) = (m - b.x0, wf - m - b.x1);
        let (lo_y, hi_y) = (m - b.y0, hf - m - b.y1);
        if hi_x < lo_x || hi_y < lo_y || !convex(&q) {
            scale *= 0.92;
            continue;
        }
        let (cx, cy) = (uniform(rng, lo_x, hi_x), uniform(rng, lo_y, hi_y));
        return q.map(|(x, y)| (x + cx, y + cy));
    }
    // Fallback: a centred axis-aligned square of half the short side.
    let s = short * 0.5;
    let (x0, y0) = ((wf - s) / 2.0, (hf - s) / 2.0);
    [(x0, y0), (x0 + s, y0), (x0 + s, y0 + s), (x0, y0 + s)]
}

fn convex(q: &[(f32, f32); 4]) -> bool {
    let mut sign = 0.0f32;
    for i in 0..4 {
        let (a, b, c) = (q[i], q[(i + 1) % 4], q[(i + 2) % 4]);
        let cross = (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0);
        if cross == 0.0 || (sign != 0.0 && cross.signum() != sign) {
            return false;
        }
        sign = cross.signum();
    }
    true
}

/// Mean edge length of a quadrilateral.
fn quad_side(q: &[(f32, f32); 4]) -> f32 {
    (0..4)
        .map(|i| {
            let (a, b) = (q[i], q[(i + 1) % 4]);
            ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
        })
        .sum::<f32>()
        / 4.0
}

/// A counter top: wood grain, speckled stone/laminate, or a felt mat.
fn counter_background(rng: &mut impl Rng, w: u32, h: u32) -> RgbImage {
    let kind = weighted_index(rng, &[0.4, 0.35, 0.25]);
    let mut img = RgbImage::new(w, h);
    match kind {
        0 => {
            let woods = [
                [150, 105, 65],
                [120, 80, 50],
                [190, 150, 105],
                [90, 60, 40],
                [205, 180, 145],
            ];
            let base = woods[rng.random_range(0..woods.len())];
            let dark = lerp_rgb(base, [30, 20, 10], 0.45);
            // Grain: noise stretched along x, then a sine of it for rings.
            let along_x = rng.random_bool(0.6);
            let cells = if along_x { (2, 40) } else { (40, 2) };
            let f = value_noise(rng, w, h, cells, 3, 0.5);
            let fine = value_noise(rng, w, h, (cells.0 * 4, cells.1 * 4), 2, 0.5);
            let rings = uniform(rng, 6.0, 18.0);
            for (x, y, p) in img.enumerate_pixels_mut() {
                let g = (f.at(x, y) * rings).sin() * 0.5 + 0.5;
                let t = 0.55 * g + 0.3 * fine.at(x, y);
                p.0 = lerp_rgb(base, dark, t);
            }
        }
        1 => {
            let stones = [
                [200, 200, 195],
                [60, 60, 65],
                [225, 220, 210],
                [120, 115, 110],
                [235, 235, 235],
            ];
            let base = stones[rng.random_range(0..stones.len())];
            let f = value_noise(rng, w, h, (6, 5), 4, 0.55);
            for (x, y, p) in img.enumerate_pixels_mut() {
                let c = lerp_rgb(base, [128, 128, 128], (f.at(x, y) - 0.5).abs() * 0.5);
                p.0 = c;
            }
            let specks = (w * h / 60) as usize;
            for _ in 0..specks {
                let (x, y) = (rng.random_range(0..w), rng.random_range(0..h));
                let c = if rng.random_bool(0.5) {
                    [30, 30, 30]
                } else {
                    [250, 250, 250]
                };
                blend_pixel(&mut img, x as i64, y as i64, c, uniform(rng, 0.2, 0.7));
            }
        }
        _ => {
            let mats = [[40, 70, 50], [30, 30, 35], [90, 30, 30], [40, 50, 90]];
            let base = mats[rng.random_range(0..mats.len())];
            let f = value_noise(rng, w, h, (20, 15), 3, 0.6);
            for (x, y, p) in img.enumerate_pixels_mut() {
                p.0 = lerp_rgb(base, [0, 0, 0], f.at(x, y) * 0.35);
            }
        }
    }
    img
}

/// Receipts, coins, a pen, a mug rim.
fn draw_clutter(img: &mut RgbImage, rng: &mut impl Rng) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let short = w.min(h);
    for _ in 0..rng.random_range(1..=4) {
        match rng.random_range(0..4) {
            0 => {
                // A receipt: a white slip with faint print lines, rotated.
                let (rw, rh) = (
                    uniform(rng, 0.12, 0.22) * short,
                    uniform(rng, 0.25, 0.5) * short,
                );
                let mut slip = image::RgbaImage::from_pixel(
                    rw as u32 + 1,
                    rh as u32 + 1,
                    image::Rgba([240, 238, 232, 255]),
                );
                let mut y = 6u32;
                while y + 2 < slip.height() {
                    let len = uniform(rng, 0.3, 0.9) * slip.width() as f32;
                    for x in 4..(len as u32).min(slip.width()) {
                        slip.put_pixel(x, y, image::Rgba([150, 150, 150, 255]));
                    }
                    y += rng.random_range(4..9);
                }
                let proj = Projection::translate(uniform(rng, 0.0, w), uniform(rng, 0.0, h))
                    * Projection::rotate(uniform(rng, 0.0, std::f32::consts::TAU))
                    * Projection::translate(-rw / 2.0, -rh / 2.0);
                paste_projected(img, &slip, &proj, 1.0);
            }
            1 => {
                let (x, y) = (uniform(rng, 0.0, w), uniform(rng, 0.0, h));
                let r = uniform(rng, 0.015, 0.03) * short;
                let c = if rng.random_bool(0.5) {
                    [185, 180, 170]
                } else {
                    [190, 140, 70]
                };
                blend_disc(img, x + r * 0.2, y + r * 0.2, r, [20, 20, 20], 0.3);
                blend_disc(img, x, y, r, c, 1.0);
            }
            2 => {
                let p0 = (uniform(rng, 0.0, w), uniform(rng, 0.0, h));
                let a = uniform(rng, 0.0, std::f32::consts::TAU);
                let len = uniform(rng, 0.2, 0.35) * short;
                let p1 = (p0.0 + a.cos() * len, p0.1 + a.sin() * len);
                let colours = [[20, 40, 140], [20, 20, 20], [200, 30, 30], [230, 230, 230]];
                let c = colours[rng.random_range(0..colours.len())];
                draw_capsule(img, p0, p1, 0.012 * short, c, 1.0);
            }
            _ => {
                let (x, y) = (uniform(rng, 0.0, w), uniform(rng, 0.0, h));
                let r = uniform(rng, 0.08, 0.14) * short;
                let colours = [[240, 240, 235], [30, 30, 30], [180, 40, 40], [60, 110, 170]];
                let c = colours[rng.random_range(0..colours.len())];
                blend_disc(img, x, y, r, c, 1.0);
                blend_disc(img, x, y, r * 0.82, lerp_rgb(c, [60, 35, 20], 0.8), 1.0);
            }
        }
    }
}

/// Another sleeve lying mostly outside the frame (under the main one).
fn draw_other_sleeve(img: &mut RgbImage, rng: &mut impl Rng, cfg: &SceneConfig) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let short = w.min(h);
    let s = uniform(rng, cfg.sleeve_scale.0, cfg.sleeve_scale.1) * short;
    // Centre beyond one of the edges, so only part of it is in view.
    let (cx, cy) = match rng.random_range(0..4) {
        0 => (uniform(rng, -0.35, 0.0) * s, uniform(rng, 0.0, h)),
        1 => (w + uniform(rng, 0.0, 0.35) * s, uniform(rng, 0.0, h)),
        2 => (uniform(rng, 0.0, w), uniform(rng, -0.35, 0.0) * s),
        _ => (uniform(rng, 0.0, w), h + uniform(rng, 0.0, 0.35) * s),
    };
    let px = (s.ceil() as u32).clamp(32, 512);
    let cover = procedural_cover(rng.random(), px);
    let a = uniform(rng, -0.6, 0.6);
    let proj = Projection::translate(cx, cy)
        * Projection::rotate(a)
        * Projection::scale(s / px as f32, s / px as f32)
        * Projection::translate(-(px as f32) / 2.0, -(px as f32) / 2.0);
    paste_projected(img, &opaque(&cover), &proj, 1.0);
}

/// A soft drop shadow under the sleeve.
fn draw_shadow(img: &mut RgbImage, quad: &[(f32, f32); 4], rng: &mut impl Rng, short: f32) {
    let off = (
        uniform(rng, -0.015, 0.015) * short,
        uniform(rng, 0.0, 0.025) * short,
    );
    let sigma = uniform(rng, 0.006, 0.02) * short;
    let pad = (3.0 * sigma).ceil() + off.0.abs().max(off.1.abs()) + 2.0;
    let b = bounds(quad);
    let (x0, y0) = (
        (b.x0 - pad).floor().max(0.0) as i32,
        (b.y0 - pad).floor().max(0.0) as i32,
    );
    let (x1, y1) = (
        (b.x1 + pad).ceil().min(img.width() as f32) as i32,
        (b.y1 + pad).ceil().min(img.height() as f32) as i32,
    );
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let mut mask = GrayImage::new((x1 - x0) as u32, (y1 - y0) as u32);
    let poly: Vec<IpPoint<i32>> = quad
        .iter()
        .map(|&(x, y)| IpPoint::new((x + off.0) as i32 - x0, (y + off.1) as i32 - y0))
        .collect();
    if poly.first() == poly.last() {
        return;
    }
    draw_polygon_mut(&mut mask, &poly, Luma([255]));
    let mask = gaussian_blur_f32(&mask, sigma.max(0.5));
    let strength = uniform(rng, 0.25, 0.5);
    for (mx, my, m) in mask.enumerate_pixels() {
        let a = m.0[0] as f32 / 255.0 * strength;
        blend_pixel(
            img,
            x0 as i64 + mx as i64,
            y0 as i64 + my as i64,
            [0, 0, 0],
            a,
        );
    }
}

fn skin_tone(rng: &mut impl Rng) -> [u8; 3] {
    let tones = [
        [236, 188, 155],
        [224, 172, 135],
        [198, 134, 96],
        [160, 105, 70],
        [110, 70, 45],
        [80, 52, 35],
    ];
    tones[rng.random_range(0..tones.len())]
}

/// A shaded capsule (line segment with radius `r`), anti-aliased.
fn draw_capsule(
    img: &mut RgbImage,
    p0: (f32, f32),
    p1: (f32, f32),
    r: f32,
    c: [u8; 3],
    alpha: f32,
) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let x0 = ((p0.0.min(p1.0) - r - 1.0).floor() as i64).max(0);
    let x1 = ((p0.0.max(p1.0) + r + 1.0).ceil() as i64).min(w);
    let y0 = ((p0.1.min(p1.1) - r - 1.0).floor() as i64).max(0);
    let y1 = ((p0.1.max(p1.1) + r + 1.0).ceil() as i64).min(h);
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let len2 = (dx * dx + dy * dy).max(1e-6);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5 - p0.0, y as f32 + 0.5 - p0.1);
            let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
            let (ex, ey) = (px - t * dx, py - t * dy);
            let d = (ex * ex + ey * ey).sqrt();
            let cov = (r + 0.5 - d).clamp(0.0, 1.0);
            if cov > 0.0 {
                // Rounder look: darker towards the rim.
                let shade = (d / r).clamp(0.0, 1.0).powi(2) * 0.35;
                blend_pixel(img, x, y, lerp_rgb(c, [0, 0, 0], shade), cov * alpha);
            }
        }
    }
}

/// A hand and forearm reaching in from the frame edge; with a sleeve, the fingers rest on
/// the middle of one of its edges (never on a corner).
fn draw_hand(img: &mut RgbImage, rng: &mut impl Rng, quad: Option<&[(f32, f32); 4]>, short: f32) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let c = skin_tone(rng);
    let arm_r = uniform(rng, 0.06, 0.09) * short;
    let (tip, dir) = match quad {
        Some(q) => {
            let e = rng.random_range(0..4);
            let (a, b) = (q[e], q[(e + 1) % 4]);
            let t = uniform(rng, 0.35, 0.65);
            let m = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            let centre = ((q[0].0 + q[2].0) / 2.0, (q[0].1 + q[2].1) / 2.0);
            let (nx, ny) = (m.0 - centre.0, m.1 - centre.1);
            let n = (nx * nx + ny * ny).sqrt().max(1e-3);
            ((m.0, m.1), (nx / n, ny / n))
        }
        None => {
            let m = (uniform(rng, 0.2, 0.8) * w, uniform(rng, 0.2, 0.8) * h);
            let a = uniform(rng, 0.0, std::f32::consts::TAU);
            (m, (a.cos(), a.sin()))
        }
    };
    // The arm comes from outside the frame along `dir`.
    let far = (tip.0 + dir.0 * 2.0 * (w + h), tip.1 + dir.1 * 2.0 * (w + h));
    let palm = (tip.0 + dir.0 * arm_r * 1.2, tip.1 + dir.1 * arm_r * 1.2);
    draw_capsule(img, far, palm, arm_r, c, 1.0);
    let (px, py) = (-dir.1, dir.0);
    let finger_r = arm_r * 0.28;
    let fingers = rng.random_range(2..=4);
    for i in 0..fingers {
        let off = (i as f32 - (fingers - 1) as f32 / 2.0) * finger_r * 2.1;
        let base = (palm.0 + px * off, palm.1 + py * off);
        let len = arm_r * uniform(rng, 1.0, 1.6);
        let end = (base.0 - dir.0 * len, base.1 - dir.1 * len);
        draw_capsule(img, base, end, finger_r, c, 1.0);
    }
}

/// Uneven light (gradient + vignette), white balance, exposure and a glare spot.
fn apply_light(
    img: &mut RgbImage,
    rng: &mut impl Rng,
    cfg: &SceneConfig,
    quad: Option<&[(f32, f32); 4]>,
) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let k = cfg.uneven_light;
    let exposure = uniform(rng, cfg.exposure.0, cfg.exposure.1.max(cfg.exposure.0));
    let (gx, gy) = (uniform(rng, -k, k), uniform(rng, -k, k));
    let vig = uniform(rng, 0.0, k);
    let e = cfg.white_balance.abs();
    let wb = [
        uniform(rng, 1.0 - e, 1.0 + e),
        1.0,
        uniform(rng, 1.0 - e, 1.0 + e),
    ];
    let glare = if chance(rng, cfg.glare_prob) {
        let (cx, cy) = match quad {
            Some(q) if rng.random_bool(0.7) => {
                let b = bounds(q);
                (uniform(rng, b.x0, b.x1), uniform(rng, b.y0, b.y1))
            }
            _ => (uniform(rng, 0.0, w), uniform(rng, 0.0, h)),
        };
        let short = w.min(h);
        let (sx, sy) = (
            uniform(rng, 0.03, 0.15) * short,
            uniform(rng, 0.03, 0.15) * short,
        );
        let a = uniform(rng, 0.0, std::f32::consts::PI);
        Some((cx, cy, sx, sy, a.cos(), a.sin(), uniform(rng, 80.0, 230.0)))
    } else {
        None
    };
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (u, v) = (x as f32 / w - 0.5, y as f32 / h - 0.5);
        let gain = exposure * (1.0 + gx * u + gy * v) * (1.0 - vig * (u * u + v * v) * 1.6);
        let mut add = 0.0;
        if let Some((cx, cy, sx, sy, cs, sn, amp)) = glare {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let (rx, ry) = ((dx * cs + dy * sn) / sx, (-dx * sn + dy * cs) / sy);
            let d2 = rx * rx + ry * ry;
            if d2 < 9.0 {
                add = amp * (-d2).exp();
            }
        }
        for (c, g) in p.0.iter_mut().zip(wb) {
            *c = to_u8(*c as f32 * gain * g + add);
        }
    }
}

fn apply_blur(img: &mut RgbImage, rng: &mut impl Rng, cfg: &SceneConfig) {
    let scale = img.width() as f32 / 640.0;
    if chance(rng, cfg.blur_prob) {
        let sigma = uniform(rng, 0.4, cfg.max_blur_sigma.max(0.4)) * scale;
        *img = gaussian_blur_f32(img, sigma);
    }
    if chance(rng, cfg.motion_blur_prob) {
        let n = ((uniform(rng, 3.0, 9.0) * scale).round() as usize).max(2);
        let kernel = vec![1.0f32 / n as f32; n];
        *img = if rng.random_bool(0.6) {
            horizontal_filter(img, &kernel)
        } else {
            vertical_filter(img, &kernel)
        };
    }
}

/// Sensor noise: Gaussian-like luminance noise plus weaker chroma noise.
fn apply_noise(img: &mut RgbImage, rng: &mut impl Rng, cfg: &SceneConfig) {
    let sigma = uniform(
        rng,
        cfg.noise_sigma.0,
        cfg.noise_sigma.1.max(cfg.noise_sigma.0),
    );
    if sigma <= 0.0 {
        return;
    }
    // Irwin–Hall(4) from one 64-bit draw: mean 2, variance 1/3 per unit.
    let norm = |r: u64, shift: u32| -> f32 {
        let s: f32 = (0..4)
            .map(|k| ((r >> (shift + 8 * k)) & 0xFF) as f32 / 255.0)
            .sum();
        (s - 2.0) * 1.732
    };
    for p in img.pixels_mut() {
        let r: u64 = rng.random();
        let l = norm(r, 0) * sigma;
        let c = norm(r, 32) * sigma * 0.35;
        p.0 = [
            to_u8(p.0[0] as f32 + l + c),
            to_u8(p.0[1] as f32 + l),
            to_u8(p.0[2] as f32 + l - c),
        ];
    }
}

/// Encodes to JPEG at `quality` and decodes again (artefacts as a camera/stream makes).
pub fn jpeg_round_trip(img: &RgbImage, quality: u8) -> RgbImage {
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    if img.write_with_encoder(enc).is_err() {
        return img.clone();
    }
    match image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) {
        Ok(d) => d.to_rgb8(),
        Err(_) => img.clone(),
    }
}

/// Resizes a frame (used by the contact sheet; re-exported for callers).
pub fn thumbnail(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    imageops::resize(img, w.max(1), h.max(1), FilterType::Triangle)
}

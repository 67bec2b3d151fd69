//! Procedural album covers. Each genre has its own stylistic distribution (palettes,
//! backgrounds, motifs, typography, finish); the distributions overlap (shared motifs,
//! borrowed palettes) so telling genres apart is learnable but not trivial.

use embedded_graphics::Drawable;
use embedded_graphics::prelude::{Point, Primitive};
use embedded_graphics::primitives::{Circle, PrimitiveStyle};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_ellipse_mut, draw_filled_rect_mut, draw_polygon_mut};
use imageproc::point::Point as IpPoint;
use imageproc::rect::Rect;
use rand::Rng;
use rand::seq::IndexedRandom;
use sleeve_shared::labels::{COVERS5, canonical_genre};

use crate::canvas::{RgbCanvas, eg_rgb, lerp_rgb, luma, mean_luma, to_u8};
use crate::noise::value_noise;
use crate::rng::{chance, gauss, rng_from, uniform, weighted_index};
use crate::text::{
    FONT_6X10, FONT_6X13_BOLD, FONT_7X13_BOLD, FONT_9X15_BOLD, FONT_9X18_BOLD, FONT_10X20,
    draw_text_fit, text_mask,
};
use crate::words;

type Palette = [[u8; 3]; 5];

const COUNTRY: &[Palette] = &[
    [
        [210, 180, 140],
        [120, 80, 40],
        [135, 180, 215],
        [240, 230, 200],
        [180, 80, 40],
    ],
    [
        [240, 150, 60],
        [90, 60, 110],
        [230, 190, 90],
        [70, 90, 130],
        [60, 40, 25],
    ],
    [
        [60, 90, 50],
        [220, 200, 140],
        [150, 40, 30],
        [245, 240, 230],
        [50, 50, 50],
    ],
];
const ELECTRONIC: &[Palette] = &[
    [
        [10, 10, 20],
        [0, 230, 255],
        [255, 0, 200],
        [90, 20, 160],
        [240, 240, 255],
    ],
    [
        [10, 20, 60],
        [60, 255, 120],
        [30, 90, 255],
        [255, 80, 160],
        [150, 150, 170],
    ],
    [
        [238, 238, 232],
        [15, 15, 15],
        [230, 30, 40],
        [120, 120, 120],
        [255, 220, 0],
    ],
];
const HIPHOP: &[Palette] = &[
    [
        [15, 15, 15],
        [212, 175, 55],
        [245, 245, 245],
        [200, 20, 30],
        [90, 90, 90],
    ],
    [
        [40, 30, 25],
        [230, 120, 30],
        [210, 190, 160],
        [10, 10, 10],
        [30, 60, 140],
    ],
    [
        [80, 30, 110],
        [12, 12, 12],
        [240, 240, 240],
        [0, 140, 140],
        [230, 90, 150],
    ],
];
const POP: &[Palette] = &[
    [
        [255, 130, 180],
        [255, 230, 80],
        [120, 210, 255],
        [255, 255, 255],
        [200, 160, 240],
    ],
    [
        [240, 50, 70],
        [250, 250, 250],
        [40, 100, 240],
        [255, 200, 160],
        [160, 240, 200],
    ],
    [
        [255, 150, 50],
        [50, 200, 190],
        [255, 252, 245],
        [230, 40, 140],
        [250, 235, 210],
    ],
];
const ROCK: &[Palette] = &[
    [
        [12, 12, 12],
        [240, 240, 240],
        [180, 20, 20],
        [110, 110, 110],
        [220, 210, 190],
    ],
    [
        [30, 50, 40],
        [150, 70, 30],
        [10, 10, 10],
        [220, 210, 180],
        [200, 160, 40],
    ],
    [
        [20, 30, 70],
        [190, 190, 200],
        [8, 8, 8],
        [220, 100, 20],
        [250, 250, 250],
    ],
];

/// Background kinds.
#[derive(Clone, Copy, Debug)]
enum Background {
    Solid,
    Linear,
    Radial,
    NoisePhoto,
    Blocks,
    Landscape,
}
const BACKGROUNDS: [Background; 6] = [
    Background::Solid,
    Background::Linear,
    Background::Radial,
    Background::NoisePhoto,
    Background::Blocks,
    Background::Landscape,
];

/// Motif kinds drawn over the background.
#[derive(Clone, Copy, Debug)]
enum Motif {
    Portrait,
    Circles,
    Rings,
    Stripes,
    Triangles,
    Grid,
    Scatter,
    Waves,
}
const MOTIFS: [Motif; 8] = [
    Motif::Portrait,
    Motif::Circles,
    Motif::Rings,
    Motif::Stripes,
    Motif::Triangles,
    Motif::Grid,
    Motif::Scatter,
    Motif::Waves,
];

/// A genre's stylistic distribution.
struct Style {
    palettes: &'static [Palette],
    /// Weights over [`BACKGROUNDS`].
    backgrounds: [f32; 6],
    /// Weights over [`MOTIFS`].
    motifs: [f32; 8],
    /// How many motifs, inclusive range.
    motif_count: (u32, u32),
    /// Probability of a title/artist text block.
    text_prob: f32,
    /// Title cap height as a fraction of the cover, range.
    title_size: (f32, f32),
    /// Weights for text at top / centre / bottom.
    text_pos: [f32; 3],
    /// Film grain strength (noise σ in grey levels), range.
    grain: (f32, f32),
    /// Probability of a frame border (vintage look).
    border_prob: f32,
    /// Probability of washing colours out towards grey / sepia.
    fade_prob: f32,
    /// Probability of a dark vignette.
    vignette_prob: f32,
}

fn style_for(genre: &str) -> Option<Style> {
    Some(match genre {
        "country" => Style {
            palettes: COUNTRY,
            backgrounds: [0.1, 0.2, 0.1, 0.25, 0.05, 0.3],
            motifs: [0.45, 0.05, 0.0, 0.1, 0.05, 0.0, 0.05, 0.05],
            motif_count: (0, 2),
            text_prob: 0.95,
            title_size: (0.05, 0.10),
            text_pos: [0.55, 0.1, 0.35],
            grain: (4.0, 12.0),
            border_prob: 0.35,
            fade_prob: 0.45,
            vignette_prob: 0.4,
        },
        "electronic" => Style {
            palettes: ELECTRONIC,
            backgrounds: [0.25, 0.25, 0.2, 0.15, 0.15, 0.0],
            motifs: [0.03, 0.15, 0.25, 0.15, 0.2, 0.2, 0.15, 0.25],
            motif_count: (1, 4),
            text_prob: 0.55,
            title_size: (0.025, 0.06),
            text_pos: [0.3, 0.3, 0.4],
            grain: (0.0, 5.0),
            border_prob: 0.05,
            fade_prob: 0.05,
            vignette_prob: 0.15,
        },
        "hiphop" => Style {
            palettes: HIPHOP,
            backgrounds: [0.2, 0.15, 0.15, 0.35, 0.1, 0.05],
            motifs: [0.6, 0.05, 0.03, 0.05, 0.05, 0.02, 0.05, 0.0],
            motif_count: (1, 2),
            text_prob: 0.85,
            title_size: (0.07, 0.16),
            text_pos: [0.3, 0.15, 0.55],
            grain: (2.0, 10.0),
            border_prob: 0.1,
            fade_prob: 0.15,
            vignette_prob: 0.5,
        },
        "pop" => Style {
            palettes: POP,
            backgrounds: [0.3, 0.3, 0.2, 0.1, 0.1, 0.0],
            motifs: [0.5, 0.15, 0.05, 0.1, 0.05, 0.0, 0.1, 0.05],
            motif_count: (1, 3),
            text_prob: 0.9,
            title_size: (0.06, 0.14),
            text_pos: [0.5, 0.15, 0.35],
            grain: (0.0, 4.0),
            border_prob: 0.1,
            fade_prob: 0.05,
            vignette_prob: 0.1,
        },
        "rock" => Style {
            palettes: ROCK,
            backgrounds: [0.15, 0.1, 0.15, 0.4, 0.1, 0.1],
            motifs: [0.35, 0.05, 0.05, 0.15, 0.15, 0.02, 0.1, 0.0],
            motif_count: (0, 2),
            text_prob: 0.85,
            title_size: (0.06, 0.13),
            text_pos: [0.6, 0.1, 0.3],
            grain: (6.0, 18.0),
            border_prob: 0.15,
            fade_prob: 0.35,
            vignette_prob: 0.45,
        },
        _ => return None,
    })
}

/// Probability that a procedural cover of `genre` carries a Parental Advisory label
/// (`sleeve synth covers`): common on hip-hop, rare on country.
pub fn pa_rate(genre: &str) -> f32 {
    match canonical_genre(genre).as_str() {
        "hiphop" => 0.55,
        "rock" => 0.18,
        "pop" => 0.12,
        "electronic" => 0.06,
        "country" => 0.03,
        _ => 0.1,
    }
}

/// A procedural cover of a random style (any genre's distribution, or a blend).
pub fn procedural_cover(seed: u64, size: u32) -> RgbImage {
    let mut rng = rng_from(seed ^ 0x0C0F_FEE0);
    let genre = COVERS5.choose(&mut rng).copied().unwrap_or("pop");
    styled_cover(genre, rng.random(), size)
}

/// A procedural cover drawn from `genre`'s style (canonicalised; an unknown genre gets a
/// random known style). Deterministic for `(genre, seed, size)`.
pub fn styled_cover(genre: &str, seed: u64, size: u32) -> RgbImage {
    let size = size.max(16);
    let mut rng = rng_from(seed);
    let canon = canonical_genre(genre);
    let style = style_for(&canon).unwrap_or_else(|| {
        let g = COVERS5.choose(&mut rng).copied().unwrap_or("pop");
        style_for(g).expect("COVERS5 genres all have styles")
    });
    // A quarter of covers borrow another genre's palette: colour alone must not decide.
    let palettes = if chance(&mut rng, 0.25) {
        let g = COVERS5.choose(&mut rng).copied().unwrap_or("pop");
        style_for(g).map(|s| s.palettes).unwrap_or(style.palettes)
    } else {
        style.palettes
    };
    let mut pal = *palettes.choose(&mut rng).unwrap_or(&POP[0]);
    jitter_palette(&mut pal, &mut rng);
    shuffle_palette(&mut pal, &mut rng);

    let mut img = RgbImage::new(size, size);
    let bg = BACKGROUNDS[weighted_index(&mut rng, &style.backgrounds)];
    draw_background(&mut img, bg, &pal, &mut rng);
    let n = rng.random_range(style.motif_count.0..=style.motif_count.1);
    for _ in 0..n {
        let m = MOTIFS[weighted_index(&mut rng, &style.motifs)];
        draw_motif(&mut img, m, &pal, &mut rng);
    }
    if chance(&mut rng, style.text_prob) {
        draw_text_block(&mut img, &style, &pal, &mut rng);
    }
    finish(&mut img, &style, &mut rng);
    img
}

fn jitter_palette(pal: &mut Palette, rng: &mut impl Rng) {
    for c in pal.iter_mut() {
        for ch in c.iter_mut() {
            *ch = to_u8(*ch as f32 + gauss(rng) * 12.0);
        }
    }
}

fn shuffle_palette(pal: &mut Palette, rng: &mut impl Rng) {
    // Keep the first (dominant) colour most of the time; otherwise rotate.
    if rng.random_bool(0.4) {
        let k = rng.random_range(1..pal.len());
        pal.rotate_left(k);
    }
}

fn pick(pal: &Palette, rng: &mut impl Rng) -> [u8; 3] {
    pal[rng.random_range(0..pal.len())]
}

fn draw_background(img: &mut RgbImage, bg: Background, pal: &Palette, rng: &mut impl Rng) {
    let (w, h) = img.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    match bg {
        Background::Solid => {
            let c = pal[0];
            for p in img.pixels_mut() {
                *p = Rgb(c);
            }
        }
        Background::Linear => {
            let (a, b) = (pal[0], pick(pal, rng));
            let ang = uniform(rng, 0.0, core::f32::consts::TAU);
            let (dx, dy) = (ang.cos(), ang.sin());
            for (x, y, p) in img.enumerate_pixels_mut() {
                let t = ((x as f32 / wf - 0.5) * dx + (y as f32 / hf - 0.5) * dy) * 1.2 + 0.5;
                *p = Rgb(lerp_rgb(a, b, t));
            }
        }
        Background::Radial => {
            let (a, b) = (pick(pal, rng), pal[0]);
            let (cx, cy) = (uniform(rng, 0.2, 0.8) * wf, uniform(rng, 0.2, 0.8) * hf);
            let r = uniform(rng, 0.4, 0.9) * wf;
            for (x, y, p) in img.enumerate_pixels_mut() {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / r;
                *p = Rgb(lerp_rgb(a, b, d));
            }
        }
        Background::NoisePhoto => {
            // A "photo" of noise: fractal clouds through a three-colour gradient map.
            let cells = rng.random_range(2..6);
            let gain = uniform(rng, 0.4, 0.65);
            let f = value_noise(rng, w, h, (cells, cells), 5, gain);
            let (c0, c1, c2) = (pal[0], pick(pal, rng), pick(pal, rng));
            for (x, y, p) in img.enumerate_pixels_mut() {
                let t = f.at(x, y);
                *p = Rgb(if t < 0.5 {
                    lerp_rgb(c0, c1, t * 2.0)
                } else {
                    lerp_rgb(c1, c2, t * 2.0 - 1.0)
                });
            }
        }
        Background::Blocks => {
            for p in img.pixels_mut() {
                *p = Rgb(pal[0]);
            }
            let n = rng.random_range(1..4);
            for _ in 0..n {
                let vertical = rng.random_bool(0.5);
                let cut = uniform(rng, 0.2, 0.8);
                let c = pick(pal, rng);
                let r = if vertical {
                    Rect::at((cut * wf) as i32, 0).of_size(((1.0 - cut) * wf).max(1.0) as u32, h)
                } else {
                    Rect::at(0, (cut * hf) as i32).of_size(w, ((1.0 - cut) * hf).max(1.0) as u32)
                };
                draw_filled_rect_mut(img, r, Rgb(c));
            }
        }
        Background::Landscape => {
            let horizon = uniform(rng, 0.45, 0.75) * hf;
            let (sky_top, sky_low) = (
                pick(pal, rng),
                lerp_rgb(pick(pal, rng), [255, 240, 220], 0.4),
            );
            let ground = lerp_rgb(pick(pal, rng), [60, 45, 30], 0.4);
            let tex = value_noise(rng, w, h, (3, 8), 4, 0.6);
            for (x, y, p) in img.enumerate_pixels_mut() {
                let yf = y as f32;
                *p = Rgb(if yf < horizon {
                    lerp_rgb(sky_top, sky_low, yf / horizon)
                } else {
                    lerp_rgb(
                        ground,
                        [20, 15, 10],
                        (tex.at(x, y) - 0.5) * 0.6 + (yf - horizon) / hf,
                    )
                });
            }
            if rng.random_bool(0.6) {
                let r = (uniform(rng, 0.05, 0.12) * wf) as i32;
                let c = (uniform(rng, 0.15, 0.85) * wf) as i32;
                let sun = lerp_rgb(sky_low, [255, 230, 150], 0.7);
                let _ = Circle::with_center(
                    Point::new(c, (horizon as i32 - r / 2).max(r)),
                    (2 * r) as u32,
                )
                .into_styled(PrimitiveStyle::with_fill(eg_rgb(sun)))
                .draw(&mut RgbCanvas(img));
            }
            // Hills along the horizon.
            let hill = lerp_rgb(ground, [0, 0, 0], 0.3);
            let mut pts = vec![IpPoint::new(0, h as i32)];
            let steps = 8;
            for i in 0..=steps {
                let x = (i as f32 / steps as f32 * wf) as i32;
                let y = (horizon - uniform(rng, 0.0, 0.12) * hf) as i32;
                pts.push(IpPoint::new(x, y));
            }
            pts.push(IpPoint::new(w as i32, h as i32));
            pts.dedup();
            if pts.first() != pts.last() {
                draw_polygon_mut(img, &pts, Rgb(hill));
            }
        }
    }
}

fn draw_motif(img: &mut RgbImage, m: Motif, pal: &Palette, rng: &mut impl Rng) {
    let (w, h) = img.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    match m {
        Motif::Portrait => {
            // Head and shoulders silhouette, filled with a flat colour or a noise texture.
            let cx = uniform(rng, 0.3, 0.7) * wf;
            let head_r = uniform(rng, 0.09, 0.18) * wf;
            let cy = uniform(rng, 0.3, 0.55) * hf;
            let col = if rng.random_bool(0.5) {
                lerp_rgb(pick(pal, rng), [0, 0, 0], 0.5)
            } else {
                skin(rng)
            };
            let shirt = pick(pal, rng);
            draw_filled_ellipse_mut(
                img,
                (cx as i32, (cy + head_r * 2.6) as i32),
                (head_r * 2.3) as i32,
                (head_r * 1.6) as i32,
                Rgb(shirt),
            );
            draw_filled_rect_mut(
                img,
                Rect::at((cx - head_r * 2.3) as i32, (cy + head_r * 2.6) as i32)
                    .of_size((head_r * 4.6).max(1.0) as u32, h),
                Rgb(shirt),
            );
            draw_filled_ellipse_mut(
                img,
                (cx as i32, (cy + head_r * 1.1) as i32),
                (head_r * 0.4) as i32,
                (head_r * 0.6) as i32,
                Rgb(col),
            );
            draw_filled_ellipse_mut(
                img,
                (cx as i32, cy as i32),
                (head_r * 0.85) as i32,
                head_r as i32,
                Rgb(col),
            );
            // Soft shading across the face.
            let shade = value_noise(rng, 16, 16, (2, 2), 2, 0.5);
            let (x0, y0) = ((cx - head_r) as i32, (cy - head_r) as i32);
            for dy in 0..(2.0 * head_r) as i32 {
                for dx in 0..(2.0 * head_r) as i32 {
                    let (x, y) = (x0 + dx, y0 + dy);
                    if x < 0 || y < 0 || x >= w as i32 || y >= h as i32 {
                        continue;
                    }
                    let p = img.get_pixel_mut(x as u32, y as u32);
                    if p.0 == col {
                        let s = shade.at(
                            (dx as f32 / (2.0 * head_r) * 15.0) as u32,
                            (dy as f32 / (2.0 * head_r) * 15.0) as u32,
                        );
                        p.0 = lerp_rgb(col, [0, 0, 0], s * 0.35);
                    }
                }
            }
        }
        Motif::Circles => {
            for _ in 0..rng.random_range(1..6) {
                let c = pick(pal, rng);
                let r = uniform(rng, 0.04, 0.3) * wf;
                let (x, y) = (uniform(rng, 0.0, wf), uniform(rng, 0.0, hf));
                let alpha = uniform(rng, 0.5, 1.0);
                blend_disc(img, x, y, r, c, alpha);
            }
        }
        Motif::Rings => {
            let (x, y) = (uniform(rng, 0.25, 0.75) * wf, uniform(rng, 0.25, 0.75) * hf);
            let c = pick(pal, rng);
            let n = rng.random_range(3..12);
            let step = uniform(rng, 0.02, 0.06) * wf;
            let stroke = (step * uniform(rng, 0.2, 0.6)).max(1.0) as u32;
            for i in 1..=n {
                let d = (2.0 * step * i as f32) as u32;
                let _ = Circle::with_center(Point::new(x as i32, y as i32), d)
                    .into_styled(PrimitiveStyle::with_stroke(eg_rgb(c), stroke))
                    .draw(&mut RgbCanvas(img));
            }
        }
        Motif::Stripes => {
            let c = pick(pal, rng);
            let period = uniform(rng, 0.04, 0.2) * wf;
            let duty = uniform(rng, 0.2, 0.6);
            let ang =
                *[0.0f32, 0.785, 1.571, -0.785].choose(rng).unwrap_or(&0.0) + gauss(rng) * 0.1;
            let (dx, dy) = (ang.cos(), ang.sin());
            let region = uniform(rng, 0.3, 1.0);
            for (x, y, p) in img.enumerate_pixels_mut() {
                if (y as f32) < hf * (1.0 - region) {
                    continue;
                }
                let t = (x as f32 * dx + y as f32 * dy) / period;
                if t - t.floor() < duty {
                    p.0 = c;
                }
            }
        }
        Motif::Triangles => {
            for _ in 0..rng.random_range(1..5) {
                let c = pick(pal, rng);
                let pt = |rng: &mut dyn rand::RngCore| {
                    Point::new(
                        (rng.random::<f32>() * wf) as i32,
                        (rng.random::<f32>() * hf) as i32,
                    )
                };
                let (a, b, cc) = (pt(rng), pt(rng), pt(rng));
                // imageproc's scanline fill, not embedded-graphics' Triangle: the latter's
                // collapse check squares a cross product in i32 and overflows (a panic with
                // debug assertions) for triangles larger than ~23k px², common at 512 px.
                let poly = [a, b, cc].map(|p| IpPoint::new(p.x, p.y));
                let twice_area = (b.x - a.x) * (cc.y - a.y) - (cc.x - a.x) * (b.y - a.y);
                if twice_area != 0 {
                    draw_polygon_mut(img, &poly, Rgb(c));
                }
            }
        }
        Motif::Grid => {
            let c = pick(pal, rng);
            let step = (uniform(rng, 0.03, 0.1) * wf).max(3.0) as u32;
            let dots = rng.random_bool(0.5);
            for (x, y, p) in img.enumerate_pixels_mut() {
                let on = if dots {
                    x % step < 2 && y % step < 2
                } else {
                    x % step == 0 || y % step == 0
                };
                if on {
                    p.0 = c;
                }
            }
        }
        Motif::Scatter => {
            let c = pick(pal, rng);
            let n = rng.random_range(20..200);
            for _ in 0..n {
                let (x, y) = (uniform(rng, 0.0, wf), uniform(rng, 0.0, hf));
                let r = uniform(rng, 0.3, 0.012 * wf + 1.0);
                blend_disc(img, x, y, r, c, uniform(rng, 0.4, 1.0));
            }
        }
        Motif::Waves => {
            let c = pick(pal, rng);
            let lines = rng.random_range(4..20);
            let amp = uniform(rng, 0.01, 0.08) * hf;
            let freq = uniform(rng, 1.0, 6.0) * core::f32::consts::TAU / wf;
            let phase = uniform(rng, 0.0, std::f32::consts::TAU);
            let y0 = uniform(rng, 0.1, 0.6) * hf;
            let gap = uniform(rng, 0.01, 0.04) * hf;
            let thick = uniform(rng, 0.6, 2.0);
            for i in 0..lines {
                for x in 0..w {
                    let yc = y0
                        + i as f32 * gap
                        + amp * (x as f32 * freq + phase + i as f32 * 0.3).sin();
                    for dy in -(thick.ceil() as i32)..=(thick.ceil() as i32) {
                        let y = yc as i32 + dy;
                        if y >= 0 && y < h as i32 {
                            let a = (1.0 - (dy as f32).abs() / (thick + 0.5)).max(0.0);
                            let p = img.get_pixel_mut(x, y as u32);
                            p.0 = lerp_rgb(p.0, c, a);
                        }
                    }
                }
            }
        }
    }
}

fn skin(rng: &mut impl Rng) -> [u8; 3] {
    let tones = [
        [241, 194, 160],
        [224, 172, 135],
        [198, 134, 96],
        [141, 85, 54],
        [94, 58, 38],
    ];
    tones[rng.random_range(0..tones.len())]
}

/// Anti-aliased disc blended with opacity `alpha`.
pub fn blend_disc(img: &mut RgbImage, cx: f32, cy: f32, r: f32, c: [u8; 3], alpha: f32) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, x1) = (
        ((cx - r - 1.0).floor() as i64).max(0),
        ((cx + r + 1.0).ceil() as i64).min(w),
    );
    let (y0, y1) = (
        ((cy - r - 1.0).floor() as i64).max(0),
        ((cy + r + 1.0).ceil() as i64).min(h),
    );
    for y in y0..y1 {
        for x in x0..x1 {
            let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
            let cov = (r + 0.5 - d).clamp(0.0, 1.0);
            if cov > 0.0 {
                let p = img.get_pixel_mut(x as u32, y as u32);
                p.0 = lerp_rgb(p.0, c, cov * alpha);
            }
        }
    }
}

fn draw_text_block(img: &mut RgbImage, style: &Style, pal: &Palette, rng: &mut impl Rng) {
    let size = img.width() as f32;
    let fonts = [
        FONT_9X18_BOLD,
        FONT_10X20,
        FONT_7X13_BOLD,
        FONT_9X15_BOLD,
        FONT_6X13_BOLD,
    ];
    let font = *fonts.choose(rng).unwrap_or(&FONT_9X18_BOLD);
    let title = words::title(rng);
    let artist = words::artist(rng);
    let cap = uniform(rng, style.title_size.0, style.title_size.1) * size;
    let stretch = uniform(rng, 0.7, 1.5);
    let spacing = if rng.random_bool(0.3) { 3 } else { 1 };
    let Some(mask) = text_mask(&title, &font, spacing) else {
        return;
    };
    let mut tw = mask.width() as f32 / mask.height() as f32 * cap * stretch;
    let mut th = cap;
    let max_w = size * 0.9;
    if tw > max_w {
        th *= max_w / tw;
        tw = max_w;
    }
    let pos = weighted_index(rng, &style.text_pos);
    let margin = uniform(rng, 0.04, 0.1) * size;
    let y = match pos {
        0 => margin,
        1 => (size - th) / 2.0,
        _ => size - margin - th - cap * 0.9,
    };
    let align = rng.random_range(0..3);
    // Keep every line inside the cover with a small safety border.
    let x_of = |w: f32| {
        let x = match align {
            0 => margin,
            1 => (size - w) / 2.0,
            _ => size - margin - w,
        };
        x.clamp(0.0, (size * 0.98 - w).max(0.0))
            .max(size * 0.02)
            .min((size - w).max(0.0))
    };
    // Ink: the palette colour that contrasts most with what lies under the text.
    let under = mean_luma(
        img,
        x_of(tw).max(0.0) as u32,
        y.max(0.0) as u32,
        (x_of(tw) + tw) as u32,
        (y + th) as u32,
    );
    let ink = *pal
        .iter()
        .max_by(|a, b| {
            (luma(**a) - under)
                .abs()
                .total_cmp(&(luma(**b) - under).abs())
        })
        .unwrap_or(&[255, 255, 255]);
    let ink = if (luma(ink) - under).abs() < 80.0 {
        if under > 128.0 {
            [15, 15, 15]
        } else {
            [245, 245, 245]
        }
    } else {
        ink
    };
    draw_text_fit(
        img,
        &title,
        &font,
        spacing,
        (x_of(tw) as i64, y as i64, tw as u32, th as u32),
        ink,
        1.0,
    );
    // Artist line: smaller, just below (or above for bottom titles).
    let ah = (th * uniform(rng, 0.35, 0.6)).max(5.0);
    let aw_nat = crate::text::natural_width(&artist, &FONT_6X10, 1, ah as u32, 1.0) as f32;
    let aw = aw_nat.min(max_w);
    let ay = if pos == 2 {
        y + th + cap * 0.25
    } else {
        y + th + cap * 0.3
    };
    draw_text_fit(
        img,
        &artist,
        &FONT_6X10,
        1,
        (x_of(aw) as i64, ay as i64, aw as u32, ah as u32),
        ink,
        0.95,
    );
}

fn finish(img: &mut RgbImage, style: &Style, rng: &mut impl Rng) {
    let (w, h) = img.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    if chance(rng, style.fade_prob) {
        let amount = uniform(rng, 0.2, 0.6);
        let sepia = rng.random_bool(0.5);
        for p in img.pixels_mut() {
            let l = luma(p.0);
            let target = if sepia {
                [
                    to_u8(l * 1.07 + 10.0),
                    to_u8(l * 0.95 + 5.0),
                    to_u8(l * 0.8),
                ]
            } else {
                [to_u8(l); 3]
            };
            p.0 = lerp_rgb(p.0, target, amount);
        }
    }
    if chance(rng, style.vignette_prob) {
        let s = uniform(rng, 0.3, 0.7);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let d = ((x as f32 / wf - 0.5).powi(2) + (y as f32 / hf - 0.5).powi(2)).sqrt() / 0.707;
            p.0 = lerp_rgb(p.0, [0, 0, 0], (d * d) * s);
        }
    }
    if chance(rng, style.border_prob) {
        let t = (uniform(rng, 0.02, 0.06) * wf) as u32;
        let c = if rng.random_bool(0.7) {
            [236, 230, 214]
        } else {
            [15, 15, 15]
        };
        for (x, y, p) in img.enumerate_pixels_mut() {
            if x < t || y < t || x + t >= w || y + t >= h {
                p.0 = c;
            }
        }
    }
    let sigma = uniform(rng, style.grain.0, style.grain.1);
    if sigma > 0.5 {
        for p in img.pixels_mut() {
            let n = gauss(rng) * sigma;
            p.0 = [
                to_u8(p.0[0] as f32 + n),
                to_u8(p.0[1] as f32 + n),
                to_u8(p.0[2] as f32 + n),
            ];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_are_deterministic_and_varied() {
        let a = styled_cover("rock", 5, 64);
        assert_eq!(a, styled_cover("Rock", 5, 64));
        assert_ne!(a, styled_cover("rock", 6, 64));
        assert_eq!(procedural_cover(9, 48).dimensions(), (48, 48));
        // Not flat: some spread of pixel values.
        let l: Vec<f32> = a.pixels().map(|p| luma(p.0)).collect();
        let mean = l.iter().sum::<f32>() / l.len() as f32;
        let var = l.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / l.len() as f32;
        assert!(var > 4.0, "variance {var}");
    }

    #[test]
    fn unknown_genre_still_draws() {
        assert_eq!(styled_cover("polka", 1, 32).dimensions(), (32, 32));
    }
}

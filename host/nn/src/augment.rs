//! Camera-like augmentation on RGB images, applied BEFORE `sleeve_shared::preprocess`:
//! random resized crop, small rotation and perspective (one projective warp), then colour
//! jitter (brightness, contrast, saturation). No horizontal flips: the kiosk never sees a
//! mirrored cover, and cover text is not symmetric.
//!
//! Every view is a pure function of `(image, config, seed, key, view)`, so cached features
//! and resumed runs see the same pixels.

use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp_into};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Ranges of the random transformations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Smallest crop area as a fraction of the image (largest is 1).
    pub scale_min: f32,
    /// Crop aspect ratios are drawn log-uniformly from `[1/aspect_max, aspect_max]`.
    pub aspect_max: f32,
    /// Maximum rotation in degrees (either direction).
    pub rotate_deg: f32,
    /// Maximum displacement of each crop corner, as a fraction of the crop side.
    pub perspective: f32,
    /// Brightness factor drawn from `[1 − b, 1 + b]`.
    pub brightness: f32,
    /// Contrast factor drawn from `[1 − c, 1 + c]`.
    pub contrast: f32,
    /// Saturation factor drawn from `[1 − s, 1 + s]`.
    pub saturation: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            scale_min: 0.6,
            aspect_max: 1.25,
            rotate_deg: 8.0,
            perspective: 0.06,
            brightness: 0.25,
            contrast: 0.25,
            saturation: 0.25,
        }
    }
}

/// A reproducible random generator for view `view` of the image identified by `key`.
pub fn view_rng(seed: u64, key: &str, view: u32) -> ChaCha8Rng {
    // FNV-1a over the key, mixed with seed and view: stable across platforms and runs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mixed = h ^ seed.rotate_left(17) ^ u64::from(view).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ChaCha8Rng::seed_from_u64(mixed)
}

/// One augmented view of `img` as an `out_side × out_side` image.
pub fn augment(img: &RgbImage, cfg: &AugmentConfig, out_side: u32, rng: &mut impl Rng) -> RgbImage {
    augment_mapped(img, cfg, out_side, rng).0
}

/// [`augment`], also returning the map from `img`'s pixel coordinates to the view's, so
/// that annotations (boxes, points) can follow the pixels.
pub fn augment_mapped(
    img: &RgbImage,
    cfg: &AugmentConfig,
    out_side: u32,
    rng: &mut impl Rng,
) -> (RgbImage, Projection) {
    let out_side = out_side.max(1);
    let mut out = RgbImage::new(out_side, out_side);
    let (w, h) = (img.width().max(1) as f32, img.height().max(1) as f32);
    let projection = random_projection(img.width(), img.height(), cfg, out_side, rng);
    let map = match projection {
        Some(p) => {
            warp_into(img, p, Interpolation::Bilinear, Border::Replicate, &mut out);
            p
        }
        None => {
            out = image::imageops::resize(
                img,
                out_side,
                out_side,
                image::imageops::FilterType::Triangle,
            );
            Projection::scale(out_side as f32 / w, out_side as f32 / h)
        }
    };
    colour_jitter(&mut out, cfg, rng);
    (out, map)
}

/// The projective map from a randomly cropped, rotated and perspective-jittered quad of the
/// source image onto the output square (None when degenerate).
fn random_projection(
    w: u32,
    h: u32,
    cfg: &AugmentConfig,
    out_side: u32,
    rng: &mut impl Rng,
) -> Option<Projection> {
    let (w, h) = (w as f32, h as f32);
    let side = w.min(h);
    // random resized crop, relative to the centred square the preprocessing would take
    let scale = rng.random_range(cfg.scale_min.clamp(0.05, 1.0)..=1.0);
    let log_a = cfg.aspect_max.max(1.0).ln();
    let aspect = rng.random_range(-log_a..=log_a).exp();
    let area = scale * side * side;
    let cw = (area * aspect).sqrt().min(w);
    let ch = (area / aspect).sqrt().min(h);
    let x0 = rng.random_range(0.0..=(w - cw).max(0.0));
    let y0 = rng.random_range(0.0..=(h - ch).max(0.0));
    let (cx, cy) = (x0 + cw / 2.0, y0 + ch / 2.0);
    let theta = rng
        .random_range(-cfg.rotate_deg..=cfg.rotate_deg)
        .to_radians();
    let (sin, cos) = theta.sin_cos();
    let jitter = cfg.perspective.max(0.0) * cw.min(ch);
    let corners = [(-1.0f32, -1.0f32), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)];
    let mut from = [(0.0f32, 0.0f32); 4];
    for (i, (sx, sy)) in corners.iter().enumerate() {
        let dx = sx * cw / 2.0 + rng.random_range(-jitter..=jitter);
        let dy = sy * ch / 2.0 + rng.random_range(-jitter..=jitter);
        from[i] = (cx + dx * cos - dy * sin, cy + dx * sin + dy * cos);
    }
    let s = out_side as f32;
    let to = [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)];
    Projection::from_control_points(from, to)
}

/// Brightness, contrast and saturation jitter, in that order, in place.
fn colour_jitter(img: &mut RgbImage, cfg: &AugmentConfig, rng: &mut impl Rng) {
    let mut factor = |r: f32| 1.0 + rng.random_range(-r.abs()..=r.abs());
    let b = factor(cfg.brightness);
    let c = factor(cfg.contrast);
    let s = factor(cfg.saturation);
    let luma = |p: &Rgb<u8>| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
    let n = (img.width() * img.height()).max(1) as f32;
    let mean = img.pixels().map(luma).sum::<f32>() / n * b;
    for p in img.pixels_mut() {
        let mut v = [p[0] as f32 * b, p[1] as f32 * b, p[2] as f32 * b];
        for x in &mut v {
            *x = mean + (*x - mean) * c;
        }
        let g = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
        for (i, x) in v.iter().enumerate() {
            p[i] = (g + (x - g) * s).round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_image() -> RgbImage {
        RgbImage::from_fn(40, 30, |x, y| {
            Rgb([(x * 6) as u8, (y * 8) as u8, ((x + y) * 3) as u8])
        })
    }

    #[test]
    fn shape_and_determinism_per_seed() {
        let img = test_image();
        let cfg = AugmentConfig::default();
        let a = augment(&img, &cfg, 32, &mut view_rng(7, "abc", 1));
        let b = augment(&img, &cfg, 32, &mut view_rng(7, "abc", 1));
        let c = augment(&img, &cfg, 32, &mut view_rng(7, "abc", 2));
        let d = augment(&img, &cfg, 32, &mut view_rng(8, "abc", 1));
        assert_eq!(a.dimensions(), (32, 32));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn the_returned_map_follows_the_pixels() {
        // a bright 4x4 patch on black: after augmenting, the patch's mapped centre is bright
        let mut img = RgbImage::from_pixel(64, 64, Rgb([0, 0, 0]));
        for y in 30..34 {
            for x in 40..44 {
                img.put_pixel(x, y, Rgb([255, 255, 255]));
            }
        }
        let cfg = AugmentConfig {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            ..AugmentConfig::default()
        };
        for view in 0..8 {
            let (out, map) = augment_mapped(&img, &cfg, 64, &mut view_rng(3, "patch", view));
            let (x, y) = map * (42.0, 32.0);
            if (0.0..63.0).contains(&x) && (0.0..63.0).contains(&y) {
                let p = out.get_pixel(x.round() as u32, y.round() as u32);
                assert!(p[0] > 128, "view {view}: ({x}, {y}) is {p:?}");
            }
        }
    }

    #[test]
    fn zero_strength_is_a_plain_resize() {
        let img = RgbImage::from_pixel(20, 20, Rgb([100, 150, 200]));
        let cfg = AugmentConfig {
            scale_min: 1.0,
            aspect_max: 1.0,
            rotate_deg: 0.0,
            perspective: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
        };
        let out = augment(&img, &cfg, 10, &mut view_rng(1, "x", 0));
        assert!(out.pixels().all(|p| *p == Rgb([100, 150, 200])));
    }
}

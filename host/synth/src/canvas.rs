//! Pixel helpers (blending, clamping, luma) the generators share, and the
//! `embedded-graphics` draw targets of [`sleeve_shared::canvas`].

use embedded_graphics::pixelcolor::Rgb888;
use image::{GrayImage, RgbImage, RgbaImage};
pub use sleeve_shared::canvas::{GrayCanvas, RgbCanvas, RgbaCanvas};

/// `image` colour to `embedded-graphics` colour.
pub fn eg_rgb(c: [u8; 3]) -> Rgb888 {
    Rgb888::new(c[0], c[1], c[2])
}

/// Clamps and rounds a float channel value to `u8`.
#[inline]
pub fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Linear interpolation of two colours (`t = 0` → `a`).
#[inline]
pub fn lerp_rgb(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        to_u8(a[0] as f32 + (b[0] as f32 - a[0] as f32) * t),
        to_u8(a[1] as f32 + (b[1] as f32 - a[1] as f32) * t),
        to_u8(a[2] as f32 + (b[2] as f32 - a[2] as f32) * t),
    ]
}

/// Blends `color` over the pixel at `(x, y)` with opacity `alpha` in `[0, 1]`; ignores
/// coordinates outside the image.
#[inline]
pub fn blend_pixel(img: &mut RgbImage, x: i64, y: i64, color: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 || alpha <= 0.0 {
        return;
    }
    let p = img.get_pixel_mut(x as u32, y as u32);
    p.0 = lerp_rgb(p.0, color, alpha);
}

/// Stamps a grey mask (255 = full `color`) onto `img` with its top-left corner at
/// `(x0, y0)`, scaled by `opacity`.
pub fn stamp_mask(
    img: &mut RgbImage,
    mask: &GrayImage,
    x0: i64,
    y0: i64,
    color: [u8; 3],
    opacity: f32,
) {
    for (mx, my, m) in mask.enumerate_pixels() {
        if m.0[0] > 0 {
            blend_pixel(
                img,
                x0 + mx as i64,
                y0 + my as i64,
                color,
                opacity * m.0[0] as f32 / 255.0,
            );
        }
    }
}

/// Like [`stamp_mask`] for an RGBA patch: blends the colour and raises alpha to the
/// mask's coverage.
pub fn stamp_mask_rgba(img: &mut RgbaImage, mask: &GrayImage, x0: i64, y0: i64, color: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for (mx, my, m) in mask.enumerate_pixels() {
        let (x, y) = (x0 + mx as i64, y0 + my as i64);
        if m.0[0] == 0 || x < 0 || y < 0 || x >= w || y >= h {
            continue;
        }
        let a = m.0[0] as f32 / 255.0;
        let p = img.get_pixel_mut(x as u32, y as u32);
        let rgb = lerp_rgb(
            [p.0[0], p.0[1], p.0[2]],
            color,
            if p.0[3] == 0 { 1.0 } else { a },
        );
        p.0 = [rgb[0], rgb[1], rgb[2], p.0[3].max(m.0[0])];
    }
}

/// Mean luma (0–255) of a rectangle of an RGB image (clipped to the image; 0 if empty).
pub fn mean_luma(img: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> f32 {
    let (x1, y1) = (x1.min(img.width()), y1.min(img.height()));
    let mut sum = 0.0f64;
    let mut n = 0u64;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.get_pixel(x, y).0;
            sum += luma(p) as f64;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { (sum / n as f64) as f32 }
}

/// Rec. 601 luma of an RGB pixel.
#[inline]
pub fn luma(p: [u8; 3]) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

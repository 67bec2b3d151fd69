//! Colour Canny: the sleeve finder's edge map in one pass over the three channels.
//!
//! A sleeve whose grey level matches the counter still differs in hue, so edges are found on
//! every colour channel. Running imageproc's grey-level `canny` on each channel
//! ([`per_channel_canny`], the finder's method until 2026-12-05) blurs each channel twice (our σ, then Canny's own 1.4),
//! and suppresses non-maxima and follows hysteresis three times. Here the frame is blurred
//! once at the combined σ, the Sobel gradients of all channels come from one pass,
//! and each pixel keeps the gradient of its strongest channel; non-maximum suppression
//! (direction by slope comparisons, no `atan2`) and hysteresis run once.

use image::{GrayImage, RgbImage};
use imageproc::edges::canny;
use imageproc::filter::gaussian_blur_f32;

/// The blur imageproc's `canny` applies on its own; the finder's edges keep its scale.
pub const CANNY_OWN_SIGMA: f32 = 1.4;

/// tan(22.5°) and tan(67.5°): the borders between the four gradient directions.
const TAN_22_5: f32 = 0.414_213_57;
const TAN_67_5: f32 = 2.414_213_6;

/// Binary edge map (255 = edge) of `img`: blur at σ = √(`extra_sigma`² + 1.4²), Sobel per
/// channel, the strongest channel per pixel, non-maximum suppression, hysteresis between
/// `low` and `high` (gradient magnitude, as imageproc's `canny`).
pub fn colour_canny(img: &RgbImage, extra_sigma: f32, low: f32, high: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    if w < 3 || h < 3 {
        return GrayImage::new(w, h);
    }
    let sigma = (extra_sigma.max(0.0).powi(2) + CANNY_OWN_SIGMA.powi(2)).sqrt();
    let blurred = super::blur::gaussian_blur(img, sigma);
    let (dx, dy, mag) = strongest_sobel(&blurred);
    let thin = suppress_non_maxima(w as usize, h as usize, &dx, &dy, &mag);
    hysteresis(w, h, &thin, low, high)
}

/// imageproc's grey-level `canny` on each channel (after an extra blur of `extra_sigma`,
/// 0: none), the three edge maps combined: three Cannys and up to six blurs.
pub fn per_channel_canny(img: &RgbImage, extra_sigma: f32, low: f32, high: f32) -> GrayImage {
    let (w, h) = img.dimensions();
    let mut out = GrayImage::new(w, h);
    for ch in 0..3 {
        let plane = GrayImage::from_fn(w, h, |x, y| image::Luma([img.get_pixel(x, y).0[ch]]));
        let e = if extra_sigma > 0.0 {
            canny(&gaussian_blur_f32(&plane, extra_sigma), low, high)
        } else {
            canny(&plane, low, high)
        };
        for (o, v) in out.iter_mut().zip(e.iter()) {
            *o = (*o).max(*v);
        }
    }
    out
}

/// Per pixel, the 3×3 Sobel gradient (dx, dy) and its magnitude on the channel whose
/// gradient is strongest (the first of equals), border pixels replicated: what imageproc's
/// `filter_clamped` with its Sobel kernels gives per channel (tested), in one pass over the
/// rows without the two intermediate images.
fn strongest_sobel(img: &RgbImage) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let n = w * h;
    let (mut dx, mut dy, mut mag) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    if n == 0 {
        return (dx, dy, mag);
    }
    let raw = img.as_raw();
    let row = |y: usize| &raw[y * w * 3..(y + 1) * w * 3];
    // Per row, the vertical smoothing [1 2 1] and difference [-1 0 1] of every channel
    // value first (contiguous, so vectorised); the horizontal halves of both kernels then
    // read them three values (one pixel) apart. Integer sums, so exactly the 3×3 kernels.
    let (mut smooth, mut diff) = (vec![0i32; 3 * w], vec![0i32; 3 * w]);
    for y in 0..h {
        let (above, here, below) = (row(y.saturating_sub(1)), row(y), row((y + 1).min(h - 1)));
        for (j, (s, d)) in smooth.iter_mut().zip(diff.iter_mut()).enumerate() {
            let (a, c, b) = (i32::from(above[j]), i32::from(here[j]), i32::from(below[j]));
            *s = a + 2 * c + b;
            *d = b - a;
        }
        for x in 0..w {
            let (l, c, r) = (3 * x.saturating_sub(1), 3 * x, 3 * (x + 1).min(w - 1));
            let mut best = (0.0f32, 0.0f32, -1.0f32);
            for ch in 0..3 {
                let gx = smooth[r + ch] - smooth[l + ch];
                let gy = diff[l + ch] + 2 * diff[c + ch] + diff[r + ch];
                let (a, b) = (gx as f32, gy as f32);
                let m2 = a * a + b * b;
                if m2 > best.2 {
                    best = (a, b, m2);
                }
            }
            let i = y * w + x;
            dx[i] = best.0;
            dy[i] = best.1;
            mag[i] = best.2.sqrt();
        }
    }
    (dx, dy, mag)
}

/// Keeps a pixel's magnitude only where it is a maximum across the edge (one of four
/// directions); the one-pixel border is zero.
fn suppress_non_maxima(w: usize, h: usize, dx: &[f32], dy: &[f32], mag: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let m = mag[i];
            if m == 0.0 {
                continue;
            }
            let (ax, ay) = (dx[i].abs(), dy[i].abs());
            // the neighbours along the gradient (image y points down)
            let (a, b) = if ay <= TAN_22_5 * ax {
                (i - 1, i + 1)
            } else if ay >= TAN_67_5 * ax {
                (i - w, i + w)
            } else if (dx[i] > 0.0) == (dy[i] > 0.0) {
                (i - w - 1, i + w + 1)
            } else {
                (i - w + 1, i + w - 1)
            };
            // ties (a step between two pixels) keep one side only: one pixel thin
            if m > mag[a] && m >= mag[b] {
                out[i] = m;
            }
        }
    }
    out
}

/// Edges: every pixel at or above `high`, and those at or above `low` connected to one
/// (8-neighbourhood).
fn hysteresis(w: u32, h: u32, thin: &[f32], low: f32, high: f32) -> GrayImage {
    let (wu, hu) = (w as usize, h as usize);
    let mut out = vec![0u8; wu * hu];
    let mut stack = Vec::new();
    for start in 0..thin.len() {
        if thin[start] < high || out[start] != 0 {
            continue;
        }
        out[start] = 255;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % wu, i / wu);
            for ny in y.saturating_sub(1)..(y + 2).min(hu) {
                for nx in x.saturating_sub(1)..(x + 2).min(wu) {
                    let j = ny * wu + nx;
                    if out[j] == 0 && thin[j] >= low {
                        out[j] = 255;
                        stack.push(j);
                    }
                }
            }
        }
    }
    GrayImage::from_raw(w, h, out).expect("one byte per pixel")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb};
    use imageproc::definitions::Image;

    /// A grey-level image's edges by the same steps (for comparisons with imageproc's `canny`).
    fn grey_canny(img: &GrayImage, low: f32, high: f32) -> GrayImage {
        let rgb = RgbImage::from_fn(img.width(), img.height(), |x, y| {
            let v = img.get_pixel(x, y).0[0];
            Rgb([v, v, v])
        });
        colour_canny(&rgb, 0.0, low, high)
    }

    fn square(bg: [u8; 3], fg: [u8; 3]) -> RgbImage {
        RgbImage::from_fn(80, 60, |x, y| {
            if (20..60).contains(&x) && (15..45).contains(&y) {
                Rgb(fg)
            } else {
                Rgb(bg)
            }
        })
    }

    fn edge_rows(e: &GrayImage, x: u32) -> Vec<u32> {
        (0..e.height())
            .filter(|&y| e.get_pixel(x, y).0[0] == 255)
            .collect()
    }

    /// A square's outline is found one pixel thin, on its border, and nothing else.
    #[test]
    fn a_square_gives_its_thin_outline() {
        let e = colour_canny(&square([40, 40, 40], [200, 200, 200]), 1.2, 20.0, 60.0);
        // a column through the square crosses the top and bottom border once each
        let rows = edge_rows(&e, 40);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            (13..=16).contains(&rows[0]) && (43..=46).contains(&rows[1]),
            "{rows:?}"
        );
        // far from the border there are no edges
        for (x, y) in [(5, 5), (40, 30), (75, 55)] {
            assert_eq!(e.get_pixel(x, y).0[0], 0, "({x}, {y})");
        }
    }

    /// A square that differs from the counter only in hue (same grey level) is found too.
    #[test]
    fn a_hue_only_border_is_an_edge() {
        // equal luminance: 0.299 r + 0.587 g + 0.114 b ≈ 150 for both
        let img = square([150, 150, 150], [220, 119, 179]);
        let e = colour_canny(&img, 1.2, 20.0, 60.0);
        assert_eq!(edge_rows(&e, 40).len(), 2);
    }

    /// On a grey image it agrees with imageproc's `canny` almost everywhere (the blur's
    /// rounding and the border differ).
    #[test]
    fn grey_images_agree_with_imageprocs_canny() {
        let img = GrayImage::from_fn(96, 72, |x, y| {
            let disc = (x as i32 - 48).pow(2) + (y as i32 - 36).pow(2) < 500;
            let stripe = (x / 12) % 2 == 0 && y > 60;
            Luma([if disc {
                210
            } else if stripe {
                120
            } else {
                30
            }])
        });
        let ours = grey_canny(&img, 20.0, 60.0);
        let theirs = imageproc::edges::canny(&img, 20.0, 60.0);
        let inner = |x: u32, y: u32| x > 2 && y > 2 && x < 93 && y < 69;
        let (mut both, mut either) = (0, 0);
        for (x, y, p) in ours.enumerate_pixels() {
            if !inner(x, y) {
                continue;
            }
            let (a, b) = (p.0[0] == 255, theirs.get_pixel(x, y).0[0] == 255);
            both += (a && b) as u32;
            either += (a || b) as u32;
        }
        assert!(either > 100, "{either} edge pixels");
        assert!(both as f32 / either as f32 > 0.9, "{both} of {either}");
    }

    /// Weak edges survive only when connected to a strong one.
    #[test]
    fn hysteresis_keeps_weak_edges_only_next_to_strong_ones() {
        let thin = [0.0, 70.0, 30.0, 30.0, 0.0, 30.0, 0.0, 0.0, 0.0];
        let e = hysteresis(9, 1, &thin, 20.0, 60.0);
        assert_eq!(e.as_raw(), &[0, 255, 255, 255, 0, 0, 0, 0, 0]);
    }

    /// The one-pass Sobel equals imageproc's two filtered images, channel by channel, the
    /// strongest channel kept, borders included.
    #[test]
    fn one_pass_sobel_equals_imageprocs_filters() {
        use imageproc::filter::filter_clamped;
        use imageproc::kernel::{SOBEL_HORIZONTAL_3X3, SOBEL_VERTICAL_3X3};
        let mut state = 12345u32;
        let img = RgbImage::from_fn(37, 23, |_, _| {
            let mut c = [0u8; 3];
            for v in &mut c {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *v = (state >> 24) as u8;
            }
            Rgb(c)
        });
        let gx: Image<Rgb<i16>> = filter_clamped(&img, SOBEL_HORIZONTAL_3X3);
        let gy: Image<Rgb<i16>> = filter_clamped(&img, SOBEL_VERTICAL_3X3);
        let (dx, dy, mag) = strongest_sobel(&img);
        for (i, (hx, vy)) in gx.pixels().zip(gy.pixels()).enumerate() {
            let m2 = |c: usize| f32::from(hx.0[c]).powi(2) + f32::from(vy.0[c]).powi(2);
            let best = (0..3).fold(0, |b, c| if m2(c) > m2(b) { c } else { b });
            assert_eq!(
                (dx[i], dy[i], mag[i]),
                (
                    f32::from(hx.0[best]),
                    f32::from(vy.0[best]),
                    m2(best).sqrt()
                ),
                "pixel {i}"
            );
        }
        assert_eq!(strongest_sobel(&RgbImage::new(1, 1)).2, vec![0.0]);
    }

    #[test]
    fn tiny_images_have_no_edges() {
        let e = colour_canny(&RgbImage::new(2, 5), 1.2, 20.0, 60.0);
        assert_eq!(e.dimensions(), (2, 5));
        assert!(e.iter().all(|&v| v == 0));
    }
}

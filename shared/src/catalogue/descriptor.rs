//! The cover descriptor: a compact signature of a (rectified) sleeve image, for recognising
//! the *same* cover again through a camera.
//!
//! Computed from the shared preprocessing (`preprocess` at [`GRID`]² of the centred
//! [`CROP_FRACTION`] of the image, no normalisation), so host (catalogue building) and edge
//! (recognition) get the same bits from the same pixels. The image is cut into
//! [`CELLS`] × [`CELLS`] cells; each cell gets [`CELL_DIM`] values, normalised *locally*
//! (uneven light and vignetting change gain across a sleeve, not within a cell):
//!
//! 1. **shape**: luminance at 4 × 4 (2 × 2-pixel means), zero-mean, divided by the cell's
//!    contrast (floored at a fraction of the image's, so flat cells stay small);
//! 2. **colour**: chromaticity (r, b over r + g + b, minus the image mean: white balance and
//!    exposure drop out) at 2 × 2;
//! 3. **gradients**: 8 signed orientation bins of the cell's luminance gradients, L1-
//!    normalised (floored likewise) and square-rooted (Hellinger).
//!
//! The whole vector is L2-normalised and quantised to int8. Search ranks by the global
//! cosine and re-ranks the best candidates by a trimmed mean of per-cell cosines (see
//! [`crate::catalogue::index`]), which ignores the cells a hand, a sticker or glare covers.
//!
//! Orientation bins come from sign and magnitude comparisons (no trigonometry) and the only
//! irrational operation is `sqrt` (correctly rounded), so the bits are platform-independent.
//! A change to any of this bumps [`DESCRIPTOR_VERSION`]; catalogues record it.

use alloc::vec;
use alloc::vec::Vec;

use crate::preprocess::{
    PREPROCESS_VERSION, PreprocessConfig, PreprocessError, RgbView, TensorLayout, preprocess,
};

/// Version of the descriptor algorithm; catalogues made with another version are refused.
pub const DESCRIPTOR_VERSION: u32 = 2;
/// Side of the preprocessed image the descriptor is computed from.
pub const GRID: usize = 32;
/// Fraction of the sleeve kept (centred): drops the outer border, where rectification
/// errors show background and fingers hold the sleeve.
pub const CROP_FRACTION: f32 = 0.92;
/// Cells per side.
pub const CELLS: usize = 4;
const CELL_PX: usize = GRID / CELLS;
const SHAPE: usize = 4;
const COLOUR: usize = 2;
const BINS: usize = 8;
/// Values per cell.
pub const CELL_DIM: usize = SHAPE * SHAPE + 2 * COLOUR * COLOUR + BINS;
/// Length of a descriptor.
pub const DESCRIPTOR_DIM: usize = CELLS * CELLS * CELL_DIM;
/// Part weights (shape, colour, gradients) and the floor of a cell's contrast relative to
/// the image's, chosen by measurement (docs/catalogue.md).
const W_COLOUR: f32 = 3.0;
const W_GRAD: f32 = 0.7;
const FLOOR: f32 = 0.3;

/// The preprocessing the descriptor starts from.
pub fn descriptor_preprocess() -> PreprocessConfig {
    PreprocessConfig {
        version: PREPROCESS_VERSION,
        input_size: GRID as u32,
        crop_fraction: CROP_FRACTION,
        mean: [0.0; 3],
        std: [1.0; 3],
        layout: TensorLayout::Nchw,
    }
}

/// The unit-length float descriptor of a cover image ([`DESCRIPTOR_DIM`] values, cell by
/// cell, row-major).
pub fn describe(img: &RgbView<'_>) -> Result<Vec<f32>, PreprocessError> {
    let t = preprocess(img, &descriptor_preprocess())?;
    let plane = GRID * GRID;
    let (r, g, b) = (&t[..plane], &t[plane..2 * plane], &t[2 * plane..]);
    let lum: Vec<f32> = (0..plane).map(|i| (r[i] + g[i] + b[i]) / 3.0).collect();
    let chroma = |c: &[f32]| -> Vec<f32> {
        (0..plane)
            .map(|i| c[i] / (r[i] + g[i] + b[i] + 0.03))
            .collect()
    };
    let (mut cr, mut cb) = (chroma(r), chroma(b));
    centre(&mut cr);
    centre(&mut cb);
    let hist = orientation_histogram(&lum);

    let cells = CELLS * CELLS;
    let mut shapes = Vec::with_capacity(cells);
    for cell in 0..cells {
        let mut s = pool_cell(&lum, cell, SHAPE);
        centre(&mut s);
        shapes.push(s);
    }
    let contrast: Vec<f32> = shapes.iter().map(|s| norm(s)).collect();
    let grad_mass: Vec<f32> = hist.chunks_exact(BINS).map(|h| h.iter().sum()).collect();
    let c_floor = FLOOR * mean(&contrast);
    let g_floor = FLOOR * mean(&grad_mass);

    let mut out = Vec::with_capacity(DESCRIPTOR_DIM);
    for cell in 0..cells {
        let c = contrast[cell].max(c_floor).max(1e-6);
        out.extend(shapes[cell].iter().map(|v| v / c));
        for plane in [&cr, &cb] {
            out.extend(pool_cell(plane, cell, COLOUR).iter().map(|v| v * W_COLOUR));
        }
        let m = grad_mass[cell].max(g_floor).max(1e-6);
        out.extend(
            hist[cell * BINS..(cell + 1) * BINS]
                .iter()
                .map(|v| W_GRAD * libm::sqrtf(v / m)),
        );
    }
    let n = norm(&out);
    scale(&mut out, if n > 1e-6 { 1.0 / n } else { 0.0 });
    Ok(out)
}

/// [`describe`], quantized with [`quantize`].
pub fn describe_quantized(img: &RgbView<'_>) -> Result<Vec<i8>, PreprocessError> {
    Ok(quantize(&describe(img)?))
}

/// int8 form of a descriptor: scaled so its largest magnitude is 127, rounded to nearest.
/// Cosine similarity survives (the scale cancels); an all-zero vector stays zero.
pub fn quantize(v: &[f32]) -> Vec<i8> {
    let max = v.iter().fold(0.0f32, |m, x| m.max(abs(*x)));
    if max <= 0.0 {
        return vec![0; v.len()];
    }
    let s = 127.0 / max;
    v.iter()
        .map(|x| {
            let y = x * s;
            let r = if y >= 0.0 { y + 0.5 } else { y - 0.5 };
            (r as i32).clamp(-127, 127) as i8
        })
        .collect()
}

/// `side × side` block means of one cell of a `GRID × GRID` plane.
fn pool_cell(p: &[f32], cell: usize, side: usize) -> Vec<f32> {
    let (x0, y0) = ((cell % CELLS) * CELL_PX, (cell / CELLS) * CELL_PX);
    let k = CELL_PX / side;
    let inv = 1.0 / (k * k) as f32;
    let mut out = vec![0.0f32; side * side];
    for y in 0..CELL_PX {
        for x in 0..CELL_PX {
            out[(y / k) * side + x / k] += p[(y0 + y) * GRID + x0 + x];
        }
    }
    out.iter_mut().for_each(|v| *v *= inv);
    out
}

/// Gradient magnitude in `BINS` signed orientation bins per cell (central differences,
/// borders replicated), cell by cell. Bin = octant of the gradient direction.
fn orientation_histogram(lum: &[f32]) -> Vec<f32> {
    let mut h = vec![0.0f32; CELLS * CELLS * BINS];
    let at = |x: usize, y: usize| lum[y * GRID + x];
    for y in 0..GRID {
        for x in 0..GRID {
            let gx = at((x + 1).min(GRID - 1), y) - at(x.saturating_sub(1), y);
            let gy = at(x, (y + 1).min(GRID - 1)) - at(x, y.saturating_sub(1));
            let m = libm::sqrtf(gx * gx + gy * gy);
            if m <= 0.0 {
                continue;
            }
            let (ax, ay) = (abs(gx), abs(gy));
            // Octant 0..8 counter-clockwise from +x.
            let bin = match (gx >= 0.0, gy >= 0.0, ax >= ay) {
                (true, true, true) => 0,
                (true, true, false) => 1,
                (false, true, false) => 2,
                (false, true, true) => 3,
                (false, false, true) => 4,
                (false, false, false) => 5,
                (true, false, false) => 6,
                (true, false, true) => 7,
            };
            h[((y / CELL_PX) * CELLS + x / CELL_PX) * BINS + bin] += m;
        }
    }
    h
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len().max(1) as f32
}

fn centre(v: &mut [f32]) {
    let mean = v.iter().sum::<f32>() / v.len().max(1) as f32;
    v.iter_mut().for_each(|x| *x -= mean);
}

fn norm(v: &[f32]) -> f32 {
    libm::sqrtf(v.iter().map(|x| x * x).sum())
}

fn scale(v: &mut [f32], s: f32) {
    v.iter_mut().for_each(|x| *x *= s);
}

fn abs(x: f32) -> f32 {
    if x < 0.0 { -x } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic test picture: soft shapes, a colour gradient and a stripe pattern
    /// that differ with `seed`.
    pub(crate) fn picture(seed: u32, side: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 1000) as f32 / 1000.0
        };
        let (cx, cy, r) = (next(), next(), 0.15 + 0.3 * next());
        let (c0, c1, c2) = ([next(), next(), next()], [next(), next(), next()], next());
        let freq = 2.0 + 10.0 * next();
        let mut img = Vec::with_capacity((side * side * 3) as usize);
        for py in 0..side {
            for px in 0..side {
                let (u, v) = (px as f32 / side as f32, py as f32 / side as f32);
                let inside = (u - cx) * (u - cx) + (v - cy) * (v - cy) < r * r;
                let stripe = if ((u + v * c2) * freq) as i32 % 2 == 0 {
                    0.2
                } else {
                    0.0
                };
                for k in 0..3 {
                    let base = if inside {
                        c0[k]
                    } else {
                        c1[k] * (0.5 + 0.5 * u)
                    };
                    img.push(((base + stripe).min(1.0) * 255.0) as u8);
                }
            }
        }
        img
    }

    fn cosine(a: &[i8], b: &[i8]) -> f32 {
        let dot: i32 = a.iter().zip(b).map(|(x, y)| *x as i32 * *y as i32).sum();
        let na: i32 = a.iter().map(|x| *x as i32 * *x as i32).sum();
        let nb: i32 = b.iter().map(|x| *x as i32 * *x as i32).sum();
        dot as f32 / libm::sqrtf(na as f32 * nb as f32)
    }

    #[test]
    fn unit_length_and_dimension() {
        let img = picture(3, 64);
        let d = describe(&RgbView::new(64, 64, &img).unwrap()).unwrap();
        assert_eq!(d.len(), DESCRIPTOR_DIM);
        assert!((norm(&d) - 1.0).abs() < 1e-4);
        assert!(d.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn flat_image_gives_a_finite_vector() {
        let img = [90u8, 90, 90].repeat(20 * 20);
        let d = describe(&RgbView::new(20, 20, &img).unwrap()).unwrap();
        assert!(d.iter().all(|v| v.is_finite()));
        assert_eq!(quantize(&d).len(), DESCRIPTOR_DIM);
    }

    #[test]
    fn same_cover_after_exposure_change_is_closer_than_another_cover() {
        let a = picture(11, 96);
        let darker: Vec<u8> = a.iter().map(|v| (*v as f32 * 0.7) as u8).collect();
        let other = picture(12, 96);
        let q = |img: &[u8]| describe_quantized(&RgbView::new(96, 96, img).unwrap()).unwrap();
        let (qa, qd, qo) = (q(&a), q(&darker), q(&other));
        let same = cosine(&qa, &qd);
        let diff = cosine(&qa, &qo);
        assert!(same > 0.95, "same cover, darker: {same}");
        assert!(diff < same - 0.2, "other cover {diff} vs same {same}");
    }

    #[test]
    fn quantize_keeps_signs_and_peaks() {
        let q = quantize(&[0.5, -0.25, 0.0, -0.5]);
        assert_eq!(q, vec![127, -64, 0, -127]);
        assert_eq!(quantize(&[0.0, 0.0]), vec![0, 0]);
    }

    /// Pins the descriptor's bits: host-built catalogues and edge queries must agree. If
    /// this fails, bump DESCRIPTOR_VERSION.
    #[test]
    fn golden_descriptor_is_pinned() {
        let img = picture(7, 50);
        let q = describe_quantized(&RgbView::new(50, 50, &img).unwrap()).unwrap();
        let mut h: u64 = 0xcbf29ce484222325;
        for v in &q {
            h ^= *v as u8 as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        assert_eq!(h, GOLDEN, "descriptor bits changed: {h:#x}");
    }
    const GOLDEN: u64 = 0xdae0106085f37ccd;
}

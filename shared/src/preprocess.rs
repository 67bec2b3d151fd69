//! RGB image → model input tensor. The one implementation host and edge both use.
//!
//! Steps, in order:
//! 1. take the centred square of side `min(w, h) · crop_fraction` (covers are square, and
//!    the kiosk rectifies the sleeve to a square, so the default keeps everything);
//! 2. resample it to `input_size × input_size` with a separable, antialiased triangle
//!    (bilinear) filter whose support widens when downscaling, like PIL's `BILINEAR`;
//! 3. scale to `[0, 1]`, subtract `mean`, divide by `std`, per channel;
//! 4. lay out as `NCHW` (`1 × 3 × S × S`), row-major, `f32`.
//!
//! All arithmetic is plain `f32` in a fixed order, so the same input gives the same bits on
//! every platform (Rust never fuses multiply-adds on its own).

use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Version of the algorithm above. Bump it on any change that alters output bits; bundles
/// record it and the edge refuses a bundle made with another version.
pub const PREPROCESS_VERSION: u32 = 1;

/// Memory layout of the model input tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorLayout {
    /// Batch, channel, height, width (burn's and ONNX's convention).
    Nchw,
}

/// How an image becomes a tensor. Stored in every bundle manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    /// Algorithm version ([`PREPROCESS_VERSION`] when made by this crate).
    pub version: u32,
    /// Side of the square model input, in pixels.
    pub input_size: u32,
    /// Side of the centred crop as a fraction of the image's shorter side, in `(0, 1]`.
    pub crop_fraction: f32,
    /// Per-channel mean (RGB) subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB) divided by after subtracting the mean.
    pub std: [f32; 3],
    /// Tensor layout.
    pub layout: TensorLayout,
}

impl PreprocessConfig {
    /// Inputs scaled to `[-1, 1]` (mean 0.5, std 0.5): what the TFLite/Coral MobileNetV2
    /// import expects. The default for Sleeve's models.
    pub fn signed_unit(input_size: u32) -> Self {
        Self {
            version: PREPROCESS_VERSION,
            input_size,
            crop_fraction: 1.0,
            mean: [0.5; 3],
            std: [0.5; 3],
            layout: TensorLayout::Nchw,
        }
    }

    /// torchvision's ImageNet normalisation (for weights imported from PyTorch).
    pub fn imagenet(input_size: u32) -> Self {
        Self {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            ..Self::signed_unit(input_size)
        }
    }

    /// Number of `f32` values in one preprocessed image (`3 · S · S`).
    pub fn tensor_len(&self) -> usize {
        3 * self.input_size as usize * self.input_size as usize
    }

    /// Tensor shape `[1, 3, S, S]`.
    pub fn shape(&self) -> [usize; 4] {
        let s = self.input_size as usize;
        [1, 3, s, s]
    }

    /// Checks the configuration can be applied by this crate.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.version != PREPROCESS_VERSION {
            return Err(PreprocessError::Version(self.version));
        }
        if self.input_size == 0 || self.input_size > 4096 {
            return Err(PreprocessError::InputSize(self.input_size));
        }
        if !(self.crop_fraction > 0.0 && self.crop_fraction <= 1.0) {
            return Err(PreprocessError::CropFraction);
        }
        if self
            .std
            .iter()
            .any(|s| s.is_nan() || *s <= 0.0 || !s.is_finite())
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(PreprocessError::Normalisation);
        }
        Ok(())
    }
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self::signed_unit(224)
    }
}

/// A borrowed, packed RGB8 image (row-major, 3 bytes per pixel, no padding).
#[derive(Clone, Copy, Debug)]
pub struct RgbView<'a> {
    width: u32,
    height: u32,
    data: &'a [u8],
}

impl<'a> RgbView<'a> {
    /// Wraps a packed RGB8 buffer; fails when the buffer length is not `w · h · 3` or the
    /// image is empty.
    pub fn new(width: u32, height: u32, data: &'a [u8]) -> Result<Self, PreprocessError> {
        if width == 0 || height == 0 {
            return Err(PreprocessError::EmptyImage);
        }
        let need = width as usize * height as usize * 3;
        if data.len() != need {
            return Err(PreprocessError::BufferSize {
                expected: need,
                actual: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The packed bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// Why an image or configuration cannot be preprocessed.
#[derive(Clone, Debug, PartialEq)]
pub enum PreprocessError {
    /// The image has no pixels.
    EmptyImage,
    /// The RGB buffer length does not match the dimensions.
    BufferSize {
        /// `w · h · 3`.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// The output slice has the wrong length.
    OutputSize {
        /// [`PreprocessConfig::tensor_len`].
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A preprocessing algorithm version this build does not implement.
    Version(u32),
    /// Input size zero or absurdly large.
    InputSize(u32),
    /// Crop fraction outside `(0, 1]`.
    CropFraction,
    /// A non-finite mean or a non-positive std.
    Normalisation,
}

impl core::fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::EmptyImage => write!(f, "image has no pixels"),
            Self::BufferSize { expected, actual } => {
                write!(f, "RGB buffer has {actual} bytes, expected {expected}")
            }
            Self::OutputSize { expected, actual } => {
                write!(f, "output tensor has {actual} values, expected {expected}")
            }
            Self::Version(v) => write!(
                f,
                "preprocessing version {v} is not supported (this build implements {PREPROCESS_VERSION})"
            ),
            Self::InputSize(s) => write!(f, "input size {s} is out of range 1..=4096"),
            Self::CropFraction => write!(f, "crop fraction must be in (0, 1]"),
            Self::Normalisation => write!(f, "mean must be finite and std positive"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PreprocessError {}

#[cfg(feature = "image")]
impl<'a> RgbView<'a> {
    /// A view of an `image` RGB buffer.
    pub fn from_image(img: &'a image::RgbImage) -> Result<Self, PreprocessError> {
        Self::new(img.width(), img.height(), img.as_raw())
    }
}

/// Preprocesses an `image` RGB buffer: the one RgbImage → model tensor path of training,
/// evaluation, export and the edge.
#[cfg(feature = "image")]
pub fn preprocess_rgb(
    img: &image::RgbImage,
    cfg: &PreprocessConfig,
) -> Result<Vec<f32>, PreprocessError> {
    preprocess(&RgbView::from_image(img)?, cfg)
}

/// Preprocesses `img` into a new `NCHW` tensor of [`PreprocessConfig::tensor_len`] values.
pub fn preprocess(img: &RgbView<'_>, cfg: &PreprocessConfig) -> Result<Vec<f32>, PreprocessError> {
    let mut out = vec![0.0; cfg.tensor_len()];
    preprocess_into(img, cfg, &mut out)?;
    Ok(out)
}

/// Preprocesses `img` into `out` (length [`PreprocessConfig::tensor_len`]), without
/// allocating the output.
pub fn preprocess_into(
    img: &RgbView<'_>,
    cfg: &PreprocessConfig,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    cfg.validate()?;
    if out.len() != cfg.tensor_len() {
        return Err(PreprocessError::OutputSize {
            expected: cfg.tensor_len(),
            actual: out.len(),
        });
    }
    let s = cfg.input_size as usize;
    let (w, h) = (img.width as usize, img.height as usize);
    let side = (w.min(h) as f32) * cfg.crop_fraction;
    let x_taps = filter_taps(w, (w as f32 - side) * 0.5, side, s);
    let y_taps = filter_taps(h, (h as f32 - side) * 0.5, side, s);

    // Horizontal pass over the rows the vertical pass will read: h × s × 3.
    let row_lo = y_taps.iter().map(|t| t.start).min().unwrap_or(0);
    let row_hi = y_taps
        .iter()
        .map(|t| t.start + t.weights.len())
        .max()
        .unwrap_or(0);
    let mut horiz = vec![0.0f32; (row_hi - row_lo) * s * 3];
    for y in row_lo..row_hi {
        let src_row = &img.data[y * w * 3..(y + 1) * w * 3];
        let dst_row = &mut horiz[(y - row_lo) * s * 3..(y - row_lo + 1) * s * 3];
        for (ox, tap) in x_taps.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for (k, wt) in tap.weights.iter().enumerate() {
                let p = &src_row[(tap.start + k) * 3..(tap.start + k) * 3 + 3];
                acc[0] += *wt * p[0] as f32;
                acc[1] += *wt * p[1] as f32;
                acc[2] += *wt * p[2] as f32;
            }
            dst_row[ox * 3..ox * 3 + 3].copy_from_slice(&acc);
        }
    }

    // Vertical pass, then normalise into NCHW.
    let scale = [
        1.0 / (255.0 * cfg.std[0]),
        1.0 / (255.0 * cfg.std[1]),
        1.0 / (255.0 * cfg.std[2]),
    ];
    let shift = [
        cfg.mean[0] / cfg.std[0],
        cfg.mean[1] / cfg.std[1],
        cfg.mean[2] / cfg.std[2],
    ];
    let plane = s * s;
    for (oy, tap) in y_taps.iter().enumerate() {
        for ox in 0..s {
            let mut acc = [0.0f32; 3];
            for (k, wt) in tap.weights.iter().enumerate() {
                let i = ((tap.start + k - row_lo) * s + ox) * 3;
                acc[0] += *wt * horiz[i];
                acc[1] += *wt * horiz[i + 1];
                acc[2] += *wt * horiz[i + 2];
            }
            for c in 0..3 {
                out[c * plane + oy * s + ox] = acc[c] * scale[c] - shift[c];
            }
        }
    }
    Ok(())
}

/// The source pixels and weights that make one output pixel along one axis.
struct Taps {
    start: usize,
    weights: Vec<f32>,
}

/// Triangle-filter taps mapping the source span `[offset, offset + span)` of an axis of
/// `len` pixels onto `out` output pixels. Weights of each tap sum to 1.
fn filter_taps(len: usize, offset: f32, span: f32, out: usize) -> Vec<Taps> {
    let ratio = span / out as f32;
    let support = if ratio > 1.0 { ratio } else { 1.0 };
    (0..out)
        .map(|o| {
            let centre = offset + (o as f32 + 0.5) * ratio;
            let lo = floor(centre - support).max(0.0) as usize;
            let hi = (ceil(centre + support) as usize).min(len);
            let mut weights: Vec<f32> = (lo..hi)
                .map(|i| {
                    let d = abs((i as f32 + 0.5 - centre) / support);
                    if d < 1.0 { 1.0 - d } else { 0.0 }
                })
                .collect();
            let total: f32 = weights.iter().sum();
            if total > 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
                // Zero-weight taps at either end add +0.0 to a non-negative sum: dropping
                // them gives the same value and, at 1:1 scale, one tap instead of three.
                let first = weights.iter().position(|w| *w != 0.0).unwrap_or(0);
                let last = weights.iter().rposition(|w| *w != 0.0).unwrap_or(0);
                weights.truncate(last + 1);
                weights.drain(..first.min(last));
                Taps {
                    start: lo + first.min(last),
                    weights,
                }
            } else {
                // Degenerate span narrower than a pixel at the border: nearest pixel.
                let nearest = (floor(centre).max(0.0) as usize).min(len - 1);
                Taps {
                    start: nearest,
                    weights: vec![1.0],
                }
            }
        })
        .collect()
}

fn floor(x: f32) -> f32 {
    let t = x as i64 as f32;
    if t > x { t - 1.0 } else { t }
}

fn ceil(x: f32) -> f32 {
    let t = x as i64 as f32;
    if t < x { t + 1.0 } else { t }
}

fn abs(x: f32) -> f32 {
    if x < 0.0 { -x } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_cfg(size: u32) -> PreprocessConfig {
        // mean 0, std 1: outputs are pixel values / 255.
        PreprocessConfig {
            mean: [0.0; 3],
            std: [1.0; 3],
            ..PreprocessConfig::signed_unit(size)
        }
    }

    /// Deterministic pseudo-random RGB bytes (xorshift), the golden input.
    fn golden_image(w: u32, h: u32, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..w * h * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    fn fnv1a_bits(v: &[f32]) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for f in v {
            for b in f.to_bits().to_le_bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
        }
        h
    }

    #[test]
    fn constant_image_maps_to_normalised_constant() {
        let img = [200u8, 100, 0].repeat(31 * 17);
        let cfg = PreprocessConfig::imagenet(8);
        let t = preprocess(&RgbView::new(31, 17, &img).unwrap(), &cfg).unwrap();
        for (c, v) in [200.0f32, 100.0, 0.0].iter().enumerate() {
            let want = (v / 255.0 - cfg.mean[c]) / cfg.std[c];
            for x in &t[c * 64..(c + 1) * 64] {
                assert!((x - want).abs() < 1e-5, "channel {c}: {x} vs {want}");
            }
        }
    }

    #[test]
    fn same_size_is_identity() {
        let img = golden_image(6, 6, 7);
        let t = preprocess(&RgbView::new(6, 6, &img).unwrap(), &unit_cfg(6)).unwrap();
        for y in 0..6 {
            for x in 0..6 {
                for c in 0..3 {
                    let want = img[(y * 6 + x) * 3 + c] as f32 / 255.0;
                    assert!((t[c * 36 + y * 6 + x] - want).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    fn same_size_reads_one_tap_per_pixel_exactly() {
        // zero-weight taps are dropped, so a 1:1 axis is one tap of weight 1 per pixel …
        for (o, t) in filter_taps(40, 0.0, 40.0, 40).iter().enumerate() {
            assert_eq!((t.start, t.weights.as_slice()), (o, &[1.0f32][..]));
        }
        // … and the tensor is the normalisation of the pixels, bit for bit
        let img = golden_image(40, 40, 3);
        let cfg = PreprocessConfig::signed_unit(40);
        let t = preprocess(&RgbView::new(40, 40, &img).unwrap(), &cfg).unwrap();
        for (i, p) in img.chunks_exact(3).enumerate() {
            for c in 0..3 {
                let want = p[c] as f32 * (1.0 / (255.0 * cfg.std[c])) - cfg.mean[c] / cfg.std[c];
                assert_eq!(
                    t[c * 1600 + i].to_bits(),
                    want.to_bits(),
                    "pixel {i} channel {c}"
                );
            }
        }
    }

    #[test]
    fn two_by_two_to_one_is_the_mean() {
        let img = [0u8, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255];
        let t = preprocess(&RgbView::new(2, 2, &img).unwrap(), &unit_cfg(1)).unwrap();
        assert_eq!(t, vec![0.5, 0.5, 0.25]);
    }

    #[test]
    fn centre_square_of_a_landscape_image() {
        // 4×2: left column red, two middle columns green, right column blue → the centred
        // 2×2 square is all green.
        let mut img = Vec::new();
        for _ in 0..2 {
            img.extend_from_slice(&[255, 0, 0, 0, 255, 0, 0, 255, 0, 0, 0, 255]);
        }
        let t = preprocess(&RgbView::new(4, 2, &img).unwrap(), &unit_cfg(2)).unwrap();
        assert_eq!(&t[0..4], &[0.0; 4]);
        assert_eq!(&t[4..8], &[1.0; 4]);
        assert_eq!(&t[8..12], &[0.0; 4]);
    }

    #[test]
    fn layout_is_nchw() {
        // Left half red, right half blue, 4×4 → 2×2.
        let mut img = Vec::new();
        for _ in 0..4 {
            for x in 0..4 {
                img.extend_from_slice(if x < 2 { &[255, 0, 0] } else { &[0, 0, 255] });
            }
        }
        let t = preprocess(&RgbView::new(4, 4, &img).unwrap(), &unit_cfg(2)).unwrap();
        // Downscaling by 2 widens the triangle to radius 2 source pixels: output x=0
        // (centre 1.0) weighs pixels 0, 1, 2 by 0.75, 0.75, 0.25 → red 1.5 / 1.75 = 6/7.
        let close = |a: &[f32], b: [f32; 4]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(
            close(&t[0..4], [6.0 / 7.0, 1.0 / 7.0, 6.0 / 7.0, 1.0 / 7.0]),
            "R {:?}",
            &t[0..4]
        );
        assert!(close(&t[4..8], [0.0; 4]), "G");
        assert!(
            close(&t[8..12], [1.0 / 7.0, 6.0 / 7.0, 1.0 / 7.0, 6.0 / 7.0]),
            "B"
        );
    }

    /// Golden vector: pins the exact output bits of the contract. If this fails, host and
    /// edge built from different commits would disagree: bump PREPROCESS_VERSION.
    #[test]
    fn golden_vector_is_pinned() {
        let img = golden_image(37, 23, 12345);
        let cfg = PreprocessConfig::signed_unit(8);
        let t = preprocess(&RgbView::new(37, 23, &img).unwrap(), &cfg).unwrap();
        assert_eq!(t.len(), 192);
        let pinned_first = GOLDEN_FIRST;
        assert_eq!(&t[..4], &pinned_first, "first values changed");
        assert_eq!(
            fnv1a_bits(&t),
            GOLDEN_HASH,
            "output bits changed: {:#x}",
            fnv1a_bits(&t)
        );
    }
    const GOLDEN_FIRST: [f32; 4] = [0.057616115, -0.07332748, 0.03059709, 0.010897636];
    const GOLDEN_HASH: u64 = 0xd91f4c59f4016647;

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            RgbView::new(0, 3, &[]).unwrap_err(),
            PreprocessError::EmptyImage
        );
        assert!(matches!(
            RgbView::new(2, 2, &[0; 11]),
            Err(PreprocessError::BufferSize {
                expected: 12,
                actual: 11
            })
        ));
        let img = [0u8; 12];
        let v = RgbView::new(2, 2, &img).unwrap();
        let mut cfg = unit_cfg(2);
        cfg.version = 99;
        assert_eq!(
            preprocess(&v, &cfg).unwrap_err(),
            PreprocessError::Version(99)
        );
        let mut cfg = unit_cfg(2);
        cfg.std[1] = 0.0;
        assert_eq!(
            preprocess(&v, &cfg).unwrap_err(),
            PreprocessError::Normalisation
        );
        let mut out = [0.0; 5];
        assert!(matches!(
            preprocess_into(&v, &unit_cfg(2), &mut out),
            Err(PreprocessError::OutputSize { .. })
        ));
    }
}

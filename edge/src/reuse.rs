//! Skipping the models while the sleeve under the camera stays the same: a kiosk sees the
//! same cover for seconds, and re-running the classifier and detector on near-identical
//! frames only costs CPU (and heat, on a Pi).
//!
//! The rectified sleeve is reduced to a small grey thumbnail; when it differs from the
//! thumbnail of the last *analysed* sleeve by at most [`ReuseConfig::max_diff`] grey
//! levels on average, that analysis is reused. Comparing against the last analysed view
//! (not the previous frame) keeps slow drift from accumulating, and
//! [`ReuseConfig::max_frames`] bounds how long one analysis may stand in.

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};

/// Side of the comparison thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 16;

/// When an earlier analysis may stand in for a new frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReuseConfig {
    /// Largest mean absolute difference, in grey levels (0–255), between the thumbnails
    /// of the analysed and the new rectified sleeve.
    pub max_diff: f32,
    /// Frames one analysis may be reused for before the models run again.
    pub max_frames: u32,
}

impl Default for ReuseConfig {
    fn default() -> Self {
        Self {
            max_diff: 3.0,
            max_frames: 30,
        }
    }
}

/// The comparison thumbnail of a rectified sleeve.
pub fn thumbnail(rectified: &RgbImage) -> GrayImage {
    let grey = imageops::grayscale(rectified);
    imageops::resize(&grey, THUMB_SIDE, THUMB_SIDE, FilterType::Triangle)
}

/// Mean absolute difference of two thumbnails in grey levels (255 when sizes differ).
pub fn mean_abs_diff(a: &GrayImage, b: &GrayImage) -> f32 {
    if a.dimensions() != b.dimensions() || a.is_empty() {
        return 255.0;
    }
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f32 / a.as_raw().len() as f32
}

/// The last analysed view and how often it has been reused.
#[derive(Clone, Debug)]
pub struct Reuse<T> {
    cfg: ReuseConfig,
    last: Option<(GrayImage, T, u32)>,
}

impl<T: Clone> Reuse<T> {
    /// Nothing analysed yet.
    pub fn new(cfg: ReuseConfig) -> Self {
        Self { cfg, last: None }
    }

    /// The earlier result when `thumb` shows the same view and it may still be reused.
    pub fn lookup(&mut self, thumb: &GrayImage) -> Option<T> {
        let (seen, value, uses) = self.last.as_mut()?;
        if *uses >= self.cfg.max_frames || mean_abs_diff(seen, thumb) > self.cfg.max_diff {
            return None;
        }
        *uses += 1;
        Some(value.clone())
    }

    /// Records a fresh result for `thumb`.
    pub fn store(&mut self, thumb: GrayImage, value: T) {
        self.last = Some((thumb, value, 0));
    }

    /// Forgets the last view (the sleeve left).
    pub fn clear(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cover(shift: u8) -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8 ^ shift, (y * 4) as u8, ((x + y) * 2) as u8])
        })
    }

    #[test]
    fn same_view_is_reused_until_the_limit() {
        let mut r = Reuse::new(ReuseConfig {
            max_diff: 3.0,
            max_frames: 2,
        });
        let t = thumbnail(&cover(0));
        assert_eq!(t.dimensions(), (THUMB_SIDE, THUMB_SIDE));
        assert_eq!(r.lookup(&t), None, "nothing stored yet");
        r.store(t.clone(), 7);
        // A little sensor noise: still the same view.
        let mut noisy = cover(0);
        for (i, p) in noisy.pixels_mut().enumerate() {
            p.0[0] = p.0[0].saturating_add((i % 3) as u8);
        }
        let n = thumbnail(&noisy);
        assert!(mean_abs_diff(&t, &n) <= 1.0);
        assert_eq!(r.lookup(&n), Some(7));
        assert_eq!(r.lookup(&t), Some(7));
        assert_eq!(r.lookup(&t), None, "max_frames reached: analyse again");
        r.store(t.clone(), 8);
        assert_eq!(r.lookup(&t), Some(8));
        r.clear();
        assert_eq!(r.lookup(&t), None, "cleared when the sleeve leaves");
    }

    #[test]
    fn another_cover_is_analysed() {
        let mut r = Reuse::new(ReuseConfig::default());
        r.store(thumbnail(&cover(0)), 1);
        let other = thumbnail(&cover(0xA5));
        assert!(mean_abs_diff(&thumbnail(&cover(0)), &other) > 3.0);
        assert_eq!(r.lookup(&other), None);
        assert_eq!(mean_abs_diff(&other, &GrayImage::new(4, 4)), 255.0);
    }
}

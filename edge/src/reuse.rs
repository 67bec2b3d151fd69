//! Skipping the models while the sleeve under the camera stays the same: a kiosk sees the
//! same cover for seconds, and re-running the classifier and detector on near-identical
//! frames only costs CPU (and heat, on a Pi).
//!
//! The rectified sleeve is reduced to a small grey thumbnail; when it differs from the
//! thumbnail of the last *analysed* sleeve by at most [`ReuseConfig::max_diff`] grey
//! levels on average, that analysis is reused. Comparing against the last analysed view
//! (not the previous frame) keeps slow drift from accumulating, and
//! [`ReuseConfig::max_frames`] bounds how long one analysis may stand in.

use image::imageops;
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
    /// Views of one hold that are analysed and averaged before reuse starts (1: reuse the
    /// first frame's answer). The slightly different frames of a held sleeve act as free
    /// test-time augmentation.
    pub hold_views: u32,
}

impl Default for ReuseConfig {
    fn default() -> Self {
        Self {
            max_diff: 3.0,
            max_frames: 30,
            hold_views: 4,
        }
    }
}

/// The comparison thumbnail of a rectified sleeve.
pub fn thumbnail(rectified: &RgbImage) -> GrayImage {
    let grey = imageops::grayscale(rectified);
    crate::resize::triangle(&grey, THUMB_SIDE, THUMB_SIDE)
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

/// What to do with a new frame's sleeve.
#[derive(Clone, Debug, PartialEq)]
pub enum Step<T> {
    /// Another sleeve (or nothing stored): run the models, then [`Reuse::store`].
    Analyse,
    /// The same sleeve, and the hold takes another view: run the models, merge the result
    /// into this value (the hold's result over `views` analysed views), then
    /// [`Reuse::add_view`].
    AddView(T, u32),
    /// The same sleeve: use this result.
    Reuse(T),
}

/// The hold's result so far, the thumbnail of its first view, and how often it was reused.
#[derive(Clone, Debug)]
struct Held<T> {
    thumb: GrayImage,
    value: T,
    uses: u32,
    views: u32,
}

/// The last analysed view and how often it has been reused.
#[derive(Clone, Debug)]
pub struct Reuse<T> {
    cfg: ReuseConfig,
    last: Option<Held<T>>,
}

impl<T: Clone> Reuse<T> {
    /// Nothing analysed yet.
    pub fn new(cfg: ReuseConfig) -> Self {
        Self { cfg, last: None }
    }

    /// Whether `thumb` shows the stored sleeve, and what to do about it: reuse, analyse
    /// another view of the hold (too few views yet, or reused [`ReuseConfig::max_frames`]
    /// times), or analyse a new sleeve.
    pub fn step(&mut self, thumb: &GrayImage) -> Step<T> {
        let Some(h) = self.last.as_mut() else {
            return Step::Analyse;
        };
        if mean_abs_diff(&h.thumb, thumb) > self.cfg.max_diff {
            return Step::Analyse;
        }
        if h.views < self.cfg.hold_views.max(1) || h.uses >= self.cfg.max_frames {
            return Step::AddView(h.value.clone(), h.views);
        }
        h.uses += 1;
        Step::Reuse(h.value.clone())
    }

    /// Records a fresh result for a new sleeve seen as `thumb`.
    pub fn store(&mut self, thumb: GrayImage, value: T) {
        self.last = Some(Held {
            thumb,
            value,
            uses: 0,
            views: 1,
        });
    }

    /// Replaces the hold's result with one that merges another analysed view.
    pub fn add_view(&mut self, value: T) {
        if let Some(h) = self.last.as_mut() {
            h.value = value;
            h.views += 1;
            h.uses = 0;
        }
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
            hold_views: 1,
        });
        let t = thumbnail(&cover(0));
        assert_eq!(t.dimensions(), (THUMB_SIDE, THUMB_SIDE));
        assert_eq!(r.step(&t), Step::Analyse, "nothing stored yet");
        r.store(t.clone(), 7);
        // A little sensor noise: still the same view.
        let mut noisy = cover(0);
        for (i, p) in noisy.pixels_mut().enumerate() {
            p.0[0] = p.0[0].saturating_add((i % 3) as u8);
        }
        let n = thumbnail(&noisy);
        assert!(mean_abs_diff(&t, &n) <= 1.0);
        assert_eq!(r.step(&n), Step::Reuse(7));
        assert_eq!(r.step(&t), Step::Reuse(7));
        assert_eq!(
            r.step(&t),
            Step::AddView(7, 1),
            "max_frames reached: analyse again"
        );
        r.add_view(8);
        assert_eq!(r.step(&t), Step::Reuse(8));
        r.clear();
        assert_eq!(r.step(&t), Step::Analyse, "cleared when the sleeve leaves");
    }

    #[test]
    fn a_hold_takes_several_views_before_reuse() {
        let mut r = Reuse::new(ReuseConfig {
            hold_views: 3,
            ..ReuseConfig::default()
        });
        let t = thumbnail(&cover(0));
        r.store(t.clone(), 10);
        assert_eq!(r.step(&t), Step::AddView(10, 1));
        r.add_view(11);
        assert_eq!(r.step(&t), Step::AddView(11, 2));
        r.add_view(12);
        assert_eq!(r.step(&t), Step::Reuse(12));
        // another sleeve starts a new hold
        assert_eq!(r.step(&thumbnail(&cover(0xA5))), Step::Analyse);
    }

    #[test]
    fn another_cover_is_analysed() {
        let mut r = Reuse::new(ReuseConfig::default());
        r.store(thumbnail(&cover(0)), 1);
        let other = thumbnail(&cover(0xA5));
        assert!(mean_abs_diff(&thumbnail(&cover(0)), &other) > 3.0);
        assert_eq!(r.step(&other), Step::Analyse);
        assert_eq!(mean_abs_diff(&other, &GrayImage::new(4, 4)), 255.0);
    }
}

//! Test-time views of one still image (`sleeve-edge classify --views K`): the plain image,
//! then crops that a hand-held camera would plausibly frame (slightly zoomed in, shifted
//! towards each corner). No mirror images: the kiosk never sees a mirrored cover.

use image::RgbImage;
use image::imageops;

use crate::engine::{Analysis, Engine};
use crate::error::Result;

/// Most views `--views` accepts.
pub const MAX_VIEWS: u32 = 8;

/// `(side fraction, x anchor, y anchor)` of the crops after the plain view; anchors are
/// where the crop sits in the free margin (0 = left/top, 0.5 = centre, 1 = right/bottom).
const CROPS: [(f32, f32, f32); 7] = [
    (0.9, 0.5, 0.5),
    (0.9, 0.0, 0.0),
    (0.9, 1.0, 0.0),
    (0.9, 0.0, 1.0),
    (0.9, 1.0, 1.0),
    (0.8, 0.5, 0.5),
    (0.85, 0.5, 1.0),
];

/// View `k` of `img`: 0 is the image itself, `1..MAX_VIEWS` the crops above.
pub fn view(img: &RgbImage, k: u32) -> RgbImage {
    let Some(&(f, ax, ay)) = k.checked_sub(1).and_then(|i| CROPS.get(i as usize)) else {
        return img.clone();
    };
    let (w, h) = img.dimensions();
    let (cw, ch) = (
        ((w as f32 * f).round() as u32).clamp(1, w),
        ((h as f32 * f).round() as u32).clamp(1, h),
    );
    let x = ((w - cw) as f32 * ax).round() as u32;
    let y = ((h - ch) as f32 * ay).round() as u32;
    imageops::crop_imm(img, x, y, cw, ch).to_image()
}

/// The engine's answer averaged over the first `views` views of `img` (probabilities and
/// PA score averaged; boxes of the last view).
pub fn analyze_views(engine: &Engine, img: &RgbImage, views: u32) -> Result<Analysis> {
    let mut acc = engine.analyze(img)?;
    for k in 1..views.clamp(1, MAX_VIEWS) {
        acc = acc.merge_view(engine.analyze(&view(img, k))?, k);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_crops_inside_the_image() {
        let img = RgbImage::from_fn(100, 80, |x, y| image::Rgb([x as u8, y as u8, 0]));
        assert_eq!(view(&img, 0), img);
        assert_eq!(view(&img, 99), img, "past the list: the plain image");
        let tl = view(&img, 2);
        assert_eq!(tl.dimensions(), (90, 72));
        assert_eq!(tl.get_pixel(0, 0).0, [0, 0, 0]);
        let br = view(&img, 5);
        assert_eq!(br.get_pixel(89, 71).0, [99, 79, 0]);
        let c = view(&img, 6);
        assert_eq!(c.dimensions(), (80, 64));
        assert_eq!(c.get_pixel(0, 0).0, [10, 8, 0]);
    }
}

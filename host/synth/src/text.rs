//! Text drawn with `embedded-graphics` bitmap fonts and stretched to any box: the
//! generators need tall condensed lettering (labels), big titles and tiny credits.

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::{Gray8, GrayColor};
use embedded_graphics::prelude::{Drawable, Point};
use embedded_graphics::text::{Baseline, Text};
use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};

use crate::canvas::{GrayCanvas, stamp_mask};

pub use embedded_graphics::mono_font::ascii::{
    FONT_6X10, FONT_6X13_BOLD, FONT_7X13_BOLD, FONT_8X13_BOLD, FONT_9X15_BOLD, FONT_9X18_BOLD,
    FONT_10X20,
};

/// Renders `text` at the font's native size as a mask (255 = ink), cropped to the ink.
/// `spacing` is the gap between characters in font pixels. Returns `None` when the text
/// has no ink (empty or blanks only).
pub fn text_mask(text: &str, font: &MonoFont<'_>, spacing: u32) -> Option<GrayImage> {
    let n = text.chars().count() as u32;
    if n == 0 {
        return None;
    }
    let mut f = *font;
    f.character_spacing = spacing;
    let cw = f.character_size.width;
    let ch = f.character_size.height;
    let w = n * cw + (n - 1) * spacing;
    let mut mask = GrayImage::new(w, ch);
    let style = MonoTextStyle::new(&f, Gray8::WHITE);
    // Drawing into an in-memory canvas cannot fail (its error type is Infallible).
    let _ = Text::with_baseline(text, Point::zero(), style, Baseline::Top)
        .draw(&mut GrayCanvas(&mut mask));
    crop_to_ink(&mask)
}

/// The smallest sub-image holding every non-zero pixel, or `None` if all are zero.
pub fn crop_to_ink(mask: &GrayImage) -> Option<GrayImage> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[0] > 0 {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    if x0 == u32::MAX {
        return None;
    }
    Some(imageops::crop_imm(mask, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image())
}

/// Stretches a mask to `w × h`, smoothing the bitmap font's stair steps: bilinear
/// scaling, then a contrast curve that keeps edges crisp but anti-aliased.
pub fn fit_mask(mask: &GrayImage, w: u32, h: u32) -> GrayImage {
    let (w, h) = (w.max(1), h.max(1));
    let mut out = imageops::resize(mask, w, h, FilterType::Triangle);
    // Only sharpen when enlarging; shrinking relies on the filter's anti-aliasing.
    if w > mask.width() && h > mask.height() {
        for p in out.pixels_mut() {
            let v = (p.0[0] as f32 - 128.0) * 3.0 + 128.0;
            p.0[0] = v.clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Draws `text` stretched to exactly fill the box `(x, y, w, h)` of `img` in `color`.
#[allow(clippy::too_many_arguments)]
pub fn draw_text_fit(
    img: &mut RgbImage,
    text: &str,
    font: &MonoFont<'_>,
    spacing: u32,
    (x, y, w, h): (i64, i64, u32, u32),
    color: [u8; 3],
    opacity: f32,
) {
    if let Some(mask) = text_mask(text, font, spacing) {
        let fitted = fit_mask(&mask, w, h);
        stamp_mask(img, &fitted, x, y, color, opacity);
    }
}

/// Width a line of `text` gets when its cap height is `h` and glyphs keep the font's
/// aspect ratio times `stretch` (1 = natural, < 1 condensed).
pub fn natural_width(text: &str, font: &MonoFont<'_>, spacing: u32, h: u32, stretch: f32) -> u32 {
    match text_mask(text, font, spacing) {
        Some(m) => ((m.width() as f32 / m.height() as f32) * h as f32 * stretch).round() as u32,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_has_ink_and_fits() {
        let m = text_mask("AB", &FONT_9X18_BOLD, 2).unwrap();
        assert!(m.width() > m.height() / 2);
        let f = fit_mask(&m, 40, 30);
        assert_eq!(f.dimensions(), (40, 30));
        assert!(f.pixels().any(|p| p.0[0] == 255));
        assert!(f.pixels().any(|p| p.0[0] == 0));
        assert!(text_mask("   ", &FONT_9X18_BOLD, 0).is_none());
    }
}

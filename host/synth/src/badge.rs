//! The Parental-Advisory-style badge artwork, drawn with our own code: a black box with
//! a white "PARENTAL" line on top, a white band carrying a big black "ADVISORY", and a
//! white "EXPLICIT CONTENT" line at the bottom, about 1.6:1 wide. A template image can
//! replace it (`--template`).

use std::path::Path;
use std::sync::Arc;

use embedded_graphics::Drawable;
use embedded_graphics::pixelcolor::{Gray8, GrayColor};
use embedded_graphics::prelude::{Point, Primitive, Size};
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use image::{GrayImage, Luma};

use crate::canvas::GrayCanvas;
use crate::error::SynthError;
use crate::text::{FONT_9X18_BOLD, fit_mask, text_mask};

/// Width / height of the badge.
pub const BADGE_ASPECT: f32 = 1.6;

/// Where the black and white bands split, as fractions of the height (measured from the
/// real label's proportions: top black 28 %, white 41 %, bottom black 31 %).
pub(crate) const TOP_BAND_END: f32 = 0.28;
pub(crate) const MIDDLE_BAND_END: f32 = 0.69;

/// Draws the badge `width` pixels wide (height `width / 1.6`): 0 = black ink, 255 = white.
pub fn draw_badge(width: u32) -> GrayImage {
    draw_badge_with(width, "EXPLICIT CONTENT")
}

/// The three-band badge with `bottom` on its bottom band (EXPLICIT CONTENT / LYRICS).
pub fn draw_badge_with(width: u32, bottom: &str) -> GrayImage {
    let w = width.max(16);
    let h = ((w as f32 / BADGE_ASPECT).round() as u32).max(10);
    let mut img = GrayImage::from_pixel(w, h, Luma([0]));
    let y_mid0 = (h as f32 * TOP_BAND_END).round() as i32;
    let y_mid1 = (h as f32 * MIDDLE_BAND_END).round() as i32;
    let _ = Rectangle::new(
        Point::new(0, y_mid0),
        Size::new(w, (y_mid1 - y_mid0) as u32),
    )
    .into_styled(PrimitiveStyle::with_fill(Gray8::WHITE))
    .draw(&mut GrayCanvas(&mut img));
    stamp_text(&mut img, "PARENTAL", 11, (0, y_mid0), (0.86, 0.58), 255);
    stamp_text(&mut img, "ADVISORY", 2, (y_mid0, y_mid1), (0.92, 0.80), 0);
    stamp_text(&mut img, bottom, 3, (y_mid1, h as i32), (0.88, 0.60), 255);
    img
}

/// Letters `text` (bold font, `spacing` font pixels apart) centred in the horizontal band
/// `top..bottom` of `img`, `fit.0` of the width wide and `fit.1` of the band high, in grey
/// level `ink`.
pub(crate) fn stamp_text(
    img: &mut GrayImage,
    text: &str,
    spacing: u32,
    (top, bottom): (i32, i32),
    fit: (f32, f32),
    ink: u8,
) {
    let Some(mask) = text_mask(text, &FONT_9X18_BOLD, spacing) else {
        return;
    };
    let (w, h) = img.dimensions();
    let band = (bottom - top) as f32;
    let tw = (w as f32 * fit.0).round() as u32;
    let th = (band * fit.1).round() as u32;
    let fitted = fit_mask(&mask, tw, th);
    let x0 = ((w as f32 - tw as f32) / 2.0).round() as i64;
    let y0 = (top as f32 + (band - th as f32) / 2.0).round() as i64;
    for (mx, my, m) in fitted.enumerate_pixels() {
        let (x, y) = (x0 + mx as i64, y0 + my as i64);
        if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
            let p = img.get_pixel_mut(x as u32, y as u32);
            let a = m.0[0] as f32 / 255.0;
            p.0[0] = (p.0[0] as f32 * (1.0 - a) + ink as f32 * a).round() as u8;
        }
    }
}

/// Loads a badge template (any format `image` reads) as grey levels.
pub fn load_template(path: &Path) -> Result<Arc<GrayImage>, SynthError> {
    let bytes = std::fs::read(path).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let img = sleeve_shared::imageio::decode(&bytes).map_err(|e| SynthError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let g = img.to_luma8();
    if g.width() < 8 || g.height() < 4 {
        return Err(SynthError::BadTemplate {
            path: path.to_path_buf(),
            reason: format!("{}x{} is too small", g.width(), g.height()),
        });
    }
    Ok(Arc::new(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_has_bands_and_text() {
        let b = draw_badge(320);
        assert_eq!(b.dimensions(), (320, 200));
        let row_mean =
            |y: u32| (0..320).map(|x| b.get_pixel(x, y).0[0] as f32).sum::<f32>() / 320.0;
        // Top and bottom edges are black bands, the middle band is mostly white with ink.
        assert!(row_mean(1) < 20.0);
        assert!(row_mean(198) < 20.0);
        assert!(
            row_mean(60) > 230.0,
            "top of the white band is blank: {}",
            row_mean(60)
        );
        let mid = row_mean(97);
        assert!(
            mid > 60.0 && mid < 220.0,
            "ADVISORY row mixes ink and paper: {mid}"
        );
        // White lettering in the black top band.
        let top = row_mean(28);
        assert!(top > 30.0 && top < 200.0, "PARENTAL row: {top}");
    }
}

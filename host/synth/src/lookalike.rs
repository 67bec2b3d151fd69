//! Hard negatives: black/white boxes with text that resemble the Parental Advisory badge
//! at a glance (title strips, stickers, barcodes, logos, two-band banners) but are not it.
//! They are placed like labels, so position alone never gives a label away.

use embedded_graphics::Drawable;
use embedded_graphics::prelude::{Point, Primitive, Size};
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle, RoundedRectangle};
use image::{Rgba, RgbaImage};
use rand::Rng;
use rand::seq::IndexedRandom;

use crate::canvas::{RgbaCanvas, eg_rgb, stamp_mask_rgba};
use crate::rng::{log_uniform, uniform, weighted_index};
use crate::text::{FONT_6X13_BOLD, FONT_7X13_BOLD, FONT_9X18_BOLD, fit_mask, text_mask};
use crate::words;

/// The kinds of look-alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One line of text in a black or white strip.
    TextStrip,
    /// A badge-shaped box with two or three lines of text but no white middle band.
    BoxedText,
    /// A coloured price/promo sticker (rounded or round).
    Sticker,
    /// A barcode block.
    Barcode,
    /// A round or square record-label logo with initials.
    Logo,
    /// A box split into two bands (black/white), one word each.
    TwoBand,
}

const KINDS: [Kind; 6] = [
    Kind::TextStrip,
    Kind::BoxedText,
    Kind::Sticker,
    Kind::Barcode,
    Kind::Logo,
    Kind::TwoBand,
];
const KIND_WEIGHTS: [f32; 6] = [0.22, 0.22, 0.16, 0.12, 0.12, 0.16];

const BLACK: [u8; 3] = [12, 12, 12];
const WHITE: [u8; 3] = [245, 245, 242];

/// Draws a random look-alike whose width is `width_frac` of a cover `cover_w` pixels wide.
pub fn random_lookalike(
    rng: &mut impl Rng,
    cover_w: u32,
    width_frac: (f32, f32),
) -> (Kind, RgbaImage) {
    let kind = KINDS[weighted_index(rng, &KIND_WEIGHTS)];
    let w = (log_uniform(rng, width_frac.0, width_frac.1) * cover_w as f32)
        .round()
        .max(10.0) as u32;
    let aspect = match kind {
        Kind::TextStrip => uniform(rng, 2.6, 6.0),
        Kind::BoxedText => uniform(rng, 1.3, 2.0),
        Kind::Sticker => uniform(rng, 1.0, 2.4),
        Kind::Barcode => uniform(rng, 1.4, 2.0),
        Kind::Logo => 1.0,
        Kind::TwoBand => uniform(rng, 1.4, 2.2),
    };
    let h = ((w as f32 / aspect).round() as u32).max(6);
    (kind, draw(kind, rng, w, h))
}

fn draw(kind: Kind, rng: &mut impl Rng, w: u32, h: u32) -> RgbaImage {
    let dark = rng.random_bool(0.6);
    let (bg, fg) = if dark { (BLACK, WHITE) } else { (WHITE, BLACK) };
    let mut img = RgbaImage::new(w, h);
    let fonts = [FONT_6X13_BOLD, FONT_7X13_BOLD, FONT_9X18_BOLD];
    let font = *fonts.choose(rng).unwrap_or(&FONT_9X18_BOLD);
    match kind {
        Kind::TextStrip => {
            fill(&mut img, bg);
            let text = words::sticker(rng);
            text_line(&mut img, &text, &font, (0.06, 0.18, 0.88, 0.64), fg);
        }
        Kind::BoxedText => {
            fill(&mut img, bg);
            if rng.random_bool(0.5) {
                border(&mut img, fg, (w / 30).max(1));
            }
            let lines = rng.random_range(2..=3);
            let lh = 0.8 / lines as f32;
            for i in 0..lines {
                let t = if i == 0 {
                    words::word(rng)
                } else {
                    words::sticker(rng)
                };
                text_line(
                    &mut img,
                    &t,
                    &font,
                    (0.08, 0.1 + i as f32 * lh + lh * 0.12, 0.84, lh * 0.76),
                    fg,
                );
            }
        }
        Kind::Sticker => {
            let colours = [
                [250, 220, 40],
                [230, 40, 40],
                [250, 140, 20],
                WHITE,
                [60, 200, 90],
            ];
            let c = *colours.choose(rng).unwrap_or(&WHITE);
            let round = rng.random_bool(0.4);
            if round {
                let d = w.min(h);
                let _ = Circle::new(Point::new(((w - d) / 2) as i32, ((h - d) / 2) as i32), d)
                    .into_styled(PrimitiveStyle::with_fill(eg_rgb(c)))
                    .draw(&mut RgbaCanvas(&mut img));
            } else {
                let r = (h / 4).max(1);
                let _ = RoundedRectangle::with_equal_corners(
                    Rectangle::new(Point::zero(), Size::new(w, h)),
                    Size::new(r, r),
                )
                .into_styled(PrimitiveStyle::with_fill(eg_rgb(c)))
                .draw(&mut RgbaCanvas(&mut img));
            }
            let ink = if c == WHITE || c[1] > 180 {
                BLACK
            } else {
                WHITE
            };
            let text = words::sticker(rng);
            let inset = if round { 0.2 } else { 0.1 };
            text_line(
                &mut img,
                &text,
                &font,
                (inset, 0.3, 1.0 - 2.0 * inset, 0.4),
                ink,
            );
        }
        Kind::Barcode => {
            fill(&mut img, WHITE);
            let bars_h = (h as f32 * 0.7) as u32;
            let mut x = (w / 12).max(1);
            while x < w - (w / 12).max(1) {
                let bw = rng.random_range(1..=(w / 40).max(2));
                if rng.random_bool(0.55) {
                    for xx in x..(x + bw).min(w) {
                        for y in (h / 10)..bars_h {
                            img.put_pixel(xx, y, Rgba([BLACK[0], BLACK[1], BLACK[2], 255]));
                        }
                    }
                }
                x += bw;
            }
            let digits: String = (0..12)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            text_line(
                &mut img,
                &digits,
                &FONT_6X13_BOLD,
                (0.08, 0.76, 0.84, 0.18),
                BLACK,
            );
        }
        Kind::Logo => {
            let round = rng.random_bool(0.5);
            if round {
                let _ = Circle::new(Point::zero(), w)
                    .into_styled(PrimitiveStyle::with_fill(eg_rgb(bg)))
                    .draw(&mut RgbaCanvas(&mut img));
            } else {
                fill(&mut img, bg);
            }
            let n = rng.random_range(1..=3);
            let initials: String = (0..n)
                .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
                .collect();
            text_line(&mut img, &initials, &font, (0.22, 0.3, 0.56, 0.4), fg);
        }
        Kind::TwoBand => {
            fill(&mut img, bg);
            let split = (h as f32 * uniform(rng, 0.4, 0.6)) as u32;
            for y in split..h {
                for x in 0..w {
                    img.put_pixel(x, y, Rgba([fg[0], fg[1], fg[2], 255]));
                }
            }
            let s = split as f32 / h as f32;
            let a = words::word(rng);
            let b = words::sticker(rng);
            text_line(&mut img, &a, &font, (0.1, s * 0.2, 0.8, s * 0.6), fg);
            text_line(
                &mut img,
                &b,
                &font,
                (0.06, s + (1.0 - s) * 0.2, 0.88, (1.0 - s) * 0.6),
                bg,
            );
        }
    }
    img
}

fn fill(img: &mut RgbaImage, c: [u8; 3]) {
    for p in img.pixels_mut() {
        *p = Rgba([c[0], c[1], c[2], 255]);
    }
}

fn border(img: &mut RgbaImage, c: [u8; 3], t: u32) {
    let (w, h) = img.dimensions();
    for (x, y, p) in img.enumerate_pixels_mut() {
        if x < t || y < t || x + t >= w || y + t >= h {
            *p = Rgba([c[0], c[1], c[2], 255]);
        }
    }
}

/// Text stretched into the fractional box `(x, y, w, h)` of the patch.
fn text_line(
    img: &mut RgbaImage,
    text: &str,
    font: &embedded_graphics::mono_font::MonoFont<'_>,
    (fx, fy, fw, fh): (f32, f32, f32, f32),
    color: [u8; 3],
) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    if let Some(mask) = text_mask(text, font, 1) {
        let bw = (fw * w).round().max(1.0) as u32;
        let bh = (fh * h).round().max(1.0) as u32;
        // Keep glyphs from being squashed wider than ~1.6× their natural aspect.
        let natural = mask.width() as f32 / mask.height() as f32 * bh as f32;
        let tw = (bw as f32).min(natural * 1.6).max(1.0) as u32;
        let fitted = fit_mask(&mask, tw, bh);
        let x0 = (fx * w + (bw - tw) as f32 / 2.0).round() as i64;
        stamp_mask_rgba(img, &fitted, x0, (fy * h).round() as i64, color);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::rng_from;

    #[test]
    fn every_kind_draws_something() {
        let mut r = rng_from(3);
        for k in KINDS {
            let img = draw(k, &mut r, 60, 36);
            let opaque = img.pixels().filter(|p| p.0[3] == 255).count();
            assert!(opaque > 60 * 36 / 3, "{k:?} draws too little");
        }
    }
}

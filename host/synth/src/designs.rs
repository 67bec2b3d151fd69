//! The printed Parental Advisory designs found on real sleeves, drawn with our own code
//! (embedded-graphics fonts): the classic three-band box with "EXPLICIT CONTENT" or
//! "EXPLICIT LYRICS", the wide one-line bar, the older two-line sticker, and an outline-only
//! print whose strokes sit directly on the art. [`DesignMix`] says how often each is drawn.

use std::sync::OnceLock;

use embedded_graphics::Drawable;
use embedded_graphics::pixelcolor::Gray8;
use embedded_graphics::prelude::{Point, Primitive, Size};
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use image::imageops::{self, FilterType};
use image::{GrayImage, Luma};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::badge::{BADGE_ASPECT, draw_badge_with, stamp_text};
use crate::canvas::GrayCanvas;
use crate::rng::weighted_index;

/// One printed label design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelDesign {
    /// Black box, white middle band: PARENTAL / ADVISORY / EXPLICIT CONTENT (or the
    /// `--template` image when one is given).
    Classic,
    /// The same box with EXPLICIT LYRICS on the bottom band.
    Lyrics,
    /// A wide black bar: PARENTAL ADVISORY EXPLICIT CONTENT on one white band.
    WideBar,
    /// The older sticker: a white box with a black frame, two lines PARENTAL ADVISORY /
    /// EXPLICIT LYRICS.
    TwoLine,
    /// Only the frame, the band edges and the lettering are printed; the art shows through.
    Outline,
}

impl LabelDesign {
    /// All designs, in a fixed order (the order of [`DesignMix::weights`]).
    pub const ALL: [LabelDesign; 5] = [
        LabelDesign::Classic,
        LabelDesign::Lyrics,
        LabelDesign::WideBar,
        LabelDesign::TwoLine,
        LabelDesign::Outline,
    ];

    /// snake_case name (as in the COCO extras and `--designs`).
    pub fn name(self) -> &'static str {
        match self {
            LabelDesign::Classic => "classic",
            LabelDesign::Lyrics => "lyrics",
            LabelDesign::WideBar => "wide_bar",
            LabelDesign::TwoLine => "two_line",
            LabelDesign::Outline => "outline",
        }
    }

    /// Width / height as designed (before the per-label stretch).
    pub fn aspect(self) -> f32 {
        match self {
            LabelDesign::Classic | LabelDesign::Lyrics | LabelDesign::Outline => BADGE_ASPECT,
            LabelDesign::WideBar => 5.0,
            LabelDesign::TwoLine => 2.4,
        }
    }

    /// Whether the design has a transparent background (only its strokes are printed).
    pub fn is_outline(self) -> bool {
        self == LabelDesign::Outline
    }
}

/// How often each design is drawn: one weight per [`LabelDesign::ALL`] entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DesignMix {
    /// Relative weights, same order as [`LabelDesign::ALL`].
    pub weights: [f32; 5],
}

impl Default for DesignMix {
    /// The mix of the real labels on covers5 (254 boxed, docs/detector.md): mostly the
    /// classic box, a fifth with EXPLICIT LYRICS; the rarer designs the issue lists get a
    /// small share each so the detector sees them.
    fn default() -> Self {
        Self {
            weights: [0.55, 0.20, 0.08, 0.09, 0.08],
        }
    }
}

impl DesignMix {
    /// Only the classic design (the generator before the design mix).
    pub fn classic_only() -> Self {
        Self {
            weights: [1.0, 0.0, 0.0, 0.0, 0.0],
        }
    }

    /// Parses `--designs`: `mix` (the default mix), `classic`, or one or more
    /// `name=weight` pairs separated by commas (e.g. `classic=3,wide_bar=1`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "mix" => return Ok(Self::default()),
            "classic" => return Ok(Self::classic_only()),
            _ => {}
        }
        let mut weights = [0.0f32; 5];
        for part in s.split(',') {
            let (name, w) = part.split_once('=').ok_or_else(|| {
                format!("`{part}`: expected `mix`, `classic` or name=weight pairs")
            })?;
            let name = name.trim();
            let i = LabelDesign::ALL
                .iter()
                .position(|d| d.name() == name)
                .ok_or_else(|| {
                    let names: Vec<_> = LabelDesign::ALL.iter().map(|d| d.name()).collect();
                    format!("unknown design `{name}` (one of {})", names.join(", "))
                })?;
            let w: f32 = w
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the weight is not a number"))?;
            if !(0.0..=1000.0).contains(&w) {
                return Err(format!("`{part}`: the weight must be in 0..=1000"));
            }
            weights[i] = w;
        }
        if weights.iter().sum::<f32>() <= 0.0 {
            return Err(format!(
                "`{s}`: at least one design needs a positive weight"
            ));
        }
        Ok(Self { weights })
    }

    /// Draws one design.
    pub fn sample(&self, rng: &mut impl Rng) -> LabelDesign {
        LabelDesign::ALL[weighted_index(rng, &self.weights)]
    }
}

/// A rendered design: grey levels (0 = ink, 255 = paper; the inverted variant flips them)
/// and, for [`LabelDesign::Outline`], where the print is (255 = printed, 0 = the art).
#[derive(Clone, Debug)]
pub struct LabelArt {
    /// Grey levels.
    pub grey: GrayImage,
    /// Coverage of the print; `None` = opaque everywhere.
    pub alpha: Option<GrayImage>,
}

/// Width of the cached master renderings the labels are scaled from.
const MASTER_WIDTH: u32 = 640;

/// The design drawn `w × h` (a `template` replaces the classic design).
pub fn design_art(design: LabelDesign, template: Option<&GrayImage>, w: u32, h: u32) -> LabelArt {
    let (w, h) = (w.max(1), h.max(1));
    let resize = |g: &GrayImage| imageops::resize(g, w, h, FilterType::Triangle);
    if let (LabelDesign::Classic, Some(t)) = (design, template) {
        return LabelArt {
            grey: resize(t),
            alpha: None,
        };
    }
    let master = master(design);
    LabelArt {
        grey: resize(&master.grey),
        alpha: master.alpha.as_ref().map(resize),
    }
}

/// The cached master rendering of a design (drawn once per process).
fn master(design: LabelDesign) -> &'static LabelArt {
    static MASTERS: [OnceLock<LabelArt>; 5] = [const { OnceLock::new() }; 5];
    let i = LabelDesign::ALL
        .iter()
        .position(|d| *d == design)
        .unwrap_or(0);
    MASTERS[i].get_or_init(|| draw_design(design, MASTER_WIDTH))
}

/// Draws a design `width` pixels wide (height from its aspect).
pub fn draw_design(design: LabelDesign, width: u32) -> LabelArt {
    let w = width.max(16);
    let h = ((w as f32 / design.aspect()).round() as u32).max(6);
    match design {
        LabelDesign::Classic => LabelArt {
            grey: draw_badge_with(w, "EXPLICIT CONTENT"),
            alpha: None,
        },
        LabelDesign::Lyrics => LabelArt {
            grey: draw_badge_with(w, "EXPLICIT LYRICS"),
            alpha: None,
        },
        LabelDesign::WideBar => {
            let mut img = GrayImage::from_pixel(w, h, Luma([0]));
            let (b0, b1) = ((h as f32 * 0.16) as i32, (h as f32 * 0.84) as i32);
            // white band inset by the bar's border on all sides
            fill(&mut img, b0, b0, w - 2 * b0 as u32, (b1 - b0) as u32, 255);
            stamp_text(
                &mut img,
                "PARENTAL ADVISORY EXPLICIT CONTENT",
                2,
                (b0, b1),
                (0.94, 0.7),
                0,
            );
            LabelArt {
                grey: img,
                alpha: None,
            }
        }
        LabelDesign::TwoLine => {
            let mut img = GrayImage::from_pixel(w, h, Luma([0]));
            let t = (h / 10).max(1);
            fill(&mut img, t as i32, t as i32, w - 2 * t, h - 2 * t, 255);
            let mid = (h / 2) as i32;
            stamp_text(
                &mut img,
                "PARENTAL ADVISORY",
                2,
                (t as i32, mid),
                (0.86, 0.62),
                0,
            );
            stamp_text(
                &mut img,
                "EXPLICIT LYRICS",
                2,
                (mid, (h - t) as i32),
                (0.80, 0.55),
                0,
            );
            LabelArt {
                grey: img,
                alpha: None,
            }
        }
        LabelDesign::Outline => {
            // Ink everywhere (grey 0); the alpha says where it is printed: the frame, the
            // band edges and the letters.
            let mut alpha = GrayImage::new(w, h);
            let t = (w / 30).max(1);
            let (m0, m1) = (
                (h as f32 * crate::badge::TOP_BAND_END) as i32,
                (h as f32 * crate::badge::MIDDLE_BAND_END) as i32,
            );
            fill(&mut alpha, 0, 0, w, t, 255);
            fill(&mut alpha, 0, (h - t) as i32, w, t, 255);
            fill(&mut alpha, 0, 0, t, h, 255);
            fill(&mut alpha, (w - t) as i32, 0, t, h, 255);
            fill(&mut alpha, 0, m0, w, t, 255);
            fill(&mut alpha, 0, m1, w, t, 255);
            stamp_text(&mut alpha, "PARENTAL", 11, (0, m0), (0.80, 0.5), 255);
            stamp_text(&mut alpha, "ADVISORY", 2, (m0, m1), (0.88, 0.7), 255);
            stamp_text(
                &mut alpha,
                "EXPLICIT CONTENT",
                3,
                (m1, h as i32),
                (0.84, 0.5),
                255,
            );
            LabelArt {
                grey: GrayImage::new(w, h),
                alpha: Some(alpha),
            }
        }
    }
}

/// Fills a rectangle with one grey level.
fn fill(img: &mut GrayImage, x: i32, y: i32, w: u32, h: u32, level: u8) {
    let _ = Rectangle::new(Point::new(x, y), Size::new(w, h))
        .into_styled(PrimitiveStyle::with_fill(Gray8::new(level)))
        .draw(&mut GrayCanvas(img));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Share of a region's pixels that are ink (grey < 128 where printed).
    fn ink_share(art: &LabelArt, x0: u32, y0: u32, x1: u32, y1: u32) -> f32 {
        let mut ink = 0;
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let printed = art
                    .alpha
                    .as_ref()
                    .is_none_or(|a| a.get_pixel(x, y).0[0] > 127);
                ink += usize::from(printed && art.grey.get_pixel(x, y).0[0] < 128);
                n += 1;
            }
        }
        ink as f32 / n.max(1) as f32
    }

    #[test]
    fn every_design_renders_inside_its_box_with_ink_and_paper() {
        for d in LabelDesign::ALL {
            let art = draw_design(d, 400);
            let (w, h) = art.grey.dimensions();
            assert_eq!(w, 400, "{d:?}");
            assert!(
                (w as f32 / h as f32 - d.aspect()).abs() < 0.05,
                "{d:?}: {w}x{h}"
            );
            if let Some(a) = &art.alpha {
                assert_eq!(a.dimensions(), (w, h));
            }
            // The whole label is ink and lettering: neither blank nor solid.
            let all = ink_share(&art, 0, 0, w, h);
            assert!(all > 0.05 && all < 0.95, "{d:?}: ink share {all}");
            // It touches its box on every side (the box is tight): the outer rows and
            // columns carry ink (frame or band).
            for (x0, y0, x1, y1) in [
                (0, 0, w, 2),
                (0, h - 2, w, h),
                (0, 0, 2, h),
                (w - 2, 0, w, h),
            ] {
                let s = ink_share(&art, x0, y0, x1, y1);
                assert!(s > 0.5, "{d:?}: edge ({x0},{y0})-({x1},{y1}) ink {s}");
            }
            // And lettering: the middle row mixes ink and paper.
            let mid = ink_share(&art, 0, h / 2 - 1, w, h / 2 + 1);
            assert!(mid > 0.05 && mid < 0.95, "{d:?}: middle row ink {mid}");
        }
    }

    #[test]
    fn lyrics_and_classic_differ_only_in_the_bottom_band() {
        let a = draw_design(LabelDesign::Classic, 320);
        let b = draw_design(LabelDesign::Lyrics, 320);
        let h = a.grey.height();
        let differs = |y0: u32, y1: u32| {
            (y0..y1).any(|y| (0..320).any(|x| a.grey.get_pixel(x, y) != b.grey.get_pixel(x, y)))
        };
        assert!(!differs(0, (h as f32 * 0.69) as u32));
        assert!(differs((h as f32 * 0.72) as u32, h));
    }

    #[test]
    fn outline_prints_strokes_only() {
        let art = draw_design(LabelDesign::Outline, 320);
        let a = art.alpha.expect("outline has an alpha");
        let printed = a.pixels().filter(|p| p.0[0] > 127).count() as f32 / a.len() as f32;
        assert!(printed > 0.1 && printed < 0.6, "printed share {printed}");
    }

    #[test]
    fn mix_parses_and_samples_only_weighted_designs() {
        assert_eq!(DesignMix::parse("mix").unwrap(), DesignMix::default());
        assert_eq!(
            DesignMix::parse("classic").unwrap(),
            DesignMix::classic_only()
        );
        let m = DesignMix::parse("wide_bar=1, outline=3").unwrap();
        let mut rng = crate::rng::rng_from(5);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(m.sample(&mut rng).name());
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["outline", "wide_bar"]
        );
        for bad in [
            "",
            "fancy=1",
            "classic=x",
            "classic=-1",
            "classic=0",
            "classic",
        ] {
            let r = DesignMix::parse(bad);
            if bad == "classic" {
                assert!(r.is_ok());
            } else {
                assert!(r.is_err(), "{bad}");
            }
        }
    }

    #[test]
    fn template_replaces_only_the_classic_design() {
        let t = GrayImage::from_pixel(40, 25, Luma([77]));
        let c = design_art(LabelDesign::Classic, Some(&t), 80, 50);
        assert!(c.grey.pixels().all(|p| p.0[0] == 77));
        let l = design_art(LabelDesign::Lyrics, Some(&t), 80, 50);
        assert!(l.grey.pixels().any(|p| p.0[0] != 77));
        assert_eq!(l.grey.dimensions(), (80, 50));
    }
}

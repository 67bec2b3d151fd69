//! Aligning a sleeve's outline to catalogue entries: the verification step of recognition.
//!
//! The finder's corners are often a few per cent off (a shadow edge, a rounded corner, a
//! hand over the border), and the descriptor of a slightly mis-framed sleeve scores below
//! the match threshold even when its entry is the best one. Starting from the finder's
//! outline, a pattern search moves the whole outline (shift, scale) and then each corner,
//! with shrinking steps, keeping every move that raises the best trimmed cell similarity to
//! the few entries the first search ranked highest. Each try rectifies the outline to a
//! small square and describes it with the shared descriptor, so the search needs only the
//! catalogue's vectors, never its images. The frame is shrunk once (antialiased) to about
//! the scale of that square first, so each try warps a few thousand pixels.
//!
//! Alignment can raise the score of a look-alike entry as well as the right one, so the
//! match that results is thresholded and margin-checked exactly like any other (the
//! threshold was calibrated with alignment on, docs/catalogue.md).

use image::RgbImage;
use sleeve_shared::RgbView;
use sleeve_shared::catalogue::{Index, describe_quantized};

use crate::finder::{SleeveQuad, rectify};

/// Default number of entries an outline is aligned to.
pub const DEFAULT_ALIGN_ENTRIES: usize = 3;
/// Most entries an outline may be aligned to.
pub const MAX_ALIGN_ENTRIES: usize = 16;

/// Settings of the alignment step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlignConfig {
    /// How many of the best entries of the first search the outline is aligned to; 0
    /// turns alignment off.
    pub entries: usize,
    /// Side (pixels) of the small rectification each try describes.
    pub side: u32,
    /// The frame is shrunk so the outline's mean side is about `oversample × side` (never
    /// enlarged).
    pub oversample: f32,
    /// Most descriptor evaluations per sleeve.
    pub max_evals: usize,
    /// Step sizes, as fractions of the outline's mean side, largest first.
    pub steps: [f32; 3],
    /// Sleeves whose first score is below this are not aligned (nothing close enough in
    /// the catalogue to be worth the time).
    pub floor: f32,
}

impl Default for AlignConfig {
    fn default() -> Self {
        Self {
            entries: DEFAULT_ALIGN_ENTRIES,
            side: 40,
            oversample: 1.5,
            max_evals: 80,
            steps: [0.03, 0.015, 0.0075],
            floor: 0.6,
        }
    }
}

/// The outcome of an alignment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aligned {
    /// The aligned outline.
    pub quad: SleeveQuad,
    /// Its best trimmed cell similarity to the target rows (at [`AlignConfig::side`]).
    pub score: f32,
    /// Descriptor evaluations spent.
    pub evals: usize,
}

/// One way of moving an outline by a step `d` (pixels).
#[derive(Clone, Copy, Debug)]
enum Move {
    Shift(f32, f32),
    Scale(f32),
    Corner(usize, f32, f32),
}

impl Move {
    fn all() -> impl Iterator<Item = Move> {
        let shifts = [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)]
            .into_iter()
            .map(|(x, y)| Move::Shift(x, y));
        let scales = [1.0, -1.0].into_iter().map(Move::Scale);
        let corners = (0..4).flat_map(|c| {
            [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)]
                .into_iter()
                .map(move |(x, y)| Move::Corner(c, x, y))
        });
        shifts.chain(scales).chain(corners)
    }

    fn apply(self, c: &[(f32, f32); 4], d: f32) -> [(f32, f32); 4] {
        let mut out = *c;
        match self {
            Move::Shift(x, y) => out.iter_mut().for_each(|p| {
                p.0 += x * d;
                p.1 += y * d;
            }),
            Move::Scale(s) => {
                let cx = c.iter().map(|p| p.0).sum::<f32>() / 4.0;
                let cy = c.iter().map(|p| p.1).sum::<f32>() / 4.0;
                let r = c
                    .iter()
                    .map(|p| ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt())
                    .sum::<f32>()
                    / 4.0;
                let k = 1.0 + s * d / r.max(1.0);
                out.iter_mut().for_each(|p| {
                    p.0 = cx + (p.0 - cx) * k;
                    p.1 = cy + (p.1 - cy) * k;
                });
            }
            Move::Corner(i, x, y) => {
                out[i].0 += x * d;
                out[i].1 += y * d;
            }
        }
        out
    }
}

/// Mean side length of an outline (pixels).
fn mean_side(c: &[(f32, f32); 4]) -> f32 {
    (0..4)
        .map(|i| {
            let (a, b) = (c[i], c[(i + 1) % 4]);
            ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
        })
        .sum::<f32>()
        / 4.0
}

/// The best trimmed cell similarity of the outline `corners` in `frame` to any of the
/// `targets` rows of `index` (None: degenerate outline or nothing to compare).
fn similarity(
    frame: &RgbImage,
    corners: &[(f32, f32); 4],
    index: &Index,
    targets: &[usize],
    side: u32,
) -> Option<f32> {
    let quad = SleeveQuad {
        corners: *corners,
        score: 1.0,
    };
    let r = rectify(frame, &quad, side)?;
    let view = RgbView::new(r.width(), r.height(), r.as_raw()).ok()?;
    let d = describe_quantized(&view).ok()?;
    targets
        .iter()
        .filter_map(|&t| index.row(t))
        .map(|row| index.cell_score(row, &d))
        .max_by(f32::total_cmp)
}

/// Aligns `start` to the `targets` rows of `index` (see the module docs). Returns `None`
/// when the start outline cannot be described or there is nothing to align to; the
/// result is never worse than the start by the search's own measure.
pub fn align(
    frame: &RgbImage,
    start: &SleeveQuad,
    index: &Index,
    targets: &[usize],
    cfg: &AlignConfig,
) -> Option<Aligned> {
    let side = cfg.side.max(8);
    let (w, h) = frame.dimensions();
    let f = (cfg.oversample.max(1.0) * side as f32 / mean_side(&start.corners).max(1.0)).min(1.0);
    let (sw, sh) = (
        ((w as f32 * f).round() as u32).max(1),
        ((h as f32 * f).round() as u32).max(1),
    );
    let shrunk;
    let frame = if f < 0.9 {
        shrunk = crate::resize::triangle(frame, sw, sh);
        &shrunk
    } else {
        frame
    };
    // shrunk-frame pixels per frame pixel, per axis (rounding differs)
    let (fx, fy) = (
        frame.width() as f32 / w as f32,
        frame.height() as f32 / h as f32,
    );
    let mut best = start.corners.map(|(x, y)| (x * fx, y * fy));
    let mut best_score = similarity(frame, &best, index, targets, side)?;
    let mut evals = 1;
    let scale = mean_side(&best);
    'steps: for &step in &cfg.steps {
        let d = step * scale;
        if d < 0.1 {
            continue;
        }
        loop {
            let mut improved = false;
            for m in Move::all() {
                if evals >= cfg.max_evals {
                    break 'steps;
                }
                let c = m.apply(&best, d);
                evals += 1;
                if let Some(s) = similarity(frame, &c, index, targets, side)
                    && s > best_score
                {
                    best = c;
                    best_score = s;
                    improved = true;
                }
            }
            if !improved {
                break;
            }
        }
    }
    Some(Aligned {
        quad: SleeveQuad {
            corners: best.map(|(x, y)| (x / fx, y / fy)),
            score: start.score,
        },
        score: best_score,
        evals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use sleeve_shared::catalogue::{CELL_DIM, DESCRIPTOR_DIM};

    /// A cover with structure at every scale: blocks of colour and a diagonal ramp.
    fn cover(side: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            let b = ((x * 13 / side) * 3 + (y * 11 / side) * 5) % 7;
            Rgb([
                (b * 36) as u8,
                ((x + 2 * y) * 255 / (3 * side)) as u8,
                (255 - b * 30) as u8,
            ])
        })
    }

    /// The cover pasted into a grey frame at (x0, y0), axis-aligned.
    fn frame_with(cover: &RgbImage, x0: u32, y0: u32) -> RgbImage {
        let mut f = RgbImage::from_pixel(400, 360, Rgb([90, 90, 90]));
        image::imageops::replace(&mut f, cover, x0.into(), y0.into());
        f
    }

    fn index_of(cover: &RgbImage) -> Index {
        let v = describe_quantized(
            &RgbView::new(cover.width(), cover.height(), cover.as_raw()).unwrap(),
        )
        .unwrap();
        Index::new(DESCRIPTOR_DIM, CELL_DIM, v, vec![0]).unwrap()
    }

    #[test]
    fn a_shifted_outline_moves_back_onto_the_cover() {
        let c = cover(240);
        let frame = frame_with(&c, 80, 60);
        let index = index_of(&c);
        let truth = [(80.0, 60.0), (320.0, 60.0), (320.0, 300.0), (80.0, 300.0)];
        // 6 % of the side off to the right and down, one corner further out.
        let mut off = truth.map(|(x, y)| (x + 14.0, y + 10.0));
        off[2].0 += 8.0;
        let start = SleeveQuad {
            corners: off,
            score: 0.7,
        };
        let one_try = AlignConfig {
            max_evals: 1,
            ..AlignConfig::default()
        };
        let before = align(&frame, &start, &index, &[0], &one_try).unwrap().score;
        let a = align(&frame, &start, &index, &[0], &AlignConfig::default()).unwrap();
        assert!(
            a.score > 0.95 && a.score > before + 0.1,
            "{} vs {before}",
            a.score
        );
        assert!(a.evals <= AlignConfig::default().max_evals);
        let err_before = corner_error(&off, &truth);
        let err_after = corner_error(&a.quad.corners, &truth);
        assert!(
            err_after < 0.6 * err_before,
            "corner error {err_after} vs {err_before}"
        );
        assert_eq!(a.quad.score, 0.7, "the finder's score is kept");
    }

    #[test]
    fn nothing_to_align_to_gives_none_and_a_limit_of_one_eval_stays_put() {
        let c = cover(200);
        let frame = frame_with(&c, 100, 80);
        let index = index_of(&c);
        let q = SleeveQuad {
            corners: [(100.0, 80.0), (300.0, 80.0), (300.0, 280.0), (100.0, 280.0)],
            score: 1.0,
        };
        assert!(align(&frame, &q, &index, &[], &AlignConfig::default()).is_none());
        assert!(align(&frame, &q, &index, &[7], &AlignConfig::default()).is_none());
        let cfg = AlignConfig {
            max_evals: 1,
            ..AlignConfig::default()
        };
        let a = align(&frame, &q, &index, &[0], &cfg).unwrap();
        assert_eq!(a.quad.corners, q.corners);
        assert_eq!(a.evals, 1);
    }

    fn corner_error(a: &[(f32, f32); 4], b: &[(f32, f32); 4]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(p, q)| ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt())
            .sum::<f32>()
            / 4.0
    }
}

//! Where labels (and their look-alikes) go on a cover: mostly a lower corner, sometimes an
//! upper one, a small margin from the edges, a slight rotation.

use image::{RgbImage, RgbaImage};
use imageproc::geometric_transformations::Projection;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sleeve_shared::detect::BoxF;

use crate::rng::{chance, clamped_normal, uniform, weighted_index};
use crate::warp::{bounds, image_corners, map_points, paste_projected};

/// A placement on the cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Lower right corner (the most common spot on real sleeves).
    BottomRight,
    /// Lower left corner.
    BottomLeft,
    /// Upper right corner.
    TopRight,
    /// Upper left corner.
    TopLeft,
    /// Centred at the bottom edge.
    BottomCentre,
}

impl Position {
    /// All positions, in a fixed order.
    pub const ALL: [Position; 5] = [
        Position::BottomRight,
        Position::BottomLeft,
        Position::TopRight,
        Position::TopLeft,
        Position::BottomCentre,
    ];

    /// snake_case name (as in the COCO extras).
    pub fn name(self) -> &'static str {
        match self {
            Position::BottomRight => "bottom_right",
            Position::BottomLeft => "bottom_left",
            Position::TopRight => "top_right",
            Position::TopLeft => "top_left",
            Position::BottomCentre => "bottom_centre",
        }
    }
}

/// The placement distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Probability of an upper corner (the rest: lower corners and bottom centre).
    pub upper_prob: f32,
    /// Probability of bottom centre.
    pub centre_prob: f32,
    /// Share of the right-hand corners among the corners.
    pub right_share: f32,
    /// Distance from the cover edges as a fraction of the cover width, `(min, max)`.
    pub margin: (f32, f32),
    /// Standard deviation of the rotation in degrees.
    pub rotation_sigma_deg: f32,
    /// Largest rotation in degrees (either way).
    pub max_rotation_deg: f32,
    /// Probability that the label runs off the nearest edge (printed to the bleed, or the
    /// scan cropped it).
    pub cut_prob: f32,
    /// Largest share of the label's width (or height) beyond the edge when cut.
    pub max_cut: f32,
}

impl Default for Placement {
    /// Measured on the 254 real labels boxed on covers5 (docs/detector.md): 59 % lower
    /// right, 31 % lower left, 3 % bottom centre, 5 % upper corners; margin median 2.5 %
    /// of the width (5–95 %: 0–6.6 %); 11 % touch or cross an edge.
    fn default() -> Self {
        Self {
            upper_prob: 0.06,
            centre_prob: 0.03,
            right_share: 0.65,
            margin: (0.0, 0.06),
            rotation_sigma_deg: 1.6,
            max_rotation_deg: 4.0,
            cut_prob: 0.08,
            max_cut: 0.3,
        }
    }
}

/// Where a patch ended up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placed {
    /// Axis-aligned box of the (rotated) patch, pixels.
    pub bbox: BoxF,
    /// The spot.
    pub position: Position,
    /// Clockwise rotation in degrees.
    pub rotation_deg: f32,
}

/// Draws a position from the distribution.
pub fn sample_position(rng: &mut impl Rng, p: &Placement) -> Position {
    let lower = (1.0 - p.upper_prob - p.centre_prob).max(0.0);
    let right = p.right_share.clamp(0.0, 1.0);
    let w = [
        lower * right,
        lower * (1.0 - right),
        p.upper_prob * right,
        p.upper_prob * (1.0 - right),
        p.centre_prob,
    ];
    Position::ALL[weighted_index(rng, &w)]
}

/// Pastes `patch` onto `img` at a sampled spot, avoiding (not touching) any box in
/// `avoid`. Tries a few spots; returns `None` if none fits.
pub fn place_patch(
    img: &mut RgbImage,
    patch: &RgbaImage,
    rng: &mut impl Rng,
    p: &Placement,
    avoid: &[BoxF],
) -> Option<Placed> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    for _ in 0..8 {
        let position = sample_position(rng, p);
        let rotation_deg = clamped_normal(rng, p.rotation_sigma_deg, p.max_rotation_deg);
        let (pw, ph) = (patch.width() as f32, patch.height() as f32);
        let rot = Projection::translate(0.0, 0.0)
            * Projection::rotate(rotation_deg.to_radians())
            * Projection::translate(-pw / 2.0, -ph / 2.0);
        let rb = bounds(&map_points(
            &rot,
            image_corners(patch.width(), patch.height()),
        ));
        let (bw, bh) = (rb.width(), rb.height());
        if bw >= w * 0.95 || bh >= h * 0.95 {
            return None;
        }
        let mut mx = uniform(rng, p.margin.0, p.margin.1) * w;
        let mut my = uniform(rng, p.margin.0, p.margin.1) * w;
        if chance(rng, p.cut_prob) {
            // Past the side edge or the top/bottom edge, never both.
            if position != Position::BottomCentre && rng.random_bool(0.5) {
                mx = -uniform(rng, 0.0, p.max_cut) * bw;
            } else {
                my = -uniform(rng, 0.0, p.max_cut) * bh;
            }
        }
        let (mx, my) = (mx.min(w - bw), my.min(h - bh));
        let x0 = match position {
            Position::BottomLeft | Position::TopLeft => mx,
            Position::BottomRight | Position::TopRight => w - bw - mx,
            Position::BottomCentre => (w - bw) / 2.0 + uniform(rng, -0.05, 0.05) * w,
        };
        let y0 = match position {
            Position::TopLeft | Position::TopRight => my,
            _ => h - bh - my,
        };
        let (x0, y0) = (x0.round(), y0.round());
        let bbox = BoxF::new(x0, y0, x0 + bw, y0 + bh);
        if avoid.iter().any(|a| overlaps(a, &bbox)) {
            continue;
        }
        // Centre of the rotated patch goes to the centre of its box.
        let proj = Projection::translate(x0 + bw / 2.0, y0 + bh / 2.0) * rot;
        paste_projected(img, patch, &proj, 1.0);
        return Some(Placed {
            bbox,
            position,
            rotation_deg,
        });
    }
    None
}

/// True when two boxes share any area (touching edges do not count).
pub fn overlaps(a: &BoxF, b: &BoxF) -> bool {
    a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1
}

//! The axis-aligned box every detection, result and anchor is expressed in (normalised
//! coordinates: `(0, 0)` top-left, `(1, 1)` bottom-right).

use serde::{Deserialize, Serialize};

/// An axis-aligned box by corners, normalised coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BoxF {
    /// Left.
    pub x0: f32,
    /// Top.
    pub y0: f32,
    /// Right.
    pub x1: f32,
    /// Bottom.
    pub y1: f32,
}

impl BoxF {
    /// Box from corners.
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        Self { x0, y0, x1, y1 }
    }

    /// Box from centre and size.
    pub fn from_centre(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }

    /// Width (0 when inverted).
    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    /// Height (0 when inverted).
    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }

    /// Area (0 when inverted).
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Centre `(cx, cy)`.
    pub fn centre(&self) -> (f32, f32) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }

    /// The box clipped to the unit square.
    pub fn clipped(&self) -> Self {
        Self::new(
            self.x0.clamp(0.0, 1.0),
            self.y0.clamp(0.0, 1.0),
            self.x1.clamp(0.0, 1.0),
            self.y1.clamp(0.0, 1.0),
        )
    }

    /// Intersection over union; 0 for disjoint or empty boxes.
    pub fn iou(&self, other: &Self) -> f32 {
        let inter = Self::new(
            self.x0.max(other.x0),
            self.y0.max(other.y0),
            self.x1.min(other.x1),
            self.y1.min(other.y1),
        )
        .area();
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

//! Finding the record sleeve in a camera frame and rectifying it to a square.
//!
//! Classical vision, no model: grey → blur → Canny edges → dilate (close small gaps) →
//! contours → convex hull → Douglas–Peucker polygon → quadrilateral candidates. Each
//! candidate is scored by how much of its outline lies on edges and how square it is once
//! rectified; the best one above a threshold is the sleeve, otherwise the frame has none.

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};
use imageproc::contours::find_contours;
use imageproc::distance_transform::Norm;
use imageproc::edges::canny;
use imageproc::filter::gaussian_blur_f32;
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp_into};
use imageproc::geometry::{approximate_polygon_dp, arc_length, contour_area, convex_hull};
use imageproc::morphology::dilate;
use imageproc::point::Point;
use serde::Serialize;

/// Tuning of the sleeve finder.
#[derive(Clone, Debug)]
pub struct FinderConfig {
    /// Frames are analysed downscaled so their longer side is at most this.
    pub work_size: u32,
    /// Gaussian blur sigma before edge detection.
    pub blur_sigma: f32,
    /// Canny hysteresis thresholds (gradient magnitude).
    pub canny_low: f32,
    /// See `canny_low`.
    pub canny_high: f32,
    /// Smallest sleeve, as a fraction of the frame area.
    pub min_area_fraction: f32,
    /// Largest accepted ratio of the rectified sides (≥ 1).
    pub max_aspect: f32,
    /// Minimum score (0–1) of an accepted sleeve whose contour is four-sided.
    pub min_score: f32,
    /// Minimum score of a sleeve cut out of a merged contour (four of its polygon's
    /// vertices).
    pub min_vertex_score: f32,
}

impl Default for FinderConfig {
    fn default() -> Self {
        Self {
            work_size: 400,
            blur_sigma: 1.2,
            canny_low: 20.0,
            canny_high: 60.0,
            min_area_fraction: 0.04,
            max_aspect: 1.45,
            min_score: 0.55,
            min_vertex_score: 0.55,
        }
    }
}

/// A found sleeve: its corners in frame pixels, clockwise from the top-left, and a score.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SleeveQuad {
    /// Top-left, top-right, bottom-right, bottom-left.
    pub corners: [(f32, f32); 4],
    /// Confidence in `[0, 1]`: edge support × squareness.
    pub score: f32,
}

impl SleeveQuad {
    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        polygon_area(&self.corners)
    }

    /// Largest distance between a corner and the matching corner of `other`, in pixels.
    pub fn max_corner_error(&self, other: &[(f32, f32); 4]) -> f32 {
        self.corners
            .iter()
            .zip(other)
            .map(|(a, b)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt())
            .fold(0.0, f32::max)
    }
}

/// Locates the sleeve in `frame`; `None` when no candidate is good enough.
pub fn find_sleeve(frame: &RgbImage, cfg: &FinderConfig) -> Option<SleeveQuad> {
    let (w, h) = frame.dimensions();
    if w < 16 || h < 16 {
        return None;
    }
    let scale = (cfg.work_size as f32 / w.max(h) as f32).min(1.0);
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let small = if scale < 1.0 {
        imageops::resize(frame, sw, sh, FilterType::Triangle)
    } else {
        frame.clone()
    };
    let edges = colour_edges(&small, cfg);
    let closed = dilate(&edges, Norm::LInf, 1);
    let frame_area = (sw * sh) as f32;
    let mut best: Option<SleeveQuad> = None;
    let min_area = cfg.min_area_fraction * frame_area;
    // Rank: well-supported and big (the sleeve, not a sticker on it). Squaring the score or
    // a stricter threshold for vertex candidates measured worse on synthetic scenes.
    let rank_of = |score: f32, area: f32| score * area.sqrt();
    let consider = |quad: [(f32, f32); 4], min_score: f32, best: &mut Option<SleeveQuad>| {
        let area = polygon_area(&quad);
        if area < min_area || area > 0.98 * frame_area {
            return;
        }
        let aspect = rectified_aspect(&quad);
        if aspect > cfg.max_aspect {
            return;
        }
        let squareness = 1.0 - (aspect - 1.0) / (cfg.max_aspect - 1.0).max(1e-3) * 0.5;
        // Cheap screen first: a quad that cannot beat the current best is not measured in full.
        let rank_bound = rank_of(squareness, area);
        if best.is_some_and(|b| rank_bound <= rank_of(b.score, b.area())) {
            return;
        }
        // Loose screen: polygon vertices sit a few pixels off the true corners (a drop
        // shadow or a blurred corner bends the contour), so allow 4 px off the side here.
        if edge_support_sampled(&quad, &closed, 16, 4) * squareness < min_score * 0.8 {
            return;
        }
        // Snap the sides to the strongest colour steps nearby, then measure strictly.
        let snapped = refine_corners(&small, quad, 5.0);
        let quad = if is_convex(&snapped) { snapped } else { quad };
        let aspect = rectified_aspect(&quad);
        if aspect > cfg.max_aspect {
            return;
        }
        let squareness = 1.0 - (aspect - 1.0) / (cfg.max_aspect - 1.0).max(1e-3) * 0.5;
        let area = polygon_area(&quad);
        let score = edge_support(&quad, &closed) * squareness;
        if score < min_score {
            return;
        }
        let rank = rank_of(score, area);
        if best
            .map(|b| rank > rank_of(b.score, b.area()))
            .unwrap_or(true)
        {
            *best = Some(SleeveQuad {
                corners: quad,
                score,
            });
        }
    };
    for contour in find_contours::<i32>(&closed) {
        if contour.points.len() < 16 {
            continue;
        }
        if let Some(quad) = quad_of(&contour.points) {
            consider(quad, cfg.min_score, &mut best);
        }
        // A sleeve touching a hand, another sleeve or clutter merges with them into one
        // contour that is not four-sided; its corners are still vertices of the contour's
        // polygon, so four-vertex subsets of that polygon are candidates too.
        if bbox_area(&contour.points) >= min_area {
            for quad in vertex_quads(&contour.points) {
                consider(quad, cfg.min_vertex_score, &mut best);
            }
        }
    }
    let best = best?;
    let coarse = best
        .corners
        .map(|(x, y)| ((x + 0.5) / scale - 0.5, (y + 0.5) / scale - 0.5));
    // A small working size (under half the frame) leaves the coarse corners further off:
    // search a wider window first, then refine once more narrowly.
    let refined = if scale < 0.5 {
        let wide = refine_corners(frame, coarse, 3.0 / scale + 2.0);
        if is_convex(&wide) {
            refine_corners(frame, wide, 3.0)
        } else {
            wide
        }
    } else {
        refine_corners(frame, coarse, 1.5 / scale + 2.0)
    };
    Some(SleeveQuad {
        corners: if is_convex(&refined) { refined } else { coarse },
        score: best.score,
    })
}

/// Sub-pixel refinement at full resolution: along each side, the strongest intensity step
/// within `search` pixels of the coarse outline is found at 40 points; a line is fitted to
/// them (twice, dropping points more than 1.5 px off) and the corners become the
/// intersections of adjacent lines. A side with too little evidence keeps its coarse line.
fn refine_corners(img: &RgbImage, q: [(f32, f32); 4], search: f32) -> [(f32, f32); 4] {
    let mut lines = [(0.0f32, 0.0f32, 0.0f32, 0.0f32); 4]; // point (x, y) + direction (dx, dy)
    for (i, line) in lines.iter_mut().enumerate() {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let len = dist(a, b).max(1e-3);
        let (dx, dy) = ((b.0 - a.0) / len, (b.1 - a.1) / len);
        let (nx, ny) = (-dy, dx);
        let mut pts = Vec::with_capacity(40);
        for k in 0..40 {
            let t = 0.1 + 0.8 * k as f32 / 39.0;
            let (px, py) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            let mut best = (0.0f32, 0.0f32);
            let steps = (search * 2.0) as i32;
            for s in -steps..=steps {
                let o = s as f32 * 0.5;
                let hi = sample(img, px + (o + 0.75) * nx, py + (o + 0.75) * ny);
                let lo = sample(img, px + (o - 0.75) * nx, py + (o - 0.75) * ny);
                let g = (0..3).map(|c| (hi[c] - lo[c]).abs()).sum::<f32>();
                if g > best.0 {
                    best = (g, o);
                }
            }
            if best.0 >= 12.0 {
                pts.push((px + best.1 * nx, py + best.1 * ny));
            }
        }
        *line = fit_line(&pts).unwrap_or((a.0, a.1, dx, dy));
    }
    let mut out = q;
    for (i, corner) in out.iter_mut().enumerate() {
        let prev = lines[(i + 3) % 4];
        if let Some(p) = intersect(prev, lines[i]) {
            // Refinement moves corners by a few pixels; anything larger is a bad fit.
            if dist(p, q[i]) <= search * 2.0 {
                *corner = p;
            }
        }
    }
    out
}

/// Bilinear RGB at a sub-pixel position (clamped to the image).
fn sample(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = img.dimensions();
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |x, y, c: usize| img.get_pixel(x, y).0[c] as f32;
    core::array::from_fn(|c| {
        (p(x0, y0, c) * (1.0 - fx) + p(x1, y0, c) * fx) * (1.0 - fy)
            + (p(x0, y1, c) * (1.0 - fx) + p(x1, y1, c) * fx) * fy
    })
}

/// Total-least-squares line through points, refitted without outliers (> 1.5 px).
fn fit_line(pts: &[(f32, f32)]) -> Option<(f32, f32, f32, f32)> {
    let fit = |pts: &[(f32, f32)]| -> Option<(f32, f32, f32, f32)> {
        if pts.len() < 8 {
            return None;
        }
        let n = pts.len() as f32;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f32>() / n,
            pts.iter().map(|p| p.1).sum::<f32>() / n,
        );
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for p in pts {
            let (u, v) = (p.0 - mx, p.1 - my);
            sxx += u * u;
            sxy += u * v;
            syy += v * v;
        }
        let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        Some((mx, my, angle.cos(), angle.sin()))
    };
    let off =
        |l: (f32, f32, f32, f32), p: &(f32, f32)| ((p.0 - l.0) * -l.3 + (p.1 - l.1) * l.2).abs();
    // Consensus first: the line through two of the points that most points lie on, so a
    // stretch of the side caught on another edge (a label printed near it) cannot tilt it.
    let mut first = fit(pts)?;
    let mut support = pts.iter().filter(|p| off(first, p) <= 1.5).count();
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            let len = dist(*a, *b);
            if len < 1e-3 {
                continue;
            }
            let l = (a.0, a.1, (b.0 - a.0) / len, (b.1 - a.1) / len);
            let n = pts.iter().filter(|p| off(l, p) <= 1.5).count();
            if n > support {
                (first, support) = (l, n);
            }
        }
    }
    let inliers: Vec<(f32, f32)> = pts
        .iter()
        .copied()
        .filter(|p| off(first, p) <= 1.5)
        .collect();
    fit(&inliers).or(Some(first))
}

/// Intersection of two point-direction lines; `None` when (nearly) parallel.
fn intersect(l1: (f32, f32, f32, f32), l2: (f32, f32, f32, f32)) -> Option<(f32, f32)> {
    let den = l1.2 * l2.3 - l1.3 * l2.2;
    if den.abs() < 1e-4 {
        return None;
    }
    let t = ((l2.0 - l1.0) * l2.3 - (l2.1 - l1.1) * l2.2) / den;
    Some((l1.0 + t * l1.2, l1.1 + t * l1.3))
}

/// Canny edges of each colour channel, combined: a sleeve whose grey level matches the
/// counter still differs in hue, which a grey-only edge detector would miss.
fn colour_edges(img: &RgbImage, cfg: &FinderConfig) -> GrayImage {
    let (w, h) = img.dimensions();
    let mut out = GrayImage::new(w, h);
    for ch in 0..3 {
        let plane = GrayImage::from_fn(w, h, |x, y| image::Luma([img.get_pixel(x, y).0[ch]]));
        let blurred = gaussian_blur_f32(&plane, cfg.blur_sigma);
        let e = canny(&blurred, cfg.canny_low, cfg.canny_high);
        for (o, v) in out.iter_mut().zip(e.iter()) {
            *o = (*o).max(*v);
        }
    }
    out
}

/// Warps the sleeve to a `size × size` image (top-left corner at the origin).
pub fn rectify(frame: &RgbImage, quad: &SleeveQuad, size: u32) -> Option<RgbImage> {
    let s = size as f32;
    let target = [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)];
    let p = Projection::from_control_points(quad.corners, target)?;
    let mut out = RgbImage::new(size, size);
    warp_into(
        frame,
        p,
        Interpolation::Bilinear,
        Border::Replicate,
        &mut out,
    );
    Some(out)
}

/// A convex quadrilateral approximating a contour, corners clockwise from the top-left.
fn quad_of(points: &[Point<i32>]) -> Option<[(f32, f32); 4]> {
    let hull = convex_hull(points.to_vec());
    if hull.len() < 4 {
        return None;
    }
    let perimeter = arc_length(&hull, true);
    let hull_area = contour_area(&hull).abs();
    let approx = approximate_polygon_dp(&hull, 0.02 * perimeter, true);
    let pts: Vec<(f32, f32)> = approx.iter().map(|p| (p.x as f32, p.y as f32)).collect();
    let quad = match pts.len() {
        4 => [pts[0], pts[1], pts[2], pts[3]],
        5..=8 => best_four(&pts)?,
        _ => return None,
    };
    // The quad must explain (almost) the whole hull, or the contour is not four-sided.
    let qa = polygon_area(&quad) as f64;
    if qa <= 0.0 || qa < 0.9 * hull_area {
        return None;
    }
    Some(order_clockwise(quad))
}

/// Bounding-box area of a point set.
fn bbox_area(points: &[Point<i32>]) -> f32 {
    let (mut x0, mut y0, mut x1, mut y1) = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
    for p in points {
        x0 = x0.min(p.x);
        y0 = y0.min(p.y);
        x1 = x1.max(p.x);
        y1 = y1.max(p.y);
    }
    ((x1 - x0).max(0) as f32) * ((y1 - y0).max(0) as f32)
}

/// Most polygon vertices whose four-subsets are tried (C(14, 4) = 1001 quads).
const MAX_VERTICES: usize = 14;

/// Convex quadrilaterals (clockwise from the top-left) whose corners are vertices of the
/// contour's simplified polygon.
fn vertex_quads(points: &[Point<i32>]) -> Vec<[(f32, f32); 4]> {
    let perimeter = arc_length(points, true);
    let mut eps = 0.015 * perimeter;
    let mut poly = approximate_polygon_dp(points, eps, true);
    while poly.len() > MAX_VERTICES {
        eps *= 1.4;
        poly = approximate_polygon_dp(points, eps, true);
    }
    let pts: Vec<(f32, f32)> = poly.iter().map(|p| (p.x as f32, p.y as f32)).collect();
    let n = pts.len();
    let mut out = Vec::new();
    if n < 4 {
        return out;
    }
    for a in 0..n {
        for b in a + 1..n {
            for c in b + 1..n {
                for d in c + 1..n {
                    let q = order_clockwise([pts[a], pts[b], pts[c], pts[d]]);
                    if is_convex(&q) {
                        out.push(q);
                    }
                }
            }
        }
    }
    out
}

/// Whether a quad (in order) is strictly convex.
fn is_convex(q: &[(f32, f32); 4]) -> bool {
    let cross = |i: usize| {
        let (a, b, c) = (q[i], q[(i + 1) % 4], q[(i + 2) % 4]);
        (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0)
    };
    let c: [f32; 4] = core::array::from_fn(cross);
    c.iter().all(|v| *v > 0.0) || c.iter().all(|v| *v < 0.0)
}

/// The four of `pts` (in polygon order) spanning the largest area.
fn best_four(pts: &[(f32, f32)]) -> Option<[(f32, f32); 4]> {
    let n = pts.len();
    let mut best: Option<([(f32, f32); 4], f32)> = None;
    for a in 0..n {
        for b in a + 1..n {
            for c in b + 1..n {
                for d in c + 1..n {
                    let q = [pts[a], pts[b], pts[c], pts[d]];
                    let area = polygon_area(&q);
                    if best.map(|(_, ba)| area > ba).unwrap_or(true) {
                        best = Some((q, area));
                    }
                }
            }
        }
    }
    best.map(|(q, _)| q)
}

/// Absolute shoelace area.
fn polygon_area(q: &[(f32, f32)]) -> f32 {
    let mut s = 0.0;
    for i in 0..q.len() {
        let (a, b) = (q[i], q[(i + 1) % q.len()]);
        s += a.0 * b.1 - b.0 * a.1;
    }
    (s / 2.0).abs()
}

/// Corners ordered clockwise in image coordinates (y down), starting at the one nearest
/// the top-left (smallest x + y).
fn order_clockwise(q: [(f32, f32); 4]) -> [(f32, f32); 4] {
    let cx = q.iter().map(|p| p.0).sum::<f32>() / 4.0;
    let cy = q.iter().map(|p| p.1).sum::<f32>() / 4.0;
    let mut v = q.to_vec();
    // atan2 with y down grows clockwise on screen.
    v.sort_by(|a, b| {
        (a.1 - cy)
            .atan2(a.0 - cx)
            .total_cmp(&(b.1 - cy).atan2(b.0 - cx))
    });
    let start = (0..4)
        .min_by(|&i, &j| (v[i].0 + v[i].1).total_cmp(&(v[j].0 + v[j].1)))
        .unwrap_or(0);
    [
        v[start],
        v[(start + 1) % 4],
        v[(start + 2) % 4],
        v[(start + 3) % 4],
    ]
}

fn dist(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// Ratio (≥ 1) of the mean horizontal to the mean vertical side length.
fn rectified_aspect(q: &[(f32, f32); 4]) -> f32 {
    let horiz = (dist(q[0], q[1]) + dist(q[3], q[2])) / 2.0;
    let vert = (dist(q[0], q[3]) + dist(q[1], q[2])) / 2.0;
    if horiz <= 0.0 || vert <= 0.0 {
        return f32::INFINITY;
    }
    (horiz / vert).max(vert / horiz)
}

/// Fraction of points sampled along the quad's sides that lie on (dilated) edges; the
/// worst side counts double, so a quad with one side in empty space scores low.
fn edge_support(q: &[(f32, f32); 4], edges: &GrayImage) -> f32 {
    edge_support_sampled(q, edges, 0, 0)
}

/// [`edge_support`] with `per_side` samples per side (0: one per pixel of length); with
/// `tol` > 0 a sample also counts when an edge lies within `tol` pixels along the normal.
fn edge_support_sampled(q: &[(f32, f32); 4], edges: &GrayImage, per_side: usize, tol: i32) -> f32 {
    let (w, h) = edges.dimensions();
    let mut sides = [0.0f32; 4];
    for (i, side) in sides.iter_mut().enumerate() {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let n = if per_side > 0 {
            per_side
        } else {
            (dist(a, b) as usize).max(8)
        };
        let mut hits = 0;
        for k in 0..n {
            let t = (k as f32 + 0.5) / n as f32;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            let len = dist(a, b).max(1e-3);
            let (nx, ny) = (-(b.1 - a.1) / len, (b.0 - a.0) / len);
            let along = (-tol..=tol).map(|o| {
                (
                    (o as f32 * nx).round() as i32,
                    (o as f32 * ny).round() as i32,
                )
            });
            let on_edge = [(0i32, 0i32), (1, 0), (-1, 0), (0, 1), (0, -1)]
                .into_iter()
                .chain(along)
                .any(|(dx, dy)| {
                    let (px, py) = (x.round() as i32 + dx, y.round() as i32 + dy);
                    px >= 0
                        && py >= 0
                        && (px as u32) < w
                        && (py as u32) < h
                        && edges.get_pixel(px as u32, py as u32).0[0] > 0
                });
            hits += usize::from(on_edge);
        }
        *side = hits as f32 / n as f32;
    }
    let mean = sides.iter().sum::<f32>() / 4.0;
    let worst = sides.iter().copied().fold(1.0, f32::min);
    (mean * 2.0 + worst * 2.0) / 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_is_clockwise_from_top_left() {
        let q = order_clockwise([(10.0, 90.0), (90.0, 10.0), (10.0, 10.0), (90.0, 90.0)]);
        assert_eq!(q, [(10.0, 10.0), (90.0, 10.0), (90.0, 90.0), (10.0, 90.0)]);
        assert!((rectified_aspect(&q) - 1.0).abs() < 1e-6);
        assert_eq!(polygon_area(&q), 6400.0);
    }
}

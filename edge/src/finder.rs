//! Finding the record sleeve in a camera frame and rectifying it to a square.
//!
//! Classical vision, no model: grey → blur → Canny edges → dilate (close small gaps) →
//! contours → convex hull → Douglas–Peucker polygon → quadrilateral candidates, plus quads
//! bounded by four strong Hough lines (a sleeve whose contour merged with its art, a hand
//! or clutter still has four straight sides). Each candidate with near-square corners is
//! scored by how much of its outline lies on edges and how square it is once rectified;
//! the best one above a threshold is the sleeve, otherwise the frame has none.

use std::collections::HashMap;

use image::{GrayImage, RgbImage};
use imageproc::contours::find_contours;
use imageproc::distance_transform::Norm;
use imageproc::geometric_transformations::Projection;
use imageproc::geometry::{approximate_polygon_dp, arc_length, contour_area, convex_hull};
use imageproc::morphology::dilate;
use imageproc::point::Point;
use serde::Serialize;

pub mod blur;
mod edges;
mod warp;

/// Default [`FinderConfig::min_corner_angle`], degrees.
pub const DEFAULT_MIN_CORNER_ANGLE: f32 = 45.0;

/// Tuning of the sleeve finder.
#[derive(Clone, Debug)]
pub struct FinderConfig {
    /// Frames are analysed downscaled so their longer side is at most this.
    pub work_size: u32,
    /// Gaussian blur sigma before edge detection, on top of the σ = 1.4 blur imageproc's
    /// Canny applies itself (0: that one only).
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
    /// Smallest interior corner angle of an accepted outline, degrees (the largest is
    /// 180° minus this): a square sleeve seen by a camera looking at it keeps its corners
    /// near 90°; a sliver or a triangle with a fourth vertex on one side does not.
    pub min_corner_angle: f32,
    /// Also propose quads bounded by four strong straight lines (Hough), besides the
    /// contours' polygons: finds sleeves whose contour merges with art, hands or clutter.
    pub line_proposals: bool,
    /// How the edge map is computed.
    pub edges: EdgeMethod,
}

/// The finder's edge detector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeMethod {
    /// One blur, Sobel on every channel, the strongest channel per pixel, one
    /// non-maximum suppression and hysteresis.
    #[default]
    Colour,
    /// imageproc's grey-level Canny on each channel, edge maps combined (three Cannys, six
    /// blurs: slower; the finder's method until 2026-12-05).
    PerChannel,
}

impl Default for FinderConfig {
    fn default() -> Self {
        Self {
            work_size: 320,
            blur_sigma: 1.2,
            canny_low: 20.0,
            canny_high: 60.0,
            min_area_fraction: 0.04,
            max_aspect: 1.45,
            min_score: 0.55,
            min_vertex_score: 0.55,
            min_corner_angle: DEFAULT_MIN_CORNER_ANGLE,
            line_proposals: true,
            edges: EdgeMethod::default(),
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
    find_sleeve_candidates(frame, cfg, 1).into_iter().next()
}

/// Up to `max` distinct sleeve candidates, best first; the first is [`find_sleeve`]'s
/// answer. The others are the next-ranked quadrilaterals that differ from every better one
/// by more than [`DISTINCT_CORNERS`] of the frame: when the best one is a part of the cover
/// or the cover with its shadow, the right outline is often among them (the catalogue
/// matcher tries each).
pub fn find_sleeve_candidates(frame: &RgbImage, cfg: &FinderConfig, max: usize) -> Vec<SleeveQuad> {
    let (w, h) = frame.dimensions();
    if w < 16 || h < 16 || max == 0 {
        return Vec::new();
    }
    let (small, scale) = working_image(frame, cfg);
    let (sw, sh) = small.dimensions();
    let edges = colour_edges(&small, cfg);
    let closed = dilate(&edges, Norm::LInf, 1);
    let frame_area = (sw * sh) as f32;
    let min_area = cfg.min_area_fraction * frame_area;
    let mut kept = Ranked::new(max, DISTINCT_CORNERS * sw.max(sh) as f32);
    let max_abs_cos = cfg.min_corner_angle.clamp(0.0, 90.0).to_radians().cos();
    // sides snapped so far on the working image (candidates share many)
    let mut snaps = SideSnaps::new();
    let consider = |quad: [(f32, f32); 4],
                    min_score: f32,
                    kept: &mut Ranked,
                    snaps: &mut SideSnaps| {
        let area = polygon_area(&quad);
        if area < min_area || area > 0.98 * frame_area || !corners_near_square(&quad, max_abs_cos) {
            return;
        }
        let aspect = rectified_aspect(&quad);
        if aspect > cfg.max_aspect {
            return;
        }
        let square = squareness(aspect, cfg.max_aspect);
        // Cheap screen first: a quad that cannot enter the list is not measured in full.
        // The bound must hold after snapping too (corners move up to 2 × SNAP_SEARCH, so
        // the side up to 4 ×), or which near-duplicate wins would depend on `max`.
        if !kept.could_enter(area.sqrt() + 4.0 * SNAP_SEARCH) {
            return;
        }
        // Loose screen: polygon vertices sit a few pixels off the true corners (a drop
        // shadow or a blurred corner bends the contour), so allow 4 px off the side here.
        if edge_support_sampled(&quad, &closed, 16, 4) * square < min_score * 0.8 {
            return;
        }
        // Snap the sides to the strongest colour steps nearby, then measure strictly.
        let snapped = refine_corners_with(&small, quad, SNAP_SEARCH, snaps);
        let quad = if is_convex(&snapped) && corners_near_square(&snapped, max_abs_cos) {
            snapped
        } else {
            quad
        };
        let aspect = rectified_aspect(&quad);
        if aspect > cfg.max_aspect {
            return;
        }
        let score = edge_support(&quad, &closed) * squareness(aspect, cfg.max_aspect);
        if score < min_score {
            return;
        }
        kept.offer(SleeveQuad {
            corners: quad,
            score,
        });
    };
    for contour in find_contours::<i32>(&closed) {
        if contour.points.len() < 16 {
            continue;
        }
        if let Some(quad) = quad_of(&contour.points) {
            consider(quad, cfg.min_score, &mut kept, &mut snaps);
        }
        // A sleeve touching a hand, another sleeve or clutter merges with them into one
        // contour that is not four-sided; its corners are still vertices of the contour's
        // polygon, so four-vertex subsets of that polygon are candidates too.
        if bbox_area(&contour.points) >= min_area {
            for quad in vertex_quads(&contour.points) {
                consider(quad, cfg.min_vertex_score, &mut kept, &mut snaps);
            }
        }
    }
    // A sleeve whose outline merges with a hand, clutter or its own art in the edge map
    // still has four straight sides: quads of four strong lines are candidates too.
    if cfg.line_proposals {
        for quad in line_quads(&edges, min_area.sqrt(), cfg.max_aspect) {
            consider(quad, cfg.min_vertex_score, &mut kept, &mut snaps);
        }
    }
    kept.quads
        .into_iter()
        .map(|q| refine_at_full_scale(frame, q, scale))
        .collect()
}

/// How far (working pixels) a side may move when snapped to the strongest colour step.
const SNAP_SEARCH: f32 = 5.0;
/// Points sampled along each side when snapping it.
const SNAP_SAMPLES: usize = 40;
/// Half-pixel steps either way whose snapping profile fits on the stack (`SNAP_SEARCH` = 5 px
/// uses 10; the full-frame refinement of a 1280 px frame 28).
const MAX_SNAP_STEPS: i32 = 64;

/// Straight lines kept for [`line_quads`] (24 rather than 16: 0.850 → 0.885 catalogue
/// recognition on seed-2 scenes for about 2–4 ms more per find, docs/deploy.md).
const MAX_LINES: usize = 24;
/// Hough resolution: angle step (degrees) and distance step (pixels).
const HOUGH_DEG: usize = 2;
const HOUGH_R: f32 = 2.0;

/// A straight line `x·cos θ + y·sin θ = r` with its Hough votes.
#[derive(Clone, Copy, Debug)]
struct Line {
    theta: f32,
    r: f32,
    votes: u32,
}

/// The strongest lines of a binary edge map (Hough transform, local maxima), longest unbroken
/// stretch first (see [`longest_run`]);
/// a line needs `min_votes` edge pixels.
fn strong_lines(edges: &GrayImage, min_votes: u32) -> Vec<Line> {
    let (w, h) = edges.dimensions();
    let n_theta = 180 / HOUGH_DEG;
    let r_max = ((w * w + h * h) as f32).sqrt();
    let n_r = (2.0 * r_max / HOUGH_R) as usize + 2;
    let trig: Vec<(f32, f32)> = (0..n_theta)
        .map(|t| ((t * HOUGH_DEG) as f32).to_radians().sin_cos())
        .collect();
    let mut acc = vec![0u32; n_theta * n_r];
    for (x, y, p) in edges.enumerate_pixels() {
        if p[0] == 0 {
            continue;
        }
        for (t, (sin, cos)) in trig.iter().enumerate() {
            let r = x as f32 * cos + y as f32 * sin;
            let bin = ((r + r_max) / HOUGH_R) as usize;
            acc[t * n_r + bin] += 1;
        }
    }
    let at = |t: isize, r: isize| -> u32 {
        // θ wraps around with r mirrored
        let (t, r) = if t < 0 {
            (t + n_theta as isize, n_r as isize - 1 - r)
        } else if t >= n_theta as isize {
            (t - n_theta as isize, n_r as isize - 1 - r)
        } else {
            (t, r)
        };
        if r < 0 || r >= n_r as isize {
            0
        } else {
            acc[t as usize * n_r + r as usize]
        }
    };
    let mut lines = Vec::new();
    for t in 0..n_theta as isize {
        for r in 0..n_r as isize {
            let v = acc[t as usize * n_r + r as usize];
            if v < min_votes {
                continue;
            }
            // a local maximum over ±2 angle steps and ±3 distance steps (ties: first wins)
            let is_peak = (-2..=2).all(|dt| {
                (-3..=3).all(|dr| {
                    let o = at(t + dt, r + dr);
                    (dt, dr) == (0, 0) || o < v || (o == v && (dt, dr) > (0, 0))
                })
            });
            if is_peak {
                lines.push(Line {
                    theta: ((t as usize * HOUGH_DEG) as f32).to_radians(),
                    r: (r as f32 + 0.5) * HOUGH_R - r_max,
                    votes: v,
                });
            }
        }
    }
    // Votes count every edge pixel on the line, so busy art gives strong "lines" that are
    // not straight edges; the longest unbroken stretch tells a sleeve's side from those.
    lines.sort_by_key(|l| std::cmp::Reverse(l.votes));
    lines.truncate(RUN_SHORTLIST);
    let mut runs: Vec<(u32, Line)> = lines
        .into_iter()
        .map(|l| (longest_run(edges, &l), l))
        .collect();
    runs.sort_by_key(|(run, l)| (std::cmp::Reverse(*run), std::cmp::Reverse(l.votes)));
    runs.into_iter().take(MAX_LINES).map(|(_, l)| l).collect()
}

/// Peaks (most votes first) measured for their longest stretch before the best
/// [`MAX_LINES`] are kept.
const RUN_SHORTLIST: usize = 64;
/// Gap (pixels) a stretch of edge pixels may bridge.
const RUN_GAP: u32 = 3;

/// Length (pixels) of the longest stretch of `line` in `edges` (an edge pixel within one
/// pixel across the line counts) with no gap longer than [`RUN_GAP`].
fn longest_run(edges: &GrayImage, line: &Line) -> u32 {
    let (w, h) = (edges.width() as f32, edges.height() as f32);
    let (s, c) = line.theta.sin_cos();
    // foot of the normal, and the direction along the line
    let (fx, fy) = (line.r * c, line.r * s);
    let (dx, dy) = (-s, c);
    // the stretch of t where the line is inside the image (slab clipping)
    let (mut t0, mut t1) = (f32::NEG_INFINITY, f32::INFINITY);
    for (f, d, size) in [(fx, dx, w), (fy, dy, h)] {
        if d.abs() < 1e-6 {
            if f < 0.0 || f > size - 1.0 {
                return 0;
            }
        } else {
            let (a, b) = ((0.0 - f) / d, (size - 1.0 - f) / d);
            t0 = t0.max(a.min(b));
            t1 = t1.min(a.max(b));
        }
    }
    if t0 > t1 {
        return 0;
    }
    let (wi, hi) = (edges.width() as i32, edges.height() as i32);
    let raw = edges.as_raw();
    // nearest pixel; coordinates are ≥ -2 here, so truncation after the offset rounds
    let at = |x: f32, y: f32| -> bool {
        let (px, py) = ((x + 2.5) as i32 - 2, (y + 2.5) as i32 - 2);
        px >= 0 && py >= 0 && px < wi && py < hi && raw[(py * wi + px) as usize] > 0
    };
    let on = |x: f32, y: f32| at(x, y) || at(x + c, y + s) || at(x - c, y - s);
    let (mut best, mut run, mut gap) = (0u32, 0u32, 0u32);
    let mut t = t0;
    while t <= t1 {
        if on(fx + t * dx, fy + t * dy) {
            run += gap + 1;
            gap = 0;
            best = best.max(run);
        } else if run > 0 {
            gap += 1;
            if gap > RUN_GAP {
                run = 0;
                gap = 0;
            }
        }
        t += 1.0;
    }
    best
}

/// Angle between two lines' directions, radians in `[0, π/2]`.
fn line_angle(a: &Line, b: &Line) -> f32 {
    let d = (a.theta - b.theta).abs() % std::f32::consts::PI;
    d.min(std::f32::consts::PI - d)
}

/// Intersection of two lines.
fn cross(a: &Line, b: &Line) -> Option<(f32, f32)> {
    let (sa, ca) = a.theta.sin_cos();
    let (sb, cb) = b.theta.sin_cos();
    let det = ca * sb - sa * cb;
    if det.abs() < 1e-3 {
        return None;
    }
    Some(((a.r * sb - b.r * sa) / det, (ca * b.r - cb * a.r) / det))
}

/// Quads bounded by four strong lines: two nearly parallel pairs, each pair at least
/// `min_side` apart, the pairs roughly perpendicular (camera tilt allowed).
fn line_quads(edges: &GrayImage, min_side: f32, max_aspect: f32) -> Vec<[(f32, f32); 4]> {
    let lines = strong_lines(edges, (min_side * 0.5).max(8.0) as u32);
    let parallel = 20f32.to_radians();
    let mut pairs = Vec::new();
    for i in 0..lines.len() {
        for j in i + 1..lines.len() {
            let (a, b) = (&lines[i], &lines[j]);
            if line_angle(a, b) > parallel {
                continue;
            }
            // distance between the two lines, measured along the first one's normal at
            // the second one's foot point
            let (s, c) = b.theta.sin_cos();
            let foot = (b.r * c, b.r * s);
            let (sa, ca) = a.theta.sin_cos();
            if (foot.0 * ca + foot.1 * sa - a.r).abs() >= min_side {
                pairs.push((i, j));
            }
        }
    }
    let mut out = Vec::new();
    let (w, h) = (edges.width() as f32, edges.height() as f32);
    let inside = |p: (f32, f32)| p.0 >= -2.0 && p.1 >= -2.0 && p.0 <= w + 1.0 && p.1 <= h + 1.0;
    for (k, &(a, b)) in pairs.iter().enumerate() {
        for &(c, d) in &pairs[k + 1..] {
            if [a, b].contains(&c) || [a, b].contains(&d) {
                continue;
            }
            if line_angle(&lines[a], &lines[c]) < 50f32.to_radians() {
                continue;
            }
            let corners = [
                cross(&lines[a], &lines[c]),
                cross(&lines[c], &lines[b]),
                cross(&lines[b], &lines[d]),
                cross(&lines[d], &lines[a]),
            ];
            let [Some(p0), Some(p1), Some(p2), Some(p3)] = corners else {
                continue;
            };
            let q = order_clockwise([p0, p1, p2, p3]);
            if q.iter().all(|&p| inside(p)) && is_convex(&q) && rectified_aspect(&q) <= max_aspect {
                out.push(q);
            }
        }
    }
    out
}

/// The frame downscaled so its longer side is at most `cfg.work_size`, and the scale used.
fn working_image(frame: &RgbImage, cfg: &FinderConfig) -> (RgbImage, f32) {
    let (w, h) = frame.dimensions();
    let scale = (cfg.work_size as f32 / w.max(h) as f32).min(1.0);
    if scale >= 1.0 {
        return (frame.clone(), 1.0);
    }
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    (crate::resize::triangle(frame, sw, sh), scale)
}

/// The score [`find_sleeve`] would give the outline `corners` (frame pixels, clockwise
/// from the top-left) in `frame`: for diagnosing misses (is the right outline weak, or
/// never proposed?).
pub fn score_outline(frame: &RgbImage, cfg: &FinderConfig, corners: &[(f32, f32); 4]) -> f32 {
    let (small, scale) = working_image(frame, cfg);
    let closed = dilate(&colour_edges(&small, cfg), Norm::LInf, 1);
    let quad = corners.map(|(x, y)| ((x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5));
    edge_support(&quad, &closed) * squareness(rectified_aspect(&quad), cfg.max_aspect)
}

/// 1 for a square outline, falling linearly to 0.5 at the largest accepted aspect ratio.
fn squareness(aspect: f32, max_aspect: f32) -> f32 {
    1.0 - (aspect - 1.0) / (max_aspect - 1.0).max(1e-3) * 0.5
}

/// Two candidates are the same outline when no corner moved more than this share of the
/// working image's longer side.
pub const DISTINCT_CORNERS: f32 = 0.04;

/// Rank of a candidate: well-supported and big (the sleeve, not a sticker on it). Squaring
/// the score or a stricter threshold for vertex candidates measured worse on synthetic
/// scenes.
fn rank_of(score: f32, area: f32) -> f32 {
    score * area.sqrt()
}

/// The best `max` mutually distinct candidates seen so far, best first.
struct Ranked {
    max: usize,
    same_within: f32,
    quads: Vec<SleeveQuad>,
}

impl Ranked {
    fn new(max: usize, same_within: f32) -> Self {
        Self {
            max,
            same_within,
            quads: Vec::with_capacity(max + 1),
        }
    }

    fn rank(q: &SleeveQuad) -> f32 {
        rank_of(q.score, q.area())
    }

    /// Whether a candidate of rank at most `bound` could still be kept. (A near-duplicate
    /// of a kept one could replace it anyway; the bound only prunes a full list.)
    fn could_enter(&self, bound: f32) -> bool {
        self.quads.len() < self.max || self.quads.last().is_some_and(|w| bound > Self::rank(w))
    }

    fn offer(&mut self, q: SleeveQuad) {
        let rank = Self::rank(&q);
        // A near-duplicate of a better kept outline adds nothing.
        if let Some(i) = self
            .quads
            .iter()
            .position(|k| k.max_corner_error(&q.corners) <= self.same_within)
        {
            if Self::rank(&self.quads[i]) >= rank {
                return;
            }
            self.quads.remove(i);
        }
        let at = self.quads.partition_point(|k| Self::rank(k) >= rank);
        self.quads.insert(at, q);
        // Any kept outline now duplicating the new, better one goes.
        let within = self.same_within;
        let mut i = at + 1;
        while i < self.quads.len() {
            if self.quads[i].max_corner_error(&q.corners) <= within {
                self.quads.remove(i);
            } else {
                i += 1;
            }
        }
        self.quads.truncate(self.max);
    }
}

/// Corners found on the working image, moved to the frame and refined there.
fn refine_at_full_scale(frame: &RgbImage, best: SleeveQuad, scale: f32) -> SleeveQuad {
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
    SleeveQuad {
        corners: if is_convex(&refined) { refined } else { coarse },
        score: best.score,
    }
}

/// Sub-pixel refinement at full resolution: along each side, the strongest intensity step
/// within `search` pixels of the coarse outline is found at 40 points; a line is fitted to
/// them (twice, dropping points more than 1.5 px off) and the corners become the
/// intersections of adjacent lines. A side with too little evidence keeps its coarse line.
fn refine_corners(img: &RgbImage, q: [(f32, f32); 4], search: f32) -> [(f32, f32); 4] {
    refine_corners_with(img, q, search, &mut SideSnaps::off())
}

/// A line through a point, with its unit direction: (x, y, dx, dy).
type SideLine = (f32, f32, f32, f32);

/// Sides already snapped on one image at one search width, by their exact end points.
/// Candidate outlines share sides (four-vertex subsets of one contour polygon share
/// vertex pairs: about half the sides snapped per frame repeat one snapped before), and a
/// side's snapped line depends only on its end points, so a repeat is looked up instead of
/// sampled and fitted again: the same line, bit for bit.
struct SideSnaps {
    lines: Option<HashMap<[u32; 4], SideLine>>,
}

impl SideSnaps {
    /// Remembers every side snapped (for one image and one search width only).
    fn new() -> Self {
        Self {
            lines: Some(HashMap::new()),
        }
    }

    /// Remembers nothing.
    fn off() -> Self {
        Self { lines: None }
    }
}

/// [`refine_corners`], looking sides up in `snaps` first and adding the new ones.
fn refine_corners_with(
    img: &RgbImage,
    q: [(f32, f32); 4],
    search: f32,
    snaps: &mut SideSnaps,
) -> [(f32, f32); 4] {
    // Samples across a side, at every odd quarter-pixel position the step search reads
    // (below): on the stack up to MAX_SNAP_STEPS (frames up to ~3,200 px wide), else on the heap.
    let steps = (search * 2.0) as i32;
    let n_profile = 2 * steps.max(0) as usize + 4;
    let mut on_stack = [[0.0f32; 3]; 2 * MAX_SNAP_STEPS as usize + 4];
    let mut on_heap = Vec::new();
    let profile: &mut [[f32; 3]] = if n_profile <= on_stack.len() {
        &mut on_stack[..n_profile]
    } else {
        on_heap.resize(n_profile, [0.0f32; 3]);
        &mut on_heap
    };
    let mut lines = [(0.0f32, 0.0f32, 0.0f32, 0.0f32); 4];
    for (i, line) in lines.iter_mut().enumerate() {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let key = [a.0, a.1, b.0, b.1].map(f32::to_bits);
        if let Some(known) = snaps.lines.as_ref().and_then(|m| m.get(&key)) {
            *line = *known;
            continue;
        }
        *line = snap_side(img, a, b, steps, profile);
        if let Some(m) = snaps.lines.as_mut() {
            m.insert(key, *line);
        }
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

/// The side from `a` to `b` snapped to the strongest colour steps within `steps` half
/// pixels across it (`profile`: scratch of `2 * steps + 4` samples); the coarse side
/// itself when too few points find a step.
fn snap_side(
    img: &RgbImage,
    a: (f32, f32),
    b: (f32, f32),
    steps: i32,
    profile: &mut [[f32; 3]],
) -> SideLine {
    let len = dist(a, b).max(1e-3);
    let (dx, dy) = ((b.0 - a.0) / len, (b.1 - a.1) / len);
    let (nx, ny) = (-dy, dx);
    // on the stack: this runs for every screened candidate of every frame
    let mut pts = [(0.0f32, 0.0f32); SNAP_SAMPLES];
    let mut n = 0;
    for k in 0..SNAP_SAMPLES {
        let t = 0.1 + 0.8 * k as f32 / (SNAP_SAMPLES - 1) as f32;
        let (px, py) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        // The step at offset o (half-pixel steps) compares samples at o ± 0.75 across
        // the side: quarter-pixel positions 2s ± 3 for o = s / 2, all odd, so one
        // profile of samples at the odd quarter positions serves every offset.
        let mut best = (0.0f32, 0.0f32);
        for (j, v) in profile.iter_mut().enumerate() {
            let u = (2 * j as i32 - 2 * steps - 3) as f32 * 0.25;
            *v = sample(img, px + u * nx, py + u * ny);
        }
        for s in -steps..=steps {
            let o = s as f32 * 0.5;
            let j = (s + steps) as usize;
            let (lo, hi) = (profile[j], profile[j + 3]);
            let g = (hi[0] - lo[0]).abs() + (hi[1] - lo[1]).abs() + (hi[2] - lo[2]).abs();
            if g > best.0 {
                best = (g, o);
            }
        }
        if best.0 >= 12.0 {
            pts[n] = (px + best.1 * nx, py + best.1 * ny);
            n += 1;
        }
    }
    fit_line(&pts[..n]).unwrap_or((a.0, a.1, dx, dy))
}

/// Bilinear RGB at a sub-pixel position (clamped to the image).
fn sample(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = img.dimensions();
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    // non-negative after the clamp, so truncation is the floor
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w as usize - 1), (y0 + 1).min(h as usize - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    // straight from the raw buffer: this runs for every sample of every snapped side
    let (raw, row) = (img.as_raw(), 3 * w as usize);
    let px = |x: usize, y: usize| {
        let i = y * row + 3 * x;
        [raw[i], raw[i + 1], raw[i + 2]].map(f32::from)
    };
    let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
    core::array::from_fn(|k| {
        (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy
    })
}

/// Total-least-squares line through points, refitted without outliers (> 1.5 px).
fn fit_line(pts: &[(f32, f32)]) -> Option<(f32, f32, f32, f32)> {
    // the fit over the points `keep` accepts (no allocation: it runs for every side of
    // every screened candidate)
    let fit = |keep: &dyn Fn(&(f32, f32)) -> bool| -> Option<(f32, f32, f32, f32)> {
        let (mut n, mut sx, mut sy) = (0usize, 0.0f32, 0.0f32);
        for p in pts.iter().filter(|p| keep(p)) {
            n += 1;
            sx += p.0;
            sy += p.1;
        }
        if n < 8 {
            return None;
        }
        let (mx, my) = (sx / n as f32, sy / n as f32);
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for p in pts.iter().filter(|p| keep(p)) {
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
    let mut first = fit(&|_| true)?;
    let mut support = pts.iter().filter(|p| off(first, p) <= 1.5).count();
    if support == pts.len() {
        // every point is on the least-squares line: no pair can do better
        return Some(first);
    }
    let near = NearCount::new(pts);
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            let len = dist(*a, *b);
            if len < 1e-3 {
                continue;
            }
            let l = (a.0, a.1, (b.0 - a.0) / len, (b.1 - a.1) / len);
            let n = near.count(l);
            if n > support {
                (first, support) = (l, n);
            }
        }
    }
    fit(&|p| off(first, p) <= 1.5).or(Some(first))
}

/// Counts the points within 1.5 px of a line, as `fit_line`'s `off` measures it (the same
/// float operations, so the same count) but branch-free over fixed-size coordinate arrays,
/// which the compiler vectorises: the consensus search asks this for every pair of points
/// of every snapped side, and it was most of the snapping's time.
struct NearCount {
    xs: [f32; SNAP_SAMPLES],
    ys: [f32; SNAP_SAMPLES],
    /// Points beyond the arrays (none from `refine_corners`), counted one by one.
    rest: Vec<(f32, f32)>,
}

impl NearCount {
    fn new(pts: &[(f32, f32)]) -> Self {
        // NaN padding is never near anything
        let (mut xs, mut ys) = ([f32::NAN; SNAP_SAMPLES], [f32::NAN; SNAP_SAMPLES]);
        for (k, p) in pts.iter().take(SNAP_SAMPLES).enumerate() {
            (xs[k], ys[k]) = *p;
        }
        let rest = pts.iter().skip(SNAP_SAMPLES).copied().collect();
        Self { xs, ys, rest }
    }

    fn count(&self, l: (f32, f32, f32, f32)) -> usize {
        let near = |x: f32, y: f32| ((x - l.0) * -l.3 + (y - l.1) * l.2).abs() <= 1.5;
        let in_arrays: u32 = self
            .xs
            .iter()
            .zip(&self.ys)
            .map(|(&x, &y)| u32::from(near(x, y)))
            .sum();
        in_arrays as usize + self.rest.iter().filter(|p| near(p.0, p.1)).count()
    }
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

/// The working image's binary edge map, by `cfg.edges` (both find edges on every colour
/// channel: a sleeve whose grey level matches the counter still differs in hue).
fn colour_edges(img: &RgbImage, cfg: &FinderConfig) -> GrayImage {
    let (sigma, low, high) = (cfg.blur_sigma, cfg.canny_low, cfg.canny_high);
    match cfg.edges {
        EdgeMethod::Colour => edges::colour_canny(img, sigma, low, high),
        EdgeMethod::PerChannel => edges::per_channel_canny(img, sigma, low, high),
    }
}

/// Warps the sleeve to a `size × size` image (top-left corner at the origin).
pub fn rectify(frame: &RgbImage, quad: &SleeveQuad, size: u32) -> Option<RgbImage> {
    let s = size as f32;
    let target = [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)];
    let p = Projection::from_control_points(quad.corners, target)?;
    let mut out = RgbImage::new(size, size);
    warp::warp_bilinear(frame, p.invert(), &mut out);
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
/// Whether every interior angle's cosine is at most `max_abs_cos` in magnitude.
fn corners_near_square(q: &[(f32, f32); 4], max_abs_cos: f32) -> bool {
    (0..4).all(|i| {
        let (p, a, b) = (q[i], q[(i + 3) % 4], q[(i + 1) % 4]);
        let (u, v) = ((a.0 - p.0, a.1 - p.1), (b.0 - p.0, b.1 - p.1));
        let norms = (u.0.hypot(u.1) * v.0.hypot(v.1)).max(1e-6);
        ((u.0 * v.0 + u.1 * v.1) / norms).abs() <= max_abs_cos
    })
}

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
    let (w, h) = (edges.width() as i32, edges.height() as i32);
    let raw = edges.as_raw();
    let is_edge = |px: i32, py: i32| {
        px >= 0 && py >= 0 && px < w && py < h && raw[(py * w + px) as usize] > 0
    };
    // the 4-neighbourhood, then up to `tol` pixels either way across the side
    let mut offsets = [(0i32, 0i32); 5 + 2 * MAX_SUPPORT_TOL as usize + 1];
    offsets[..5].copy_from_slice(&[(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]);
    debug_assert!((0..=MAX_SUPPORT_TOL).contains(&tol), "tol {tol}");
    let tol = tol.clamp(0, MAX_SUPPORT_TOL);
    let n_offsets = 5 + 2 * tol as usize + 1;
    let mut sides = [0.0f32; 4];
    for (i, side) in sides.iter_mut().enumerate() {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let n = if per_side > 0 {
            per_side
        } else {
            (dist(a, b) as usize).max(8)
        };
        let len = dist(a, b).max(1e-3);
        let (nx, ny) = (-(b.1 - a.1) / len, (b.0 - a.0) / len);
        for (slot, o) in offsets[5..n_offsets].iter_mut().zip(-tol..=tol) {
            *slot = (
                (o as f32 * nx).round() as i32,
                (o as f32 * ny).round() as i32,
            );
        }
        let mut hits = 0;
        for k in 0..n {
            let t = (k as f32 + 0.5) / n as f32;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            let (xr, yr) = (x.round() as i32, y.round() as i32);
            let on_edge = offsets[..n_offsets]
                .iter()
                .any(|&(dx, dy)| is_edge(xr + dx, yr + dy));
            hits += usize::from(on_edge);
        }
        *side = hits as f32 / n as f32;
    }
    let mean = sides.iter().sum::<f32>() / 4.0;
    let worst = sides.iter().copied().fold(1.0, f32::min);
    (mean * 2.0 + worst * 2.0) / 4.0
}

/// Largest tolerance (pixels across a side) [`edge_support_sampled`] takes.
const MAX_SUPPORT_TOL: i32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of short strokes (text, stripes in the art) puts more edge pixels on one
    /// line than a sleeve's side does; the unbroken side must still rank first, and the
    /// stroke row must not take a place among the lines at all when better ones exist.
    #[test]
    fn unbroken_sides_outrank_rows_of_strokes() {
        use imageproc::drawing::draw_line_segment_mut;
        let mut edges = GrayImage::new(400, 300);
        // an unbroken side, 120 px (120 votes)
        draw_line_segment_mut(&mut edges, (100.0, 50.0), (220.0, 50.0), image::Luma([255]));
        // a row of 5-px dashes 5 px apart over 380 px (190 votes)
        for k in 0..38 {
            let x = 10.0 + 10.0 * k as f32;
            draw_line_segment_mut(&mut edges, (x, 200.0), (x + 4.0, 200.0), image::Luma([255]));
        }
        let side_run = longest_run(
            &edges,
            &Line {
                theta: std::f32::consts::FRAC_PI_2,
                r: 50.0,
                votes: 0,
            },
        );
        assert!((118..=124).contains(&side_run), "side run {side_run}");
        let lines = strong_lines(&edges, 8);
        let first = lines.first().expect("a line");
        assert!(
            (first.theta.to_degrees() - 90.0).abs() < 3.0 && (first.r - 50.0).abs() < 3.0,
            "first line {first:?}"
        );
        let dashed = lines
            .iter()
            .position(|l| (l.theta.to_degrees() - 90.0).abs() < 3.0 && (l.r - 200.0).abs() < 3.0)
            .expect("the stroke row is still a line");
        let dashed_votes = lines[dashed].votes;
        assert!(
            dashed_votes > first.votes,
            "{dashed_votes} vs {}",
            first.votes
        );
    }

    /// Snapping finds a square's sides from corners 6 px off, both with a search window
    /// whose profile fits on the stack and with one that needs the heap (huge frames).
    #[test]
    fn snapping_finds_the_sides_at_any_search_width() {
        let img = RgbImage::from_fn(400, 400, |x, y| {
            if (100..300).contains(&x) && (100..300).contains(&y) {
                image::Rgb([220, 200, 40])
            } else {
                image::Rgb([30, 30, 60])
            }
        });
        let truth = [
            (100.0, 100.0),
            (300.0, 100.0),
            (300.0, 300.0),
            (100.0, 300.0),
        ];
        let off = [(94.0, 106.0), (306.0, 95.0), (295.0, 306.0), (106.0, 294.0)];
        for search in [8.0, MAX_SNAP_STEPS as f32 / 2.0 + 20.0] {
            let got = refine_corners(&img, off, search);
            for (g, t) in got.iter().zip(&truth) {
                // the step sits between the last pixel in and the first out
                assert!(dist(*g, *t) < 1.5, "search {search}: {got:?}");
            }
        }
    }

    /// A tilted outline drawn into an edge map, broken in places and crossed by
    /// interior strokes that join it (so its contour is not four-sided): the four-line
    /// quads include it.
    #[test]
    fn line_quads_recover_an_outline_merged_with_strokes() {
        use imageproc::drawing::draw_line_segment_mut;
        let mut edges = GrayImage::new(320, 240);
        let truth = [(70.0, 40.0), (250.0, 55.0), (240.0, 215.0), (58.0, 200.0)];
        for i in 0..4 {
            let (a, b) = (truth[i], truth[(i + 1) % 4]);
            // each side drawn in two pieces with a gap
            let mid = |t: f32| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            draw_line_segment_mut(&mut edges, a, mid(0.45), image::Luma([255]));
            draw_line_segment_mut(&mut edges, mid(0.55), b, image::Luma([255]));
        }
        // interior art strokes touching the outline
        for k in 0..6 {
            let y = 70.0 + 22.0 * k as f32;
            draw_line_segment_mut(
                &mut edges,
                (66.0, y),
                (150.0 + 10.0 * k as f32, y + 30.0),
                image::Luma([255]),
            );
        }
        let quads = line_quads(&edges, 40.0, 1.45);
        let err = |q: &[(f32, f32); 4]| {
            q.iter()
                .zip(&truth)
                .map(|(a, b)| dist(*a, *b))
                .fold(0.0, f32::max)
        };
        let best = quads.iter().map(err).fold(f32::INFINITY, f32::min);
        assert!(
            best < 4.0,
            "closest four-line quad is {best:.1} px off ({} quads)",
            quads.len()
        );
        // the strongest lines are the outline's four sides
        let lines = strong_lines(&edges, 20);
        assert!(lines.len() >= 4 && lines[0].votes >= 100, "{lines:?}");
    }

    #[test]
    fn corner_angles_tell_a_sleeve_from_a_sliver() {
        let max_cos = DEFAULT_MIN_CORNER_ANGLE.to_radians().cos();
        // a tilted square with mild perspective: corners within 80–100°
        let sleeve = [(10.0, 12.0), (110.0, 8.0), (114.0, 106.0), (6.0, 110.0)];
        assert!(corners_near_square(&sleeve, max_cos));
        // a triangle with a fourth vertex on one of its sides (a 180° corner)
        let triangle = [(0.0, 0.0), (100.0, 0.0), (100.0, 50.0), (100.0, 100.0)];
        assert!(!corners_near_square(&triangle, max_cos));
        // a rhombus with 30° corners
        let rhombus = [(0.0, 0.0), (100.0, 0.0), (186.6, 50.0), (86.6, 50.0)];
        assert!(!corners_near_square(&rhombus, max_cos));
    }

    #[test]
    fn ordering_is_clockwise_from_top_left() {
        let q = order_clockwise([(10.0, 90.0), (90.0, 10.0), (10.0, 10.0), (90.0, 90.0)]);
        assert_eq!(q, [(10.0, 10.0), (90.0, 10.0), (90.0, 90.0), (10.0, 90.0)]);
        assert!((rectified_aspect(&q) - 1.0).abs() < 1e-6);
        assert_eq!(polygon_area(&q), 6400.0);
    }
}

//! Recognising the store's own records: the catalogue file (loaded, verified, reloaded when
//! it changes), nearest-neighbour matching of a rectified sleeve, and holding a match
//! steady on screen.
//!
//! A sleeve matches an entry when the cosine similarity of their descriptors
//! (`sleeve_shared::catalogue`) is at least [`MatchConfig::threshold`] *and* beats the best
//! other entry by [`MatchConfig::margin`]; otherwise the kiosk falls back to the genre.
//! Without a catalogue file nothing here runs and the kiosk behaves as before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use image::RgbImage;
use serde::Serialize;
use sleeve_shared::RgbView;
use sleeve_shared::catalogue::{Catalogue, CatalogueEntry, Hit, Index, describe_quantized};

use crate::engine::ms;
use crate::finder::{FinderConfig, SleeveQuad, find_sleeve_candidates, rectify};

mod align;
pub use align::{AlignConfig, Aligned, DEFAULT_ALIGN_ENTRIES, MAX_ALIGN_ENTRIES, align};

/// Default similarity threshold, calibrated on synthetic camera scenes for a false-match
/// rate of at most 1 % (docs/catalogue.md).
pub const DEFAULT_THRESHOLD: f32 = 0.90;
/// Default margin over the best other entry.
pub const DEFAULT_MARGIN: f32 = 0.05;
/// Default frames between checks of the catalogue file for changes.
pub const DEFAULT_CHECK_EVERY: u64 = 30;
/// Default number of the finder's candidate outlines tried against the catalogue.
pub const DEFAULT_CANDIDATES: usize = 4;
/// Most candidate outlines a frame may try.
pub const MAX_CANDIDATES: usize = 16;
/// Default Canny thresholds `(low, high)` of the finder's second pass on a frame whose
/// outlines gave no match ([`MatchConfig::retry_canny`]; chosen on synthetic scenes,
/// docs/catalogue.md).
pub const DEFAULT_RETRY_CANNY: (f32, f32) = (10.0, 30.0);
/// Default frames in a row a new record must match before it is shown
/// ([`MatchConfig::record_frames`]; chosen on synthetic holds, docs/catalogue.md).
pub const DEFAULT_RECORD_FRAMES: u32 = 2;
/// A second-pass outline whose corners are all within this share of the frame's longer
/// side of a first-pass outline is not matched again.
const SAME_OUTLINE: f32 = 0.01;

/// Matching settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchConfig {
    /// Cosine similarity at or above which the best entry is a match, `(0, 1]`.
    pub threshold: f32,
    /// How much the best entry must beat the best other entry, `[0, 1)`.
    pub margin: f32,
    /// Frames between checks of the file's modification time and size (≥ 1).
    pub check_every: u64,
    /// How many of the finder's candidate outlines of a sleeve are matched (the best
    /// match wins), `1..=MAX_CANDIDATES`.
    pub candidates: usize,
    /// Aligning the outline to the best entries when the first search is not a match.
    pub align: AlignConfig,
    /// When the finder's outlines give no match, find the sleeve again with these lower
    /// Canny thresholds `(low, high)` and match those outlines too ([`match_frame`]);
    /// `None`: one pass.
    pub retry_canny: Option<(f32, f32)>,
    /// Frames in a row a new record must match before the kiosk shows it (≥ 1).
    pub record_frames: u32,
}

impl MatchConfig {
    /// True when `hit` is a match: at or above the threshold and ahead of the best other
    /// entry by the margin.
    pub fn accepts(&self, hit: &Hit) -> bool {
        hit.score >= self.threshold && hit.score - hit.second >= self.margin
    }
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            margin: DEFAULT_MARGIN,
            check_every: DEFAULT_CHECK_EVERY,
            candidates: DEFAULT_CANDIDATES,
            align: AlignConfig::default(),
            retry_canny: Some(DEFAULT_RETRY_CANNY),
            record_frames: DEFAULT_RECORD_FRAMES,
        }
    }
}

/// A recognised record, as JSON lines and the screen show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordMatch {
    /// Catalogue entry id.
    pub id: u64,
    /// Artist.
    pub artist: String,
    /// Title.
    pub title: String,
    /// The store's bin.
    pub bin: String,
    /// Further columns of the catalogue (price, SKU, ...).
    pub extra: BTreeMap<String, String>,
    /// Cosine similarity of the sleeve and the entry.
    pub score: f32,
    /// Similarity of the best other entry.
    pub runner_up: f32,
}

impl RecordMatch {
    fn of(e: &CatalogueEntry, score: f32, runner_up: f32) -> Self {
        Self {
            id: e.id,
            artist: e.artist.clone(),
            title: e.title.clone(),
            bin: e.bin.clone(),
            extra: e.extra.iter().cloned().collect(),
            score,
            runner_up,
        }
    }
}

/// A verified catalogue ready to search.
pub struct Loaded {
    entries: Vec<CatalogueEntry>,
    index: Index,
}

impl Loaded {
    /// Reads and verifies a catalogue file.
    pub fn read(path: &Path) -> Result<Self, sleeve_shared::catalogue::CatalogueError> {
        let c = Catalogue::read(path)?;
        Ok(Self::from(c))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl From<Catalogue> for Loaded {
    fn from(c: Catalogue) -> Self {
        let index = c.index();
        Self {
            entries: c.entries,
            index,
        }
    }
}

type Stamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len()))
}

/// What one sleeve matched: the match, if any, and the time it took (ms).
#[derive(Clone, Debug, Default)]
pub struct Recognition {
    /// The matched record.
    pub record: Option<RecordMatch>,
    /// Best similarity seen (match or not), for logs and calibration.
    pub best_score: Option<f32>,
    /// Descriptor + search time, milliseconds.
    pub ms: f64,
}

/// The catalogue file, watched for changes, and the matcher over it.
pub struct Recogniser {
    path: PathBuf,
    cfg: MatchConfig,
    current: Option<Arc<Loaded>>,
    loaded_stamp: Option<Stamp>,
    failed_stamp: Option<Stamp>,
    frames: u64,
}

impl Recogniser {
    /// Watches `path`; loads it now if it exists. A missing file is not an error (the kiosk
    /// runs on genre alone until one appears); a refused file is logged and skipped.
    pub fn new(path: PathBuf, cfg: MatchConfig) -> Self {
        let mut r = Self {
            path,
            cfg: MatchConfig {
                check_every: cfg.check_every.max(1),
                candidates: cfg.candidates.clamp(1, MAX_CANDIDATES),
                record_frames: cfg.record_frames.max(1),
                ..cfg
            },
            current: None,
            loaded_stamp: None,
            failed_stamp: None,
            frames: 0,
        };
        r.reload_if_changed();
        r
    }

    /// The matching settings in effect.
    pub fn config(&self) -> &MatchConfig {
        &self.cfg
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The catalogue in use, if any.
    pub fn current(&self) -> Option<&Arc<Loaded>> {
        self.current.as_ref()
    }

    /// Counts a frame and, every `check_every` frames, reloads the file if its
    /// modification time or size changed. Returns true when the catalogue in use changed.
    pub fn tick(&mut self) -> bool {
        self.frames += 1;
        if !self.frames.is_multiple_of(self.cfg.check_every) {
            return false;
        }
        self.reload_if_changed()
    }

    /// Reloads the file now if it changed since the last load (or failed load). A new
    /// catalogue replaces the old one in a single swap, only once it is fully read and
    /// verified; a refused file leaves the old one in use. A removed file unloads it.
    pub fn reload_if_changed(&mut self) -> bool {
        let Some(now) = stamp(&self.path) else {
            if self.current.take().is_some() {
                tracing::warn!(catalogue = %self.path.display(), "catalogue file removed: genre only");
                self.loaded_stamp = None;
                return true;
            }
            return false;
        };
        if Some(now) == self.loaded_stamp || Some(now) == self.failed_stamp {
            return false;
        }
        let t = Instant::now();
        match Loaded::read(&self.path) {
            Ok(l) => {
                tracing::info!(
                    catalogue = %self.path.display(),
                    entries = l.len(),
                    load_ms = ms(t),
                    "catalogue loaded"
                );
                self.current = Some(Arc::new(l));
                self.loaded_stamp = Some(now);
                self.failed_stamp = None;
                true
            }
            Err(e) => {
                tracing::error!(
                    catalogue = %self.path.display(),
                    error = %e,
                    kept = self.current.as_ref().map(|c| c.len()),
                    "catalogue refused: keeping the one in use (or genre only)"
                );
                self.failed_stamp = Some(now);
                false
            }
        }
    }

    /// How many candidate outlines per frame to match (1 when no catalogue is loaded).
    pub fn candidates(&self) -> usize {
        if self.current.is_some() {
            self.cfg.candidates
        } else {
            1
        }
    }

    /// Matches a rectified sleeve against the catalogue in use (no outline: no alignment).
    pub fn recognise(&self, rectified: &RgbImage) -> Recognition {
        let t = Instant::now();
        let Some(cat) = &self.current else {
            return Recognition::default();
        };
        let hit = search(&cat.index, rectified).map(|(h, _)| h);
        self.recognition(cat, hit, t)
    }

    /// Matches a frame as [`match_frame`] does: `outlines` are the finder's candidates
    /// (`finder` found them), best first, and `first` the rectification of the first when
    /// made; `side` is the rectified side.
    pub fn recognise_frame(
        &self,
        frame: &RgbImage,
        finder: &FinderConfig,
        outlines: &[SleeveQuad],
        first: Option<&RgbImage>,
        side: u32,
    ) -> Recognition {
        let t = Instant::now();
        let Some(cat) = &self.current else {
            return Recognition::default();
        };
        let hit =
            match_frame(&cat.index, frame, finder, outlines, first, side, &self.cfg).map(|o| o.hit);
        self.recognition(cat, hit, t)
    }

    fn recognition(&self, cat: &Loaded, hit: Option<Hit>, t: Instant) -> Recognition {
        let record = hit.filter(|h| self.cfg.accepts(h)).and_then(|h| {
            cat.entries
                .get(h.entry as usize)
                .map(|e| RecordMatch::of(e, h.score, h.second))
        });
        Recognition {
            record,
            best_score: hit.map(|h| h.score),
            ms: ms(t),
        }
    }
}

/// The best catalogue hit of one found sleeve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutlineHit {
    /// The best entry, its score and the runner-up's.
    pub hit: Hit,
    /// The outline that gave it (aligned or one of the finder's).
    pub quad: SleeveQuad,
    /// True when alignment produced it.
    pub aligned: bool,
    /// The best score before alignment (equal to `hit.score` when not aligned).
    pub unaligned: f32,
    /// True when the finder's second pass ([`MatchConfig::retry_canny`]) found the outline.
    pub retried: bool,
}

/// Matches a frame as the kiosk does: the finder's `outlines` ([`match_outlines`]), and when
/// they give no match and [`MatchConfig::retry_canny`] is set, the outlines the finder then
/// proposes with those lower Canny thresholds (the faint sides of a dark sleeve on a dark
/// counter, which the first pass drops), less those that repeat a first-pass outline. A
/// match wins, else the higher score; `None`: no outline in either pass could be described.
pub fn match_frame(
    index: &Index,
    frame: &RgbImage,
    finder: &FinderConfig,
    outlines: &[SleeveQuad],
    first: Option<&RgbImage>,
    side: u32,
    cfg: &MatchConfig,
) -> Option<OutlineHit> {
    let hit = match_outlines(index, frame, outlines, first, side, cfg);
    if hit.as_ref().is_some_and(|h| cfg.accepts(&h.hit)) {
        return hit;
    }
    let Some((low, high)) = cfg
        .retry_canny
        .filter(|&(low, high)| low < finder.canny_low || high < finder.canny_high)
    else {
        return hit;
    };
    let lower = FinderConfig {
        canny_low: low,
        canny_high: high,
        ..finder.clone()
    };
    // Outlines the first pass already matched would give the same hits again.
    let same_within = SAME_OUTLINE * frame.width().max(frame.height()) as f32;
    let mut again = find_sleeve_candidates(frame, &lower, cfg.candidates);
    again.retain(|q| {
        outlines
            .iter()
            .all(|o| o.max_corner_error(&q.corners) > same_within)
    });
    if again.is_empty() {
        return hit;
    }
    let retried = match_outlines(index, frame, &again, None, side, cfg)
        .map(|o| OutlineHit { retried: true, ..o });
    match (hit, retried) {
        (Some(a), Some(b)) if !cfg.accepts(&b.hit) && a.hit.score >= b.hit.score => Some(a),
        (a, b) => b.or(a),
    }
}

/// Matches a found sleeve as the kiosk does. Each of `outlines` (the finder's candidates,
/// best first; `first` is the first one's rectification when already made) is rectified at
/// `side` and searched, and the best hit wins. When that hit is not a match by `cfg` but
/// scores at least [`AlignConfig::floor`], its outline is aligned to the best
/// [`AlignConfig::entries`] entries ([`align`]) and searched again; the better of the two
/// hits is returned. `None`: no outline could be described.
pub fn match_outlines(
    index: &Index,
    frame: &RgbImage,
    outlines: &[SleeveQuad],
    first: Option<&RgbImage>,
    side: u32,
    cfg: &MatchConfig,
) -> Option<OutlineHit> {
    let mut best: Option<(OutlineHit, Vec<i8>)> = None;
    for (i, q) in outlines.iter().enumerate() {
        let found = match (i, first) {
            (0, Some(img)) => search(index, img),
            _ => rectify(frame, q, side).and_then(|img| search(index, &img)),
        };
        if let Some((hit, query)) = found
            && best.as_ref().is_none_or(|(b, _)| hit.score > b.hit.score)
        {
            let o = OutlineHit {
                hit,
                quad: *q,
                aligned: false,
                unaligned: hit.score,
                retried: false,
            };
            best = Some((o, query));
        }
    }
    let (best, query) = best?;
    if cfg.accepts(&best.hit) || cfg.align.entries == 0 || best.hit.score < cfg.align.floor {
        return Some(best);
    }
    let targets: Vec<usize> = index
        .top_entries(&query, cfg.align.entries)
        .iter()
        .map(|s| s.row)
        .collect();
    let better = align(frame, &best.quad, index, &targets, &cfg.align)
        .and_then(|a| {
            let img = rectify(frame, &a.quad, side)?;
            search(index, &img).map(|(hit, _)| OutlineHit {
                hit,
                quad: a.quad,
                aligned: true,
                unaligned: best.hit.score,
                retried: false,
            })
        })
        .filter(|a| a.hit.score > best.hit.score);
    Some(better.unwrap_or(best))
}

/// The best entry for one rectified sleeve and the sleeve's descriptor (None: nothing
/// comparable).
fn search(index: &Index, rectified: &RgbImage) -> Option<(Hit, Vec<i8>)> {
    let view = RgbView::new(rectified.width(), rectified.height(), rectified.as_raw()).ok()?;
    let q = describe_quantized(&view).ok()?;
    index.search(&q).map(|h| (h, q))
}

/// A change of the record shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change", content = "record")]
pub enum RecordEvent {
    /// A (new) record is shown.
    Shown(RecordMatch),
    /// No record is shown any more (the genre is).
    Cleared,
}

/// Holds a record on screen: a new one must match `hold_frames` frames in a row; the
/// shown one clears after `clear_frames` frames without it.
#[derive(Clone, Debug)]
pub struct RecordHold {
    hold_frames: u32,
    clear_frames: u32,
    shown: Option<RecordMatch>,
    candidate: Option<(u64, u32)>,
    misses: u32,
}

impl RecordHold {
    /// A hold with these frame counts (each at least 1).
    pub fn new(hold_frames: u32, clear_frames: u32) -> Self {
        Self {
            hold_frames: hold_frames.max(1),
            clear_frames: clear_frames.max(1),
            shown: None,
            candidate: None,
            misses: 0,
        }
    }

    /// The record on screen.
    pub fn shown(&self) -> Option<&RecordMatch> {
        self.shown.as_ref()
    }

    /// Takes one frame's match (None: no sleeve or no match).
    pub fn update(&mut self, m: Option<&RecordMatch>) -> Option<RecordEvent> {
        let Some(m) = m else {
            self.candidate = None;
            self.misses += 1;
            if self.shown.is_some() && self.misses >= self.clear_frames {
                self.shown = None;
                return Some(RecordEvent::Cleared);
            }
            return None;
        };
        if let Some(s) = self.shown.as_mut().filter(|s| s.id == m.id) {
            s.score = m.score;
            s.runner_up = m.runner_up;
            self.misses = 0;
            self.candidate = None;
            return None;
        }
        self.misses += 1;
        let count = match self.candidate {
            Some((id, n)) if id == m.id => n + 1,
            _ => 1,
        };
        self.candidate = Some((m.id, count));
        if count >= self.hold_frames {
            self.shown = Some(m.clone());
            self.candidate = None;
            self.misses = 0;
            return Some(RecordEvent::Shown(m.clone()));
        }
        if self.shown.is_some() && self.misses >= self.clear_frames {
            self.shown = None;
            return Some(RecordEvent::Cleared);
        }
        None
    }
}

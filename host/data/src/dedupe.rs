//! Duplicate removal: exact (same SHA-256) and near (perceptual-hash Hamming distance ≤ a
//! threshold).
//!
//! * An image (exact or near copy) that appears under two or more genres is ambiguous: every
//!   copy is dropped, from all its genres, and reported.
//! * Exact copies within one genre: the first row (manifest order) is kept.
//! * Near copies within one genre are kept by default and share a `group` key, so `split`
//!   puts them in the same split (no train/test leakage); with `drop_near` only the first
//!   is kept.

use std::collections::{BTreeSet, HashMap};

use rayon::prelude::*;

use crate::manifest::{DroppedRow, ManifestRow};
use crate::store::phash_bits;

/// Default near-duplicate threshold: Hamming distance between 64-bit pHashes. On the 3,654
/// real covers of covers5, every pair at distance ≤ 8 that was inspected was the same cover
/// (rescans, stickers, re-crops); at 10 about one pair in ten was not.
pub const DEFAULT_NEAR_THRESHOLD: u32 = 8;

/// Dedupe settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupeOptions {
    /// Near-duplicate threshold (pHash Hamming distance); None disables near-duplicate
    /// detection.
    pub near_threshold: Option<u32>,
    /// Keep only the first of each same-genre near-duplicate group (default: keep all,
    /// grouped).
    pub drop_near: bool,
}

impl Default for DedupeOptions {
    fn default() -> Self {
        Self {
            near_threshold: Some(DEFAULT_NEAR_THRESHOLD),
            drop_near: false,
        }
    }
}

/// What [`dedupe`] did.
#[derive(Clone, Debug, Default)]
pub struct DedupeReport {
    /// Exact copies removed within a genre.
    pub exact_removed: usize,
    /// Same-genre near-duplicate groups (size ≥ 2) found.
    pub near_groups: usize,
    /// Near copies removed (only with `drop_near`).
    pub near_removed: usize,
    /// Rows removed because their image is under several genres.
    pub cross_genre_removed: usize,
    /// One line per cross-genre conflict: ids and genres involved.
    pub conflicts: Vec<String>,
    /// Every removed row, with its reason (for `dropped.csv`).
    pub dropped: Vec<DroppedRow>,
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index stays root: groups are named after their first row.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = lo;
        }
    }
}

/// Removes duplicates from `rows` (rows without an image are untouched) and (re)computes
/// near-duplicate `group` keys.
pub fn dedupe(rows: &mut Vec<ManifestRow>, opts: DedupeOptions) -> DedupeReport {
    let mut report = DedupeReport::default();
    let mut drop: Vec<Option<String>> = vec![None; rows.len()];

    // 1. exact copies.
    let mut by_sha: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.has_image() {
            by_sha.entry(r.sha256.as_str()).or_default().push(i);
        }
    }
    let mut sha_groups: Vec<Vec<usize>> = by_sha.into_values().filter(|g| g.len() > 1).collect();
    sha_groups.sort();
    for g in sha_groups {
        let genres: BTreeSet<&str> = g.iter().map(|&i| rows[i].genre.as_str()).collect();
        if genres.len() > 1 {
            let ids: Vec<&str> = g.iter().map(|&i| rows[i].id.as_str()).collect();
            let msg = format!(
                "same image under genres {}: {}",
                genres.iter().copied().collect::<Vec<_>>().join(", "),
                ids.join(", ")
            );
            report.conflicts.push(msg.clone());
            for &i in &g {
                drop[i] = Some(msg.clone());
                report.cross_genre_removed += 1;
            }
        } else {
            for &i in &g[1..] {
                drop[i] = Some(format!("exact duplicate of {}", rows[g[0]].id));
                report.exact_removed += 1;
            }
        }
    }

    // 2. near copies among the survivors.
    for r in rows.iter_mut() {
        r.group.clear();
    }
    if let Some(t) = opts.near_threshold {
        let cand: Vec<(usize, u64)> = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| drop[*i].is_none() && r.has_image())
            .filter_map(|(i, r)| Some((i, phash_bits(&r.phash)?)))
            .collect();
        let pairs: Vec<(usize, usize)> = (0..cand.len())
            .into_par_iter()
            .flat_map_iter(|a| {
                let cand = &cand;
                (a + 1..cand.len()).filter_map(move |b| {
                    ((cand[a].1 ^ cand[b].1).count_ones() <= t).then_some((cand[a].0, cand[b].0))
                })
            })
            .collect();
        let mut uf = UnionFind((0..rows.len()).collect());
        for (a, b) in pairs {
            uf.union(a, b);
        }
        let mut comps: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(i, _) in &cand {
            let root = uf.find(i);
            comps.entry(root).or_default().push(i);
        }
        let mut comps: Vec<Vec<usize>> = comps.into_values().filter(|c| c.len() > 1).collect();
        for c in comps.iter_mut() {
            c.sort();
        }
        comps.sort();
        for c in comps {
            let genres: BTreeSet<&str> = c.iter().map(|&i| rows[i].genre.as_str()).collect();
            if genres.len() > 1 {
                let ids: Vec<&str> = c.iter().map(|&i| rows[i].id.as_str()).collect();
                let msg = format!(
                    "near-identical images under genres {}: {}",
                    genres.iter().copied().collect::<Vec<_>>().join(", "),
                    ids.join(", ")
                );
                report.conflicts.push(msg.clone());
                for &i in &c {
                    drop[i] = Some(msg.clone());
                    report.cross_genre_removed += 1;
                }
            } else if opts.drop_near {
                for &i in &c[1..] {
                    drop[i] = Some(format!("near duplicate of {}", rows[c[0]].id));
                    report.near_removed += 1;
                }
            } else {
                report.near_groups += 1;
                let key = rows[c[0]].id.clone();
                for &i in &c {
                    rows[i].group = key.clone();
                }
            }
        }
    }

    // 3. remove.
    let old = std::mem::take(rows);
    for (r, why) in old.into_iter().zip(drop) {
        match why {
            None => rows.push(r),
            Some(reason) => report.dropped.push(DroppedRow {
                id: r.id,
                genre: r.genre,
                reason,
                sha256: r.sha256,
                path: r.path,
                url: r.url,
            }),
        }
    }
    report
}

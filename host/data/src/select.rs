//! Genre selection: `--genres a,b,c`, `--min-per-genre N`, `--top-genres N`.

use std::collections::{BTreeMap, BTreeSet};

use sleeve_shared::labels::canonical_genre;

use crate::manifest::{DroppedRow, ManifestRow};

/// Which genres to keep. Applied in this order: `genres`, `min_per_genre`, `top_genres`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Keep only these genres (any spelling; canonicalised).
    pub genres: Option<Vec<String>>,
    /// Drop genres with fewer rows than this.
    pub min_per_genre: Option<usize>,
    /// Keep only the N largest genres (ties broken by name).
    pub top_genres: Option<usize>,
}

impl Selection {
    /// True when nothing is selected away.
    pub fn is_noop(&self) -> bool {
        self.genres.is_none() && self.min_per_genre.is_none() && self.top_genres.is_none()
    }

    /// The canonical `genres` list, if any.
    pub fn canonical_genres(&self) -> Option<Vec<String>> {
        self.genres.as_ref().map(|g| {
            g.iter()
                .map(|s| canonical_genre(s))
                .filter(|s| !s.is_empty())
                .collect()
        })
    }
}

/// Removes the rows of unselected genres and returns them with the reason. Genre sizes
/// count rows with an image only when `images_only`, else all rows (e.g. before `fetch`).
pub fn select(rows: &mut Vec<ManifestRow>, sel: &Selection, images_only: bool) -> Vec<DroppedRow> {
    if sel.is_noop() {
        return Vec::new();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows.iter() {
        let c = counts.entry(r.genre.clone()).or_insert(0);
        if !images_only || r.has_image() {
            *c += 1;
        }
    }
    let mut why: BTreeMap<String, String> = BTreeMap::new();
    if let Some(list) = sel.canonical_genres() {
        let keep: BTreeSet<String> = list.into_iter().collect();
        for g in counts.keys() {
            if !keep.contains(g) {
                why.insert(g.clone(), "genre not in --genres".into());
            }
        }
    }
    if let Some(min) = sel.min_per_genre {
        for (g, &n) in &counts {
            if n < min && !why.contains_key(g) {
                why.insert(
                    g.clone(),
                    format!("genre has {n} images, fewer than --min-per-genre {min}"),
                );
            }
        }
    }
    if let Some(top) = sel.top_genres {
        let mut left: Vec<(&String, usize)> = counts
            .iter()
            .filter(|(g, _)| !why.contains_key(*g))
            .map(|(g, &n)| (g, n))
            .collect();
        left.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let cut: Vec<String> = left.iter().skip(top).map(|(g, _)| (*g).clone()).collect();
        for g in cut {
            why.insert(g, format!("genre not among the --top-genres {top}"));
        }
    }
    let old = std::mem::take(rows);
    let mut dropped = Vec::new();
    for r in old {
        match why.get(&r.genre) {
            None => rows.push(r),
            Some(reason) => dropped.push(DroppedRow {
                id: r.id,
                genre: r.genre,
                reason: reason.clone(),
                sha256: r.sha256,
                path: r.path,
                url: r.url,
            }),
        }
    }
    dropped
}

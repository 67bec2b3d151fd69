//! Stratified, deterministic, leakage-free train/val/test split.
//!
//! Per genre, the groups of that genre (a group = rows sharing a near-duplicate `group`
//! key, else the same SHA-256, else a single row) are sorted by key and shuffled with a
//! ChaCha8 RNG seeded from `seed` and the genre name; groups then fill `test`, then `val`,
//! up to `round(n × fraction)` images each, and the rest is `train`. Whole groups go to one
//! split, so near-duplicates never straddle train and test. The result depends only on the
//! rows' genres and group keys and the seed, not on row order.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::dataset::Record;
use crate::error::{DataError, Result};
use crate::manifest::{ManifestRow, Split};

/// Split fractions and seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitConfig {
    /// Fraction of each genre for validation.
    pub val: f64,
    /// Fraction of each genre for test.
    pub test: f64,
    /// RNG seed.
    pub seed: u64,
}

impl SplitConfig {
    /// Checks `0 ≤ val, test` and `val + test < 1`.
    pub fn validate(&self) -> Result<()> {
        let ok = |f: f64| f.is_finite() && (0.0..1.0).contains(&f);
        if !ok(self.val) || !ok(self.test) || self.val + self.test >= 1.0 {
            return Err(DataError::Invalid(format!(
                "split fractions must be in [0, 1) with val + test < 1 (got val {}, test {})",
                self.val, self.test
            )));
        }
        Ok(())
    }
}

/// Assigns a split to each `(genre, group key)` item; items sharing a key get the same
/// split (a group spanning genres is placed with its most common genre).
pub fn split_items(items: &[(&str, &str)], cfg: &SplitConfig) -> Result<Vec<Split>> {
    cfg.validate()?;
    // group key → per-genre sizes.
    let mut groups: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for &(genre, key) in items {
        *groups.entry(key).or_default().entry(genre).or_insert(0) += 1;
    }
    // genre → [(key, size)] (each group under its majority genre).
    let mut by_genre: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    for (key, genres) in &groups {
        let (home, _) = genres
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .expect("a group has at least one row");
        by_genre
            .entry(*home)
            .or_default()
            .push((key, genres.values().sum()));
    }
    let mut assigned: BTreeMap<&str, Split> = BTreeMap::new();
    for (genre, mut list) in by_genre {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ fnv1a(genre.as_bytes()));
        list.shuffle(&mut rng);
        let n: usize = list.iter().map(|g| g.1).sum();
        let target = |f: f64| {
            let t = (n as f64 * f).round() as usize;
            if f > 0.0 && t == 0 && n >= 3 { 1 } else { t }
        };
        let (want_test, want_val) = (target(cfg.test), target(cfg.val));
        let (mut got_test, mut got_val) = (0, 0);
        for (key, size) in list {
            let s = if got_test < want_test {
                got_test += size;
                Split::Test
            } else if got_val < want_val {
                got_val += size;
                Split::Val
            } else {
                Split::Train
            };
            assigned.insert(key, s);
        }
    }
    Ok(items.iter().map(|(_, key)| assigned[key]).collect())
}

/// Splits manifest rows that have an image (rows without one get no split).
pub fn split_rows(rows: &mut [ManifestRow], cfg: &SplitConfig) -> Result<()> {
    let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].has_image()).collect();
    let items: Vec<(&str, &str)> = idx
        .iter()
        .map(|&i| (rows[i].genre.as_str(), rows[i].group_key()))
        .collect();
    let splits = split_items(&items, cfg)?;
    for r in rows.iter_mut() {
        r.split = None;
    }
    for (i, s) in idx.into_iter().zip(splits) {
        rows[i].split = Some(s);
    }
    Ok(())
}

/// Splits in-memory records (e.g. from a plain folder via [`crate::load_any`]), grouping by
/// SHA-256 when known, else by id. Existing splits are overwritten.
pub fn split_records(records: &mut [Record], cfg: &SplitConfig) -> Result<()> {
    let items: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r.genre.as_str(),
                r.sha256.as_deref().unwrap_or(r.id.as_str()),
            )
        })
        .collect();
    let splits = split_items(&items, cfg)?;
    for (r, s) in records.iter_mut().zip(splits) {
        r.split = Some(s);
    }
    Ok(())
}

/// 64-bit FNV-1a: a stable (platform- and version-independent) hash for seeding.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

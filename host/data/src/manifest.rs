//! `manifest.csv`: one row per cover in a dataset directory.
//!
//! Columns (header row, in this order; readers match by name and ignore extra columns):
//! `id, sha256, path, genre, source, split, url, artist, album, width, height, phash, group, error`.
//! `path` is relative to the dataset directory with `/` separators
//! (`images/ab/abcdef….jpg`); `sha256`/`path` are empty for rows whose image has not been
//! downloaded yet.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// File name of the manifest inside a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.csv";
/// File name of the list of rows removed by dedupe/selection.
pub const DROPPED_FILE: &str = "dropped.csv";

/// Which part of the data a cover belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (model selection, early stopping, calibration).
    Val,
    /// Held-out test data.
    Test,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// Lower-case name as written in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Ok(Split::Train),
            "val" | "valid" | "validation" => Ok(Split::Val),
            "test" | "testing" => Ok(Split::Test),
            other => Err(DataError::Invalid(format!(
                "unknown split '{other}' (expected train, val or test)"
            ))),
        }
    }
}

/// One row of `manifest.csv`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Unique id within the dataset (e.g. `rock/cover.jpg`, `itunes:1440857781`).
    pub id: String,
    /// Lower-case hex SHA-256 of the image bytes; empty until the image is present.
    #[serde(default)]
    pub sha256: String,
    /// Image path relative to the dataset directory; empty until the image is present.
    #[serde(default)]
    pub path: String,
    /// Canonical genre name (`sleeve_shared::labels::canonical_genre`).
    pub genre: String,
    /// Where the row came from (`folder`, `csv`, `mumu`, `itunes`).
    #[serde(default)]
    pub source: String,
    /// Assigned split, if `sleeve dataset split` has run.
    #[serde(default)]
    pub split: Option<Split>,
    /// Download URL, if known.
    #[serde(default)]
    pub url: String,
    /// Artist, if known.
    #[serde(default)]
    pub artist: String,
    /// Album title, if known.
    #[serde(default)]
    pub album: String,
    /// Image width in pixels, when the image is present.
    #[serde(default)]
    pub width: Option<u32>,
    /// Image height in pixels, when the image is present.
    #[serde(default)]
    pub height: Option<u32>,
    /// 64-bit perceptual hash (DCT pHash) as 16 hex digits, when the image is present.
    #[serde(default)]
    pub phash: String,
    /// Near-duplicate group key (id of the group's first member); rows sharing it always
    /// land in the same split. Empty: the row is its own group.
    #[serde(default)]
    pub group: String,
    /// Last download error for URL rows that have no image yet.
    #[serde(default)]
    pub error: String,
}

impl ManifestRow {
    /// True when the row's image is stored in the dataset.
    pub fn has_image(&self) -> bool {
        !self.sha256.is_empty() && !self.path.is_empty()
    }

    /// Key that keeps near-duplicates together: `group`, else `sha256`, else `id`.
    pub fn group_key(&self) -> &str {
        if !self.group.is_empty() {
            &self.group
        } else if !self.sha256.is_empty() {
            &self.sha256
        } else {
            &self.id
        }
    }
}

/// A row removed from the manifest, with the reason (written to `dropped.csv`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DroppedRow {
    /// The row's id.
    pub id: String,
    /// The row's genre.
    pub genre: String,
    /// Why it was removed.
    pub reason: String,
    /// Image hash, if any.
    #[serde(default)]
    pub sha256: String,
    /// Image path, if any (the file stays in `images/`).
    #[serde(default)]
    pub path: String,
    /// URL, if any.
    #[serde(default)]
    pub url: String,
}

/// Reads a CSV file of serde rows (header row; columns matched by name).
pub fn read_csv_rows<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_err(path, e))?;
    let mut out = Vec::new();
    for rec in rdr.deserialize() {
        out.push(rec.map_err(|e| csv_err(path, e))?);
    }
    Ok(out)
}

/// Writes serde rows as CSV with a header, atomically.
pub fn write_csv_rows<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut wtr = csv::Writer::from_writer(Vec::new());
    for r in rows {
        wtr.serialize(r).map_err(|e| csv_err(path, e))?;
    }
    let bytes = wtr
        .into_inner()
        .map_err(|e| DataError::io(path, std::io::Error::other(e.to_string())))?;
    sleeve_shared::fsutil::write_atomic(path, &bytes).map_err(|e| DataError::io(path, e))
}

/// Appends rows to `dropped.csv` (read, extend, atomic rewrite). A row identical to one
/// already listed is not repeated, so re-running a command does not grow the file.
pub fn append_dropped(dir: &Path, rows: &[DroppedRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let path = dir.join(DROPPED_FILE);
    let mut all: Vec<DroppedRow> = if path.exists() {
        read_csv_rows(&path)?
    } else {
        Vec::new()
    };
    let before = all.len();
    let mut seen: std::collections::HashSet<DroppedRow> = all.iter().cloned().collect();
    for r in rows {
        if seen.insert(r.clone()) {
            all.push(r.clone());
        }
    }
    if all.len() == before && path.exists() {
        return Ok(());
    }
    write_csv_rows(&path, &all)
}

fn csv_err(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => DataError::io(path, io),
        kind => DataError::Malformed {
            path: path.to_path_buf(),
            line,
            message: csv_kind_message(kind),
        },
    }
}

fn csv_kind_message(kind: csv::ErrorKind) -> String {
    match kind {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(f) => format!("column {}: {}", f + 1, err.kind()),
            None => err.kind().to_string(),
        },
        csv::ErrorKind::Utf8 { err, .. } => format!("invalid UTF-8: {err}"),
        other => format!("{other:?}"),
    }
}

/// Checks that a manifest `path` is relative and stays inside the dataset directory, and
/// returns it joined onto `root`.
pub fn resolve_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let mut depth: i32 = 0;
    for c in p.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if depth == 0 {
        return None;
    }
    Some(root.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parses_and_prints() {
        assert_eq!("Validation".parse::<Split>().unwrap(), Split::Val);
        assert_eq!(Split::Test.to_string(), "test");
        assert!("holdout".parse::<Split>().is_err());
    }

    #[test]
    fn resolve_inside_rejects_escapes() {
        let root = Path::new("/data");
        assert!(resolve_inside(root, "images/ab/x.jpg").is_some());
        assert!(resolve_inside(root, "../x.jpg").is_none());
        assert!(resolve_inside(root, "images/../../x.jpg").is_none());
        assert!(resolve_inside(root, "/etc/passwd").is_none());
        assert!(resolve_inside(root, "").is_none());
    }

    #[test]
    fn manifest_round_trip_with_empty_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        let rows = vec![
            ManifestRow {
                id: "a".into(),
                genre: "rock".into(),
                url: "http://x/a.jpg".into(),
                ..Default::default()
            },
            ManifestRow {
                id: "b".into(),
                sha256: "ab".into(),
                path: "images/ab/ab.jpg".into(),
                genre: "pop".into(),
                split: Some(Split::Val),
                width: Some(3),
                height: Some(4),
                ..Default::default()
            },
        ];
        write_csv_rows(&p, &rows).unwrap();
        let back: Vec<ManifestRow> = read_csv_rows(&p).unwrap();
        assert_eq!(back, rows);
    }
}

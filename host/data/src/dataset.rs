//! [`Dataset`]: a dataset directory (`manifest.csv` + `images/`) and the [`Record`]s other
//! crates train and evaluate on; [`load_any`] also accepts a plain folder-per-genre tree.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::folder::scan_image_folder;
use crate::manifest::{
    MANIFEST_FILE, ManifestRow, Split, read_csv_rows, resolve_inside, write_csv_rows,
};

/// One usable image: what training and evaluation code needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Unique id within its dataset.
    pub id: String,
    /// SHA-256 of the image bytes (None for plain folders, which are not hashed).
    pub sha256: Option<String>,
    /// Absolute path of the image file.
    pub path: PathBuf,
    /// Canonical genre name.
    pub genre: String,
    /// Split, if assigned (always None for a plain folder-per-genre tree).
    pub split: Option<Split>,
}

/// A dataset directory: `manifest.csv` plus content-addressed `images/`.
#[derive(Clone, Debug)]
pub struct Dataset {
    root: PathBuf,
    rows: Vec<ManifestRow>,
}

impl Dataset {
    /// Opens an existing dataset directory and validates its manifest: ids unique, genres
    /// non-empty, image paths relative and inside the directory. Errors name the line.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let root = absolute(dir.as_ref())?;
        let path = root.join(MANIFEST_FILE);
        if !path.is_file() {
            return Err(DataError::NotADataset(root));
        }
        let rows: Vec<ManifestRow> = read_csv_rows(&path)?;
        let mut ids = HashSet::new();
        for (i, r) in rows.iter().enumerate() {
            let line = i as u64 + 2;
            let bad = |message: String| DataError::Malformed {
                path: path.clone(),
                line,
                message,
            };
            if r.id.is_empty() {
                return Err(bad("empty id".into()));
            }
            if !ids.insert(r.id.as_str()) {
                return Err(bad(format!("duplicate id '{}'", r.id)));
            }
            if r.genre.is_empty() {
                return Err(bad(format!("row '{}' has an empty genre", r.id)));
            }
            if !r.path.is_empty() && resolve_inside(&root, &r.path).is_none() {
                return Err(bad(format!(
                    "path '{}' is not inside the dataset directory",
                    r.path
                )));
            }
        }
        Ok(Self { root, rows })
    }

    /// Opens `dir` if it holds a manifest, else starts an empty dataset there (nothing is
    /// written until [`Dataset::save`]).
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if dir.join(MANIFEST_FILE).is_file() {
            return Self::open(dir);
        }
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        Ok(Self {
            root: absolute(dir)?,
            rows: Vec::new(),
        })
    }

    /// The dataset directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All manifest rows, including rows whose image is not downloaded yet.
    pub fn rows(&self) -> &[ManifestRow] {
        &self.rows
    }

    /// Mutable access to the rows (call [`Dataset::save`] afterwards).
    pub fn rows_mut(&mut self) -> &mut Vec<ManifestRow> {
        &mut self.rows
    }

    /// Writes `manifest.csv` atomically.
    pub fn save(&self) -> Result<()> {
        write_csv_rows(&self.root.join(MANIFEST_FILE), &self.rows)
    }

    /// Absolute path of a row's image, if it has one.
    pub fn image_path(&self, row: &ManifestRow) -> Option<PathBuf> {
        if row.has_image() {
            resolve_inside(&self.root, &row.path)
        } else {
            None
        }
    }

    /// Every row that has an image, as a [`Record`], in manifest order.
    pub fn records(&self) -> Vec<Record> {
        self.rows
            .iter()
            .filter_map(|r| {
                Some(Record {
                    id: r.id.clone(),
                    sha256: Some(r.sha256.clone()),
                    path: self.image_path(r)?,
                    genre: r.genre.clone(),
                    split: r.split,
                })
            })
            .collect()
    }

    /// The records of one split.
    pub fn split_records(&self, split: Split) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| r.split == Some(split))
            .collect()
    }

    /// Sorted genre names of rows that have an image.
    pub fn genres(&self) -> Vec<String> {
        genres_of(&self.records())
    }

    /// Number of images per genre (rows with an image only).
    pub fn genre_counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in self.rows.iter().filter(|r| r.has_image()) {
            *m.entry(r.genre.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// Sorted unique genre names of some records (e.g. to build a `LabelSet`).
pub fn genres_of(records: &[Record]) -> Vec<String> {
    let mut g: Vec<String> = records.iter().map(|r| r.genre.clone()).collect();
    g.sort();
    g.dedup();
    g
}

/// Loads records from either a dataset directory (`manifest.csv`; a path to the manifest
/// file itself also works) or a plain folder-per-genre tree (`DIR/<genre>/*.jpg`; splits
/// None, or taken from a `train/ val/ test/` top level). Problems in a plain tree (empty
/// genre names, non-image files) are logged as warnings.
pub fn load_any(dir: impl AsRef<Path>) -> Result<Vec<Record>> {
    let dir = dir.as_ref();
    if dir.is_file() && dir.file_name().is_some_and(|n| n == MANIFEST_FILE) {
        let parent = dir.parent().unwrap_or(Path::new("."));
        return Ok(Dataset::open(parent)?.records());
    }
    if dir.join(MANIFEST_FILE).is_file() {
        return Ok(Dataset::open(dir)?.records());
    }
    if !dir.is_dir() {
        return Err(DataError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        ));
    }
    let root = absolute(dir)?;
    let scan = scan_image_folder(&root)?;
    for issue in &scan.issues {
        tracing::warn!("{issue}");
    }
    if scan.images.is_empty() {
        return Err(DataError::NoImages(root));
    }
    Ok(scan
        .images
        .into_iter()
        .map(|im| Record {
            id: im.rel,
            sha256: None,
            path: im.path,
            genre: im.genre,
            split: im.split,
        })
        .collect())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| DataError::io(p, e))
}

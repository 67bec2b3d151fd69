//! Importers: turn a source (folder, CSV, MuMu, iTunes RSS) into [`Candidate`]s, then
//! [`ingest`] them into a [`Dataset`]: genre canonicalisation, id checks, image validation
//! and content-addressed storage. URL candidates become rows without an image until
//! `fetch`.

pub mod csv_list;
pub mod folder;
pub mod itunes;
pub mod itunes_genres;
pub mod mumu;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

use indicatif::{ParallelProgressIterator, ProgressBar};
use rayon::prelude::*;
use sleeve_shared::labels::canonical_genre;

use crate::dataset::Dataset;
use crate::manifest::ManifestRow;
use crate::store::{ImageStore, inspect_image};

/// Where a candidate's image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A local file (already checked to be inside the allowed folder).
    Local(PathBuf),
    /// An `http(s)` URL, downloaded later by `fetch`.
    Url(String),
}

/// One cover an importer found, before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Explicit id; derived from the source when None.
    pub id: Option<String>,
    /// The image.
    pub image: ImageSource,
    /// Genre as written in the source (canonicalised by [`ingest`]).
    pub genre: String,
    /// Artist, if known.
    pub artist: String,
    /// Album title, if known.
    pub album: String,
    /// Where it was found, for messages (`list.csv:12`).
    pub origin: String,
}

/// A non-fatal problem with one input row or file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// File and row/line (`list.csv:12`, `covers/rock/x.jpg`).
    pub location: String,
    /// What is wrong and what was done about it.
    pub message: String,
}

impl Issue {
    /// New issue.
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// What an importer produced.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    /// Covers found.
    pub candidates: Vec<Candidate>,
    /// Rows/files that could not be used.
    pub issues: Vec<Issue>,
}

/// Counts from [`ingest`].
#[derive(Clone, Debug, Default)]
pub struct IngestReport {
    /// New rows with a stored image.
    pub images: usize,
    /// New rows waiting for `fetch`.
    pub urls: usize,
    /// Candidates already in the dataset (same id, genre and source): skipped.
    pub already_present: usize,
    /// Candidates outside `--genres`.
    pub filtered: usize,
    /// Everything that went wrong, per row/file.
    pub issues: Vec<Issue>,
    /// New rows per genre.
    pub per_genre: BTreeMap<String, usize>,
}

/// Longest canonical genre name accepted (canonical names are short: `hiphop`).
pub const MAX_GENRE_LEN: usize = 64;

/// Validates candidates and appends them to the dataset (not saved: the caller saves).
///
/// * genre: canonicalised; empty → issue; not in `only_genres` (when given) → filtered.
/// * id: explicit or derived from the source; a duplicate of an existing row is skipped
///   (silently if it is the same cover, else with an issue); duplicates within the input
///   keep the first when the genre agrees, and drop all of them when it does not.
/// * local images: read, fully decoded, hashed and stored under `images/`; unreadable or
///   corrupt files are issues.
///
/// Fails (nothing appended) when an image cannot be written into the dataset (a full disk,
/// no permission): that is a problem of the destination, not of one input row.
pub fn ingest(
    ds: &mut Dataset,
    source: &str,
    parsed: Parsed,
    only_genres: Option<&[String]>,
) -> Result<IngestReport, crate::DataError> {
    let mut report = IngestReport {
        issues: parsed.issues,
        ..Default::default()
    };
    // 1. genre + id.
    let mut staged: Vec<(String, String, Candidate)> = Vec::new(); // (id, genre, cand)
    for c in parsed.candidates {
        let genre = canonical_genre(&c.genre);
        if genre.is_empty() {
            report.issues.push(Issue::new(
                &c.origin,
                format!("empty or unusable genre '{}'; row skipped", c.genre),
            ));
            continue;
        }
        if genre.len() > MAX_GENRE_LEN {
            report.issues.push(Issue::new(
                &c.origin,
                format!(
                    "genre name of {} characters is over the {MAX_GENRE_LEN}-character limit; row skipped",
                    genre.len()
                ),
            ));
            continue;
        }
        // Every importer downloads only http(s): a `file://` or other scheme from a feed
        // is refused here, as the CSV importer refuses it.
        if let ImageSource::Url(u) = &c.image
            && !csv_list::is_url(u)
        {
            report.issues.push(Issue::new(
                &c.origin,
                format!("image URL '{u}' is not http(s); row skipped"),
            ));
            continue;
        }
        if let Some(only) = only_genres
            && !only.contains(&genre)
        {
            report.filtered += 1;
            continue;
        }
        let id = match &c.id {
            Some(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => match &c.image {
                ImageSource::Url(u) => u.clone(),
                ImageSource::Local(p) => p.to_string_lossy().to_string(),
            },
        };
        staged.push((id, genre, c));
    }
    // 2. duplicate ids within the input and against the dataset.
    let existing: HashMap<&str, &ManifestRow> =
        ds.rows().iter().map(|r| (r.id.as_str(), r)).collect();
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut conflicted: HashMap<String, Vec<String>> = HashMap::new();
    let mut keep = vec![true; staged.len()];
    for (i, (id, genre, c)) in staged.iter().enumerate() {
        if let Some(row) = existing.get(id.as_str()) {
            keep[i] = false;
            let same_source = match &c.image {
                ImageSource::Url(u) => *u == row.url,
                ImageSource::Local(_) => true,
            };
            if row.genre == *genre && same_source {
                report.already_present += 1;
            } else {
                report.issues.push(Issue::new(
                    &c.origin,
                    format!(
                        "duplicate id '{id}': the dataset already has it (genre '{}'); row skipped",
                        row.genre
                    ),
                ));
            }
            continue;
        }
        match first_of.get(id) {
            None => {
                first_of.insert(id.clone(), i);
            }
            Some(&j) => {
                keep[i] = false;
                let (_, g0, c0) = &staged[j];
                if g0 == genre {
                    report.issues.push(Issue::new(
                        &c.origin,
                        format!("duplicate id '{id}' (first at {}); row skipped", c0.origin),
                    ));
                } else {
                    conflicted
                        .entry(id.clone())
                        .or_insert_with(|| vec![g0.clone()])
                        .push(genre.clone());
                    report.issues.push(Issue::new(
                        &c.origin,
                        format!(
                            "id '{id}' is listed as '{genre}' here and as '{g0}' at {}; dropped from both genres",
                            c0.origin
                        ),
                    ));
                }
            }
        }
    }
    for (i, (id, _, _)) in staged.iter().enumerate() {
        if conflicted.contains_key(id) {
            keep[i] = false;
        }
    }
    let staged: Vec<_> = staged
        .into_iter()
        .zip(keep)
        .filter_map(|(s, k)| k.then_some(s))
        .collect();

    // 3. local images: decode + store in parallel.
    let store = ImageStore::new(ds.root());
    let pb = progress_bar(staged.len() as u64, "importing");
    let results: Vec<Result<ManifestRow, RowFailure>> = staged
        .into_par_iter()
        .progress_with(pb.clone())
        .map(|(id, genre, c)| build_row(&store, source, id, genre, c))
        .collect();
    pb.finish_and_clear();
    for r in results {
        match r {
            Ok(row) => {
                if row.has_image() {
                    report.images += 1;
                } else {
                    report.urls += 1;
                }
                *report.per_genre.entry(row.genre.clone()).or_insert(0) += 1;
                ds.rows_mut().push(row);
            }
            Err(RowFailure::Skip(issue)) => report.issues.push(issue),
            // the caller does not save the dataset: nothing of this import is kept
            Err(RowFailure::Store(e)) => {
                return Err(crate::DataError::Invalid(format!(
                    "cannot store images in {}: {e}",
                    ds.root().display()
                )));
            }
        }
    }
    Ok(report)
}

/// Why a candidate did not become a row.
enum RowFailure {
    /// The input is at fault (unreadable, not an image): reported, row skipped.
    Skip(Issue),
    /// The dataset could not be written (a full disk): the import stops.
    Store(String),
}

fn build_row(
    store: &ImageStore,
    source: &str,
    id: String,
    genre: String,
    c: Candidate,
) -> Result<ManifestRow, RowFailure> {
    let mut row = ManifestRow {
        id,
        genre,
        source: source.to_string(),
        artist: c.artist,
        album: c.album,
        ..Default::default()
    };
    match c.image {
        ImageSource::Url(u) => row.url = u,
        ImageSource::Local(path) => {
            let bytes = std::fs::read(&path).map_err(|e| {
                RowFailure::Skip(Issue::new(
                    &c.origin,
                    format!("cannot read {}: {e}; skipped", path.display()),
                ))
            })?;
            let info = inspect_image(&bytes).map_err(|e| {
                RowFailure::Skip(Issue::new(
                    &c.origin,
                    format!("{}: {e}; skipped", path.display()),
                ))
            })?;
            let rel = store
                .put(&info, &bytes)
                .map_err(|e| RowFailure::Store(format!("{}: {e}", c.origin)))?;
            row.sha256 = info.sha256;
            row.path = rel;
            row.width = Some(info.width);
            row.height = Some(info.height);
            row.phash = info.phash;
        }
    }
    Ok(row)
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    sleeve_shared::progress::bar(len, what.to_string())
}

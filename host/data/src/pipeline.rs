//! The dataset commands as library calls (the CLI prints their summaries): import, fetch,
//! dedupe, split, stats.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::dataset::Dataset;
use crate::dedupe::{DedupeOptions, DedupeReport, dedupe};
use crate::error::Result;
use crate::fetch::{FetchOptions, FetchReport, fetch};
use crate::import::{self, IngestReport, Issue, Parsed, ingest};
use crate::manifest::{DroppedRow, append_dropped, write_csv_rows};
use crate::select::{Selection, select};
use crate::split::{SplitConfig, split_rows};

/// File listing the problems of the last import (`location,message`).
pub const ISSUES_FILE: &str = "import-issues.csv";

/// Where `import` reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportSource {
    /// Folder-per-genre tree.
    Folder(PathBuf),
    /// CSV list of paths/URLs and genres.
    Csv(PathBuf),
    /// MuMu single-label CSV plus Amazon metadata JSON.
    Mumu {
        /// The MuMu CSV.
        csv: PathBuf,
        /// Amazon metadata (JSON array or JSON lines).
        metadata: PathBuf,
    },
    /// iTunes top-albums RSS JSON feeds.
    Itunes {
        /// Feed files.
        feeds: Vec<PathBuf>,
        /// Rewrite artwork URLs to this size (pixels).
        art_size: Option<u32>,
    },
}

impl ImportSource {
    /// `folder`, `csv`, `mumu` or `itunes` (the manifest's `source` column).
    pub fn kind(&self) -> &'static str {
        match self {
            ImportSource::Folder(_) => "folder",
            ImportSource::Csv(_) => "csv",
            ImportSource::Mumu { .. } => "mumu",
            ImportSource::Itunes { .. } => "itunes",
        }
    }

    /// Reads the source into candidates. Whole-file problems are errors; per-row problems
    /// are issues.
    pub fn parse(&self) -> Result<Parsed> {
        match self {
            ImportSource::Folder(d) => import::folder::parse(d),
            ImportSource::Csv(f) => import::csv_list::parse(f),
            ImportSource::Mumu { csv, metadata } => import::mumu::parse(csv, metadata),
            ImportSource::Itunes { feeds, art_size } => {
                let mut all = Parsed::default();
                for f in feeds {
                    let p = import::itunes::parse(f, *art_size)?;
                    all.candidates.extend(p.candidates);
                    all.issues.extend(p.issues);
                }
                Ok(all)
            }
        }
    }
}

/// Result of [`import_into`].
#[derive(Clone, Debug, Default)]
pub struct ImportSummary {
    /// Validation and storage counts, and all issues.
    pub ingest: IngestReport,
    /// Duplicates removed.
    pub dedupe: DedupeReport,
    /// Rows removed by genre selection.
    pub selected_away: Vec<DroppedRow>,
    /// Rows in the manifest afterwards.
    pub rows: usize,
    /// Rows with an image afterwards.
    pub images: usize,
}

/// Imports a source into the dataset directory `out` (created if needed; an existing
/// dataset is extended): validate, store, dedupe, select, save. Removed rows go to
/// `dropped.csv`, issues to `import-issues.csv`.
pub fn import_into(
    out: &Path,
    src: &ImportSource,
    sel: &Selection,
    dd: DedupeOptions,
) -> Result<ImportSummary> {
    let parsed = src.parse()?;
    let mut ds = Dataset::open_or_create(out)?;
    remove_stale_temp_files(ds.root());
    let only = sel.canonical_genres();
    let ingest_report = ingest(&mut ds, src.kind(), parsed, only.as_deref())?;
    let dedupe_report = dedupe(ds.rows_mut(), dd);
    let selected_away = select(ds.rows_mut(), sel, false);
    ds.save()?;
    append_dropped(ds.root(), &dedupe_report.dropped)?;
    append_dropped(ds.root(), &selected_away)?;
    write_issues(ds.root(), &ingest_report.issues)?;
    Ok(ImportSummary {
        rows: ds.rows().len(),
        images: ds.rows().iter().filter(|r| r.has_image()).count(),
        ingest: ingest_report,
        dedupe: dedupe_report,
        selected_away,
    })
}

fn write_issues(dir: &Path, issues: &[Issue]) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        location: &'a str,
        message: &'a str,
    }
    let rows: Vec<Row> = issues
        .iter()
        .map(|i| Row {
            location: &i.location,
            message: &i.message,
        })
        .collect();
    write_csv_rows(&dir.join(ISSUES_FILE), &rows)
}

/// Deletes the temporary files of atomic writes that a killed run (kill -9, power loss)
/// left in a dataset directory; returns how many. Failures are logged, not fatal.
pub fn remove_stale_temp_files(root: &Path) -> usize {
    let mut removed = 0;
    for e in walkdir::WalkDir::new(root)
        .max_depth(3)
        .into_iter()
        .flatten()
    {
        let name = e.file_name().to_string_lossy();
        if e.file_type().is_file() && sleeve_shared::fsutil::is_stale_temp_file(&name) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => removed += 1,
                Err(err) => tracing::warn!("cannot remove {}: {err}", e.path().display()),
            }
        }
    }
    if removed > 0 {
        tracing::info!("removed {removed} temporary file(s) left by an interrupted run");
    }
    removed
}

/// Downloads pending URL rows, then dedupes (new images may duplicate old ones) and saves.
pub fn fetch_into(
    dir: &Path,
    opts: &FetchOptions,
    dd: DedupeOptions,
    stop: &AtomicBool,
) -> Result<(FetchReport, DedupeReport)> {
    let mut ds = Dataset::open(dir)?;
    remove_stale_temp_files(ds.root());
    let report = fetch(&mut ds, opts, stop)?;
    let dedupe_report = dedupe(ds.rows_mut(), dd);
    ds.save()?;
    append_dropped(ds.root(), &dedupe_report.dropped)?;
    Ok((report, dedupe_report))
}

/// Re-runs dedupe on a dataset with new options and saves.
pub fn dedupe_dataset(dir: &Path, dd: DedupeOptions) -> Result<DedupeReport> {
    let mut ds = Dataset::open(dir)?;
    let report = dedupe(ds.rows_mut(), dd);
    ds.save()?;
    append_dropped(ds.root(), &report.dropped)?;
    Ok(report)
}

/// Applies a genre selection (counting images) and assigns splits; saves.
pub fn split_dataset(dir: &Path, cfg: &SplitConfig, sel: &Selection) -> Result<Vec<DroppedRow>> {
    cfg.validate()?;
    let mut ds = Dataset::open(dir)?;
    let dropped = select(ds.rows_mut(), sel, true);
    split_rows(ds.rows_mut(), cfg)?;
    ds.save()?;
    append_dropped(ds.root(), &dropped)?;
    Ok(dropped)
}

//! `sleeve catalogue build | add | remove | stats` as library calls: each returns the JSON
//! summary the command prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;
use sleeve_shared::catalogue::Catalogue;
use sleeve_shared::catalogue::file::{CATALOGUE_FILE, MAX_VIEWS};
use sleeve_shared::fsutil::sha256_file;

use crate::enrol::{EnrolOptions, EnrolReport, enrol, read_catalogue, write_catalogue};
use crate::input::{Input, read_csv, read_folder};

/// Where covers come from and how they are enrolled.
#[derive(Debug, Clone)]
pub struct EnrolInput {
    /// `["csv", FILE]` (columns: image path, artist, title, bin or genre, extra columns kept
    /// verbatim) or `["folder", DIR]` (every image; title = file name, bin = sub-folder).
    pub from: Vec<String>,
    /// Descriptors per cover: the cover plus perspective-jittered views (1..=64).
    pub views: u32,
    /// pHash distance at or below which a cover counts as already enrolled.
    pub near_threshold: u32,
    /// Enrol the usable rows even when others are bad (each is still reported).
    pub skip_bad: bool,
}

/// Options of [`build`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The covers to enrol.
    pub enrol: EnrolInput,
    /// The catalogue file to write.
    pub out: PathBuf,
    /// Replace an existing catalogue file.
    pub force: bool,
}

/// Options of [`add`].
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// The catalogue file.
    pub catalogue: PathBuf,
    /// The covers to enrol.
    pub enrol: EnrolInput,
}

/// Options of [`remove`].
#[derive(Debug, Clone)]
pub struct RemoveOptions {
    /// The catalogue file.
    pub catalogue: PathBuf,
    /// Entry ids to remove.
    pub ids: Vec<u64>,
}

/// Builds a new catalogue file; returns its summary.
pub fn build(a: &BuildOptions) -> anyhow::Result<serde_json::Value> {
    if a.out.exists() && !a.force {
        bail!(
            "{} exists: use `sleeve catalogue add` to extend it, or --force to replace it",
            a.out.display()
        );
    }
    let mut cat = Catalogue::default();
    let report = enrol_into(&mut cat, &a.enrol)?;
    save(&a.out, &mut cat, &report)
}

/// Adds covers to an existing catalogue (covers already in it are skipped); returns its
/// summary.
pub fn add(a: &AddOptions) -> anyhow::Result<serde_json::Value> {
    let mut cat = read_catalogue(&a.catalogue)?;
    let report = enrol_into(&mut cat, &a.enrol)?;
    save(&a.catalogue, &mut cat, &report)
}

/// Removes entries by id (all must exist, else nothing is removed); returns the summary.
pub fn remove(a: &RemoveOptions) -> anyhow::Result<serde_json::Value> {
    let mut cat = read_catalogue(&a.catalogue)?;
    let missing: Vec<String> = a
        .ids
        .iter()
        .filter(|id| !cat.entries.iter().any(|e| e.id == **id))
        .map(|id| id.to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: no entry with id {} (nothing removed)",
            a.catalogue.display(),
            missing.join(", ")
        );
    }
    let removed = cat.remove_where(|e| a.ids.contains(&e.id));
    let v = save(&a.catalogue, &mut cat, &EnrolReport::default())?;
    tracing::info!(removed, "entries removed");
    Ok(v)
}

/// Describes (and verifies) a catalogue; `entries` lists every entry too.
pub fn stats(catalogue: &Path, entries: bool) -> anyhow::Result<serde_json::Value> {
    let cat = read_catalogue(catalogue)?;
    let mut v = summary(catalogue, &cat)?;
    if entries {
        v["entries"] = json!(
            cat.entries
                .iter()
                .map(|e| json!({
                    "id": e.id, "artist": e.artist, "title": e.title, "bin": e.bin,
                    "source": e.source, "views": e.views,
                    "extra": e.extra.iter().cloned().collect::<BTreeMap<_, _>>(),
                }))
                .collect::<Vec<_>>()
        );
    }
    Ok(v)
}

fn read_input(from: &[String]) -> anyhow::Result<Input> {
    let (kind, path) = match from {
        [k, p] => (k.as_str(), Path::new(p)),
        _ => bail!("--from takes two values: csv FILE or folder DIR"),
    };
    Ok(match kind {
        "csv" => read_csv(path)?,
        "folder" => read_folder(path)?,
        other => bail!("--from {other}: use `csv FILE` or `folder DIR`"),
    })
}

fn enrol_into(cat: &mut Catalogue, a: &EnrolInput) -> anyhow::Result<EnrolReport> {
    if a.views == 0 || a.views > MAX_VIEWS {
        bail!("--views {} is out of range 1..={MAX_VIEWS}", a.views);
    }
    let input = read_input(&a.from)?;
    if !input.problems.is_empty() && !a.skip_bad {
        bail!(
            "{} row(s) cannot be used (nothing written; --skip-bad enrols the rest):\n  {}",
            input.problems.len(),
            input.problems.join("\n  ")
        );
    }
    let opts = EnrolOptions {
        views: a.views,
        near_threshold: Some(a.near_threshold),
        ..EnrolOptions::default()
    };
    tracing::info!(
        rows = input.rows.len(),
        views = a.views,
        "computing descriptors"
    );
    let mut report = enrol(cat, &input.rows, &opts)?;
    if !report.failed.is_empty() && !a.skip_bad {
        bail!(
            "{} image(s) cannot be decoded (nothing written; --skip-bad enrols the rest):\n  {}",
            report.failed.len(),
            report.failed.join("\n  ")
        );
    }
    for p in input.problems.iter().chain(&report.failed) {
        tracing::warn!("skipped {p}");
    }
    report.failed.splice(0..0, input.problems);
    for d in &report.duplicates {
        tracing::debug!("already in the catalogue: {d}");
    }
    if !report.duplicates.is_empty() {
        tracing::info!(
            duplicates = report.duplicates.len(),
            "covers already in the catalogue were skipped (listed in the output; -v logs them)"
        );
    }
    Ok(report)
}

fn save(
    path: &Path,
    cat: &mut Catalogue,
    report: &EnrolReport,
) -> anyhow::Result<serde_json::Value> {
    write_catalogue(path, cat)?;
    let mut v = summary(path, cat)?;
    v["added"] = json!(report.added.len());
    v["duplicates"] = json!(report.duplicates);
    v["skipped"] = json!(report.failed);
    Ok(v)
}

fn summary(path: &Path, cat: &Catalogue) -> anyhow::Result<serde_json::Value> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let mut bins: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &cat.entries {
        *bins.entry(e.bin.as_str()).or_default() += 1;
    }
    Ok(json!({
        "catalogue": path,
        "entries": cat.entries.len(),
        "vectors": cat.rows(),
        "dim": sleeve_shared::catalogue::DESCRIPTOR_DIM,
        "descriptor_version": sleeve_shared::catalogue::DESCRIPTOR_VERSION,
        "bytes": bytes,
        "sha256": sha256_file(path).with_context(|| format!("hashing {}", path.display()))?,
        "updated_unix": cat.updated_unix,
        "bins": bins,
        "default_file_name": CATALOGUE_FILE,
    }))
}

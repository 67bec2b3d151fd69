//! Adding covers to a catalogue: decode, fingerprint (SHA-256 and pHash, as the dataset
//! dedupe does), skip covers already in it, compute descriptors of each view.

use std::path::Path;

use rayon::prelude::*;
use sleeve_data::dedupe::DEFAULT_NEAR_THRESHOLD;
use sleeve_data::store::{perceptual_hash, phash_bits};
use sleeve_shared::RgbView;
use sleeve_shared::catalogue::file::MAX_VIEWS;
use sleeve_shared::catalogue::{Catalogue, CatalogueEntry, describe_quantized};
use sleeve_shared::fsutil::sha256_hex;

use crate::error::{CatalogueBuildError, Result};
use crate::input::InputRow;
use crate::views::views;

/// How covers are enrolled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnrolOptions {
    /// Descriptors per cover: the cover plus `views − 1` perspective-jittered views
    /// (1..=64).
    pub views: u32,
    /// pHash Hamming distance at or below which a cover counts as one already enrolled;
    /// `None`: exact (SHA-256) duplicates only.
    pub near_threshold: Option<u32>,
    /// Seed of the augmented views.
    pub seed: u64,
}

impl Default for EnrolOptions {
    fn default() -> Self {
        Self {
            views: 1,
            near_threshold: Some(DEFAULT_NEAR_THRESHOLD),
            seed: 17,
        }
    }
}

/// What [`enrol`] did.
#[derive(Clone, Debug, Default)]
pub struct EnrolReport {
    /// Ids of the entries added.
    pub added: Vec<u64>,
    /// `origin: reason` of covers skipped as already in the catalogue.
    pub duplicates: Vec<String>,
    /// `origin: reason` of rows whose image could not be read or decoded.
    pub failed: Vec<String>,
}

struct Prepared {
    sha256: String,
    phash: String,
    vectors: Vec<Vec<i8>>,
}

fn prepare(row: &InputRow, opts: &EnrolOptions) -> std::result::Result<Prepared, String> {
    let bytes = std::fs::read(&row.path).map_err(|e| format!("{}: {e}", row.path.display()))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| format!("{}: cannot decode: {e}", row.path.display()))?
        .to_rgb8();
    let seed = opts.seed ^ u64::from_str_radix(&sha256_hex(&bytes)[..16], 16).unwrap_or(0);
    let vectors = views(&img, opts.views, seed)
        .iter()
        .map(|v| {
            let view =
                RgbView::new(v.width(), v.height(), v.as_raw()).map_err(|e| e.to_string())?;
            describe_quantized(&view).map_err(|e| e.to_string())
        })
        .collect::<std::result::Result<Vec<_>, String>>()
        .map_err(|e| format!("{}: {e}", row.path.display()))?;
    Ok(Prepared {
        sha256: sha256_hex(&bytes),
        phash: perceptual_hash(&img),
        vectors,
    })
}

/// Adds `rows` to `catalogue` in order. A cover whose image has the SHA-256 of an entry,
/// or a pHash within `near_threshold` of one (already in the catalogue or added earlier in
/// `rows`), is skipped and reported; so is a row whose image cannot be decoded.
pub fn enrol(
    catalogue: &mut Catalogue,
    rows: &[InputRow],
    opts: &EnrolOptions,
) -> Result<EnrolReport> {
    if opts.views == 0 || opts.views > MAX_VIEWS {
        return Err(CatalogueBuildError::Invalid(format!(
            "--views {} is out of range 1..={MAX_VIEWS}",
            opts.views
        )));
    }
    let prepared: Vec<_> = rows.par_iter().map(|r| prepare(r, opts)).collect();
    let mut report = EnrolReport::default();
    let mut known: Vec<(String, Option<u64>, String)> = catalogue
        .entries
        .iter()
        .map(|e| {
            (
                e.image_sha256.clone(),
                phash_bits(&e.phash),
                e.display_name(),
            )
        })
        .collect();
    let mut next_id = catalogue.next_id();
    for (row, p) in rows.iter().zip(prepared) {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                report.failed.push(format!("{}: {e}", row.origin));
                continue;
            }
        };
        let bits = phash_bits(&p.phash);
        let dup = known.iter().find_map(|(sha, ph, name)| {
            if *sha == p.sha256 {
                return Some(format!("same image as \"{name}\""));
            }
            let d = (*ph).zip(bits).map(|(a, b)| (a ^ b).count_ones())?;
            opts.near_threshold
                .filter(|t| d <= *t)
                .map(|_| format!("near-identical to \"{name}\" (pHash distance {d})"))
        });
        if let Some(why) = dup {
            report.duplicates.push(format!("{}: {why}", row.origin));
            continue;
        }
        let entry = CatalogueEntry {
            id: next_id,
            artist: row.artist.clone(),
            title: row.title.clone(),
            bin: row.bin.clone(),
            extra: row.extra.clone(),
            source: row.image.clone(),
            image_sha256: p.sha256.clone(),
            phash: p.phash.clone(),
            views: 0,
        };
        known.push((p.sha256, bits, entry.display_name()));
        catalogue
            .push(entry, &p.vectors)
            .map_err(|e| CatalogueBuildError::Invalid(format!("{}: {e}", row.origin)))?;
        report.added.push(next_id);
        next_id += 1;
    }
    Ok(report)
}

/// Reads a catalogue file, naming it in the error.
pub fn read_catalogue(path: &Path) -> Result<Catalogue> {
    Catalogue::read(path).map_err(|cause| CatalogueBuildError::Catalogue {
        path: path.to_path_buf(),
        cause,
    })
}

/// Writes a catalogue atomically, stamping the time.
pub fn write_catalogue(path: &Path, catalogue: &mut Catalogue) -> Result<()> {
    catalogue.updated_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    catalogue
        .write(path)
        .map_err(|cause| CatalogueBuildError::Catalogue {
            path: path.to_path_buf(),
            cause,
        })
}

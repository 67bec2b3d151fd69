//! `--from csv FILE`: a CSV with a header row and columns `path` (or `url`, `path_or_url`,
//! `image`, `file`) and `genre`; optional `id`, `artist`, `album`. Cells starting with
//! `http://` or `https://` are URLs; anything else is a file path, resolved against the
//! CSV's folder, which it must not escape.

use std::path::{Path, PathBuf};

use super::{Candidate, ImageSource, Issue, Parsed};
use crate::error::{DataError, Result};

/// Longest accepted cell, in bytes: a URL fits easily; a cell longer than this is a broken
/// file (or an unterminated quote), not data.
pub const MAX_FIELD_BYTES: usize = 4096;

const PATH_COLUMNS: [&str; 7] = [
    "path_or_url",
    "path",
    "url",
    "image",
    "file",
    "filename",
    "image_url",
];

/// Reads an image list CSV.
pub fn parse(file: &Path) -> Result<Parsed> {
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = base.canonicalize().map_err(|e| DataError::io(base, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| DataError::io(file, std::io::Error::other(e.to_string())))?;
    let headers = rdr
        .headers()
        .map_err(|e| malformed(file, 1, e.to_string()))?
        .clone();
    let col = |names: &[&str]| {
        names.iter().find_map(|n| {
            headers.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(n)
            })
        })
    };
    let path_col = col(&PATH_COLUMNS).ok_or_else(|| {
        malformed(
            file,
            1,
            format!("no image column: the header needs one of {PATH_COLUMNS:?}"),
        )
    })?;
    let genre_col = col(&["genre", "label", "class"])
        .ok_or_else(|| malformed(file, 1, "no 'genre' column in the header".into()))?;
    let id_col = col(&["id"]);
    let artist_col = col(&["artist"]);
    let album_col = col(&["album", "title"]);
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();

    let mut out = Parsed::default();
    let mut records = rdr.records().peekable();
    while let Some(rec) = records.next() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                out.issues.push(Issue::new(
                    format!("{name}:{line}"),
                    format!("malformed row: {e}"),
                ));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let origin = format!("{name}:{line}");
        // A quote that is never closed makes one field of the rest of the file: say where
        // it starts instead of importing (or silently losing) everything after it.
        if let Some(col) = rec.iter().position(|f| f.contains(['\n', '\r'])) {
            let end = line
                + rec
                    .iter()
                    .map(|f| f.matches('\n').count() as u64)
                    .sum::<u64>();
            let message = format!(
                "field {} runs from line {line} to line {end}: unterminated quote?",
                col + 1
            );
            if records.peek().is_none() {
                return Err(malformed(file, line, message));
            }
            out.issues
                .push(Issue::new(&origin, format!("{message}; row skipped")));
            continue;
        }
        if let Some(col) = rec.iter().position(|f| f.len() > MAX_FIELD_BYTES) {
            out.issues.push(Issue::new(
                &origin,
                format!(
                    "field {} is {} bytes long, over the {MAX_FIELD_BYTES}-byte limit; row skipped",
                    col + 1,
                    rec.get(col).map_or(0, str::len)
                ),
            ));
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").to_string();
        let cell = get(Some(path_col));
        let genre = get(Some(genre_col));
        if rec.len() <= path_col.max(genre_col) {
            out.issues.push(Issue::new(
                &origin,
                format!(
                    "malformed row: {} field(s), expected at least {}",
                    rec.len(),
                    headers.len()
                ),
            ));
            continue;
        }
        if cell.is_empty() {
            out.issues
                .push(Issue::new(&origin, "no image path or URL; row skipped"));
            continue;
        }
        let image = if is_url(&cell) {
            ImageSource::Url(cell.clone())
        } else {
            match resolve_local(&base, &cell) {
                Ok(p) => ImageSource::Local(p),
                Err(msg) => {
                    out.issues
                        .push(Issue::new(&origin, format!("{msg}; row skipped")));
                    continue;
                }
            }
        };
        let id = get(id_col);
        out.candidates.push(Candidate {
            id: Some(if id.is_empty() { cell } else { id }),
            image,
            genre,
            artist: get(artist_col),
            album: get(album_col),
            origin,
        });
    }
    Ok(out)
}

/// True for `http://` and `https://` URLs.
pub fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Resolves `cell` against `base` (canonical) and checks the file exists and stays inside.
pub fn resolve_local(base: &Path, cell: &str) -> std::result::Result<PathBuf, String> {
    let joined = base.join(cell);
    let real = joined
        .canonicalize()
        .map_err(|e| format!("image '{cell}' not found ({e})"))?;
    if !real.starts_with(base) {
        return Err(format!(
            "path '{cell}' escapes the list's folder {}",
            base.display()
        ));
    }
    if !real.is_file() {
        return Err(format!("'{cell}' is not a file"));
    }
    Ok(real)
}

fn malformed(path: &Path, line: u64, message: String) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        line,
        message,
    }
}

//! `--from mumu CSV --metadata JSON`: the MuMu single-label CSV (header with at least
//! `amazon_id` and `genre`; other columns such as `album_mbid` are ignored) joined on
//! `amazon_id` = `asin` with Amazon metadata giving the cover URL (`imUrl`).
//!
//! The metadata may be a JSON array of objects (`amazon_metadata_MuMu.json`) or one
//! object per line (the Amazon reviews metadata dump); lines written as Python dict
//! literals (`{'asin': '…', 'imUrl': '…'}`) are understood too.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;

use super::{Candidate, ImageSource, Issue, Parsed};
use crate::error::{DataError, Result};

/// Cover URL and titles for one Amazon id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AmazonMeta {
    /// Image URL (`imUrl`).
    pub url: String,
    /// Album title (`title`), if present.
    pub title: String,
    /// Artist (`artist`), if present.
    pub artist: String,
}

/// Joins a MuMu CSV with Amazon metadata.
pub fn parse(csv_file: &Path, metadata: &Path) -> Result<Parsed> {
    let mut out = Parsed::default();
    let rows = read_mumu_csv(csv_file, &mut out.issues)?;
    let wanted: std::collections::HashSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let meta = read_metadata(metadata, &wanted, &mut out.issues)?;
    for (origin, asin, genre) in &rows {
        match meta.get(asin) {
            Some(m) if !m.url.is_empty() => out.candidates.push(Candidate {
                id: Some(format!("amazon:{asin}")),
                image: ImageSource::Url(m.url.clone()),
                genre: genre.clone(),
                artist: m.artist.clone(),
                album: m.title.clone(),
                origin: origin.clone(),
            }),
            Some(_) => out.issues.push(Issue::new(
                origin,
                format!("amazon_id {asin}: metadata has no imUrl; skipped"),
            )),
            None => out.issues.push(Issue::new(
                origin,
                format!(
                    "amazon_id {asin}: not found in {}; skipped",
                    metadata.display()
                ),
            )),
        }
    }
    Ok(out)
}

/// Reads `(origin, amazon_id, genre)` rows from the MuMu CSV.
fn read_mumu_csv(file: &Path, issues: &mut Vec<Issue>) -> Result<Vec<(String, String, String)>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| DataError::io(file, std::io::Error::other(e.to_string())))?;
    let headers = rdr
        .headers()
        .map_err(|e| malformed(file, 1, e.to_string()))?
        .clone();
    let find = |names: &[&str]| {
        headers.iter().position(|h| {
            let h = h.trim().trim_start_matches('\u{feff}');
            names.iter().any(|n| h.eq_ignore_ascii_case(n))
        })
    };
    let id_col = find(&["amazon_id", "asin"])
        .ok_or_else(|| malformed(file, 1, "no 'amazon_id' column in the header".into()))?;
    let genre_col = find(&["genre", "genres", "label"])
        .ok_or_else(|| malformed(file, 1, "no 'genre' column in the header".into()))?;
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                issues.push(Issue::new(
                    format!("{name}:{line}"),
                    format!("malformed row: {e}"),
                ));
                continue;
            }
        };
        let origin = format!("{name}:{}", rec.position().map(|p| p.line()).unwrap_or(0));
        let id = rec.get(id_col).unwrap_or("").to_string();
        let genre = rec.get(genre_col).unwrap_or("").to_string();
        if id.is_empty() {
            issues.push(Issue::new(&origin, "empty amazon_id; row skipped"));
            continue;
        }
        rows.push((origin, id, genre));
    }
    Ok(rows)
}

/// Reads Amazon metadata (JSON array or one object per line), keeping only `wanted` ids.
pub fn read_metadata(
    file: &Path,
    wanted: &std::collections::HashSet<&str>,
    issues: &mut Vec<Issue>,
) -> Result<HashMap<String, AmazonMeta>> {
    let f = std::fs::File::open(file).map_err(|e| DataError::io(file, e))?;
    let mut reader = BufReader::new(f);
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let mut out = HashMap::new();
    // Peek the first non-blank byte: '[' means one JSON array.
    let first = loop {
        let buf = reader.fill_buf().map_err(|e| DataError::io(file, e))?;
        // A UTF-8 byte-order mark (Windows editors) is not part of the JSON.
        if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            reader.consume(3);
            continue;
        }
        let Some(&b) = buf.first() else { break None };
        if !b.is_ascii_whitespace() {
            break Some(b);
        }
        reader.consume(1);
    };
    if first == Some(b'[') {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| DataError::io(file, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| DataError::Malformed {
            path: file.to_path_buf(),
            line: e.line() as u64,
            message: format!("invalid JSON: {e}"),
        })?;
        for (i, obj) in v.as_array().into_iter().flatten().enumerate() {
            match meta_from_json(obj) {
                Some((asin, m)) if wanted.contains(asin.as_str()) => {
                    out.insert(asin, m);
                }
                Some(_) => {}
                None => issues.push(Issue::new(
                    format!("{name}[{i}]"),
                    "entry without 'asin'; ignored",
                )),
            }
        }
        return Ok(out);
    }
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| DataError::io(file, e))?;
        let line = line.trim().trim_end_matches(',');
        if line.is_empty() {
            continue;
        }
        let parsed = match serde_json::from_str::<Value>(line) {
            Ok(v) => meta_from_json(&v),
            Err(_) => meta_from_python_literal(line),
        };
        match parsed {
            Some((asin, m)) if wanted.contains(asin.as_str()) => {
                out.insert(asin, m);
            }
            Some(_) => {}
            None => issues.push(Issue::new(
                format!("{name}:{}", i + 1),
                "not a JSON object with an 'asin'; line ignored",
            )),
        }
    }
    Ok(out)
}

fn meta_from_json(v: &Value) -> Option<(String, AmazonMeta)> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let asin = s("asin");
    if asin.is_empty() {
        return None;
    }
    Some((
        asin,
        AmazonMeta {
            url: s("imUrl"),
            title: s("title"),
            artist: s("artist"),
        },
    ))
}

/// Pulls `'key': 'value'` (or `"key": "value"`) string fields out of a Python dict literal.
fn meta_from_python_literal(line: &str) -> Option<(String, AmazonMeta)> {
    let field = |key: &str| -> String {
        for q in ['\'', '"'] {
            let pat = format!("{q}{key}{q}:");
            if let Some(pos) = line.find(&pat) {
                let rest = line[pos + pat.len()..].trim_start();
                let Some(open) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                    continue;
                };
                let body = &rest[1..];
                if let Some(end) = body.find(open) {
                    return body[..end].to_string();
                }
            }
        }
        String::new()
    };
    let asin = field("asin");
    if asin.is_empty() {
        return None;
    }
    Some((
        asin,
        AmazonMeta {
            url: field("imUrl"),
            title: field("title"),
            artist: field("artist"),
        },
    ))
}

fn malformed(path: &Path, line: u64, message: String) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_literal_fallback() {
        let (asin, m) = meta_from_python_literal(
            "{'asin': 'B000002', 'title': 'X', 'imUrl': 'http://e/x.jpg', 'salesRank': {'Music': 3}}",
        )
        .unwrap();
        assert_eq!(asin, "B000002");
        assert_eq!(m.url, "http://e/x.jpg");
        assert_eq!(m.title, "X");
        assert!(meta_from_python_literal("garbage").is_none());
    }
}

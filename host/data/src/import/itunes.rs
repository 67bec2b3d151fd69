//! `--from itunes FEED.json…`: iTunes top-albums RSS JSON
//! (`https://itunes.apple.com/us/rss/topalbums/genre=ID/limit=200/json`).
//!
//! Each `feed.entry[]` gives `id.attributes["im:id"]` (the id, as `itunes:<im:id>`),
//! `im:name`, `im:artist`, the cover URLs in `im:image` (the largest `height` is taken) and
//! `category.attributes["im:id"]`/`label`; sub-genre ids are folded to their umbrella genre
//! with [`super::itunes_genres`] (Hard Rock → Rock), unknown ids fall back to the label.

use std::path::Path;

use serde_json::Value;

use super::itunes_genres::umbrella;
use super::{Candidate, ImageSource, Issue, Parsed};
use crate::error::{DataError, Result};

/// Reads one feed file. `art_size`: rewrite the artwork URL to that pixel size
/// (`…/170x170bb.png` → `…/600x600bb.jpg`), as the feed's own images are tiny.
pub fn parse(file: &Path, art_size: Option<u32>) -> Result<Parsed> {
    let text = std::fs::read_to_string(file).map_err(|e| DataError::io(file, e))?;
    // Editors on Windows save JSON with a UTF-8 byte-order mark; JSON itself has none.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let v: Value = serde_json::from_str(text).map_err(|e| DataError::Malformed {
        path: file.to_path_buf(),
        line: e.line() as u64,
        message: format!("invalid JSON: {e}"),
    })?;
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let entries: Vec<&Value> = match v.pointer("/feed/entry") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => {
            return Err(DataError::Malformed {
                path: file.to_path_buf(),
                line: 0,
                message: "no feed.entry list: not an iTunes RSS JSON feed".into(),
            });
        }
    };
    let mut out = Parsed::default();
    for (i, e) in entries.into_iter().enumerate() {
        let origin = format!("{name}: entry {i}");
        match entry(e, art_size) {
            Ok(mut c) => {
                c.origin = origin;
                out.candidates.push(c);
            }
            Err(msg) => out
                .issues
                .push(Issue::new(origin, format!("{msg}; skipped"))),
        }
    }
    Ok(out)
}

fn label<'a>(e: &'a Value, key: &str) -> &'a str {
    e.get(key)
        .and_then(|v| v.get("label"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
}

fn entry(e: &Value, art_size: Option<u32>) -> std::result::Result<Candidate, String> {
    let images = e
        .get("im:image")
        .and_then(Value::as_array)
        .ok_or("no im:image")?;
    let url = images
        .iter()
        .filter_map(|im| {
            let url = im.get("label")?.as_str()?;
            let h = im
                .pointer("/attributes/height")
                .and_then(|h| {
                    h.as_str()
                        .map(str::to_string)
                        .or_else(|| h.as_u64().map(|n| n.to_string()))
                })
                .and_then(|h| h.trim().parse::<u32>().ok())
                .unwrap_or(0);
            Some((h, url))
        })
        .max_by_key(|(h, _)| *h)
        .map(|(_, u)| u.to_string())
        .ok_or("im:image has no URL")?;
    let url = match art_size {
        Some(n) => resize_art_url(&url, n),
        None => url,
    };
    let cat = e.pointer("/category/attributes").ok_or("no category")?;
    let cat_label = cat
        .get("label")
        .or_else(|| cat.get("term"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let genre_id = cat
        .get("im:id")
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .and_then(|s| s.trim().parse::<u32>().ok());
    let genre = match genre_id.and_then(umbrella) {
        Some((_, name)) => name.to_string(),
        None if !cat_label.is_empty() => cat_label.to_string(),
        None => return Err("no genre in category".into()),
    };
    let id = e
        .pointer("/id/attributes/im:id")
        .and_then(Value::as_str)
        .map(|s| format!("itunes:{}", s.trim()));
    Ok(Candidate {
        id,
        image: ImageSource::Url(url),
        genre,
        artist: label(e, "im:artist").to_string(),
        album: label(e, "im:name").to_string(),
        origin: String::new(),
    })
}

/// Rewrites the `NxNbb.ext` last path segment of an iTunes artwork URL to `{n}x{n}bb.jpg`;
/// other URLs are returned unchanged.
pub fn resize_art_url(url: &str, n: u32) -> String {
    let Some(slash) = url.rfind('/') else {
        return url.to_string();
    };
    let last = &url[slash + 1..];
    let stem = last.split('.').next().unwrap_or("");
    let dims = stem.trim_end_matches("bb");
    let is_size = dims.split_once('x').is_some_and(|(w, h)| {
        !w.is_empty() && !h.is_empty() && w.chars().chain(h.chars()).all(|c| c.is_ascii_digit())
    });
    if is_size {
        format!("{}/{n}x{n}bb.jpg", &url[..slash])
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art_url_rewrite() {
        assert_eq!(
            resize_art_url(
                "https://is1.mzstatic.com/image/thumb/a/b/170x170bb.png",
                600
            ),
            "https://is1.mzstatic.com/image/thumb/a/b/600x600bb.jpg"
        );
        assert_eq!(
            resize_art_url("http://x/cover.jpg", 600),
            "http://x/cover.jpg"
        );
    }
}

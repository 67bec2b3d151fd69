//! What to enrol: rows of a CSV file or the images of a folder tree.

use std::path::{Path, PathBuf};

use crate::error::{CatalogueBuildError, Result};

/// One cover to enrol, with where it came from (for error messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRow {
    /// Where the row came from: `FILE:LINE` for CSV rows, the path for folder images.
    pub origin: String,
    /// The image as written in the input (path or URL).
    pub image: String,
    /// Resolved path of the image (CSV paths are relative to the CSV's folder).
    pub path: PathBuf,
    /// Artist.
    pub artist: String,
    /// Title.
    pub title: String,
    /// The store's bin or genre.
    pub bin: String,
    /// Other columns, verbatim, in input order.
    pub extra: Vec<(String, String)>,
}

/// Rows of an input plus the rows that cannot be used, each with its reason.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// Usable rows.
    pub rows: Vec<InputRow>,
    /// `origin: reason` of every unusable row.
    pub problems: Vec<String>,
}

const IMAGE_COLUMNS: [&str; 6] = ["image", "path", "image_path", "file", "url", "image_url"];
const BIN_COLUMNS: [&str; 2] = ["bin", "genre"];

/// Reads a CSV file with a header row. The image column is the first of `image`, `path`,
/// `image_path`, `file`, `url`, `image_url`; `artist`, `title` and `bin` (or `genre`) are
/// optional; every other column is kept verbatim. Header names are matched without regard
/// to case or surrounding spaces. Rows whose image is a URL, empty or not a file are
/// reported by line, not read.
pub fn read_csv(path: &Path) -> Result<Input> {
    let io = |e: std::io::Error| CatalogueBuildError::Io {
        path: path.to_path_buf(),
        cause: e,
    };
    let bad = |line: u64, message: String| CatalogueBuildError::Malformed {
        path: path.to_path_buf(),
        line,
        message,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(1, format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.iter().position(|h| h.eq_ignore_ascii_case(n)))
    };
    let image_col = find(&IMAGE_COLUMNS).ok_or_else(|| {
        bad(
            1,
            format!(
                "no image column: name one of {} (header: {})",
                IMAGE_COLUMNS.join(", "),
                headers.join(", ")
            ),
        )
    })?;
    let artist_col = find(&["artist"]);
    let title_col = find(&["title"]);
    let bin_col = find(&BIN_COLUMNS);
    let base = path.parent().unwrap_or(Path::new("."));
    let mut input = Input::default();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(line, e.to_string())
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let origin = format!("{}:{line}", path.display());
        let field = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim().to_string();
        let image = field(Some(image_col));
        let extra = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| ![Some(image_col), artist_col, title_col, bin_col].contains(&Some(*i)))
            .map(|(i, h)| (h.clone(), rec.get(i).unwrap_or("").to_string()))
            .collect();
        let row_path = base.join(&image);
        let problem = if image.is_empty() {
            Some("no image given".to_string())
        } else if image.contains("://") {
            Some(format!(
                "{image}: URLs are not fetched (the catalogue is built offline); download the image and give its path"
            ))
        } else if !row_path.is_file() {
            Some(format!("image {} not found", row_path.display()))
        } else {
            None
        };
        if let Some(p) = problem {
            input.problems.push(format!("{origin}: {p}"));
            continue;
        }
        input.rows.push(InputRow {
            origin,
            image,
            path: row_path,
            artist: field(artist_col),
            title: field(title_col),
            bin: field(bin_col),
            extra,
        });
    }
    Ok(input)
}

/// Every image under `dir` (recursively, sorted): title = file stem, bin = the folder
/// path inside `dir` (empty at the top level).
pub fn read_folder(dir: &Path) -> Result<Input> {
    if !dir.is_dir() {
        return Err(CatalogueBuildError::Invalid(format!(
            "{}: not a folder",
            dir.display()
        )));
    }
    let mut input = Input::default();
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| CatalogueBuildError::Invalid(format!("{}: {e}", dir.display())))?;
        if e.file_type().is_file() && sleeve_data::folder::is_image_file(e.path()) {
            files.push(e.into_path());
        }
    }
    for path in files {
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        let bin = rel
            .parent()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let title = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        input.rows.push(InputRow {
            origin: path.display().to_string(),
            image: path.display().to_string(),
            path,
            artist: String::new(),
            title,
            bin,
            extra: Vec::new(),
        });
    }
    if input.rows.is_empty() {
        return Err(CatalogueBuildError::Invalid(format!(
            "{}: no images found",
            dir.display()
        )));
    }
    Ok(input)
}

//! ImageFolder layout: `DIR/<genre>/<image>` (optionally `DIR/{train,val,test}/<genre>/<image>`).

use std::path::{Path, PathBuf};

use sleeve_shared::labels::canonical_genre;

use crate::error::{DataError, Result};
use crate::manifest::Split;

/// File extensions treated as images (lower-case).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "webp", "gif", "jfif"];

/// One image found in a folder tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderImage {
    /// Canonical genre (from the folder name).
    pub genre: String,
    /// Absolute (or root-joined) path of the image.
    pub path: PathBuf,
    /// `<genre folder>/<path inside it>` with `/` separators: a stable id.
    pub rel: String,
    /// Split, when the tree has `train/`, `val/`, `test/` at the top.
    pub split: Option<Split>,
}

/// Folders skipped while scanning, with the reason (empty genre name, no images).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderScan {
    /// Images found, sorted by `rel`.
    pub images: Vec<FolderImage>,
    /// Non-fatal problems (`path: message`).
    pub issues: Vec<String>,
}

/// True when the file name has an image extension (case-insensitive) and is not hidden.
pub fn is_image_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    let ext_ok = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    ext_ok && !hidden
}

/// Scans a folder-per-genre tree. Genre names are canonicalised; folders whose name
/// canonicalises to nothing are reported and skipped; so are files that are not images.
/// A tree whose top level is exactly split folders (`train`, `val`/`valid`, `test`) is read
/// as `split/genre/image`.
pub fn scan_image_folder(root: &Path) -> Result<FolderScan> {
    let mut scan = FolderScan::default();
    let tops = sub_dirs(root, &mut scan.issues)?;
    let split_layout = !tops.is_empty()
        && tops.iter().all(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.parse::<Split>().is_ok())
        });
    if split_layout {
        for split_dir in tops {
            let split: Split = split_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .expect("checked above");
            let prefix = split_dir.file_name().unwrap().to_string_lossy().to_string();
            for genre_dir in sub_dirs(&split_dir, &mut scan.issues)? {
                scan_genre_dir(&genre_dir, Some(split), Some(&prefix), &mut scan);
            }
        }
    } else {
        for genre_dir in tops {
            scan_genre_dir(&genre_dir, None, None, &mut scan);
        }
    }
    scan.images.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(scan)
}

/// Sub-folders of `dir`, sorted. A symlink to `dir` itself or to a folder above it would
/// read the tree again under another name: it is reported and skipped.
fn sub_dirs(dir: &Path, issues: &mut Vec<String>) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let real_dir = std::fs::canonicalize(dir).map_err(|e| DataError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let p = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !p.is_dir() || hidden {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_symlink())
            && let Ok(target) = std::fs::canonicalize(&p)
            && real_dir.starts_with(&target)
        {
            issues.push(format!(
                "{}: symlink to {} (the folder itself or one above it) would read the tree \
                 again; not followed",
                p.display(),
                target.display()
            ));
            continue;
        }
        out.push(p);
    }
    out.sort();
    Ok(out)
}

fn scan_genre_dir(dir: &Path, split: Option<Split>, prefix: Option<&str>, scan: &mut FolderScan) {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let genre = canonical_genre(&name);
    if genre.is_empty() {
        scan.issues.push(format!(
            "{}: folder name '{name}' is not a usable genre name; skipped",
            dir.display()
        ));
        return;
    }
    let mut found = 0usize;
    let mut skipped = 0usize;
    let real_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                scan.issues.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        // Follow directory symlinks only while they stay inside the genre folder: one that
        // leads out (say `country/loop -> ..`) would label other genres' images as this one.
        if entry.depth() > 0 && entry.path_is_symlink() && entry.file_type().is_dir() {
            let target = std::fs::canonicalize(entry.path());
            if !target
                .as_ref()
                .is_ok_and(|t| t.starts_with(&real_dir) && *t != real_dir)
            {
                scan.issues.push(format!(
                    "{}: directory symlink leads outside genre folder {} ({}); not followed",
                    entry.path().display(),
                    dir.display(),
                    match &target {
                        Ok(t) => t.display().to_string(),
                        Err(e) => e.to_string(),
                    }
                ));
                walk.skip_current_dir();
                continue;
            }
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        if !is_image_file(path) {
            skipped += 1;
            continue;
        }
        let inner = path.strip_prefix(dir).unwrap_or(path);
        let inner = inner
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let rel = match prefix {
            Some(p) => format!("{p}/{name}/{inner}"),
            None => format!("{name}/{inner}"),
        };
        scan.images.push(FolderImage {
            genre: genre.clone(),
            path: path.to_path_buf(),
            rel,
            split,
        });
        found += 1;
    }
    if skipped > 0 {
        scan.issues.push(format!(
            "{}: {skipped} non-image file(s) ignored",
            dir.display()
        ));
    }
    if found == 0 {
        scan.issues
            .push(format!("{}: genre '{genre}' has no images", dir.display()));
    }
}

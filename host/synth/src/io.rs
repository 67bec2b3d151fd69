//! Finding cover images on disk (an ImageFolder tree or a flat folder) and writing images.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, RgbImage};
use sleeve_shared::fsutil::write_atomic;
use sleeve_shared::labels::canonical_genre;

use crate::error::SynthError;

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "webp", "gif", "tif"];

/// A cover image on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverRef {
    /// The file.
    pub path: PathBuf,
    /// Canonical genre from the first-level folder name, when the tree is an ImageFolder.
    pub genre: Option<String>,
}

/// Name of a `sleeve dataset` manifest (a dataset directory holds one).
pub const MANIFEST_FILE: &str = "manifest.csv";

/// Lists images under `dir`. A `sleeve dataset` directory (it has `manifest.csv`) gives the
/// manifest's rows that have an image (genre from the manifest). Any other folder gives the
/// files directly in it (genre unknown) and files in its sub-folders at any depth (genre =
/// canonical name of the first-level folder). Sorted by path, so the order is stable.
/// Errors if the folder or manifest is unreadable or no image is listed.
pub fn list_covers(dir: &Path) -> Result<Vec<CoverRef>, SynthError> {
    let mut out = Vec::new();
    let manifest = dir.join(MANIFEST_FILE);
    if manifest.is_file() {
        out = read_manifest(dir, &manifest)?;
    } else {
        walk(dir, None, 0, &mut out)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    if out.is_empty() {
        return Err(SynthError::NoImages {
            path: dir.to_path_buf(),
            reason: format!("no images ({}) found", IMAGE_EXTENSIONS.join(", ")),
        });
    }
    Ok(out)
}

/// Reads a list of covers to leave out: one entry per line, either a path or a bare file
/// name (`#` starts a comment, blank lines are ignored). Typical use: covers that already
/// carry a printed Parental Advisory label, which a composite would otherwise show
/// unannotated.
pub fn read_exclude_list(path: &Path) -> Result<Vec<String>, SynthError> {
    let text = fs::read_to_string(path).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Drops the covers named in `exclude` (by full path or by file name) and returns how many
/// were dropped.
pub fn exclude_covers(covers: &mut Vec<CoverRef>, exclude: &[String]) -> usize {
    let names: std::collections::HashSet<&str> = exclude.iter().map(String::as_str).collect();
    let before = covers.len();
    covers.retain(|c| {
        let full = c.path.to_string_lossy();
        let name = c.path.file_name().map(|n| n.to_string_lossy());
        !(names.contains(full.as_ref()) || name.is_some_and(|n| names.contains(n.as_ref())))
    });
    before - covers.len()
}

fn walk(
    dir: &Path,
    genre: Option<&str>,
    depth: usize,
    out: &mut Vec<CoverRef>,
) -> Result<(), SynthError> {
    let entries = fs::read_dir(dir).map_err(|source| SynthError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| SynthError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if depth < 8 {
                let g = match genre {
                    Some(g) => Some(g.to_string()),
                    None => Some(canonical_genre(&name)).filter(|g| !g.is_empty()),
                };
                walk(&path, g.as_deref(), depth + 1, out)?;
            }
        } else if is_image(&path) {
            out.push(CoverRef {
                path,
                genre: genre.map(str::to_string),
            });
        }
    }
    Ok(())
}

/// The rows of a dataset manifest that have an image: `path` (relative to `root`, never
/// escaping it) and `genre` columns, found by name in the header.
fn read_manifest(root: &Path, manifest: &Path) -> Result<Vec<CoverRef>, SynthError> {
    let text = fs::read_to_string(manifest).map_err(|source| SynthError::Io {
        path: manifest.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| SynthError::NoImages {
        path: manifest.to_path_buf(),
        reason,
    };
    let mut records = parse_csv(&text).into_iter();
    let header = records.next().ok_or_else(|| bad("empty manifest".into()))?;
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(pc), Some(gc)) = (col("path"), col("genre")) else {
        return Err(bad("no 'path' and 'genre' columns in the header".into()));
    };
    let mut out = Vec::new();
    for fields in records {
        let (Some(rel), Some(genre)) = (fields.get(pc), fields.get(gc)) else {
            continue;
        };
        let rel = Path::new(rel.trim());
        let inside = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if rel.as_os_str().is_empty() || !inside {
            continue;
        }
        let genre = canonical_genre(genre);
        out.push(CoverRef {
            path: root.join(rel),
            genre: (!genre.is_empty()).then_some(genre),
        });
    }
    Ok(out)
}

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, doubled
/// quotes and line breaks). Blank lines are skipped.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push(std::mem::take(&mut row));
                }
                row.clear();
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// True when the path has an image extension.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Decodes an image file as RGB through the shared front door (size limits, truncated
/// JPEGs refused).
pub fn load_rgb(path: &Path) -> Result<RgbImage, SynthError> {
    sleeve_shared::imageio::open_rgb(path).map_err(|e| SynthError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Output image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// Lossless PNG.
    Png,
    /// JPEG at the given quality (1–100).
    Jpeg(u8),
}

impl ImageKind {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg(_) => "jpg",
        }
    }
}

/// Encodes `img` and writes it atomically.
pub fn save_rgb(path: &Path, img: &RgbImage, kind: ImageKind) -> Result<(), SynthError> {
    let mut buf = Vec::new();
    let res = match kind {
        ImageKind::Png => img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png),
        ImageKind::Jpeg(q) => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, q.clamp(1, 100));
            img.write_with_encoder(enc)
        }
    };
    res.map_err(|source| SynthError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &buf).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_list_drops_by_path_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::new(4, 4);
        for name in ["a.png", "b.png", "c.png"] {
            save_rgb(&dir.path().join("rock").join(name), &img, ImageKind::Png).unwrap();
        }
        let list_file = dir.path().join("exclude.txt");
        let full_c = dir.path().join("rock/c.png");
        fs::write(
            &list_file,
            format!(
                "# covers with printed labels\na.png  # by name\n\n{}\nzzz.png\n",
                full_c.display()
            ),
        )
        .unwrap();
        let exclude = read_exclude_list(&list_file).unwrap();
        assert_eq!(exclude.len(), 3);
        let mut covers = list_covers(dir.path()).unwrap();
        assert_eq!(exclude_covers(&mut covers, &exclude), 2);
        assert_eq!(covers.len(), 1);
        assert!(covers[0].path.ends_with("rock/b.png"));
        assert!(read_exclude_list(&dir.path().join("missing.txt")).is_err());
    }

    #[test]
    fn lists_imagefolder_and_flat_files() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::new(4, 4);
        save_rgb(&dir.path().join("Hip-Hop/a.png"), &img, ImageKind::Png).unwrap();
        save_rgb(
            &dir.path().join("rock/sub/b.jpg"),
            &img,
            ImageKind::Jpeg(90),
        )
        .unwrap();
        save_rgb(&dir.path().join("c.png"), &img, ImageKind::Png).unwrap();
        fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let list = list_covers(dir.path()).unwrap();
        let genres: Vec<_> = list.iter().map(|c| c.genre.clone()).collect();
        assert_eq!(
            genres,
            vec![Some("hiphop".into()), None, Some("rock".into())]
        );
        assert_eq!(load_rgb(&list[0].path).unwrap().dimensions(), (4, 4));

        let empty = tempfile::tempdir().unwrap();
        assert!(list_covers(empty.path()).is_err());
        let bad = dir.path().join("bad.jpg");
        fs::write(&bad, b"not an image").unwrap();
        assert!(load_rgb(&bad).unwrap_err().to_string().contains("bad.jpg"));
    }

    #[test]
    fn lists_a_dataset_directory_from_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::new(4, 4);
        save_rgb(&dir.path().join("images/ab/ab01.png"), &img, ImageKind::Png).unwrap();
        save_rgb(
            &dir.path().join("images/cd/cd02.jpg"),
            &img,
            ImageKind::Jpeg(90),
        )
        .unwrap();
        let manifest = "id,sha256,path,genre,source,split,album\n\
            \"Rock/a, \"\"b\"\".png\",ab01,images/ab/ab01.png,rock,folder,train,\"Two\nlines\"\n\
            url-only,,,pop,csv,,\n\
            escape,ef,../outside.png,pop,csv,,\n\
            Hip-Hop/c.jpg,cd02,images/cd/cd02.jpg,Hip-Hop,folder,test,\n";
        fs::write(dir.path().join(MANIFEST_FILE), manifest).unwrap();
        let list = list_covers(dir.path()).unwrap();
        let got: Vec<_> = list
            .iter()
            .map(|c| {
                (
                    c.path.strip_prefix(dir.path()).unwrap().to_path_buf(),
                    c.genre.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("images/ab/ab01.png".into(), Some("rock".into())),
                ("images/cd/cd02.jpg".into(), Some("hiphop".into())),
            ]
        );
        fs::write(dir.path().join(MANIFEST_FILE), "id,file\n1,x.png\n").unwrap();
        let e = list_covers(dir.path()).unwrap_err().to_string();
        assert!(e.contains("manifest.csv") && e.contains("'path'"), "{e}");
    }
}

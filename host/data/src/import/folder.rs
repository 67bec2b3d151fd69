//! `--from folder DIR`: ImageFolder, one sub-folder per genre. Ids are
//! `<genre folder>/<file name>`.

use std::path::Path;

use super::{Candidate, ImageSource, Issue, Parsed};
use crate::error::{DataError, Result};
use crate::folder::scan_image_folder;

/// Lists the images of a folder-per-genre tree. A dataset directory (with
/// `manifest.csv`) is refused: its `images/` folder is not a genre.
pub fn parse(dir: &Path) -> Result<Parsed> {
    if dir.join(crate::manifest::MANIFEST_FILE).is_file() {
        return Err(DataError::Invalid(format!(
            "{} is a dataset directory (it has {}), not a folder-per-genre tree",
            dir.display(),
            crate::manifest::MANIFEST_FILE
        )));
    }
    let scan = scan_image_folder(dir)?;
    let issues = scan
        .issues
        .into_iter()
        .map(|m| match m.split_once(": ") {
            Some((loc, msg)) => Issue::new(loc, msg),
            None => Issue::new(dir.display().to_string(), m),
        })
        .collect();
    let candidates = scan
        .images
        .into_iter()
        .map(|im| Candidate {
            id: Some(im.rel.clone()),
            image: ImageSource::Local(im.path),
            genre: im.genre,
            artist: String::new(),
            album: String::new(),
            origin: im.rel,
        })
        .collect();
    Ok(Parsed { candidates, issues })
}

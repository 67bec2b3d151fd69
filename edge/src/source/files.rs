//! Image files: a directory, glob patterns or explicit paths, read in sorted order.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::engine::ms;
use crate::error::{EdgeError, Result};
use crate::source::{Frame, FrameSource};

/// File extensions read from a directory.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "webp", "gif", "ppm"];

/// Reads an image file as RGB8 with a clear error, through the shared decoding front door
/// (size limits, truncated JPEGs refused).
pub fn read_rgb(path: &Path) -> Result<image::RgbImage> {
    sleeve_shared::imageio::open_rgb(path).map_err(|e| EdgeError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Expands directories (their image files, sorted) and glob patterns into a file list.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let p = Path::new(input);
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| EdgeError::source(input, e))?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                        IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str())
                    })
                })
                .collect();
            files.sort();
            out.extend(files);
        } else if input.contains(['*', '?', '[']) {
            let paths = glob::glob(input)
                .map_err(|e| EdgeError::source(input, format!("bad glob: {e}")))?;
            let mut files: Vec<PathBuf> = paths
                .filter_map(|r| r.ok())
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.to_path_buf());
        }
    }
    if out.is_empty() {
        return Err(EdgeError::source(inputs.join(" "), "no image files found"));
    }
    Ok(out)
}

/// A finite list of image files. A file that cannot be read or decoded is logged with its
/// name, counted ([`FrameSource::bad_inputs`]) and skipped: files are not a camera, so
/// there is nothing to retry, and the files after it are still read.
pub struct ImageFiles {
    files: Vec<PathBuf>,
    next: usize,
    frames: u64,
    looping: bool,
    bad: u64,
}

/// Reads `path` for a frame source; on failure logs it and counts it in `bad`.
pub(crate) fn read_or_skip(path: &Path, bad: &mut u64) -> Option<image::RgbImage> {
    match read_rgb(path) {
        Ok(img) => Some(img),
        Err(e) => {
            *bad += 1;
            tracing::error!(file = %path.display(), error = %e, "bad image file: skipped");
            None
        }
    }
}

impl ImageFiles {
    /// Frames from directories, glob patterns or paths (see [`expand_inputs`]).
    pub fn new(inputs: &[String], looping: bool) -> Result<Self> {
        Ok(Self::from_paths(expand_inputs(inputs)?, looping))
    }

    /// Frames from an explicit list.
    pub fn from_paths(files: Vec<PathBuf>, looping: bool) -> Self {
        Self {
            files,
            next: 0,
            frames: 0,
            looping,
            bad: 0,
        }
    }
}

impl FrameSource for ImageFiles {
    fn describe(&self) -> String {
        format!("{} image file(s)", self.files.len())
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        // Bad files are skipped; a looping list of only bad files ends after one pass.
        let mut bad_in_a_row = 0;
        let (path, image, t) = loop {
            if self.next >= self.files.len() {
                if !self.looping || self.files.is_empty() || bad_in_a_row >= self.files.len() {
                    return Ok(None);
                }
                self.next = 0;
            }
            let path = self.files[self.next].clone();
            self.next += 1;
            let t = Instant::now();
            match read_or_skip(&path, &mut self.bad) {
                Some(image) => break (path, image, t),
                None => bad_in_a_row += 1,
            }
        };
        let frame = Frame {
            image,
            index: self.frames,
            name: path.display().to_string(),
            decode_ms: ms(t),
            truth: None,
        };
        self.frames += 1;
        Ok(Some(frame))
    }

    fn bad_inputs(&self) -> u64 {
        self.bad
    }
}

//! Image files: a directory, glob patterns or explicit paths, read in sorted order.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::engine::ms;
use crate::error::{EdgeError, Result};
use crate::source::{Frame, FrameSource};

/// File extensions read from a directory.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "webp", "gif", "ppm"];

/// Reads an image file as RGB8 with a clear error.
pub fn read_rgb(path: &Path) -> Result<image::RgbImage> {
    let img = image::ImageReader::open(path)
        .map_err(|e| EdgeError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .with_guessed_format()
        .map_err(|e| EdgeError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .decode()
        .map_err(|e| EdgeError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(img.to_rgb8())
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

/// A finite list of image files. A file that cannot be decoded is an error for that frame
/// only: the next call moves on to the following file.
pub struct ImageFiles {
    files: Vec<PathBuf>,
    next: usize,
    frames: u64,
    looping: bool,
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
        }
    }
}

impl FrameSource for ImageFiles {
    fn describe(&self) -> String {
        format!("{} image file(s)", self.files.len())
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.next >= self.files.len() {
            if !self.looping || self.files.is_empty() {
                return Ok(None);
            }
            self.next = 0;
        }
        let path = self.files[self.next].clone();
        self.next += 1;
        let t = Instant::now();
        let image = read_rgb(&path)?;
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
}

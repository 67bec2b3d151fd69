//! PNG snapshots of the screen into a directory (tests, docs, headless runs).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, RgbImage};
use sleeve_shared::fsutil::write_atomic;

use crate::display::Screen;
use crate::error::{EdgeError, Result};

/// Writes `frame_NNNNNN.png` for every `every`-th screen.
pub struct PngSnapshots {
    dir: PathBuf,
    every: u64,
}

impl PngSnapshots {
    /// Snapshots into `dir` (created), one per `every` frames (≥ 1).
    pub fn new(dir: &Path, every: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| EdgeError::Output {
            target: dir.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            every: every.max(1),
        })
    }

    /// Path of the snapshot of frame `index`.
    pub fn path_of(&self, index: u64) -> PathBuf {
        self.dir.join(format!("frame_{index:06}.png"))
    }
}

/// Encodes an image as PNG and writes it atomically.
pub fn write_png(path: &Path, img: &RgbImage) -> Result<()> {
    let err = |m: String| EdgeError::Output {
        target: path.display().to_string(),
        message: m,
    };
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Png)
        .map_err(|e| err(e.to_string()))?;
    write_atomic(path, buf.get_ref()).map_err(|e| err(e.to_string()))
}

impl Screen for PngSnapshots {
    fn wants(&self, index: u64) -> bool {
        index.is_multiple_of(self.every)
    }

    fn show(&mut self, index: u64, screen: &RgbImage) -> Result<()> {
        if index.is_multiple_of(self.every) {
            write_png(&self.path_of(index), screen)?;
        }
        Ok(())
    }
}

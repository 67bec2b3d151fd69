//! A minimal Linux framebuffer writer: geometry from `/sys/class/graphics/fbN/`, pixels
//! written to `/dev/fbN` with plain file I/O (no ioctls). Supports 16 bpp (RGB565) and
//! 24/32 bpp (BGR(X), the usual little-endian layouts).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use image::RgbImage;
use image::imageops;

use crate::display::Screen;
use crate::error::{EdgeError, Result};

/// Framebuffer geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FbGeometry {
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in pixels.
    pub height: u32,
    /// Bits per pixel (16, 24 or 32).
    pub bits_per_pixel: u32,
    /// Bytes per line.
    pub stride: u32,
}

impl FbGeometry {
    /// Reads `virtual_size`, `bits_per_pixel` and `stride` from a sysfs directory such as
    /// `/sys/class/graphics/fb0`.
    pub fn from_sysfs(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<String> {
            std::fs::read_to_string(dir.join(name))
                .map(|s| s.trim().to_string())
                .map_err(|e| fb_err(dir, format!("{name}: {e}")))
        };
        let size = read("virtual_size")?;
        let (w, h) = size
            .split_once(',')
            .ok_or_else(|| fb_err(dir, format!("virtual_size '{size}'")))?;
        let num = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| fb_err(dir, format!("bad {what} '{s}'")))
        };
        let g = Self {
            width: num(w, "width")?,
            height: num(h, "height")?,
            bits_per_pixel: num(&read("bits_per_pixel")?, "bits_per_pixel")?,
            stride: num(&read("stride")?, "stride")?,
        };
        if !matches!(g.bits_per_pixel, 16 | 24 | 32) || g.stride < g.width * g.bits_per_pixel / 8 {
            return Err(fb_err(dir, format!("unsupported framebuffer {g:?}")));
        }
        Ok(g)
    }

    /// Encodes an image of exactly this size into framebuffer bytes (rows padded to stride).
    pub fn encode(&self, img: &RgbImage) -> Vec<u8> {
        let bpp = (self.bits_per_pixel / 8) as usize;
        let mut out = vec![0u8; self.stride as usize * self.height as usize];
        for (y, row) in out
            .chunks_mut(self.stride as usize)
            .enumerate()
            .take(img.height() as usize)
        {
            for x in 0..(self.width.min(img.width()) as usize) {
                let [r, g, b] = img.get_pixel(x as u32, y as u32).0;
                let px = &mut row[x * bpp..x * bpp + bpp];
                match bpp {
                    2 => {
                        let v = (u16::from(r >> 3) << 11)
                            | (u16::from(g >> 2) << 5)
                            | u16::from(b >> 3);
                        px.copy_from_slice(&v.to_le_bytes());
                    }
                    3 => px.copy_from_slice(&[b, g, r]),
                    _ => px.copy_from_slice(&[b, g, r, 0xff]),
                }
            }
        }
        out
    }
}

fn fb_err(dir: &Path, m: String) -> EdgeError {
    EdgeError::Output {
        target: dir.display().to_string(),
        message: m,
    }
}

/// The framebuffer as a [`Screen`]: screens are scaled to fit and centred.
pub struct Framebuffer {
    device: PathBuf,
    file: File,
    geometry: FbGeometry,
}

impl Framebuffer {
    /// Opens `/dev/fbN` for writing, with geometry from `/sys/class/graphics/fbN`.
    pub fn open(n: u32) -> Result<Self> {
        let device = PathBuf::from(format!("/dev/fb{n}"));
        let geometry = FbGeometry::from_sysfs(Path::new(&format!("/sys/class/graphics/fb{n}")))?;
        let file = OpenOptions::new()
            .write(true)
            .open(&device)
            .map_err(|e| fb_err(&device, format!("{e} (is the user in the 'video' group?)")))?;
        tracing::info!(device = %device.display(), ?geometry, "framebuffer open");
        Ok(Self {
            device,
            file,
            geometry,
        })
    }
}

impl Screen for Framebuffer {
    fn show(&mut self, _index: u64, screen: &RgbImage) -> Result<()> {
        let g = self.geometry;
        let fit =
            (g.width as f32 / screen.width() as f32).min(g.height as f32 / screen.height() as f32);
        let (w, h) = (
            ((screen.width() as f32 * fit) as u32).max(1),
            ((screen.height() as f32 * fit) as u32).max(1),
        );
        let mut full = RgbImage::new(g.width, g.height);
        let scaled = if (w, h) == screen.dimensions() {
            screen.clone()
        } else {
            crate::resize::triangle(screen, w, h)
        };
        imageops::replace(
            &mut full,
            &scaled,
            i64::from((g.width - w) / 2),
            i64::from((g.height - h) / 2),
        );
        let bytes = g.encode(&full);
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&bytes))
            .map_err(|e| fb_err(&self.device, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_geometry_and_encoding() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("virtual_size"), "4,2\n").unwrap();
        std::fs::write(dir.path().join("bits_per_pixel"), "16\n").unwrap();
        std::fs::write(dir.path().join("stride"), "10\n").unwrap();
        let g = FbGeometry::from_sysfs(dir.path()).unwrap();
        assert_eq!(
            (g.width, g.height, g.bits_per_pixel, g.stride),
            (4, 2, 16, 10)
        );
        let img = RgbImage::from_pixel(4, 2, image::Rgb([255, 0, 0]));
        let bytes = g.encode(&img);
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[0..2], &0xf800u16.to_le_bytes());
        assert_eq!(&bytes[8..10], &[0, 0], "stride padding stays zero");
        std::fs::write(dir.path().join("bits_per_pixel"), "8\n").unwrap();
        assert!(FbGeometry::from_sysfs(dir.path()).is_err());
    }
}

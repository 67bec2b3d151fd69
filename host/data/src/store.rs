//! Content-addressed image store: `images/<first 2 hex>/<sha256>.<ext>`, original bytes.
//!
//! Every stored image is first checked: it must decode, and it gets its size and a 64-bit
//! perceptual hash (DCT pHash via `image_hasher`) for near-duplicate detection.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::ImageFormat;
use image_hasher::{HashAlg, HasherConfig};

use crate::error::{DataError, Result};

/// Name of the image folder inside a dataset directory.
pub const IMAGES_DIR: &str = "images";

/// What an image's bytes turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// File extension for the detected format (`jpg`, `png`, …).
    pub ext: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 64-bit perceptual hash as 16 hex digits.
    pub phash: String,
}

/// Why bytes are not a usable image.
#[derive(Debug, thiserror::Error)]
pub enum ImageCheckError {
    /// The format is not one we read (or the bytes are not an image at all).
    #[error("not a recognised image format")]
    UnknownFormat,
    /// The image header or data is broken, truncated or over the size limits.
    #[error("{0}")]
    Corrupt(String),
    /// Zero-sized image.
    #[error("image has zero width or height")]
    Empty,
}

/// Decodes `bytes` fully and returns hash, format, size and perceptual hash.
pub fn inspect_image(bytes: &[u8]) -> std::result::Result<ImageInfo, ImageCheckError> {
    use sleeve_shared::imageio::{ImageDecodeError, decode, sniff_format};
    let format = sniff_format(bytes).map_err(|_| ImageCheckError::UnknownFormat)?;
    let ext = match format {
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Png => "png",
        ImageFormat::Bmp => "bmp",
        ImageFormat::WebP => "webp",
        ImageFormat::Gif => "gif",
        _ => return Err(ImageCheckError::UnknownFormat),
    };
    // The shared front door: size limits, truncated JPEGs refused.
    let img = decode(bytes).map_err(|e| match e {
        ImageDecodeError::UnknownFormat => ImageCheckError::UnknownFormat,
        ImageDecodeError::Empty => ImageCheckError::Empty,
        e => ImageCheckError::Corrupt(e.to_string()),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(ImageCheckError::Empty);
    }
    let phash = perceptual_hash(&img.to_rgb8());
    Ok(ImageInfo {
        sha256: sleeve_shared::fsutil::sha256_hex(bytes),
        ext,
        width: img.width(),
        height: img.height(),
        phash,
    })
}

/// 64-bit DCT perceptual hash of an image, as 16 hex digits.
pub fn perceptual_hash(img: &image::RgbImage) -> String {
    let hasher = HasherConfig::new()
        .hash_size(8, 8)
        .hash_alg(HashAlg::Median)
        .preproc_dct()
        .to_hasher();
    hex::encode(hasher.hash_image(img).as_bytes())
}

/// Hamming distance between two hex pHashes; None if either is missing or malformed.
pub fn phash_distance(a: &str, b: &str) -> Option<u32> {
    Some((phash_bits(a)? ^ phash_bits(b)?).count_ones())
}

/// A hex pHash as a `u64`; None if missing or malformed.
pub fn phash_bits(h: &str) -> Option<u64> {
    if h.len() != 16 {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

/// The image store of one dataset directory. Writes are serialised so that two threads
/// storing the same bytes never race on the same temporary file.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    write_lock: Mutex<()>,
}

impl ImageStore {
    /// The store under `dataset_dir/images`.
    pub fn new(dataset_dir: &Path) -> Self {
        Self {
            root: dataset_dir.to_path_buf(),
            write_lock: Mutex::new(()),
        }
    }

    /// Relative path (`images/ab/ab….ext`) an image with this hash and extension gets.
    pub fn rel_path(sha256: &str, ext: &str) -> String {
        let prefix = sha256.get(..2).unwrap_or("00");
        format!("{IMAGES_DIR}/{prefix}/{sha256}.{ext}")
    }

    /// Stores the bytes (atomically, once per content) and returns the relative path.
    pub fn put(&self, info: &ImageInfo, bytes: &[u8]) -> Result<String> {
        let rel = Self::rel_path(&info.sha256, info.ext);
        let abs = self.root.join(&rel);
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let up_to_date = std::fs::metadata(&abs).is_ok_and(|m| m.len() == bytes.len() as u64);
        if !up_to_date {
            sleeve_shared::fsutil::write_atomic(&abs, bytes).map_err(|e| DataError::io(&abs, e))?;
        }
        Ok(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8 ^ seed, (y * 5) as u8, seed.wrapping_mul(3)])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn inspect_and_store() {
        let bytes = png(20, 10, 1);
        let info = inspect_image(&bytes).unwrap();
        assert_eq!((info.width, info.height, info.ext), (20, 10, "png"));
        assert_eq!(info.phash.len(), 16);
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path());
        let rel = store.put(&info, &bytes).unwrap();
        assert!(rel.starts_with(&format!("images/{}/", &info.sha256[..2])));
        assert_eq!(std::fs::read(dir.path().join(&rel)).unwrap(), bytes);
        assert_eq!(phash_distance(&info.phash, &info.phash), Some(0));
    }

    #[test]
    fn rejects_non_images_and_truncated() {
        assert!(matches!(
            inspect_image(b"<html>nope</html>"),
            Err(ImageCheckError::UnknownFormat)
        ));
        let bytes = png(20, 10, 2);
        assert!(inspect_image(&bytes[..bytes.len() / 2]).is_err());
    }
}

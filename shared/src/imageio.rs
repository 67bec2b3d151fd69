//! The one front door for decoding untrusted image files, host and edge alike.
//!
//! Every image a user can hand Sleeve (a cover to import, a frame file for the kiosk, a
//! calibration image) is decoded here, with limits that fit a Raspberry Pi: at most
//! [`MAX_FILE_BYTES`] of file, [`MAX_SIDE`] pixels per side and [`MAX_DECODE_BYTES`] of
//! decoder allocation. A decompression bomb (a tiny PNG claiming 20000×20000) is refused
//! from its header before any pixel is allocated, and a JPEG that ends before its
//! end-of-image marker (a truncated download) is an error rather than a half-grey picture.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};

/// Largest image file read, in bytes (64 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 8192;
/// Most memory a decoder may allocate for one image, in bytes (256 MiB).
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Why an image cannot be used.
#[derive(Debug)]
pub enum ImageDecodeError {
    /// The file cannot be read.
    Io(std::io::Error),
    /// The file is larger than [`MAX_FILE_BYTES`].
    FileTooLarge(u64),
    /// Not an image format Sleeve reads.
    UnknownFormat,
    /// The header claims more pixels than the limits allow.
    TooLarge {
        /// Claimed width.
        width: u32,
        /// Claimed height.
        height: u32,
    },
    /// Zero width or height.
    Empty,
    /// The data ends before the image does (a JPEG without its end-of-image marker).
    Truncated,
    /// The decoder refused the data.
    Corrupt(String),
}

impl core::fmt::Display for ImageDecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read: {e}"),
            Self::FileTooLarge(n) => write!(
                f,
                "file of {n} bytes is larger than the {MAX_FILE_BYTES}-byte limit for images"
            ),
            Self::UnknownFormat => write!(f, "not a recognised image format"),
            Self::TooLarge { width, height } => write!(
                f,
                "image is {width}x{height} pixels, over the {MAX_SIDE}x{MAX_SIDE} limit \
                 (or {} MiB of decoded pixels)",
                MAX_DECODE_BYTES >> 20
            ),
            Self::Empty => write!(f, "image has zero width or height"),
            Self::Truncated => write!(f, "image data is truncated (no end-of-image marker)"),
            Self::Corrupt(m) => write!(f, "corrupt image: {m}"),
        }
    }
}

impl std::error::Error for ImageDecodeError {}

/// The decoder limits used everywhere.
pub fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_DECODE_BYTES);
    l
}

/// The format of `bytes`, when it is one Sleeve reads.
pub fn sniff_format(bytes: &[u8]) -> Result<ImageFormat, ImageDecodeError> {
    match image::guess_format(bytes) {
        Ok(
            f @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::Bmp
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Pnm),
        ) => Ok(f),
        _ => Err(ImageDecodeError::UnknownFormat),
    }
}

/// True when a JPEG stream has an end-of-image marker after its last start-of-scan.
/// (Neither marker can occur inside entropy-coded data, which stuffs every `0xFF`.)
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Decodes an in-memory image within the limits.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ImageDecodeError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImageDecodeError::FileTooLarge(bytes.len() as u64));
    }
    let format = sniff_format(bytes)?;
    let reader = |limits: Limits| {
        let mut r = ImageReader::with_format(Cursor::new(bytes), format);
        r.limits(limits);
        r
    };
    // The header alone (no pixels allocated), to name the size in the error.
    let (width, height) = reader(Limits::no_limits())
        .into_dimensions()
        .map_err(|e| ImageDecodeError::Corrupt(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(ImageDecodeError::Empty);
    }
    let too_large = ImageDecodeError::TooLarge { width, height };
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(too_large);
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageDecodeError::Truncated);
    }
    reader(limits()).decode().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large,
        e => ImageDecodeError::Corrupt(e.to_string()),
    })
}

/// Decodes an in-memory image within the limits, as RGB8.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, ImageDecodeError> {
    decode(bytes).map(|i| i.to_rgb8())
}

/// Reads and decodes an image file within the limits, as RGB8.
pub fn open_rgb(path: &Path) -> Result<RgbImage, ImageDecodeError> {
    let len = std::fs::metadata(path).map_err(ImageDecodeError::Io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(ImageDecodeError::FileTooLarge(len));
    }
    let bytes = std::fs::read(path).map_err(ImageDecodeError::Io)?;
    decode_rgb(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 77]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    /// A valid greyscale PNG of `w × h` black pixels: tiny file, huge image.
    pub(crate) fn png_bomb(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let row = vec![0u8; w as usize];
        let mut data = Vec::with_capacity(row.len() * h as usize);
        for _ in 0..h {
            data.extend_from_slice(&row);
        }
        PngEncoder::new(&mut out)
            .write_image(&data, w, h, ExtendedColorType::L8)
            .unwrap();
        out
    }

    #[test]
    fn decodes_a_good_jpeg() {
        let img = decode_rgb(&jpeg(40, 30)).unwrap();
        assert_eq!(img.dimensions(), (40, 30));
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let full = jpeg(64, 64);
        for cut in [full.len() / 2, full.len() - 2] {
            let err = decode_rgb(&full[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ImageDecodeError::Truncated | ImageDecodeError::Corrupt(_)
                ),
                "cut at {cut}: {err}"
            );
        }
        // Cut inside the scan data: the headers parse, the picture would be half grey.
        let most = decode_rgb(&full[..full.len() * 4 / 5]);
        assert!(
            matches!(most, Err(ImageDecodeError::Truncated)),
            "{most:?} ({} bytes)",
            full.len()
        );
    }

    #[test]
    fn oversized_png_is_refused_from_its_header() {
        // 9000 × 16 is small in memory but over the side limit.
        let err = decode_rgb(&png_bomb(MAX_SIDE + 1, 16)).unwrap_err();
        assert!(matches!(err, ImageDecodeError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("8193x16"), "{err}");
    }

    #[test]
    fn garbage_and_empty_are_errors() {
        assert!(matches!(
            decode_rgb(b"hello"),
            Err(ImageDecodeError::UnknownFormat)
        ));
        assert!(matches!(
            decode_rgb(&[]),
            Err(ImageDecodeError::UnknownFormat)
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            open_rgb(&dir.path().join("missing.png")),
            Err(ImageDecodeError::Io(_))
        ));
    }
}

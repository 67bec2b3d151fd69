//! Test fixtures: small generated images and folder trees.
#![allow(dead_code)]

use std::path::Path;

use image::{ImageFormat, RgbImage};

/// A `size`×`size` image of 8×8 random colour blocks: different seeds give unrelated
/// perceptual hashes.
pub fn blocks(seed: u64, size: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let cells: Vec<[u8; 3]> = (0..64)
        .map(|_| {
            let v = next();
            [v as u8, (v >> 8) as u8, (v >> 16) as u8]
        })
        .collect();
    RgbImage::from_fn(size, size, |x, y| {
        let cx = (x * 8 / size) as usize;
        let cy = (y * 8 / size) as usize;
        image::Rgb(cells[cy * 8 + cx])
    })
}

/// Encodes an image.
pub fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// PNG bytes of `blocks(seed, 64)`.
pub fn png(seed: u64) -> Vec<u8> {
    encode(&blocks(seed, 64), ImageFormat::Png)
}

/// JPEG bytes of `blocks(seed, size)`.
pub fn jpg(seed: u64, size: u32) -> Vec<u8> {
    encode(&blocks(seed, size), ImageFormat::Jpeg)
}

/// Writes a file, creating parent folders.
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

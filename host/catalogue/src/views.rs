//! Augmented views of a cover: small perspective errors, as the kiosk's rectification of a
//! sleeve makes them. Photometric changes (light, white balance) are not needed: the
//! descriptor normalises them away.

use image::RgbImage;
use image::imageops::{self, FilterType};
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp_into};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Side the extra views are rendered at (the descriptor reads 32 × 32).
const VIEW_SIDE: u32 = 160;
/// Standard deviation of each corner's displacement, as a fraction of the side.
const CORNER_SIGMA: f32 = 0.025;

/// `n` views of `cover`: the cover itself first, then `n − 1` warps with each corner moved
/// by about ±2.5 % of the side (deterministic for `seed`).
pub fn views(cover: &RgbImage, n: u32, seed: u64) -> Vec<RgbImage> {
    let mut out = vec![cover.clone()];
    if n <= 1 {
        return out;
    }
    let small = imageops::resize(cover, VIEW_SIDE, VIEW_SIDE, FilterType::Triangle);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = VIEW_SIDE as f32;
    let square = [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)];
    for _ in 1..n {
        // Where the true corners land in the "rectified" view: the kiosk's corner
        // estimates are off by a few pixels in any direction.
        let moved = square.map(|(x, y)| {
            let dx: f32 = rng.random_range(-1.0..1.0) * CORNER_SIGMA * 1.7 * s;
            let dy: f32 = rng.random_range(-1.0..1.0) * CORNER_SIGMA * 1.7 * s;
            (x + dx, y + dy)
        });
        let mut view = RgbImage::new(VIEW_SIDE, VIEW_SIDE);
        match Projection::from_control_points(square, moved) {
            Some(p) => warp_into(
                &small,
                p,
                Interpolation::Bilinear,
                Border::Replicate,
                &mut view,
            ),
            None => view = small.clone(),
        }
        out.push(view);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_view_is_the_cover_and_warps_differ() {
        let cover = RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, 90])
        });
        let v = views(&cover, 3, 1);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], cover);
        assert_ne!(v[1], v[2]);
        assert_eq!(views(&cover, 3, 1)[2], v[2], "deterministic");
        assert_eq!(views(&cover, 0, 1).len(), 1);
    }
}

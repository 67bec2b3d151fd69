//! Pasting an image onto another through a projective map (rotation, perspective), with
//! anti-aliased edges, and mapping boxes/points through the same map.

use image::{RgbImage, Rgba, RgbaImage};
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp_into};
use sleeve_shared::detect::BoxF;

use crate::canvas::blend_pixel;

/// The four corners of a `w × h` image as continuous coordinates (pixel edges), in the
/// order TL, TR, BR, BL.
pub fn image_corners(w: u32, h: u32) -> [(f32, f32); 4] {
    let (w, h) = (w as f32, h as f32);
    [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
}

/// Maps points through `proj`, where both sides use continuous (pixel-edge) coordinates.
pub fn map_points<const N: usize>(proj: &Projection, pts: [(f32, f32); N]) -> [(f32, f32); N] {
    pts.map(|p| proj * &p)
}

/// Axis-aligned bounding box of points.
pub fn bounds(pts: &[(f32, f32)]) -> BoxF {
    let mut b = BoxF::new(f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in pts {
        b.x0 = b.x0.min(x);
        b.y0 = b.y0.min(y);
        b.x1 = b.x1.max(x);
        b.y1 = b.y1.max(y);
    }
    b
}

/// The bounding box of box `b` after `proj`.
pub fn map_box(proj: &Projection, b: &BoxF) -> BoxF {
    bounds(&map_points(
        proj,
        [(b.x0, b.y0), (b.x1, b.y0), (b.x1, b.y1), (b.x0, b.y1)],
    ))
}

/// Clips a pixel box to a `w × h` image.
pub fn clip_box(b: &BoxF, w: u32, h: u32) -> BoxF {
    BoxF::new(
        b.x0.clamp(0.0, w as f32),
        b.y0.clamp(0.0, h as f32),
        b.x1.clamp(0.0, w as f32),
        b.y1.clamp(0.0, h as f32),
    )
}

/// Draws `src` onto `dst` through `proj` (continuous `src` coordinates → continuous `dst`
/// coordinates), bilinear, blending by `src`'s alpha times `opacity`. Only the projected
/// bounding box is processed, so small pastes are cheap.
pub fn paste_projected(dst: &mut RgbImage, src: &RgbaImage, proj: &Projection, opacity: f32) {
    let b = bounds(&map_points(proj, image_corners(src.width(), src.height())));
    let x0 = b.x0.floor().max(0.0) as i64;
    let y0 = b.y0.floor().max(0.0) as i64;
    let x1 = (b.x1.ceil() as i64).min(dst.width() as i64);
    let y1 = (b.y1.ceil() as i64).min(dst.height() as i64);
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let (bw, bh) = ((x1 - x0) as u32, (y1 - y0) as u32);
    // imageproc samples pixel centres at integer coordinates: shift by half a pixel on both
    // sides so the continuous maps line up, and move the output origin to the box.
    let sub = Projection::translate(-(x0 as f32) - 0.5, -(y0 as f32) - 0.5)
        * *proj
        * Projection::translate(0.5, 0.5);
    let mut patch = RgbaImage::new(bw, bh);
    warp_into(
        src,
        sub,
        Interpolation::Bilinear,
        Border::Constant(Rgba([0, 0, 0, 0])),
        &mut patch,
    );
    for (px, py, p) in patch.enumerate_pixels() {
        let a = p.0[3] as f32 / 255.0 * opacity;
        if a > 0.0 {
            // Undo the darkening bilinear blending with transparent black causes at edges.
            let un = |c: u8| {
                if p.0[3] > 0 {
                    (c as f32 * 255.0 / p.0[3] as f32).min(255.0) as u8
                } else {
                    0
                }
            };
            blend_pixel(
                dst,
                x0 + px as i64,
                y0 + py as i64,
                [un(p.0[0]), un(p.0[1]), un(p.0[2])],
                a,
            );
        }
    }
}

/// An RGB image as fully opaque RGBA.
pub fn opaque(img: &RgbImage) -> RgbaImage {
    RgbaImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], 255])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_paste_lands_where_mapped() {
        let mut dst = RgbImage::new(40, 40);
        let src = RgbaImage::from_pixel(10, 10, Rgba([255, 0, 0, 255]));
        let proj = Projection::translate(5.0, 7.0);
        paste_projected(&mut dst, &src, &proj, 1.0);
        assert_eq!(dst.get_pixel(5, 7).0, [255, 0, 0]);
        assert_eq!(dst.get_pixel(14, 16).0, [255, 0, 0]);
        assert_eq!(dst.get_pixel(4, 7).0, [0, 0, 0]);
        assert_eq!(dst.get_pixel(15, 16).0, [0, 0, 0]);
        let b = map_box(&proj, &BoxF::new(0.0, 0.0, 10.0, 10.0));
        assert_eq!(b, BoxF::new(5.0, 7.0, 15.0, 17.0));
    }
}

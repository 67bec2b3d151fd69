//! Augmented views of real labelled covers: the few hundred real printed labels enter
//! training several times, each time zoomed, turned, jittered in colour, blurred or JPEG
//! re-encoded a little differently, with their boxes carried along.

use crate::data::Sample;
use image::RgbImage;
use imageproc::filter::gaussian_blur_f32;
use rand::Rng;
use sleeve_nn::augment::{AugmentConfig, augment_mapped, view_rng};
use sleeve_shared::detect::BoxF;

/// Smallest share of a label box that must stay inside the view; a view that would cut a
/// label more than this is drawn again (a sliver of a label is neither a label nor clearly
/// background).
const MIN_VISIBLE: f32 = 0.6;

/// How many draws a view gets before the cover is used unchanged.
const DRAWS: u32 = 8;

/// The transformation ranges: milder than the classifier's (the kiosk's rectified sleeve is
/// nearly the whole cover; labels are small).
fn ranges() -> AugmentConfig {
    AugmentConfig {
        scale_min: 0.65,
        aspect_max: 1.12,
        rotate_deg: 4.0,
        perspective: 0.04,
        brightness: 0.3,
        contrast: 0.3,
        saturation: 0.3,
    }
}

/// View `view` (≥ 1) of a real cover whose `boxes` are normalised to its centred square, as
/// an `out_side` square sample; a pure function of `(image, boxes, seed, key, view)`.
pub fn augmented_view(
    image: &RgbImage,
    boxes: &[BoxF],
    out_side: u32,
    seed: u64,
    key: &str,
    view: u32,
) -> Sample {
    let square = centred_square(image);
    let side = square.width() as f32;
    let mut rng = view_rng(seed, key, view);
    let cfg = ranges();
    for _ in 0..DRAWS {
        let (mut out, map) = augment_mapped(&square, &cfg, out_side, &mut rng);
        let mapped: Option<Vec<BoxF>> = boxes
            .iter()
            .map(|b| {
                let corners = [(b.x0, b.y0), (b.x1, b.y0), (b.x1, b.y1), (b.x0, b.y1)]
                    .map(|(x, y)| map * (x * side, y * side))
                    .map(|(x, y)| (x / out_side as f32, y / out_side as f32));
                let full = BoxF::new(
                    corners.iter().map(|c| c.0).fold(f32::INFINITY, f32::min),
                    corners.iter().map(|c| c.1).fold(f32::INFINITY, f32::min),
                    corners
                        .iter()
                        .map(|c| c.0)
                        .fold(f32::NEG_INFINITY, f32::max),
                    corners
                        .iter()
                        .map(|c| c.1)
                        .fold(f32::NEG_INFINITY, f32::max),
                );
                let seen = full.clipped();
                let area = |b: &BoxF| b.width().max(0.0) * b.height().max(0.0);
                (area(&full) > 0.0 && area(&seen) >= MIN_VISIBLE * area(&full)).then_some(seen)
            })
            .collect();
        if let Some(boxes) = mapped {
            degrade(&mut out, &mut rng);
            return Sample { image: out, boxes };
        }
    }
    Sample {
        image: image::imageops::resize(
            &square,
            out_side,
            out_side,
            image::imageops::FilterType::Triangle,
        ),
        boxes: boxes.to_vec(),
    }
}

/// Print and camera losses: a little blur on a third of the views, JPEG re-encoding on half.
fn degrade(img: &mut RgbImage, rng: &mut impl Rng) {
    if rng.random_bool(1.0 / 3.0) {
        *img = gaussian_blur_f32(img, rng.random_range(0.4..1.2));
    }
    if rng.random_bool(0.5) {
        *img = sleeve_synth::scenes::jpeg_round_trip(img, rng.random_range(35..90));
    }
}

/// The centred square the preprocessing crops (the frame of normalised boxes).
fn centred_square(image: &RgbImage) -> RgbImage {
    let (ox, oy, s) = crate::real::crop_square(image.width(), image.height());
    image::imageops::crop_imm(
        image,
        ox.round() as u32,
        oy.round() as u32,
        (s.round() as u32).max(1),
        (s.round() as u32).max(1),
    )
    .to_image()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A red label on a grey 300x200 cover: in every view the box still frames red pixels
    /// and most red pixels lie inside the box.
    #[test]
    fn boxes_follow_the_label_through_every_view() {
        let mut img = RgbImage::from_pixel(300, 200, Rgb([120, 120, 120]));
        // centred square is x 50..250; the label at x 170..230, y 140..180 of the image
        for y in 140..180 {
            for x in 170..230 {
                img.put_pixel(x, y, Rgb([250, 10, 10]));
            }
        }
        let label = BoxF::new(120.0 / 200.0, 140.0 / 200.0, 180.0 / 200.0, 180.0 / 200.0);
        let mut distinct = std::collections::HashSet::new();
        for view in 1..=12 {
            let s = augmented_view(&img, &[label], 160, 5, "cover.jpg", view);
            assert_eq!(s.image.dimensions(), (160, 160));
            assert_eq!(s.boxes.len(), 1, "view {view}");
            let b = s.boxes[0];
            // reddish after colour jitter, blur and JPEG: red well above green and blue
            let red = |p: &Rgb<u8>| p[0] as i32 - (p[1].max(p[2]) as i32) > 50;
            let (mut inside, mut total, mut in_box_red, mut in_box) = (0, 0, 0, 0);
            for (x, y, p) in s.image.enumerate_pixels() {
                let (u, v) = ((x as f32 + 0.5) / 160.0, (y as f32 + 0.5) / 160.0);
                let within = u >= b.x0 && u <= b.x1 && v >= b.y0 && v <= b.y1;
                if red(p) {
                    total += 1;
                    inside += within as u32;
                }
                if within {
                    in_box += 1;
                    in_box_red += red(p) as u32;
                }
            }
            assert!(total > 0, "view {view}: the label left the view");
            assert!(
                inside as f32 >= 0.9 * total as f32,
                "view {view}: {inside}/{total}"
            );
            assert!(
                in_box_red as f32 >= 0.6 * in_box as f32,
                "view {view}: {in_box_red}/{in_box}"
            );
            distinct.insert(s.image.into_raw());
        }
        assert!(distinct.len() >= 11, "views repeat");
        // a pure function of its inputs
        let a = augmented_view(&img, &[label], 160, 5, "cover.jpg", 3);
        let b = augmented_view(&img, &[label], 160, 5, "cover.jpg", 3);
        assert_eq!(a.image, b.image);
        assert_eq!(a.boxes, b.boxes);
    }
}

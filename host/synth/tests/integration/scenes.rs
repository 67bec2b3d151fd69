//! Camera scenes: corners land where the ground truth says, no-sleeve frames, boxes.

use image::{Rgb, RgbImage};
use sleeve_synth::pa::PaConfig;
use sleeve_synth::scenes::{SceneConfig, render_hold, render_scene};

/// A clean camera: no clutter, hands, glare, blur, noise or JPEG, neutral exposure and white
/// balance.
fn clean(w: u32, h: u32) -> SceneConfig {
    SceneConfig {
        width: w,
        height: h,
        no_sleeve_prob: 0.0,
        other_sleeves_prob: 0.0,
        hand_prob: 0.0,
        clutter_prob: 0.0,
        uneven_light: 0.0,
        exposure: (1.0, 1.0),
        white_balance: 0.0,
        glare_prob: 0.0,
        blur_prob: 0.0,
        motion_blur_prob: 0.0,
        noise_sigma: (0.0, 0.0),
        jpeg: false,
        pa: PaConfig {
            label_prob: 0.0,
            hard_negative_prob: 0.0,
            hard_negative_with_label_prob: 0.0,
            ..PaConfig::default()
        },
        ..SceneConfig::default()
    }
}

const MARKS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]];

/// Grey cover with a saturated square in each corner: TL red, TR green, BR blue, BL yellow.
fn marked_cover() -> RgbImage {
    let s = 160;
    let m = 16;
    RgbImage::from_fn(s, s, |x, y| {
        let (l, t) = (x < m, y < m);
        let (r, b) = (x >= s - m, y >= s - m);
        match (l, t, r, b) {
            (true, true, _, _) => Rgb(MARKS[0]),
            (_, true, true, _) => Rgb(MARKS[1]),
            (_, _, true, true) => Rgb(MARKS[2]),
            (true, _, _, true) => Rgb(MARKS[3]),
            _ => Rgb([128, 128, 128]),
        }
    })
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() < 40)
}

/// Asserts each corner mark of [`marked_cover`] sits next to its ground-truth corner.
fn assert_marks_at(image: &RgbImage, corners: [(f32, f32); 4], ctx: &str) {
    let side =
        ((corners[1].0 - corners[0].0).powi(2) + (corners[1].1 - corners[0].1).powi(2)).sqrt();
    for (k, mark) in MARKS.iter().enumerate() {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (x, y, p) in image.enumerate_pixels() {
            if close(p.0, *mark) {
                sx += x as f32 + 0.5;
                sy += y as f32 + 0.5;
                n += 1.0;
            }
        }
        assert!(n > 10.0, "{ctx}: mark {k} not visible");
        let (cx, cy) = (sx / n, sy / n);
        // The mark's centre sits 1/20 of the side in from the corner along both edges.
        let d = |c: (f32, f32)| ((c.0 - cx).powi(2) + (c.1 - cy).powi(2)).sqrt();
        let dk = d(corners[k]);
        assert!(
            dk < 0.12 * side,
            "{ctx}: mark {k} centroid {:?} is {dk:.1}px from {:?}",
            (cx, cy),
            corners[k]
        );
        for (j, c) in corners.iter().enumerate() {
            if j != k {
                assert!(d(*c) > dk, "{ctx}: mark {k} is nearer corner {j}");
            }
        }
    }
    let (w, h) = (image.width() as f32, image.height() as f32);
    for &(x, y) in &corners {
        assert!(x >= 0.0 && y >= 0.0 && x <= w && y <= h, "{ctx}");
    }
}

#[test]
fn corner_marks_land_at_the_ground_truth_corners() {
    let cover = marked_cover();
    let cfg = clean(320, 240);
    for seed in 0..12 {
        let scene = render_scene(Some(&cover), Some("rock"), &cfg, seed);
        let corners = scene
            .corners
            .expect("no_sleeve_prob 0 always shows a sleeve");
        assert_marks_at(&scene.image, corners, &format!("seed {seed}"));
        assert_eq!(scene.genre.as_deref(), Some("rock"));
    }
}

#[test]
fn a_hold_shakes_the_same_sleeve_and_its_corners_follow() {
    let cover = marked_cover();
    let cfg = clean(320, 240);
    let frames = render_hold(Some(&cover), Some("pop"), &cfg, 5, 4);
    assert_eq!(frames.len(), 4);
    let first = frames[0].corners.expect("a sleeve");
    for (k, f) in frames.iter().enumerate() {
        let c = f.corners.expect("every frame of a hold shows the sleeve");
        assert_marks_at(&f.image, c, &format!("frame {k}"));
        // a shake, not a new scene: corners move by a few percent of the frame at most
        for (a, b) in c.iter().zip(&first) {
            assert!((a.0 - b.0).abs() < 0.08 * 320.0 && (a.1 - b.1).abs() < 0.08 * 240.0);
        }
        assert_eq!(f.genre.as_deref(), Some("pop"));
    }
    assert_ne!(frames[0].image, frames[1].image, "frames of a hold differ");
    let again = render_hold(Some(&cover), Some("pop"), &cfg, 5, 4);
    assert_eq!(again[2].image, frames[2].image, "deterministic for a seed");
}

#[test]
fn no_sleeve_frames_follow_the_configured_probability() {
    let cfg = SceneConfig {
        no_sleeve_prob: 0.3,
        ..clean(64, 48)
    };
    let empty = (0..300)
        .filter(|&s| {
            let sc = render_scene(None, None, &cfg, s);
            assert_eq!(sc.image.dimensions(), (64, 48));
            if sc.corners.is_none() {
                assert!(sc.pa_boxes.is_empty() && sc.genre.is_none());
            }
            sc.corners.is_none()
        })
        .count();
    assert!(
        (60..=120).contains(&empty),
        "{empty}/300 frames without a sleeve"
    );
    // The default config also has some.
    let dflt = SceneConfig {
        width: 64,
        height: 48,
        ..SceneConfig::default()
    };
    let n = (0..100)
        .filter(|&s| render_scene(None, None, &dflt, s).corners.is_none())
        .count();
    assert!((3..=25).contains(&n), "{n}/100 with defaults");
}

#[test]
fn pa_boxes_are_inside_the_frame_and_the_sleeve() {
    let cfg = SceneConfig {
        pa: PaConfig {
            label_prob: 1.0,
            ..PaConfig::default()
        },
        ..clean(160, 120)
    };
    let mut boxes = 0;
    for seed in 0..20 {
        let sc = render_scene(None, Some("hiphop"), &cfg, seed);
        let c = sc.corners.unwrap();
        let (qx0, qx1) = (
            c.iter().map(|p| p.0).fold(f32::MAX, f32::min),
            c.iter().map(|p| p.0).fold(f32::MIN, f32::max),
        );
        let (qy0, qy1) = (
            c.iter().map(|p| p.1).fold(f32::MAX, f32::min),
            c.iter().map(|p| p.1).fold(f32::MIN, f32::max),
        );
        for b in &sc.pa_boxes {
            boxes += 1;
            assert!(
                b.x0 >= qx0 - 1.0 && b.x1 <= qx1 + 1.0 && b.y0 >= qy0 - 1.0 && b.y1 <= qy1 + 1.0,
                "{b:?} outside sleeve"
            );
            assert!(b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= 160.0 && b.y1 <= 120.0);
        }
    }
    assert!(
        boxes >= 18,
        "labels were requested on every sleeve, got {boxes}/20"
    );
}

#[test]
fn scenes_are_deterministic_with_all_effects_on() {
    let cfg = SceneConfig {
        width: 96,
        height: 72,
        ..SceneConfig::default()
    };
    let a = render_scene(None, None, &cfg, 42);
    let b = render_scene(None, None, &cfg, 42);
    assert_eq!(a.image, b.image);
    assert_eq!(a.corners, b.corners);
    assert_eq!(a.pa_boxes, b.pa_boxes);
    assert_ne!(a.image, render_scene(None, None, &cfg, 43).image);
}

//! The sleeve finder on generated scenes: corners within tolerance, nothing on empty frames.

use sleeve_edge::finder::{
    DISTINCT_CORNERS, FinderConfig, find_sleeve, find_sleeve_candidates, rectify,
};
use sleeve_edge::fixtures::{tiny_cover, tiny_scene};

const CASES: [[(f32, f32); 4]; 4] = [
    [
        (180.0, 90.0),
        (460.0, 100.0),
        (450.0, 380.0),
        (170.0, 370.0),
    ],
    [
        (220.0, 60.0),
        (470.0, 120.0),
        (410.0, 370.0),
        (160.0, 310.0),
    ], // rotated ~13°
    [(200.0, 80.0), (430.0, 80.0), (470.0, 330.0), (160.0, 330.0)], // keystone
    [(60.0, 40.0), (420.0, 50.0), (410.0, 420.0), (50.0, 410.0)],   // big
];

#[test]
fn finds_sleeve_corners_within_tolerance() {
    corners_within_tolerance(&FinderConfig::default());
}

#[test]
fn without_the_extra_blur_the_corners_are_found_too() {
    // `--finder-blur 0`: only the blur imageproc's Canny applies itself.
    corners_within_tolerance(&FinderConfig {
        blur_sigma: 0.0,
        ..FinderConfig::default()
    });
}

fn corners_within_tolerance(cfg: &FinderConfig) {
    let cfg = cfg.clone();
    for (i, corners) in CASES.iter().enumerate() {
        let cover = tiny_cover(i, 256, i % 2 == 0);
        let frame = tiny_scene(640, 480, Some(&cover), *corners, i as u32);
        let q = find_sleeve(&frame, &cfg).unwrap_or_else(|| panic!("case {i}: no sleeve found"));
        let err = q.max_corner_error(corners);
        assert!(
            err < 6.0,
            "case {i}: corner error {err:.1} px, found {:?}",
            q.corners
        );
        assert!(q.score > 0.5);
        // The rectified sleeve is the cover: its centre has the cover colour.
        let r = rectify(&frame, &q, 128).unwrap();
        let c = r.get_pixel(40, 40).0;
        let want = cover.get_pixel(80, 80).0;
        assert!(
            c.iter()
                .zip(want)
                .all(|(a, b)| (*a as i32 - b as i32).abs() < 30),
            "case {i}: {c:?} vs {want:?}"
        );
    }
}

#[test]
fn candidates_come_best_first_and_distinct() {
    let cfg = FinderConfig::default();
    for (i, corners) in CASES.iter().enumerate() {
        let cover = tiny_cover(i, 256, i % 2 == 0);
        let frame = tiny_scene(640, 480, Some(&cover), *corners, i as u32);
        let all = find_sleeve_candidates(&frame, &cfg, 6);
        assert!(
            !all.is_empty() && all.len() <= 6,
            "case {i}: {} candidates",
            all.len()
        );
        // the first is the sleeve
        assert!(
            all[0].max_corner_error(corners) < 6.0,
            "case {i}: {:?}",
            all[0]
        );
        assert_eq!(Some(all[0]), find_sleeve(&frame, &cfg), "case {i}");
        // ranked by score × √area, and no two the same outline (distinct by more than
        // DISTINCT_CORNERS of the working image's side, which is more in frame pixels)
        let rank = |q: &sleeve_edge::finder::SleeveQuad| q.score * q.area().sqrt();
        for w in all.windows(2) {
            assert!(rank(&w[0]) >= rank(&w[1]) * 0.9, "case {i}: not best first");
        }
        for (a, qa) in all.iter().enumerate() {
            for qb in &all[a + 1..] {
                assert!(
                    qa.max_corner_error(&qb.corners) > DISTINCT_CORNERS * cfg.work_size as f32,
                    "case {i}: two candidates are one outline"
                );
            }
        }
    }
}

#[test]
fn empty_frames_have_no_sleeve() {
    let cfg = FinderConfig::default();
    for seed in 0..4 {
        let frame = tiny_scene(640, 480, None, [(0.0, 0.0); 4], seed);
        assert_eq!(find_sleeve(&frame, &cfg), None, "seed {seed}");
    }
    let tiny = image::RgbImage::new(8, 8);
    assert_eq!(find_sleeve(&tiny, &cfg), None);
}

#[test]
fn a_long_thin_rectangle_is_not_a_sleeve() {
    let cover = image::RgbImage::from_pixel(300, 60, image::Rgb([230, 60, 220]));
    let corners = [
        (100.0, 200.0),
        (540.0, 200.0),
        (540.0, 280.0),
        (100.0, 280.0),
    ];
    let frame = tiny_scene(640, 480, Some(&cover), corners, 1);
    assert_eq!(find_sleeve(&frame, &FinderConfig::default()), None);
}

/// A smaller working size (cheaper: the edge detector and contours run on fewer pixels;
/// corners are still refined at full resolution) finds the same corners within 1 % of the
/// frame as the 400-pixel one.
#[test]
fn downscaled_finder_finds_the_same_corners() {
    let full = FinderConfig {
        work_size: 400,
        ..FinderConfig::default()
    };
    for work in [240, 200] {
        let small = FinderConfig {
            work_size: work,
            ..FinderConfig::default()
        };
        for (i, corners) in CASES.iter().enumerate() {
            let cover = tiny_cover(i, 256, i % 2 == 0);
            let frame = tiny_scene(640, 480, Some(&cover), *corners, i as u32);
            let a = find_sleeve(&frame, &full).expect("found at 400");
            let b = find_sleeve(&frame, &small)
                .unwrap_or_else(|| panic!("case {i}: no sleeve at work size {work}"));
            let diff = b.max_corner_error(&a.corners);
            assert!(
                diff <= 0.01 * 640.0,
                "case {i}, work size {work}: corners differ by {diff:.1} px"
            );
            assert!(b.max_corner_error(corners) < 6.0, "case {i}: vs truth");
        }
    }
}

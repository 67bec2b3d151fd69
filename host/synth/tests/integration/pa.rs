//! Parental Advisory composites: boxes, pixels, COCO output, determinism, negatives.

use image::{Rgb, RgbImage};
use sleeve_synth::designs::{DesignMix, LabelDesign};
use sleeve_synth::generate::{self, PaOptions};
use sleeve_synth::pa::{PaConfig, composite, read_coco};

fn grey_cover(size: u32) -> RgbImage {
    RgbImage::from_pixel(size, size, Rgb([128, 128, 128]))
}

fn labels_only() -> PaConfig {
    PaConfig {
        size: 160,
        label_prob: 1.0,
        occlusion_prob: 0.0,
        hard_negative_prob: 0.0,
        hard_negative_with_label_prob: 0.0,
        ..PaConfig::default()
    }
}

/// Crisp labels fully on the cover (no soft print, washed-out or coloured ink, no cut).
fn crisp(designs: DesignMix) -> PaConfig {
    let mut cfg = PaConfig {
        designs,
        soft_prob: 0.0,
        low_contrast_prob: 0.0,
        ink_colour_prob: 0.0,
        ..labels_only()
    };
    cfg.placement.cut_prob = 0.0;
    cfg
}

fn luma(p: &Rgb<u8>) -> f32 {
    0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32
}

#[test]
fn label_boxes_lie_inside_and_hold_the_badge() {
    let cover = grey_cover(200);
    let cfg = crisp(DesignMix::classic_only());
    for seed in 0..40 {
        let s = composite(&cover, &cfg, seed);
        assert_eq!(s.image.dimensions(), (160, 160));
        assert_eq!(
            s.boxes.len(),
            1,
            "seed {seed}: label_prob 1 gives one label"
        );
        let b = s.boxes[0];
        assert!(
            b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= 160.0 && b.y1 <= 160.0,
            "seed {seed}: {b:?}"
        );
        let wf = b.width() / 160.0;
        assert!(
            (0.05..=0.33).contains(&wf),
            "seed {seed}: width fraction {wf}"
        );
        let aspect = b.width() / b.height();
        assert!(
            (1.2..=1.8).contains(&aspect),
            "seed {seed}: aspect {aspect}"
        );
        let l = &s.labels[0];
        // The drawn badge, at any scale: (1) high contrast inside the box (black and white
        // ink; the grey cover has none), (2) the badge's band structure: for the normal badge
        // the middle band (white, black ADVISORY) is brighter than the top and bottom bands
        // (black, white lettering), for the inverted one darker, (3) the box is tight: ink
        // reaches each of its four edges.
        let lum = |x: u32, y: u32| luma(s.image.get_pixel(x.min(159), y.min(159)));
        let (w, h) = (b.width(), b.height());
        let (ix0, ix1) = ((b.x0 + 0.12 * w) as u32, (b.x1 - 0.12 * w).ceil() as u32);
        let (iy0, iy1) = ((b.y0 + 0.12 * h) as u32, (b.y1 - 0.12 * h).ceil() as u32);
        let inner: Vec<f32> = (iy0..iy1)
            .flat_map(|y| (ix0..ix1).map(move |x| (x, y)))
            .map(|(x, y)| lum(x, y))
            .collect();
        let mean = inner.iter().sum::<f32>() / inner.len() as f32;
        let sd =
            (inner.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / inner.len() as f32).sqrt();
        // Mean luma along the badge's own horizontal axis at `off` × its height from its
        // centre, over the middle half of its width. The unrotated badge size follows from
        // the box: w = pw·cos + ph·sin, h = pw·sin + ph·cos.
        let (sn, cs) = l.rotation_deg.to_radians().sin_cos();
        let (sa, c2) = (sn.abs(), cs * cs - sn * sn);
        let (pw, ph) = ((w * cs - h * sa) / c2, (h * cs - w * sa) / c2);
        let (cx, cy) = b.centre();
        let row = |off: f32| {
            let n = 16;
            (0..n)
                .map(|k| {
                    let t = (k as f32 / (n - 1) as f32 - 0.5) * 0.5 * pw;
                    let dy = off * ph;
                    // Clockwise rotation by the label's angle (y points down).
                    let (x, y) = (cx + t * cs - dy * sn, cy + t * sn + dy * cs);
                    lum(x.max(0.0) as u32, y.max(0.0) as u32)
                })
                .sum::<f32>()
                / n as f32
        };
        let (top, mid, bottom) = (row(-0.34), row(0.0), row(0.34));
        let band_contrast = if l.inverted {
            top.min(bottom) - mid
        } else {
            mid - top.max(bottom)
        };
        let changed = |x: u32, y: u32| (lum(x, y) - 128.0).abs() > 12.0;
        let (bx0, by0) = (b.x0.floor() as u32, b.y0.floor() as u32);
        let (bx1, by1) = ((b.x1.ceil() as u32).min(160), (b.y1.ceil() as u32).min(160));
        let edges = [
            (bx0..bx1)
                .flat_map(|x| (by0..by0 + 2).map(move |y| (x, y)))
                .filter(|&(x, y)| changed(x, y))
                .count(),
            (bx0..bx1)
                .flat_map(|x| (by1 - 2..by1).map(move |y| (x, y)))
                .filter(|&(x, y)| changed(x, y))
                .count(),
            (by0..by1)
                .flat_map(|y| (bx0..bx0 + 2).map(move |x| (x, y)))
                .filter(|&(x, y)| changed(x, y))
                .count(),
            (by0..by1)
                .flat_map(|y| (bx1 - 2..bx1).map(move |x| (x, y)))
                .filter(|&(x, y)| changed(x, y))
                .count(),
        ];
        assert!(
            sd > 25.0,
            "seed {seed}: no badge contrast in the box (luma sd {sd:.1})"
        );
        assert!(
            band_contrast > 20.0,
            "seed {seed}: no band structure (inverted {}): top {top:.0} middle {mid:.0} bottom {bottom:.0}",
            l.inverted
        );
        // A rotated label touches its box's edge near one corner only: within the 2-px strip
        // it runs for about 2 / tan|angle| pixels.
        let run = 2.0 / sn.abs().max(1e-3) * cs;
        for (k, &n) in edges.iter().enumerate() {
            let len = if k < 2 { bx1 - bx0 } else { by1 - by0 } as f32;
            assert!(
                n as f32 >= 0.4 * len.min(run),
                "seed {seed}: box edge {k} is not on the label ({n} inked pixels, edge {len} px)"
            );
        }
        // Outside the box (with a 2 px border) the cover is untouched.
        for (x, y, p) in s.image.enumerate_pixels() {
            let (xf, yf) = (x as f32, y as f32);
            if xf < b.x0 - 2.0 || xf > b.x1 + 2.0 || yf < b.y0 - 2.0 || yf > b.y1 + 2.0 {
                assert_eq!(
                    p.0,
                    [128, 128, 128],
                    "seed {seed}: pixel ({x},{y}) changed outside the box"
                );
            }
        }
    }
}

/// Pixels of `s` that differ from the grey cover.
fn changed(img: &RgbImage, x: u32, y: u32) -> bool {
    (luma(img.get_pixel(x, y)) - 128.0).abs() > 12.0
}

#[test]
fn every_design_renders_inside_its_tight_box() {
    let cover = grey_cover(200);
    for design in LabelDesign::ALL {
        let mut weights = [0.0; 5];
        weights[LabelDesign::ALL.iter().position(|d| *d == design).unwrap()] = 1.0;
        let cfg = crisp(DesignMix { weights });
        for seed in 0..12 {
            let s = composite(&cover, &cfg, seed);
            assert_eq!(s.labels[0].design, design);
            let b = s.boxes[0];
            let (bx0, by0) = (b.x0.floor() as u32, b.y0.floor() as u32);
            let (bx1, by1) = ((b.x1.ceil() as u32).min(160), (b.y1.ceil() as u32).min(160));
            // Nothing changes outside the box (2 px border for resampling).
            for (x, y, _) in s.image.enumerate_pixels() {
                let (xf, yf) = (x as f32, y as f32);
                if xf < b.x0 - 2.0 || xf > b.x1 + 2.0 || yf < b.y0 - 2.0 || yf > b.y1 + 2.0 {
                    assert!(
                        !changed(&s.image, x, y),
                        "{design:?} seed {seed}: ({x},{y})"
                    );
                }
            }
            // The label fills its box: changed pixels in each edge strip (a rotated label
            // touches its box near a corner only, so ask for a few pixels) and a good share
            // of the box.
            let count = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>| {
                ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
                    .filter(|&(x, y)| changed(&s.image, x, y))
                    .count()
            };
            let strips = [
                count(bx0..bx1, by0..by0 + 2),
                count(bx0..bx1, by1 - 2..by1),
                count(bx0..bx0 + 2, by0..by1),
                count(bx1 - 2..bx1, by0..by1),
            ];
            assert!(
                strips.iter().all(|&n| n >= 2),
                "{design:?} seed {seed}: {strips:?}"
            );
            let inside = count(bx0..bx1, by0..by1) as f32 / ((bx1 - bx0) * (by1 - by0)) as f32;
            assert!(inside > 0.15, "{design:?} seed {seed}: {inside}");
        }
    }
}

#[test]
fn degraded_labels_stay_in_their_clipped_boxes() {
    // Soft, washed-out, coloured and edge-cut labels: the box is clipped to the image and
    // still holds every changed pixel.
    let cover = grey_cover(200);
    let mut cfg = PaConfig {
        soft_prob: 1.0,
        low_contrast_prob: 0.5,
        ink_colour_prob: 0.5,
        ..labels_only()
    };
    cfg.placement.cut_prob = 1.0;
    let mut cut = 0;
    for seed in 0..30 {
        let s = composite(&cover, &cfg, seed);
        let b = s.boxes[0];
        assert!(b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= 160.0 && b.y1 <= 160.0);
        assert!(b.width() >= 2.0 && b.height() >= 2.0, "seed {seed}: {b:?}");
        cut += usize::from(b.x0 == 0.0 || b.y0 == 0.0 || b.x1 == 160.0 || b.y1 == 160.0);
        for (x, y, _) in s.image.enumerate_pixels() {
            let (xf, yf) = (x as f32, y as f32);
            if xf < b.x0 - 2.0 || xf > b.x1 + 2.0 || yf < b.y0 - 2.0 || yf > b.y1 + 2.0 {
                assert!(!changed(&s.image, x, y), "seed {seed}: ({x},{y})");
            }
        }
    }
    assert!(cut >= 25, "labels cut at an edge: {cut} of 30");
}

#[test]
fn mostly_lower_corners_and_slight_rotation() {
    let cover = grey_cover(64);
    let cfg = PaConfig {
        size: 96,
        ..labels_only()
    };
    let (mut lower, mut total) = (0, 0);
    for seed in 0..200 {
        let s = composite(&cover, &cfg, seed);
        for (b, l) in s.boxes.iter().zip(&s.labels) {
            total += 1;
            assert!(l.rotation_deg.abs() <= 4.0 + 1e-4);
            if b.centre().1 > 48.0 {
                lower += 1;
            }
        }
    }
    assert!(total >= 190);
    let frac = lower as f32 / total as f32;
    // The real labels' placement: 91 % lower corners, 3 % bottom centre.
    assert!((0.85..0.99).contains(&frac), "lower-half fraction {frac}");
}

#[test]
fn negatives_and_hard_negatives() {
    let cover = grey_cover(100);
    let cfg = PaConfig {
        size: 100,
        label_prob: 0.0,
        hard_negative_prob: 1.0,
        ..PaConfig::default()
    };
    let mut with_distractor = 0;
    for seed in 0..30 {
        let s = composite(&cover, &cfg, seed);
        assert!(s.boxes.is_empty());
        if let Some(d) = s.distractors.first() {
            with_distractor += 1;
            let (cx, cy) = d.centre();
            let changed = (0..9).any(|k| {
                let x = (cx + (k % 3) as f32 - 1.0) as u32;
                let y = (cy + (k / 3) as f32 - 1.0) as u32;
                s.image.get_pixel(x.min(99), y.min(99)).0 != [128, 128, 128]
            });
            assert!(changed, "seed {seed}: distractor box {d:?} is blank");
        }
    }
    assert!(
        with_distractor >= 25,
        "only {with_distractor}/30 negatives got look-alikes"
    );
    // The default mix is about half negatives.
    let dflt = PaConfig {
        size: 64,
        ..PaConfig::default()
    };
    let labelled = (0..200)
        .filter(|&s| !composite(&cover, &dflt, s).boxes.is_empty())
        .count();
    assert!((70..130).contains(&labelled), "{labelled}/200 labelled");
}

#[test]
fn composite_is_deterministic_and_handles_non_square_covers() {
    let cover = RgbImage::from_fn(90, 60, |x, y| Rgb([(x * 2) as u8, (y * 3) as u8, 77]));
    let cfg = PaConfig {
        size: 80,
        ..PaConfig::default()
    };
    let a = composite(&cover, &cfg, 11);
    let b = composite(&cover, &cfg, 11);
    assert_eq!(a.image, b.image);
    assert_eq!(a.boxes, b.boxes);
    assert_eq!(a.image.dimensions(), (80, 80));
    let differs = (0..10).any(|s| composite(&cover, &cfg, 100 + s).image != a.image);
    assert!(differs);
}

fn pa_args(out: &std::path::Path, seed: u64, covers: Option<std::path::PathBuf>) -> PaOptions {
    PaOptions {
        covers,
        exclude: None,
        out: out.to_path_buf(),
        count: 12,
        seed,
        template: None,
        designs: Default::default(),
        size: 64,
        label_prob: 0.5,
        format: "png".into(),
        quality: 90,
        force: false,
    }
}

#[test]
fn cli_writes_coco_that_loads_back_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    generate::pa(&pa_args(&a, 5, None)).unwrap();
    generate::pa(&pa_args(&b, 5, None)).unwrap();
    generate::pa(&pa_args(&c, 6, None)).unwrap();

    let coco = read_coco(&a.join("annotations.json")).unwrap();
    assert_eq!(coco.images.len(), 12);
    assert_eq!(coco.categories.len(), 1);
    assert_eq!(coco.categories[0].name, "parental_advisory");
    for im in &coco.images {
        let img = image::open(a.join(&im.file_name)).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
        assert!(im.genre.is_some(), "procedural covers know their genre");
    }
    for ann in &coco.annotations {
        let [x, y, w, h] = ann.bbox;
        assert!(x >= 0.0 && y >= 0.0 && x + w <= 64.0 && y + h <= 64.0);
    }

    let bytes = |d: &std::path::Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(bytes(&a, "annotations.json"), bytes(&b, "annotations.json"));
    assert_eq!(
        bytes(&a, "images/000003.png"),
        bytes(&b, "images/000003.png")
    );
    assert_ne!(bytes(&a, "annotations.json"), bytes(&c, "annotations.json"));

    // A second run into the same folder is refused (no silent overwrite).
    let err = generate::pa(&pa_args(&a, 5, None)).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
}

#[test]
fn cli_reads_an_imagefolder_of_covers_and_keeps_genres() {
    let dir = tempfile::tempdir().unwrap();
    let covers = dir.path().join("covers");
    for (g, c) in [("Hip-Hop", [200, 30, 30]), ("country", [30, 200, 30])] {
        std::fs::create_dir_all(covers.join(g)).unwrap();
        for k in 0..3 {
            RgbImage::from_pixel(50, 40, Rgb(c))
                .save(covers.join(g).join(format!("{k}.png")))
                .unwrap();
        }
    }
    std::fs::write(covers.join("country/broken.jpg"), b"not a jpeg").unwrap();
    let out = dir.path().join("out");
    generate::pa(&pa_args(&out, 1, Some(covers))).unwrap();
    let coco = read_coco(&out.join("annotations.json")).unwrap();
    assert_eq!(coco.images.len(), 12);
    for im in &coco.images {
        let g = im.genre.as_deref().unwrap();
        assert!(g == "hiphop" || g == "country", "{g}");
        assert!(!im.source.as_deref().unwrap().contains("broken"));
    }
}

#[test]
fn cli_leaves_out_excluded_covers() {
    let dir = tempfile::tempdir().unwrap();
    let covers = dir.path().join("covers");
    std::fs::create_dir_all(covers.join("rock")).unwrap();
    for k in 0..4 {
        RgbImage::from_pixel(40, 40, Rgb([40 * k as u8, 90, 90]))
            .save(covers.join("rock").join(format!("{k}.png")))
            .unwrap();
    }
    let list = dir.path().join("exclude.txt");
    std::fs::write(&list, "# printed labels\n0.png\n2.png\n").unwrap();
    let out = dir.path().join("out");
    let mut args = pa_args(&out, 3, Some(covers.clone()));
    args.exclude = Some(list.clone());
    generate::pa(&args).unwrap();
    let coco = read_coco(&out.join("annotations.json")).unwrap();
    assert_eq!(coco.images.len(), 12);
    for im in &coco.images {
        let src = im.source.as_deref().unwrap();
        assert!(src.ends_with("1.png") || src.ends_with("3.png"), "{src}");
    }
    // a list that leaves nothing is an error, not an empty data set
    std::fs::write(&list, "0.png\n1.png\n2.png\n3.png\n").unwrap();
    let mut args = pa_args(&dir.path().join("out2"), 3, Some(covers));
    args.exclude = Some(list);
    let err = generate::pa(&args).unwrap_err();
    assert!(format!("{err:#}").contains("leaves no covers"), "{err:#}");
}

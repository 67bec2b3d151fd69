//! Building catalogues from generated covers: CSV and folder input, bad rows reported by
//! line, duplicates skipped, add/remove, the file round-trips and matches its covers.

use std::path::Path;

use image::{Rgb, RgbImage};
use sleeve_catalogue::commands::{
    AddOptions, BuildOptions, EnrolInput, RemoveOptions, add, build, remove,
};
use sleeve_catalogue::{EnrolOptions, enrol, read_csv, read_folder};
use sleeve_shared::RgbView;
use sleeve_shared::catalogue::{Catalogue, describe_quantized};

/// A generated cover: two colour fields split by a seed-dependent diagonal, a disc and
/// stripes.
fn cover(seed: u32) -> RgbImage {
    let f = |k: u32| ((seed.wrapping_mul(2_654_435_761).rotate_left(k * 5) >> 8) % 256) as u8;
    let (a, b, c) = ([f(1), f(2), f(3)], [f(4), f(5), f(6)], [f(7), f(8), f(9)]);
    let (cx, cy, r) = (
        40 + f(10) as i32 / 4,
        40 + f(11) as i32 / 4,
        15 + f(12) as i32 / 10,
    );
    let slope = 0.3 + f(13) as f32 / 200.0;
    RgbImage::from_fn(128, 128, |x, y| {
        let (xi, yi) = (x as i32, y as i32);
        if (xi - cx).pow(2) + (yi - cy).pow(2) < r * r {
            Rgb(c)
        } else if (y as f32) < slope * x as f32 + 20.0 {
            Rgb(a)
        } else if (x / (4 + f(14) as u32 % 8)).is_multiple_of(2) {
            Rgb(b)
        } else {
            Rgb([b[0] / 2, b[1] / 2, b[2] / 2])
        }
    })
}

fn save(img: &RgbImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

fn enrol_args(kind: &str, path: &Path, skip_bad: bool) -> EnrolInput {
    EnrolInput {
        from: vec![kind.into(), path.display().to_string()],
        views: 1,
        near_threshold: 8,
        skip_bad,
    }
}

#[test]
fn csv_rows_with_missing_images_or_urls_are_reported_by_line() {
    let dir = tempfile::tempdir().unwrap();
    save(&cover(1), &dir.path().join("img/a.png"));
    save(&cover(2), &dir.path().join("img/b.png"));
    let csv = dir.path().join("stock.csv");
    std::fs::write(
        &csv,
        "image,artist,title,bin,price,sku\n\
         img/a.png,Ann,First,A1,10.00,S-1\n\
         img/missing.png,Bob,Second,A2,11.00,S-2\n\
         https://example.invalid/c.jpg,Cy,Third,A3,12.00,S-3\n\
         img/b.png,\"Dee, Jr.\",Fourth,A4,13.00,S-4\n\
         ,Eve,Fifth,A5,14.00,S-5\n",
    )
    .unwrap();
    let input = read_csv(&csv).unwrap();
    assert_eq!(input.rows.len(), 2);
    assert_eq!(input.rows[1].artist, "Dee, Jr.");
    assert_eq!(
        input.rows[0].extra,
        vec![
            ("price".to_string(), "10.00".to_string()),
            ("sku".to_string(), "S-1".to_string())
        ]
    );
    assert_eq!(input.problems.len(), 3, "{:?}", input.problems);
    assert!(
        input.problems[0].contains("stock.csv:3:") && input.problems[0].contains("missing.png")
    );
    assert!(
        input.problems[1].contains("stock.csv:4:")
            && input.problems[1].contains("URLs are not fetched")
    );
    assert!(input.problems[2].contains("stock.csv:6:") && input.problems[2].contains("no image"));

    // Without --skip-bad the build fails naming the lines and writes nothing.
    let out = dir.path().join("cat.slvc");
    let err = build(&BuildOptions {
        enrol: enrol_args("csv", &csv, false),
        out: out.clone(),
        force: false,
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("stock.csv:3") && msg.contains("stock.csv:6"),
        "{msg}"
    );
    assert!(!out.exists());
    // With it, the good rows are enrolled.
    build(&BuildOptions {
        enrol: enrol_args("csv", &csv, true),
        out: out.clone(),
        force: false,
    })
    .unwrap();
    let c = Catalogue::read(&out).unwrap();
    assert_eq!(c.entries.len(), 2);
    assert_eq!(c.entries[1].title, "Fourth");
    assert_eq!(c.entries[1].bin, "A4");
    // Building over an existing file needs --force.
    assert!(
        build(&BuildOptions {
            enrol: enrol_args("csv", &csv, true),
            out: out.clone(),
            force: false,
        })
        .is_err()
    );
}

#[test]
fn header_without_an_image_column_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "artist,title\nA,B\n").unwrap();
    let msg = read_csv(&csv).unwrap_err().to_string();
    assert!(
        msg.contains("bad.csv:1") && msg.contains("no image column"),
        "{msg}"
    );
}

#[test]
fn folder_build_dedupes_adds_removes_and_matches_its_covers() {
    let dir = tempfile::tempdir().unwrap();
    let covers = dir.path().join("covers");
    for i in 0..6u32 {
        save(
            &cover(10 + i),
            &covers.join(format!("bin{}/c{i}.png", i % 2)),
        );
    }
    // An exact copy and a re-encoded, slightly darker copy of c0.
    std::fs::copy(covers.join("bin0/c0.png"), covers.join("bin0/copy.png")).unwrap();
    let darker = RgbImage::from_fn(128, 128, |x, y| {
        let p = cover(10).get_pixel(x, y).0;
        Rgb(p.map(|v| (u16::from(v) * 9 / 10) as u8))
    });
    save(&darker, &covers.join("bin1/rescan.jpg"));

    let input = read_folder(&covers).unwrap();
    assert_eq!(input.rows.len(), 8);
    let mut cat = Catalogue::default();
    let report = enrol(
        &mut cat,
        &input.rows,
        &EnrolOptions {
            views: 3,
            ..EnrolOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.added.len(), 6, "{:?}", report.duplicates);
    assert_eq!(report.duplicates.len(), 2, "{:?}", report.duplicates);
    assert!(
        report
            .duplicates
            .iter()
            .any(|d| d.contains("copy.png") && d.contains("same image"))
    );
    assert!(
        report
            .duplicates
            .iter()
            .any(|d| d.contains("rescan.jpg") && d.contains("near-identical"))
    );
    assert_eq!(cat.rows(), 18, "3 views per cover");
    assert!(
        cat.entries
            .iter()
            .all(|e| e.bin == "bin0" || e.bin == "bin1")
    );

    // Every cover finds itself first.
    let index = cat.index();
    for (k, e) in cat.entries.iter().enumerate() {
        let img = image::open(covers.join(&e.bin).join(format!("{}.png", e.title)))
            .unwrap()
            .to_rgb8();
        let q = describe_quantized(&RgbView::new(img.width(), img.height(), img.as_raw()).unwrap())
            .unwrap();
        let hit = index.search(&q).unwrap();
        assert_eq!(hit.entry as usize, k);
        assert!(hit.score > 0.99 && hit.second < hit.score - 0.1, "{hit:?}");
    }

    // The CLI: build, add (all duplicates now), remove, with round trips through the file.
    let file = dir.path().join("bundle/catalogue.slvc");
    build(&BuildOptions {
        enrol: enrol_args("folder", &covers, false),
        out: file.clone(),
        force: false,
    })
    .unwrap();
    let before = Catalogue::read(&file).unwrap();
    assert_eq!(before.entries.len(), 6);
    add(&AddOptions {
        catalogue: file.clone(),
        enrol: enrol_args("folder", &covers, false),
    })
    .unwrap();
    assert_eq!(
        Catalogue::read(&file).unwrap().entries,
        before.entries,
        "nothing new added"
    );
    save(&cover(99), &dir.path().join("new/n.png"));
    add(&AddOptions {
        catalogue: file.clone(),
        enrol: enrol_args("folder", &dir.path().join("new"), false),
    })
    .unwrap();
    let after = Catalogue::read(&file).unwrap();
    assert_eq!(after.entries.len(), 7);
    assert_eq!(after.entries[6].id, 7);
    let gone = after.entries[2].id;
    remove(&RemoveOptions {
        catalogue: file.clone(),
        ids: vec![gone],
    })
    .unwrap();
    let removed = Catalogue::read(&file).unwrap();
    assert_eq!(removed.entries.len(), 6);
    assert!(removed.entries.iter().all(|e| e.id != gone));
    let err = remove(&RemoveOptions {
        catalogue: file.clone(),
        ids: vec![gone],
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("no entry with id"));

    // A damaged file is refused with its name.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let err = add(&AddOptions {
        catalogue: file.clone(),
        enrol: enrol_args("folder", &dir.path().join("new"), false),
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("catalogue.slvc") && msg.contains("SHA-256"),
        "{msg}"
    );
}

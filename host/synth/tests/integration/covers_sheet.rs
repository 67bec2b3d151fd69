//! Procedural covers (ImageFolder layout) and contact sheets.

use sleeve_synth::covers::{procedural_cover, styled_cover};
use sleeve_synth::generate::{self, CoversOptions, ScenesOptions};

#[test]
fn genre_styles_differ_on_average() {
    // Mean colour statistics per genre over a few covers must not all coincide.
    let mean = |g: &str| {
        let mut s = [0.0f64; 3];
        for seed in 0..12 {
            let c = styled_cover(g, seed, 32);
            for p in c.pixels() {
                for (acc, v) in s.iter_mut().zip(p.0) {
                    *acc += v as f64;
                }
            }
        }
        s.map(|v| v / (12.0 * 32.0 * 32.0))
    };
    let e = mean("electronic");
    let c = mean("country");
    let dist: f64 = e
        .iter()
        .zip(c)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        dist > 10.0,
        "electronic and country covers look alike on average ({dist})"
    );
    assert_ne!(procedural_cover(1, 40), procedural_cover(2, 40));
}

#[test]
fn covers_scenes_and_sheets_from_the_generators() {
    let dir = tempfile::tempdir().unwrap();
    let covers = dir.path().join("covers");
    generate::covers(&CoversOptions {
        out: covers.clone(),
        per_genre: 3,
        seed: 1,
        size: 48,
        genres: None,
        no_pa: false,
        template: None,
        designs: Default::default(),
        force: false,
    })
    .unwrap();
    for g in ["country", "electronic", "hiphop", "pop", "rock"] {
        let n = std::fs::read_dir(covers.join(g)).unwrap().count();
        assert_eq!(n, 3, "{g}");
    }

    let scenes = dir.path().join("scenes");
    generate::scenes(&ScenesOptions {
        covers: Some(covers.clone()),
        exclude: None,
        out: scenes.clone(),
        count: 4,
        seed: 2,
        sizes: "96x72,128x72".into(),
        no_sleeve_prob: 0.25,
        pa_prob: 0.5,
        template: None,
        designs: Default::default(),
        frames_per_sleeve: 1,
        force: false,
    })
    .unwrap();
    let recs: Vec<sleeve_synth::scenes::SceneRecord> =
        serde_json::from_slice(&std::fs::read(scenes.join("scenes.json")).unwrap()).unwrap();
    assert_eq!(recs.len(), 4);
    // holds: every sleeve seen in several frames, named NNNNNN_KK
    let holds = dir.path().join("holds");
    generate::scenes(&ScenesOptions {
        covers: Some(covers.clone()),
        exclude: None,
        out: holds.clone(),
        count: 2,
        seed: 2,
        sizes: "96x72".into(),
        no_sleeve_prob: 0.0,
        pa_prob: 0.0,
        template: None,
        designs: Default::default(),
        frames_per_sleeve: 3,
        force: false,
    })
    .unwrap();
    let held: Vec<sleeve_synth::scenes::SceneRecord> =
        serde_json::from_slice(&std::fs::read(holds.join("scenes.json")).unwrap()).unwrap();
    let names: Vec<&str> = held.iter().map(|r| r.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "frames/000000_00.jpg",
            "frames/000000_01.jpg",
            "frames/000000_02.jpg",
            "frames/000001_00.jpg",
            "frames/000001_01.jpg",
            "frames/000001_02.jpg"
        ]
    );
    assert!(held.iter().all(|r| holds.join(&r.file_name).is_file()));
    assert_eq!(held[0].source, held[2].source, "one cover per hold");
    for r in &recs {
        let img = image::open(scenes.join(&r.file_name)).unwrap();
        assert_eq!((img.width(), img.height()), (r.width, r.height));
        assert!(scenes.join(r.file_name.replace(".jpg", ".json")).exists());
    }

    for (input, name) in [(&covers, "c.png"), (&scenes, "s.png")] {
        let out = dir.path().join(name);
        sleeve_synth::sheet::run_sheet(input, &out, 6, 0, 3).unwrap();
        let sheet = image::open(&out).unwrap();
        assert!(
            sheet.width() > 3 * 100 && sheet.height() > 2 * 60,
            "{name}: {}x{}",
            sheet.width(),
            sheet.height()
        );
    }
    assert!(generate::parse_sizes("640x480, 1280X720").unwrap() == vec![(640, 480), (1280, 720)]);
    assert!(generate::parse_sizes("640by480").is_err());
}

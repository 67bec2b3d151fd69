//! Store catalogue on the kiosk: generated covers enrolled with the shared descriptor,
//! rendered into generated camera scenes, recognised (or not), reloaded and refused.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use image::RgbImage;
use sleeve_edge::bundle::Bundle;
use sleeve_edge::catalogue::{AlignConfig, MatchConfig, Recogniser, match_frame, match_outlines};
use sleeve_edge::engine::Engine;
use sleeve_edge::finder::{FinderConfig, SleeveQuad, find_sleeve_candidates, rectify};
use sleeve_edge::fixtures::{TinyBundle, write_tiny_bundle};
use sleeve_edge::kiosk::{Kiosk, KioskOptions};
use sleeve_edge::notify::Notifier;
use sleeve_edge::output::JsonLines;
use sleeve_edge::source::{Frame, FrameSource};
use sleeve_edge::{EdgeError, Pipeline, PipelineConfig};
use sleeve_shared::RgbView;
use sleeve_shared::catalogue::{Catalogue, CatalogueEntry, describe_quantized};
use sleeve_synth::covers::procedural_cover;
use sleeve_synth::scenes::{SceneConfig, render_scene};

fn cover(seed: u64) -> RgbImage {
    procedural_cover(seed, 400)
}

fn entry(id: u64, title: &str) -> CatalogueEntry {
    CatalogueEntry {
        id,
        artist: "The Generated".into(),
        title: title.into(),
        bin: "B7".into(),
        extra: vec![("price".into(), "9.99".into())],
        source: format!("{title}.png"),
        image_sha256: format!("{id:064x}"),
        phash: format!("{id:016x}"),
        views: 0,
    }
}

/// A catalogue of the covers with these seeds; entry id = seed, title = "cover <seed>".
fn catalogue_of(seeds: &[u64]) -> Catalogue {
    let mut c = Catalogue::default();
    for &s in seeds {
        let img = cover(s);
        let v = describe_quantized(&RgbView::new(img.width(), img.height(), img.as_raw()).unwrap())
            .unwrap();
        c.push(entry(s, &format!("cover {s}")), &[v]).unwrap();
    }
    c
}

/// A camera scene of the cover: perspective, light, glare, blur, noise, JPEG and PA
/// stickers as the kiosk scenes have them; no hands or other sleeves, which mislead the
/// sleeve finder (measured separately in scripts/bench-catalogue.sh).
fn scene(cover_seed: u64, seed: u64) -> RgbImage {
    let cfg = SceneConfig {
        no_sleeve_prob: 0.0,
        hand_prob: 0.0,
        other_sleeves_prob: 0.0,
        ..SceneConfig::default()
    };
    render_scene(Some(&cover(cover_seed)), None, &cfg, seed).image
}

/// The id the recogniser gives the sleeve in a scene (None: no sleeve or no match), the
/// finder's candidate outlines tried as the kiosk does.
fn recognise(r: &Recogniser, frame: &RgbImage) -> Option<u64> {
    let found = find_sleeve_candidates(frame, &FinderConfig::default(), r.candidates());
    let first = rectify(frame, found.first()?, 224)?;
    r.recognise_frame(frame, &FinderConfig::default(), &found, Some(&first), 224)
        .record
        .map(|m| m.id)
}

const ENROLLED: [u64; 12] = [101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112];

#[test]
fn enrolled_covers_are_recognised_in_scenes_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalogue.slvc");
    catalogue_of(&ENROLLED).write(&path).unwrap();
    let r = Recogniser::new(path, MatchConfig::default());
    assert_eq!(r.current().unwrap().len(), ENROLLED.len());
    let mut right = 0;
    let mut wrong = 0;
    for (k, &s) in ENROLLED.iter().take(6).enumerate() {
        for j in 0..3 {
            match recognise(&r, &scene(s, 1000 + 10 * k as u64 + j)) {
                Some(id) if id == s => right += 1,
                Some(_) => wrong += 1,
                None => {}
            }
        }
    }
    assert_eq!(wrong, 0, "an enrolled cover matched another entry");
    assert!(
        right >= 15,
        "only {right} of 18 scenes of enrolled covers recognised"
    );
    // Covers that are not in the catalogue match nothing.
    for s in 500..512u64 {
        assert_eq!(
            recognise(&r, &scene(s, 2000 + s)),
            None,
            "cover {s} is not enrolled"
        );
    }
}

/// An outline a few per cent off the sleeve (a shadow edge, a corner cut by a hand) scores
/// below the threshold; aligning it to the best entries brings it back onto the sleeve and
/// the record is recognised. Without alignment the same outline is not a match.
#[test]
fn alignment_recovers_a_misframed_outline() {
    let cat = catalogue_of(&ENROLLED);
    let index = cat.index();
    let cfg = SceneConfig {
        no_sleeve_prob: 0.0,
        hand_prob: 0.0,
        other_sleeves_prob: 0.0,
        glare_prob: 0.0,
        ..SceneConfig::default()
    };
    let on = MatchConfig::default();
    let off = MatchConfig {
        align: AlignConfig {
            entries: 0,
            ..AlignConfig::default()
        },
        ..on
    };
    let (mut rescued, mut tried) = (0, 0);
    for (k, &s) in ENROLLED.iter().take(8).enumerate() {
        let scene = render_scene(Some(&cover(s)), None, &cfg, 3000 + k as u64);
        let truth = scene.corners.unwrap();
        // every corner pushed 9 % of the sleeve's width outwards from the centre
        let cx = truth.iter().map(|p| p.0).sum::<f32>() / 4.0;
        let cy = truth.iter().map(|p| p.1).sum::<f32>() / 4.0;
        let width = ((truth[1].0 - truth[0].0).powi(2) + (truth[1].1 - truth[0].1).powi(2)).sqrt();
        let corners = truth.map(|(x, y)| {
            let (dx, dy) = (x - cx, y - cy);
            let n = (dx * dx + dy * dy).sqrt().max(1.0);
            (x + 0.09 * width * dx / n, y + 0.09 * width * dy / n)
        });
        let outline = [SleeveQuad {
            corners,
            score: 0.8,
        }];
        let plain = match_outlines(&index, &scene.image, &outline, None, 224, &off).unwrap();
        if off.accepts(&plain.hit) {
            continue; // not misframed enough to need alignment
        }
        tried += 1;
        let aligned = match_outlines(&index, &scene.image, &outline, None, 224, &on).unwrap();
        assert!(aligned.hit.score >= plain.hit.score);
        assert_eq!(aligned.unaligned, plain.hit.score);
        let right = cat.entries[aligned.hit.entry as usize].id == s;
        if aligned.aligned && right && on.accepts(&aligned.hit) {
            rescued += 1;
            let err = aligned.quad.max_corner_error(&truth);
            assert!(
                err < outline[0].max_corner_error(&truth),
                "aligned corners {err} px off"
            );
        }
        assert!(
            !on.accepts(&aligned.hit) || right,
            "alignment matched cover {s} to another entry"
        );
    }
    assert!(tried >= 4, "only {tried} of 8 outlines were misframed");
    assert!(
        rescued * 3 >= tried * 2,
        "alignment rescued {rescued} of {tried} misframed outlines"
    );
}

/// A sleeve whose art sits inside a wide dark border, on a counter of almost the same
/// dark colour (`step` grey levels lighter): the finder's default Canny sees only the art's
/// edges and proposes the art as the sleeve (a panel, not a match); the second pass with
/// lower thresholds finds the border's faint outline and the record.
fn dark_sleeve_scene(art_seed: u64, step: u8) -> (RgbImage, RgbImage) {
    let (side, border) = (300u32, 45u32);
    let art = image::imageops::resize(
        &cover(art_seed),
        side - 2 * border,
        side - 2 * border,
        image::imageops::FilterType::Triangle,
    );
    let mut sleeve =
        RgbImage::from_pixel(side, side, image::Rgb([34 + step, 30 + step, 32 + step]));
    image::imageops::overlay(&mut sleeve, &art, border as i64, border as i64);
    let mut frame = RgbImage::from_pixel(640, 480, image::Rgb([34, 30, 32]));
    image::imageops::overlay(&mut frame, &sleeve, 170, 90);
    (sleeve, frame)
}

#[test]
fn dark_sleeve_on_a_dark_counter_is_found_on_the_second_pass() {
    let (sleeve, frame) = dark_sleeve_scene(101, 20);
    let describe = |img: &RgbImage| {
        describe_quantized(&RgbView::new(img.width(), img.height(), img.as_raw()).unwrap()).unwrap()
    };
    let mut cat = catalogue_of(&[102, 103, 104]);
    let others = cat.index();
    cat.push(entry(7, "dark"), &[describe(&sleeve)]).unwrap();
    let index = cat.index();
    let finder = FinderConfig::default();
    let on = MatchConfig::default();
    let off = MatchConfig {
        retry_canny: None,
        ..on
    };
    let outlines = find_sleeve_candidates(&frame, &finder, on.candidates);
    // One pass: the art inside the border is taken for the sleeve and matches nothing.
    let one = match_frame(&index, &frame, &finder, &outlines, None, 224, &off).unwrap();
    assert!(!off.accepts(&one.hit), "one pass matched {:?}", one.hit);
    assert!(!one.retried);
    // Two passes: the border's outline, and the record.
    let two = match_frame(&index, &frame, &finder, &outlines, None, 224, &on).unwrap();
    assert!(two.retried && on.accepts(&two.hit), "{two:?}");
    assert_eq!(cat.entries[two.hit.entry as usize].id, 7);
    let truth = [(170.0, 90.0), (470.0, 90.0), (470.0, 390.0), (170.0, 390.0)];
    let err = two.quad.max_corner_error(&truth);
    assert!(err < 4.0, "second-pass outline {err} px off");
    // Not in the catalogue: the second pass matches nothing either.
    let none = match_frame(&others, &frame, &finder, &outlines, None, 224, &on);
    assert!(none.is_none_or(|h| !on.accepts(&h.hit)), "{none:?}");
}

/// On the kiosk too: a dark sleeve the first pass does not find at all (no sleeve, no genre
/// analysis) is still named by the catalogue's second pass, and only with it.
#[test]
fn kiosk_names_a_dark_sleeve_the_first_pass_misses() {
    let (sleeve, frame) = dark_sleeve_scene(101, 6);
    assert!(find_sleeve_candidates(&frame, &FinderConfig::default(), 4).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    write_tiny_bundle(&bundle, &TinyBundle::default()).unwrap();
    let mut cat = catalogue_of(&[102, 103]);
    let v = describe_quantized(
        &RgbView::new(sleeve.width(), sleeve.height(), sleeve.as_raw()).unwrap(),
    )
    .unwrap();
    cat.push(entry(7, "dark"), &[v]).unwrap();
    let path = bundle.join("catalogue.slvc");
    cat.write(&path).unwrap();
    let shown = |cfg: MatchConfig| {
        let lines = kiosk_lines(
            &bundle,
            Some(Recogniser::new(path.clone(), cfg)),
            vec![frame.clone(); 5],
        );
        lines
            .iter()
            .filter(|l| l["event"] == "record")
            .map(|l| l["record"]["title"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shown(MatchConfig::default()),
        vec![serde_json::json!("dark")]
    );
    let one_pass = MatchConfig {
        retry_canny: None,
        ..MatchConfig::default()
    };
    assert!(shown(one_pass).is_empty());
}

/// A record is shown after `record_frames` matching frames in a row (default 2), which is
/// the catalogue's own setting, not the genre's `hold_frames` (3).
#[test]
fn a_record_shows_after_its_own_number_of_frames() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    write_tiny_bundle(&bundle, &TinyBundle::default()).unwrap();
    let path = bundle.join("catalogue.slvc");
    catalogue_of(&ENROLLED).write(&path).unwrap();
    let known = scene(103, 77);
    let shown = |record_frames: u32| {
        let cfg = MatchConfig {
            record_frames,
            ..MatchConfig::default()
        };
        let r = Recogniser::new(path.clone(), cfg);
        kiosk_lines(&bundle, Some(r), vec![known.clone(); 2])
            .iter()
            .filter(|l| l["event"] == "record")
            .count()
    };
    assert_eq!(MatchConfig::default().record_frames, 2);
    assert_eq!(shown(2), 1, "two matching frames show the record");
    assert_eq!(shown(3), 0, "three are needed when asked for");
}

#[test]
fn reload_swaps_catalogues_and_keeps_the_old_one_when_the_new_one_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalogue.slvc");
    // The same rectified view, seen before and after each change.
    let view_of = |s: u64| cover(s);
    catalogue_of(&[101, 102]).write(&path).unwrap();
    let cfg = MatchConfig {
        check_every: 2,
        ..MatchConfig::default()
    };
    let mut r = Recogniser::new(path.clone(), cfg);
    let id = |r: &Recogniser, s: u64| r.recognise(&view_of(s)).record.map(|m| (m.id, m.title));
    assert_eq!(id(&r, 101), Some((101, "cover 101".into())));
    assert_eq!(id(&r, 103), None);

    // A new catalogue (written atomically) replaces the old one at the next check.
    let mut next = catalogue_of(&[103, 104, 105]);
    next.entries[0].title = "cover 103, second pressing".into();
    next.write(&path).unwrap();
    assert!(!r.tick(), "no check on odd frames");
    assert!(r.tick(), "checked and swapped on the second frame");
    assert_eq!(r.current().unwrap().len(), 3);
    assert_eq!(
        id(&r, 103),
        Some((103, "cover 103, second pressing".into()))
    );
    assert_eq!(id(&r, 101), None, "old entries are gone with the old file");

    // A corrupt file is refused; the catalogue in use stays.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    bytes.push(0);
    std::fs::write(&path, &bytes).unwrap();
    assert!(!r.reload_if_changed());
    assert_eq!(r.current().unwrap().len(), 3);
    assert_eq!(id(&r, 104).map(|x| x.0), Some(104));

    // Removing the file unloads it (genre only).
    std::fs::remove_file(&path).unwrap();
    assert!(r.reload_if_changed());
    assert!(r.current().is_none());
    assert_eq!(id(&r, 104), None);
}

#[test]
fn a_tampered_catalogue_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalogue.slvc");
    let mut bytes = catalogue_of(&[101]).to_bytes();
    // Change the title in the JSON header without fixing the checksum.
    let at = bytes.windows(9).position(|w| w == b"cover 101").unwrap();
    bytes[at] = b'C';
    std::fs::write(&path, &bytes).unwrap();
    let err = Catalogue::read(&path).unwrap_err().to_string();
    assert!(err.contains("SHA-256"), "{err}");
    let r = Recogniser::new(path, MatchConfig::default());
    assert!(r.current().is_none());
    assert_eq!(r.recognise(&cover(101)).record, None);
}

struct Frames(std::vec::IntoIter<Frame>);

impl FrameSource for Frames {
    fn describe(&self) -> String {
        "catalogue test frames".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, EdgeError> {
        Ok(self.0.next())
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn kiosk_lines(
    bundle: &Path,
    recogniser: Option<Recogniser>,
    frames: Vec<RgbImage>,
) -> Vec<serde_json::Value> {
    let engine = Engine::load(&Bundle::load(bundle).unwrap(), 1).unwrap();
    let buf = Shared::default();
    let mut kiosk = Kiosk {
        pipeline: Pipeline::new(engine, PipelineConfig::default()).with_recogniser(recogniser),
        screens: Vec::new(),
        json: Some(JsonLines::writer(Box::new(buf.clone()))),
        notifier: Notifier::from_env(),
        options: KioskOptions::default(),
    };
    let frames: Vec<Frame> = frames
        .into_iter()
        .enumerate()
        .map(|(i, image)| Frame {
            image,
            index: i as u64,
            name: format!("f{i}"),
            decode_ms: 0.0,
            truth: None,
        })
        .collect();
    kiosk
        .run(
            &mut Frames(frames.into_iter()),
            Arc::new(AtomicBool::new(false)),
            |_| {},
        )
        .unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn kiosk_shows_the_record_in_json_lines_and_falls_back_to_the_genre() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    write_tiny_bundle(&bundle, &TinyBundle::default()).unwrap();
    // The default catalogue location: next to the bundle's manifest.
    catalogue_of(&ENROLLED)
        .write(&bundle.join("catalogue.slvc"))
        .unwrap();
    let recogniser = Recogniser::new(bundle.join("catalogue.slvc"), MatchConfig::default());
    // The same sleeve held still for 5 frames, then an unknown one for 5.
    let known = scene(103, 77);
    let unknown = scene(600, 78);
    let frames: Vec<RgbImage> = [vec![known; 5], vec![unknown; 5]].concat();
    let lines = kiosk_lines(&bundle, Some(recogniser), frames.clone());
    let records: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["event"] == "record").collect();
    assert_eq!(records.len(), 2, "{lines:?}");
    assert_eq!(records[0]["record"]["title"], "cover 103");
    assert_eq!(records[0]["record"]["bin"], "B7");
    assert_eq!(records[0]["record"]["extra"]["price"], "9.99");
    assert!(records[0]["record"]["score"].as_f64().unwrap() >= 0.8);
    assert!(
        records[1]["record"].is_null(),
        "cleared for the unknown sleeve"
    );
    // Genre decisions are still made, and carry the record while it is shown.
    let decisions: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["event"] == "decision").collect();
    assert!(!decisions.is_empty());
    assert_eq!(decisions[0]["record"]["title"], "cover 103");

    // Without a catalogue the lines are exactly the genre ones.
    let plain = kiosk_lines(&bundle, None, frames);
    assert!(
        plain
            .iter()
            .all(|l| l["event"] != "record" && l.get("record").is_none())
    );
    let events = |v: &[serde_json::Value]| {
        v.iter()
            .filter(|l| l["event"] != "record")
            .map(|l| (l["event"].clone(), l["genre"].clone(), l["frame"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(events(&plain), events(&lines));
}

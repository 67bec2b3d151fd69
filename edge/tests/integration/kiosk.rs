//! The whole loop on generated frames: stable JSON decisions, snapshots, clearing.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use sleeve_edge::bundle::Bundle;
use sleeve_edge::display::png::PngSnapshots;
use sleeve_edge::engine::Engine;
use sleeve_edge::fixtures::{TinyBundle, tiny_cover, tiny_scene, write_tiny_bundle};
use sleeve_edge::kiosk::{Kiosk, KioskOptions};
use sleeve_edge::notify::Notifier;
use sleeve_edge::output::JsonLines;
use sleeve_edge::reuse::ReuseConfig;
use sleeve_edge::source::{Frame, FrameSource};
use sleeve_edge::{EdgeError, Pipeline, PipelineConfig};

struct Frames(std::vec::IntoIter<Frame>);

impl FrameSource for Frames {
    fn describe(&self) -> String {
        "test frames".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, EdgeError> {
        Ok(self.0.next())
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn frames() -> Vec<Frame> {
    let corners = [(170.0, 80.0), (470.0, 95.0), (460.0, 390.0), (160.0, 380.0)];
    let mut v = Vec::new();
    let mut push = |img| {
        let index = v.len() as u64;
        v.push(Frame {
            image: img,
            index,
            name: format!("f{index}"),
            decode_ms: 0.0,
            truth: None,
        });
    };
    let hiphop = tiny_cover(2, 256, true);
    let rock = tiny_cover(4, 256, false);
    for s in 0..5 {
        push(tiny_scene(640, 480, Some(&hiphop), corners, s));
    }
    for s in 0..4 {
        push(tiny_scene(640, 480, None, corners, s));
    }
    for s in 0..5 {
        push(tiny_scene(640, 480, Some(&rock), corners, s));
    }
    v
}

#[test]
fn kiosk_emits_stable_decisions_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(&dir.path().join("bundle"), &TinyBundle::default()).unwrap();
    let engine = Engine::load(&Bundle::load(&dir.path().join("bundle")).unwrap(), 1).unwrap();
    let buf = Shared::default();
    let shots = dir.path().join("shots");
    let mut kiosk = Kiosk {
        pipeline: Pipeline::new(engine, PipelineConfig::default()),
        screens: vec![Box::new(PngSnapshots::new(&shots, 1).unwrap())],
        json: Some(JsonLines::writer(Box::new(buf.clone()))),
        notifier: Notifier::from_env(),
        options: KioskOptions::default(),
    };
    let mut found = 0;
    let summary = kiosk
        .run(
            &mut Frames(frames().into_iter()),
            Arc::new(AtomicBool::new(false)),
            |r| {
                found += usize::from(r.sleeve.is_some());
            },
        )
        .unwrap();
    assert_eq!(summary.frames, 14);
    assert_eq!(found, 10);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let brief: Vec<(String, Option<String>, Option<bool>)> = lines
        .iter()
        .map(|l| {
            (
                l["event"].as_str().unwrap().to_string(),
                l["genre"].as_str().map(String::from),
                l["pa"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            (
                "decision".to_string(),
                Some("hiphop".to_string()),
                Some(true)
            ),
            ("cleared".to_string(), None, None),
            (
                "decision".to_string(),
                Some("rock".to_string()),
                Some(false)
            ),
        ],
        "{text}"
    );
    // Decisions appear only after the hold period (3 frames).
    assert_eq!(lines[0]["frame"], 2);
    assert_eq!(std::fs::read_dir(&shots).unwrap().count(), 14);
}

#[test]
fn every_frame_mode_writes_one_line_per_frame() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let engine = Engine::load(&Bundle::load(dir.path()).unwrap(), 1).unwrap();
    let buf = Shared::default();
    let mut kiosk = Kiosk {
        pipeline: Pipeline::new(engine, PipelineConfig::default()),
        screens: Vec::new(),
        json: Some(JsonLines::writer(Box::new(buf.clone()))),
        notifier: Notifier::from_env(),
        options: KioskOptions {
            max_frames: Some(7),
            every_frame: true,
        },
    };
    kiosk
        .run(
            &mut Frames(frames().into_iter()),
            Arc::new(AtomicBool::new(false)),
            |_| {},
        )
        .unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(lines.iter().all(|l| l["event"] == "frame"));
    assert_eq!(lines[0]["result"]["top"][0]["genre"], "hiphop");
    assert!(lines[6]["sleeve"].is_null() && lines[6]["result"].is_null());
    assert!(lines[4]["stable"]["pa"].as_bool().unwrap());
}

#[test]
fn reuse_skips_the_models_while_the_sleeve_stays() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let engine = Engine::load(&Bundle::load(dir.path()).unwrap(), 1).unwrap();
    let cfg = PipelineConfig {
        reuse: Some(ReuseConfig {
            max_diff: 3.0,
            max_frames: 2,
            hold_views: 1,
        }),
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(engine, cfg);
    let f = frames();
    let (hiphop, empty, rock) = (&f[0], &f[5], &f[9]);
    let top = |r: &sleeve_edge::FrameReport| {
        let a = r.analysis.as_ref().expect("a sleeve was analysed");
        (a.top_k(1).top[0].index, a.probs.clone())
    };
    let first = p.process(hiphop).unwrap();
    assert!(!first.reused);
    for _ in 0..2 {
        let again = p.process(hiphop).unwrap();
        assert!(again.reused, "same sleeve: the models are skipped");
        assert_eq!(top(&again), top(&first));
        assert_eq!((again.times.classify, again.times.detect), (0.0, 0.0));
    }
    assert!(
        !p.process(hiphop).unwrap().reused,
        "max_frames reached: analysed again"
    );
    let other = p.process(rock).unwrap();
    assert!(!other.reused, "another cover is analysed");
    assert_ne!(top(&other).0, top(&first).0);
    let gone = p.process(empty).unwrap();
    assert!(gone.sleeve.is_none() && !gone.reused);
    assert!(
        !p.process(rock).unwrap().reused,
        "the sleeve left: nothing to reuse"
    );
}

#[test]
fn a_hold_averages_its_first_views_then_reuses_the_average() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let engine = Engine::load(&Bundle::load(dir.path()).unwrap(), 1).unwrap();
    let cfg = PipelineConfig {
        reuse: Some(ReuseConfig {
            max_diff: 3.0,
            max_frames: 30,
            hold_views: 3,
        }),
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(engine, cfg);
    let hiphop = &frames()[0];
    // the same sleeve with a little sensor noise in each frame: three views are analysed
    let noisy = |k: u32| {
        let mut f = hiphop.clone();
        for (i, px) in f.image.pixels_mut().enumerate() {
            px.0[1] = px.0[1].saturating_add(((i as u32 * 7 + k * 3) % 5) as u8);
        }
        f
    };
    let views: Vec<_> = (0..3).map(|k| p.process(&noisy(k)).unwrap()).collect();
    assert!(
        views.iter().all(|r| !r.reused),
        "the first three views run the models"
    );
    let single: Vec<Vec<f32>> = (0..3)
        .map(|k| {
            let mut q = Pipeline::new(
                Engine::load(&Bundle::load(dir.path()).unwrap(), 1).unwrap(),
                PipelineConfig::default(),
            );
            q.process(&noisy(k)).unwrap().analysis.unwrap().probs
        })
        .collect();
    let held = views[2].analysis.as_ref().unwrap().probs.clone();
    for (c, h) in held.iter().enumerate() {
        let want = (single[0][c] + single[1][c] + single[2][c]) / 3.0;
        assert!((h - want).abs() < 1e-5, "class {c}: {h} vs mean {want}");
    }
    let later = p.process(&noisy(4)).unwrap();
    assert!(
        later.reused,
        "after the hold's views, the average is reused"
    );
    assert_eq!(later.analysis.unwrap().probs, held);
}

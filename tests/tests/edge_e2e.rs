//! End to end on the kiosk side: a generated tiny bundle, synthetic camera scenes from
//! `sleeve-synth` showing covers whose answer is known, and the edge pipeline's JSON
//! decisions and sleeve corners checked against the scenes' ground truth.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use sleeve_edge::bundle::Bundle;
use sleeve_edge::engine::Engine;
use sleeve_edge::fixtures::{TinyBundle, tiny_cover, write_tiny_bundle};
use sleeve_edge::kiosk::{Kiosk, KioskOptions};
use sleeve_edge::notify::Notifier;
use sleeve_edge::output::JsonLines;
use sleeve_edge::source::{Frame, FrameSource, FrameTruth};
use sleeve_edge::{EdgeError, Pipeline, PipelineConfig};
use sleeve_shared::LabelSet;
use sleeve_synth::scenes::{SceneConfig, render_scene};

/// Camera conditions that are realistic but keep all four corners visible: perspective,
/// rotation, uneven light, mild blur, noise and JPEG, no hands or overlapping sleeves.
fn scene_config(no_sleeve: bool) -> SceneConfig {
    let mut c = SceneConfig {
        no_sleeve_prob: if no_sleeve { 1.0 } else { 0.0 },
        sleeve_scale: (0.55, 0.8),
        max_rotation_deg: 12.0,
        max_keystone: 0.1,
        other_sleeves_prob: 0.0,
        hand_prob: 0.0,
        clutter_prob: 0.3,
        uneven_light: 0.15,
        glare_prob: 0.0,
        blur_prob: 0.3,
        max_blur_sigma: 1.0,
        motion_blur_prob: 0.0,
        noise_sigma: (1.0, 3.0),
        jpeg_quality: (75, 92),
        ..SceneConfig::default()
    };
    c.pa.label_prob = 0.0;
    c.pa.hard_negative_prob = 0.0;
    c.pa.hard_negative_with_label_prob = 0.0;
    c
}

/// Covers shown in turn: (label index, PA label), each for 6 frames, then 4 empty frames.
const PLAN: [(usize, bool); 4] = [(2, true), (4, false), (0, false), (1, true)];
const PER_COVER: u64 = 6;
const EMPTY: u64 = 4;

struct Scenes {
    labels: LabelSet,
    i: u64,
}

impl FrameSource for Scenes {
    fn describe(&self) -> String {
        "e2e scenes".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, EdgeError> {
        let period = PER_COVER + EMPTY;
        let seg = (self.i / period) as usize;
        if seg >= PLAN.len() {
            return Ok(None);
        }
        let (class, pa) = PLAN[seg];
        let empty = self.i % period >= PER_COVER;
        let cover = tiny_cover(class, 256, pa);
        let genre = self.labels.name(class).map(String::from);
        let scene = render_scene(
            Some(&cover),
            genre.as_deref(),
            &scene_config(empty),
            1000 + self.i,
        );
        assert_eq!(scene.corners.is_none(), empty);
        let frame = Frame {
            image: scene.image,
            index: self.i,
            name: format!("scene {}", self.i),
            decode_ms: 0.0,
            truth: Some(FrameTruth {
                corners: scene.corners,
                pa: !empty && pa,
                genre: if empty { None } else { genre },
            }),
        };
        self.i += 1;
        Ok(Some(frame))
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

#[test]
fn decisions_and_corners_match_scene_truth() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let engine = Engine::load(&Bundle::load(dir.path()).unwrap(), 1).unwrap();
    let labels = engine.labels().clone();
    let out = Shared::default();
    let mut kiosk = Kiosk {
        pipeline: Pipeline::new(engine, PipelineConfig::default()),
        screens: Vec::new(),
        json: Some(JsonLines::writer(Box::new(out.clone()))),
        notifier: Notifier::from_env(),
        options: KioskOptions::default(),
    };
    let mut corner_errors = Vec::new();
    let mut presence_errors = Vec::new();
    kiosk
        .run(
            &mut Scenes {
                labels: labels.clone(),
                i: 0,
            },
            Arc::new(AtomicBool::new(false)),
            |r| {
                let truth = r.truth.as_ref().unwrap();
                match (&r.sleeve, truth.corners) {
                    (Some(q), Some(c)) => corner_errors.push(q.max_corner_error(&c)),
                    (None, None) => {}
                    _ => presence_errors.push(r.index),
                }
            },
        )
        .unwrap();

    // Sleeve presence per frame: at most one miss in the whole run.
    assert!(
        presence_errors.len() <= 1,
        "frames with wrong sleeve presence: {presence_errors:?}"
    );
    // Rectification: corners within 3 % of the frame width on (almost) every frame.
    corner_errors.sort_by(f32::total_cmp);
    let median = corner_errors[corner_errors.len() / 2];
    let bad = corner_errors.iter().filter(|e| **e > 0.03 * 640.0).count();
    assert!(
        median < 8.0 && bad <= 1,
        "corner errors (px, sorted): {corner_errors:?}"
    );

    // Decisions: one per cover with its genre and PA state, cleared in between.
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["event"] == "decision").collect();
    let clears = lines.iter().filter(|l| l["event"] == "cleared").count();
    assert_eq!(decisions.len(), PLAN.len(), "{text}");
    assert_eq!(clears, PLAN.len(), "{text}");
    for (d, (class, pa)) in decisions.iter().zip(PLAN) {
        assert_eq!(d["genre"], labels.name(class).unwrap(), "{d}");
        assert_eq!(d["pa"], pa, "{d}");
        assert!(d["frame"].as_u64().unwrap() % (PER_COVER + EMPTY) < PER_COVER);
    }
}

#[test]
fn a_bundle_with_a_wrong_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    // Same size, one bit flipped: only the SHA-256 can tell.
    let path = dir.path().join("detector.onnx");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = Bundle::load(dir.path())
        .expect_err("a modified model must be refused")
        .to_string();
    assert!(
        err.contains("SHA-256") && err.contains("detector.onnx"),
        "{err}"
    );
}

/// The e2e scenes, but the "camera" drops out for `fails` calls at frame `at`.
struct Dying {
    inner: Scenes,
    at: u64,
    fails: u32,
    reconnects: u32,
}

impl FrameSource for Dying {
    fn describe(&self) -> String {
        "dying scenes".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, EdgeError> {
        if self.inner.i == self.at && self.fails > 0 {
            self.fails -= 1;
            return Err(EdgeError::source("dying scenes", "device disappeared"));
        }
        self.inner.next_frame()
    }
    fn reconnect(&mut self) -> Result<(), EdgeError> {
        self.reconnects += 1;
        Ok(())
    }
}

#[test]
fn a_source_that_dies_mid_run_is_retried_and_the_run_completes() {
    use sleeve_edge::source::{RetryPolicy, Retrying};
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let engine = Engine::load(&Bundle::load(dir.path()).unwrap(), 1).unwrap();
    let labels = engine.labels().clone();
    let mut kiosk = Kiosk {
        pipeline: Pipeline::new(engine, PipelineConfig::default()),
        screens: Vec::new(),
        json: None,
        notifier: Notifier::from_env(),
        options: KioskOptions::default(),
    };
    let dying = Dying {
        inner: Scenes { labels, i: 0 },
        at: 3,
        fails: 3,
        reconnects: 0,
    };
    let policy = RetryPolicy {
        initial: std::time::Duration::from_millis(1),
        max: std::time::Duration::from_millis(4),
        max_failures: Some(10),
    };
    let mut source = Retrying::new(dying, policy);
    let summary = kiosk
        .run(&mut source, Arc::new(AtomicBool::new(false)), |_| {})
        .expect("the run survives");
    let total = PLAN.len() as u64 * (PER_COVER + EMPTY);
    assert_eq!(summary.frames, total, "every frame still arrives");
    assert_eq!(source.failures(), 3);
    assert_eq!(
        source.inner().reconnects,
        3,
        "each failure triggers a reconnect"
    );
    assert!(
        summary.events >= PLAN.len() as u64,
        "decisions still made: {summary:?}"
    );

    // A source that never comes back is reported as an error after the limit, not a panic.
    let dead = Dying {
        inner: Scenes {
            labels: LabelSet::covers5(),
            i: 0,
        },
        at: 0,
        fails: u32::MAX,
        reconnects: 0,
    };
    let policy = RetryPolicy {
        initial: std::time::Duration::from_millis(1),
        max: std::time::Duration::from_millis(2),
        max_failures: Some(4),
    };
    let err = kiosk
        .run(
            &mut Retrying::new(dead, policy),
            Arc::new(AtomicBool::new(false)),
            |_| {},
        )
        .expect_err("a dead source ends the run with an error");
    assert!(err.to_string().contains("device disappeared"), "{err}");
}

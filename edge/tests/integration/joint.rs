//! Format-2 bundles with a joint model next to format-1 bundles: both load, the joint
//! model gives the two models' answers, `Layout` picks which runs.

use sleeve_edge::bundle::Bundle;
use sleeve_edge::engine::{Engine, Layout, PlanOptions};
use sleeve_edge::fixtures::{TinyBundle, tiny_cover, write_tiny_bundle, write_tiny_joint_bundle};
use sleeve_shared::manifest::MANIFEST_FILE;

fn load(dir: &std::path::Path, layout: Layout) -> sleeve_edge::error::Result<Engine> {
    let bundle = Bundle::load(dir)?;
    Engine::load_layout(&bundle, PlanOptions::default(), None, layout)
}

#[test]
fn format_1_bundles_still_load_and_run() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let path = dir.path().join(MANIFEST_FILE);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["format_version"] = 1.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let e = load(dir.path(), Layout::Auto).unwrap();
    assert!(e.joint().is_none());
    let a = e.analyze(&tiny_cover(1, 160, true)).unwrap();
    assert_eq!(a.top_k(1).best().unwrap().index, 1);
    assert!(a.pa_score > 0.9);
    let err = load(dir.path(), Layout::Joint)
        .err()
        .expect("no joint model");
    assert!(err.to_string().contains("no joint model"), "{err}");
}

#[test]
fn joint_model_gives_the_separate_models_answers() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_joint_bundle(dir.path(), &TinyBundle::default(), true).unwrap();
    let joint = load(dir.path(), Layout::Auto).unwrap();
    let separate = load(dir.path(), Layout::Separate).unwrap();
    assert!(joint.joint().is_some() && separate.joint().is_none());
    // The rectified sleeve is sized for the one joint input.
    assert_eq!(joint.classifier().preprocess_config().input_size, 160);
    for (k, pa) in [(0, true), (2, false), (4, true)] {
        let cover = tiny_cover(k, 200, pa);
        let (j, s) = (
            joint.analyze(&cover).unwrap(),
            separate.analyze(&cover).unwrap(),
        );
        assert_eq!(j.top_k(1).best().unwrap().index as usize, k);
        assert_eq!(s.top_k(1).best().unwrap().index as usize, k);
        // The separate classifier reads a 64² resample, the joint one 160²: the mean
        // colour barely moves.
        for (a, b) in j.raw_probs.iter().zip(&s.raw_probs) {
            assert!(
                (a - b).abs() < 0.01,
                "{:?} vs {:?}",
                j.raw_probs,
                s.raw_probs
            );
        }
        // The detector part is the same graph at the same size.
        assert_eq!(j.pa.len(), s.pa.len());
        for (a, b) in j.pa.iter().zip(&s.pa) {
            assert!((a.score - b.score).abs() < 1e-5);
        }
        assert_eq!(j.pa.is_empty(), !pa);
    }
}

#[test]
fn joint_only_bundle_runs_and_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_joint_bundle(dir.path(), &TinyBundle::default(), false).unwrap();
    let e = load(dir.path(), Layout::Auto).unwrap();
    let a = e.analyze(&tiny_cover(3, 160, true)).unwrap();
    assert_eq!(a.top_k(1).best().unwrap().index, 3);
    assert!(a.pa_score > 0.9);
    let err = load(dir.path(), Layout::Separate)
        .err()
        .expect("no separate files");
    assert!(
        err.to_string().contains("classifier has no f32 file"),
        "{err}"
    );
    // A modified joint file is refused before anything runs.
    let f = dir.path().join("sleeve.onnx");
    let mut bytes = std::fs::read(&f).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let err = Bundle::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("joint file sleeve.onnx: SHA-256 mismatch"),
        "{err}"
    );
}

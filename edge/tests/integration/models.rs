//! The tiny bundle's models through tract: classification by colour, PA by dark regions.

use image::{Rgb, RgbImage};
use sleeve_edge::bundle::Bundle;
use sleeve_edge::engine::{Engine, PlanOptions};
use sleeve_edge::fixtures::{PROTOTYPES, TinyBundle, tiny_cover, write_tiny_bundle};

fn engine(opts: &TinyBundle) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), opts).unwrap();
    let bundle = Bundle::load(dir.path()).unwrap();
    let e = Engine::load(&bundle, 1).unwrap();
    (dir, e)
}

#[test]
fn classifier_follows_mean_colour() {
    let (_d, e) = engine(&TinyBundle::default());
    assert!(e.has_detector());
    assert_eq!(e.abstain_threshold(), 0.5);
    for (k, c) in PROTOTYPES.iter().enumerate() {
        let img = RgbImage::from_pixel(97, 83, Rgb(*c)); // odd sizes: preprocessing crops/resamples
        let a = e.analyze(&img).unwrap();
        let best = a.top_k(1).best().unwrap();
        assert_eq!(best.index as usize, k, "prototype {k}: {:?}", a.probs);
        assert!(
            best.score > 0.5,
            "confident on its own prototype: {}",
            best.score
        );
        assert!((a.probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(a.pa.is_empty(), "no dark region, no label");
    }
}

#[test]
fn detector_finds_the_dark_label_and_fusion_shifts_towards_hiphop() {
    let (_d, e) = engine(&TinyBundle::default());
    let plain = e.analyze(&tiny_cover(0, 160, false)).unwrap();
    let with_pa = e.analyze(&tiny_cover(0, 160, true)).unwrap();
    assert!(plain.pa.is_empty());
    assert!(
        !with_pa.pa.is_empty() && with_pa.pa_score > 0.9,
        "{:?}",
        with_pa.pa
    );
    // The label sits in the lower right of the cover.
    let (cx, cy) = with_pa.pa[0].bbox.centre();
    assert!(cx > 0.55 && cy > 0.65, "label box centre ({cx}, {cy})");
    // Fusion: hip-hop (index 2, P(PA)=0.6) gains relative to the raw classifier output.
    let ratio = |a: &sleeve_edge::engine::Analysis| a.probs[2] / a.raw_probs[2];
    assert!(ratio(&with_pa) > 1.0 && ratio(&plain) < 1.0);
}

#[test]
fn bundle_without_detector_or_fusion_works() {
    let (_d, e) = engine(&TinyBundle {
        detector_size: None,
        fusion: false,
        ..TinyBundle::default()
    });
    assert!(!e.has_detector());
    let a = e.analyze(&tiny_cover(3, 64, true)).unwrap();
    assert_eq!(a.top_k(1).best().unwrap().index, 3);
    assert_eq!(a.probs, a.raw_probs);
    assert_eq!(a.pa_score, 0.0);
}

#[test]
fn half_precision_plans_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let bundle = Bundle::load(dir.path()).unwrap();
    let full = Engine::load(&bundle, 1).unwrap();
    let half = Engine::load_with(
        &bundle,
        PlanOptions {
            half: true,
            ..PlanOptions::default()
        },
        None,
    )
    .unwrap();
    for (class, pa) in [(0, false), (2, true), (4, true)] {
        let cover = tiny_cover(class, 160, pa);
        let (a, b) = (full.analyze(&cover).unwrap(), half.analyze(&cover).unwrap());
        let best = |x: &sleeve_edge::engine::Analysis| x.top_k(1).best().unwrap().index;
        assert_eq!(best(&a), best(&b), "same genre in f16");
        let worst = a
            .raw_probs
            .iter()
            .zip(&b.raw_probs)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst < 1e-2, "f16 moved a probability by {worst}");
        assert_eq!(a.pa.len(), b.pa.len(), "same labels found");
        assert!((a.pa_score - b.pa_score).abs() < 1e-2);
    }
}

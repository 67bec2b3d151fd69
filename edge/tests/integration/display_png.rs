//! The kiosk screen rendered to PNG: bars, badge and outline are where they should be.

use embedded_graphics::pixelcolor::RgbColor;
use image::Rgb;
use sleeve_edge::display::png::{PngSnapshots, write_png};
use sleeve_edge::display::render::OUTLINE_COLOUR;
use sleeve_edge::display::{BAR_COLOURS, PA_BADGE_COLOUR, Screen, ScreenState, render};
use sleeve_edge::finder::SleeveQuad;
use sleeve_edge::stabilize::{StableDecision, Verdict};

fn has_colour(img: &image::RgbImage, c: embedded_graphics::pixelcolor::Rgb888) -> usize {
    img.pixels()
        .filter(|p| **p == Rgb([c.r(), c.g(), c.b()]))
        .count()
}

fn decision(pa: bool) -> StableDecision {
    StableDecision {
        verdict: Verdict::Genre(4),
        genre: Some("rock".into()),
        confidence: 0.7,
        top3: vec![
            ("rock".into(), 0.7),
            ("pop".into(), 0.2),
            ("country".into(), 0.1),
        ],
        pa,
        pa_score: if pa { 0.9 } else { 0.0 },
    }
}

#[test]
fn screen_shows_bars_badge_and_outline() {
    let frame = image::RgbImage::from_pixel(640, 480, Rgb([90, 90, 90]));
    let quad = SleeveQuad {
        corners: [
            (100.0, 100.0),
            (400.0, 100.0),
            (400.0, 400.0),
            (100.0, 400.0),
        ],
        score: 0.9,
    };
    let d = decision(true);
    let screen = render(&ScreenState {
        frame: &frame,
        sleeve: Some(&quad),
        decision: Some(&d),
        record: None,
        fps: 12.5,
    });
    assert_eq!(screen.dimensions(), (800, 480));
    let bars: Vec<usize> = BAR_COLOURS
        .iter()
        .map(|c| has_colour(&screen, *c))
        .collect();
    // Bar lengths follow the probabilities.
    assert!(
        bars[0] > bars[1] && bars[1] > bars[2] && bars[2] > 0,
        "{bars:?}"
    );
    assert!(has_colour(&screen, PA_BADGE_COLOUR) > 1000);
    assert!(has_colour(&screen, OUTLINE_COLOUR) > 500);

    // Through the PNG screen, and back.
    let dir = tempfile::tempdir().unwrap();
    let mut snaps = PngSnapshots::new(&dir.path().join("shots"), 2).unwrap();
    snaps.show(4, &screen).unwrap();
    snaps.show(5, &screen).unwrap(); // skipped: every 2nd
    let back = image::open(snaps.path_of(4)).unwrap().to_rgb8();
    assert_eq!(back, screen);
    assert!(!snaps.path_of(5).exists());

    let no_pa = decision(false);
    let plain = render(&ScreenState {
        frame: &frame,
        sleeve: None,
        decision: Some(&no_pa),
        record: None,
        fps: 0.0,
    });
    assert_eq!(has_colour(&plain, PA_BADGE_COLOUR), 0);
    assert_eq!(has_colour(&plain, OUTLINE_COLOUR), 0);
    write_png(&dir.path().join("plain.png"), &plain).unwrap();
}

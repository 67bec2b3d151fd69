//! Drawing the kiosk screen: the camera frame with the sleeve outline on the left; genre,
//! top-3 bars and the Parental Advisory badge on the right; fps at the bottom.

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_10X20};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle};
use embedded_graphics::text::Text;
use image::imageops;
use image::{Rgb, RgbImage};

use crate::catalogue::RecordMatch;
use crate::display::ImageCanvas;
use crate::finder::SleeveQuad;
use crate::stabilize::StableDecision;

/// Screen width in pixels (a common 7" kiosk panel).
pub const WIDTH: u32 = 800;
/// Screen height in pixels.
pub const HEIGHT: u32 = 480;
/// Colours of the top-3 bars, best first.
pub const BAR_COLOURS: [Rgb888; 3] = [
    Rgb888::new(46, 204, 113),
    Rgb888::new(52, 152, 219),
    Rgb888::new(155, 89, 182),
];
/// Fill of the Parental Advisory badge.
pub const PA_BADGE_COLOUR: Rgb888 = Rgb888::new(200, 30, 30);
/// Outline of a found sleeve.
pub const OUTLINE_COLOUR: Rgb888 = Rgb888::new(255, 220, 0);
const BACKGROUND: Rgb888 = Rgb888::new(24, 24, 28);
const PANEL_X: i32 = 500;

/// Everything the screen shows.
pub struct ScreenState<'a> {
    /// The camera frame.
    pub frame: &'a RgbImage,
    /// The sleeve outline, if found this frame.
    pub sleeve: Option<&'a SleeveQuad>,
    /// The stable answer, if any.
    pub decision: Option<&'a StableDecision>,
    /// The recognised catalogue record, if any: shown instead of the genre.
    pub record: Option<&'a RecordMatch>,
    /// Frames per second of the loop.
    pub fps: f32,
}

/// Renders a full [`WIDTH`] × [`HEIGHT`] screen.
pub fn render(state: &ScreenState<'_>) -> RgbImage {
    let mut screen = RgbImage::from_pixel(
        WIDTH,
        HEIGHT,
        Rgb([BACKGROUND.r(), BACKGROUND.g(), BACKGROUND.b()]),
    );
    // The frame, fitted into the left 480 × 480 panel.
    let (fw, fh) = state.frame.dimensions();
    let fit = (480.0 / fw.max(1) as f32).min(480.0 / fh.max(1) as f32);
    let (dw, dh) = (
        ((fw as f32 * fit) as u32).max(1),
        ((fh as f32 * fit) as u32).max(1),
    );
    let small = crate::resize::triangle(state.frame, dw, dh);
    let (ox, oy) = (10 + (480 - dw) / 2, (HEIGHT - dh) / 2);
    imageops::replace(&mut screen, &small, i64::from(ox), i64::from(oy));
    let mut canvas = ImageCanvas(&mut screen);
    if let Some(q) = state.sleeve {
        // Four separate lines: a closed thick polyline trips an overflow in
        // embedded-graphics' joint code when the first and last segments are collinear.
        let pts: Vec<Point> = q
            .corners
            .iter()
            .map(|&(x, y)| Point::new((x * fit) as i32 + ox as i32, (y * fit) as i32 + oy as i32))
            .collect();
        for i in 0..pts.len() {
            let line = Line::new(pts[i], pts[(i + 1) % pts.len()]);
            let _ = line
                .into_styled(PrimitiveStyle::with_stroke(OUTLINE_COLOUR, 3))
                .draw(&mut canvas);
        }
    }
    draw_panel(&mut canvas, state);
    screen
}

fn draw_panel(canvas: &mut ImageCanvas<'_>, state: &ScreenState<'_>) {
    let big = MonoTextStyle::new(&FONT_10X20, Rgb888::WHITE);
    let small = MonoTextStyle::new(&FONT_6X10, Rgb888::new(200, 200, 200));
    let text =
        |c: &mut ImageCanvas<'_>, s: &str, x: i32, y: i32, style: MonoTextStyle<'_, Rgb888>| {
            let _ = Text::new(s, Point::new(x, y), style).draw(c);
        };
    if let Some(r) = state.record {
        draw_record(canvas, r, state.decision.is_some_and(|d| d.pa));
        text(
            canvas,
            &format!("{:.1} fps", state.fps),
            PANEL_X,
            HEIGHT as i32 - 12,
            small,
        );
        return;
    }
    match state.decision {
        None if state.sleeve.is_none() => text(canvas, "Show a record sleeve", PANEL_X, 60, big),
        None => text(canvas, "Looking...", PANEL_X, 60, big),
        Some(d) => {
            let title = match &d.genre {
                Some(g) => g.to_uppercase(),
                None => "UNCERTAIN".to_string(),
            };
            text(canvas, &title, PANEL_X, 60, big);
            if d.genre.is_none() {
                text(canvas, "not sure this is a cover", PANEL_X, 80, small);
            }
            for (i, (name, p)) in d.top3.iter().enumerate().take(3) {
                let y = 120 + i as i32 * 50;
                text(
                    canvas,
                    &format!("{name} {:.0}%", p * 100.0),
                    PANEL_X,
                    y,
                    small,
                );
                let full = 280u32;
                let w = ((p.clamp(0.0, 1.0) * full as f32) as u32).max(2);
                let _ = Rectangle::new(Point::new(PANEL_X, y + 6), Size::new(full, 18))
                    .into_styled(PrimitiveStyle::with_stroke(Rgb888::new(90, 90, 90), 1))
                    .draw(canvas);
                let _ = Rectangle::new(Point::new(PANEL_X, y + 6), Size::new(w, 18))
                    .into_styled(PrimitiveStyle::with_fill(BAR_COLOURS[i]))
                    .draw(canvas);
            }
            if d.pa {
                draw_pa_badge(canvas);
            }
        }
    }
    text(
        canvas,
        &format!("{:.1} fps", state.fps),
        PANEL_X,
        HEIGHT as i32 - 12,
        small,
    );
}

fn draw_pa_badge(canvas: &mut ImageCanvas<'_>) {
    let big = MonoTextStyle::new(&FONT_10X20, Rgb888::WHITE);
    let style = PrimitiveStyleBuilder::new()
        .fill_color(PA_BADGE_COLOUR)
        .stroke_color(Rgb888::WHITE)
        .stroke_width(2)
        .build();
    let _ = Rectangle::new(Point::new(PANEL_X, 300), Size::new(200, 60))
        .into_styled(style)
        .draw(canvas);
    let _ = Text::new("PARENTAL", Point::new(PANEL_X + 20, 325), big).draw(canvas);
    let _ = Text::new("ADVISORY", Point::new(PANEL_X + 20, 348), big).draw(canvas);
}

/// Longest text line on the panel, in 10-pixel characters.
const PANEL_CHARS: usize = 29;

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

/// A recognised record: "IN STOCK", title, artist, bin, up to three extra columns.
fn draw_record(canvas: &mut ImageCanvas<'_>, r: &RecordMatch, pa: bool) {
    let big = MonoTextStyle::new(&FONT_10X20, Rgb888::WHITE);
    let accent = MonoTextStyle::new(&FONT_10X20, BAR_COLOURS[0]);
    let small = MonoTextStyle::new(&FONT_6X10, Rgb888::new(200, 200, 200));
    let mut text = |s: &str, y: i32, style: MonoTextStyle<'_, Rgb888>| {
        let _ = Text::new(s, Point::new(PANEL_X, y), style).draw(canvas);
    };
    text("IN STOCK", 40, accent);
    let title = if r.title.is_empty() {
        "(untitled)"
    } else {
        &r.title
    };
    text(&clip(title, PANEL_CHARS), 80, big);
    text(&clip(&r.artist, PANEL_CHARS), 108, big);
    if !r.bin.is_empty() {
        text(&clip(&format!("Bin: {}", r.bin), PANEL_CHARS), 150, big);
    }
    for (i, (k, v)) in r.extra.iter().take(3).enumerate() {
        text(&clip(&format!("{k}: {v}"), 48), 180 + 16 * i as i32, small);
    }
    text(&format!("match {:.0}%", r.score * 100.0), 240, small);
    if pa {
        draw_pa_badge(canvas);
    }
}

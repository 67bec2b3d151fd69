//! Confusion-matrix heat map.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, LABEL_PX, OrPlotErr, TICK_PX, TITLE_PX, render_png};
use crate::error::{Result, invalid};

/// Heat map of `confusion[true][predicted]`: true classes down, predictions across. Cell
/// colour is the row-normalised fraction (per-class recall on the diagonal); each cell shows
/// its count and, for up to 8 classes, the row percentage.
pub fn confusion_matrix(
    path: &Path,
    confusion: &[Vec<usize>],
    class_names: &[impl AsRef<str>],
    title: &str,
) -> Result<()> {
    let n = confusion.len();
    if n == 0 || class_names.len() != n || confusion.iter().any(|r| r.len() != n) {
        return Err(invalid!(
            "confusion matrix must be square with one row per class name ({} names, {n} rows)",
            class_names.len()
        ));
    }
    let names: Vec<String> = class_names.iter().map(|s| s.as_ref().to_string()).collect();
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(1) as u32;
    let label_px = (longest * TICK_PX * 6 / 10 + 30).clamp(60, 220);
    let cell = (700 / n as u32).clamp(40, 150);
    let side = cell * n as u32;
    let size = (side + label_px + 80, side + 80 + 110);
    let n_i = n as i32;
    render_png(path, size, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, TITLE_PX))
            .margin(20)
            .x_label_area_size(80)
            .y_label_area_size(label_px)
            // plotters' integer ranges are inclusive: `0..n-1` gives exactly `n` segments.
            .build_cartesian_2d((0..n_i - 1).into_segmented(), (0..n_i - 1).into_segmented())
            .or_plot_err()?;
        let name_at = |v: &SegmentValue<i32>, flip: bool| match v {
            SegmentValue::CenterOf(i) => {
                let i = if flip { n_i - 1 - *i } else { *i };
                usize::try_from(i)
                    .ok()
                    .and_then(|i| names.get(i))
                    .cloned()
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n)
            .y_labels(n)
            .x_label_formatter(&|v| name_at(v, false))
            .y_label_formatter(&|v| name_at(v, true))
            .x_desc("predicted")
            .y_desc("true")
            .axis_desc_style((FONT, LABEL_PX))
            .label_style((FONT, TICK_PX))
            .draw()
            .or_plot_err()?;
        let centre = Pos::new(HPos::Center, VPos::Center);
        for (t, row) in confusion.iter().enumerate() {
            let total: usize = row.iter().sum();
            for (p, &count) in row.iter().enumerate() {
                let frac = if total == 0 {
                    0.0
                } else {
                    count as f64 / total as f64
                };
                let (x, y) = (p as i32, n_i - 1 - t as i32);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [
                            (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                            (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                        ],
                        blues(frac).filled(),
                    )))
                    .or_plot_err()?;
                let text = if n <= 8 && total > 0 {
                    format!("{count} ({:.0}%)", 100.0 * frac)
                } else {
                    count.to_string()
                };
                let ink = if frac > 0.5 { WHITE } else { BLACK };
                let px = if n <= 8 { TICK_PX + 2 } else { TICK_PX - 2 };
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                        (FONT, px).into_font().color(&ink).pos(centre),
                    )))
                    .or_plot_err()?;
            }
        }
        Ok(())
    })
}

/// White → dark blue.
fn blues(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_util::assert_valid_png;

    #[test]
    fn draws_a_heat_map() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cm.png");
        let names = ["country", "electronic", "hiphop", "pop", "rock"];
        let m = vec![
            vec![50, 3, 2, 10, 5],
            vec![4, 60, 6, 8, 2],
            vec![1, 5, 70, 3, 1],
            vec![12, 9, 4, 40, 15],
            vec![6, 2, 1, 11, 55],
        ];
        confusion_matrix(&p, &m, &names, "Confusion (validation)").unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_valid_png(&p, img.dimensions());
        assert!(confusion_matrix(&p, &m[..4], &names, "x").is_err());
        // A single class still renders.
        let one = dir.path().join("one.png");
        confusion_matrix(&one, &[vec![3]], &["rock"], "One class").unwrap();
        let img = image::open(&one).unwrap().to_rgb8();
        assert_valid_png(&one, img.dimensions());
    }
}

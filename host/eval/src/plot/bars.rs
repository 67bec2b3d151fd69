//! Bar charts and histograms.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    FONT, LABEL_PX, OrPlotErr, TICK_PX, TITLE_PX, check_finite, colour, padded_range, render_png,
};
use crate::error::{Result, invalid};

/// One bar per category, value printed above each bar (e.g. per-genre F1 or image counts).
pub fn bar_chart(
    path: &Path,
    categories: &[impl AsRef<str>],
    values: &[f64],
    title: &str,
    y_label: &str,
) -> Result<()> {
    if categories.is_empty() || categories.len() != values.len() {
        return Err(invalid!(
            "{} categories but {} values",
            categories.len(),
            values.len()
        ));
    }
    check_finite(values.iter().copied(), "bar values")?;
    let names: Vec<String> = categories.iter().map(|s| s.as_ref().to_string()).collect();
    let n = names.len() as i32;
    let lo = values.iter().copied().fold(0f64, f64::min);
    let hi = values.iter().copied().fold(0f64, f64::max);
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let (y0, y1) = (
        if lo < 0.0 { lo - 0.08 * span } else { 0.0 },
        if hi > 0.0 { hi + 0.12 * span } else { 1.0 },
    );
    let width = (200 + 90 * names.len() as u32).clamp(700, 1600);
    render_png(path, (width, 650), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, TITLE_PX))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(80)
            // plotters' integer ranges are inclusive: `0..n-1` gives exactly `n` segments.
            .build_cartesian_2d((0..n - 1).into_segmented(), y0..y1)
            .or_plot_err()?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => usize::try_from(*i)
                    .ok()
                    .and_then(|i| names.get(i))
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc(y_label)
            .axis_desc_style((FONT, LABEL_PX))
            .label_style((FONT, TICK_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .or_plot_err()?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x = i as i32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(x), 0.0),
                        (SegmentValue::Exact(x + 1), v),
                    ],
                    colour(0).filled(),
                );
                bar.set_margin(0, 0, 12, 12);
                bar
            }))
            .or_plot_err()?;
        let above = Pos::new(HPos::Center, VPos::Bottom);
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                Text::new(
                    format_value(v),
                    (
                        SegmentValue::CenterOf(i as i32),
                        v.max(0.0) + 0.01 * (y1 - y0),
                    ),
                    (FONT, TICK_PX).into_font().color(&BLACK).pos(above),
                )
            }))
            .or_plot_err()?;
        Ok(())
    })
}

/// Histogram of `values` in `bins` equal-width bins (e.g. a detector's max scores).
pub fn histogram(
    path: &Path,
    values: &[f64],
    bins: usize,
    title: &str,
    x_label: &str,
) -> Result<()> {
    if values.is_empty() {
        return Err(invalid!("no values to histogram"));
    }
    if bins == 0 {
        return Err(invalid!("a histogram needs at least one bin"));
    }
    check_finite(values.iter().copied(), "histogram values")?;
    let (lo, hi) = padded_range(values.iter().copied(), 0.0).unwrap_or((0.0, 1.0));
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        let b = (((v - lo) / w) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1) as f64 * 1.1;
    render_png(path, (1000, 650), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, TITLE_PX))
            .margin(20)
            .margin_right(30)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(lo..hi, 0f64..top.max(1.0))
            .or_plot_err()?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(x_label)
            .y_desc("count")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style((FONT, LABEL_PX))
            .label_style((FONT, TICK_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .or_plot_err()?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w, c as f64)], colour(0).mix(0.8).filled())
            }))
            .or_plot_err()?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w, c as f64)], WHITE.stroke_width(1))
            }))
            .or_plot_err()?;
        Ok(())
    })
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() < 10.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_util::assert_valid_png;

    #[test]
    fn draws_bars_and_histograms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bars.png");
        bar_chart(
            &p,
            &["country", "electronic", "hiphop", "pop", "rock"],
            &[0.61, 0.72, 0.80, 0.45, 0.66],
            "F1 per genre",
            "F1",
        )
        .unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_valid_png(&p, img.dimensions());
        assert!(bar_chart(&p, &["a"], &[1.0, 2.0], "x", "y").is_err());
        let one = dir.path().join("one.png");
        bar_chart(&one, &["only"], &[-3.0], "Negative", "value").unwrap();
        let img = image::open(&one).unwrap().to_rgb8();
        assert_valid_png(&one, img.dimensions());
        assert!(bar_chart(&p, &["a"], &[f64::NAN], "x", "y").is_err());
        let h = dir.path().join("hist.png");
        let values: Vec<f64> = (0..500).map(|i| ((i * 37) % 100) as f64 / 100.0).collect();
        histogram(&h, &values, 20, "Max PA score per image", "score").unwrap();
        assert_valid_png(&h, (1000, 650));
        assert_eq!(format_value(12.0), "12");
        assert_eq!(format_value(0.25), "0.250");
    }
}

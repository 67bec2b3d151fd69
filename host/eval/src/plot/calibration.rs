//! Reliability diagram: accuracy against confidence per bin.

use std::path::Path;

use plotters::prelude::*;

use super::{FONT, LABEL_PX, OrPlotErr, TICK_PX, TITLE_PX, colour, render_png};
use crate::classification::CalibrationBin;
use crate::error::{Result, invalid};

/// Bars of per-bin accuracy over the perfect-calibration diagonal, from
/// [`crate::classification::calibration`] (or a report's `calibration_bins`); the title
/// gets the ECE appended.
pub fn reliability_diagram(path: &Path, bins: &[CalibrationBin], title: &str) -> Result<()> {
    if bins.is_empty() {
        return Err(invalid!("no calibration bins to plot"));
    }
    let total: usize = bins.iter().map(|b| b.count).sum();
    let ece: f64 = if total == 0 {
        0.0
    } else {
        bins.iter()
            .map(|b| b.count as f64 / total as f64 * (b.accuracy - b.mean_confidence).abs())
            .sum()
    };
    let caption = format!("{title} (ECE {ece:.3}, n = {total})");
    render_png(path, (900, 800), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, TITLE_PX))
            .margin(20)
            .margin_right(30)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .or_plot_err()?;
        chart
            .configure_mesh()
            .x_desc("confidence (top-1 probability)")
            .y_desc("accuracy")
            .axis_desc_style((FONT, LABEL_PX))
            .label_style((FONT, TICK_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .or_plot_err()?;
        let c = colour(0);
        chart
            .draw_series(bins.iter().filter(|b| b.count > 0).map(|b| {
                Rectangle::new(
                    [(b.lower, 0.0), (b.upper, b.accuracy)],
                    c.mix(0.75).filled(),
                )
            }))
            .or_plot_err()?
            .label("accuracy per bin")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 20, y + 6)], c.mix(0.75).filled())
            });
        let gap = colour(3);
        chart
            .draw_series(bins.iter().filter(|b| b.count > 0).map(|b| {
                let mid = (b.lower + b.upper) / 2.0;
                Circle::new((mid, b.mean_confidence), 5, gap.filled())
            }))
            .or_plot_err()?
            .label("mean confidence")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, gap.filled()));
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                grey.stroke_width(2),
            ))
            .or_plot_err()?
            .label("perfect calibration")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(2))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, TICK_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .or_plot_err()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classification::calibration;
    use crate::plot::test_util::assert_valid_png;

    #[test]
    fn draws_a_reliability_diagram() {
        let dir = tempfile::tempdir().unwrap();
        let y: Vec<usize> = (0..200).map(|i| i % 2).collect();
        let p: Vec<Vec<f32>> = (0..200)
            .map(|i| {
                let conf = 0.5 + (i % 50) as f32 / 100.0;
                // Right about 3 in 4 times.
                let right = i % 4 != 0;
                let c = if right { i % 2 } else { 1 - i % 2 };
                let mut row = vec![1.0 - conf; 2];
                row[c] = conf;
                row
            })
            .collect();
        let cal = calibration(&y, &p, 10).unwrap();
        let out = dir.path().join("rel.png");
        reliability_diagram(&out, &cal.bins, "Classifier calibration").unwrap();
        assert_valid_png(&out, (900, 800));
    }
}

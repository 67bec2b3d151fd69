//! Training curves: loss and accuracy per epoch, train vs validation.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Area, FONT, LABEL_PX, OrPlotErr, TICK_PX, TITLE_PX, check_finite, colour, padded_range,
    render_png,
};
use crate::error::{Result, invalid};

/// One epoch of a training run (what a trainer logs; serialisable so it can be stored).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number (1-based by convention).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss, if evaluated.
    pub val_loss: Option<f64>,
    /// Training accuracy in `[0, 1]`, if measured.
    pub train_acc: Option<f64>,
    /// Validation accuracy in `[0, 1]`, if measured.
    pub val_acc: Option<f64>,
}

/// Loss (left) and accuracy (right, when any epoch has one) per epoch, train vs val.
pub fn training_curves(path: &Path, history: &[EpochMetrics], title: &str) -> Result<()> {
    if history.is_empty() {
        return Err(invalid!("no epochs to plot"));
    }
    check_finite(history.iter().map(|e| e.train_loss), "train loss")?;
    check_finite(history.iter().filter_map(|e| e.val_loss), "validation loss")?;
    check_finite(history.iter().filter_map(|e| e.train_acc), "train accuracy")?;
    check_finite(
        history.iter().filter_map(|e| e.val_acc),
        "validation accuracy",
    )?;
    let has_acc = history
        .iter()
        .any(|e| e.train_acc.is_some() || e.val_acc.is_some());
    render_png(path, (1400, 600), |root| {
        let root = root.titled(title, (FONT, TITLE_PX)).or_plot_err()?;
        let panels: Vec<Area> = if has_acc {
            let (l, r) = root.split_horizontally(700);
            vec![l, r]
        } else {
            vec![root]
        };
        let loss = [
            ("train", series(history, |e| Some(e.train_loss))),
            ("val", series(history, |e| e.val_loss)),
        ];
        panel(&panels[0], "Loss", "loss", &loss, false)?;
        if has_acc {
            let acc = [
                ("train", series(history, |e| e.train_acc)),
                ("val", series(history, |e| e.val_acc)),
            ];
            panel(&panels[1], "Accuracy", "accuracy", &acc, true)?;
        }
        Ok(())
    })
}

fn series(history: &[EpochMetrics], f: impl Fn(&EpochMetrics) -> Option<f64>) -> Vec<(f64, f64)> {
    history
        .iter()
        .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
        .collect()
}

fn panel(
    area: &Area,
    caption: &str,
    y_desc: &str,
    lines: &[(&str, Vec<(f64, f64)>)],
    unit: bool,
) -> Result<()> {
    let all = || lines.iter().flat_map(|(_, pts)| pts.iter());
    let (x0, x1) = padded_range(all().map(|p| p.0), 0.02).unwrap_or((0.0, 1.0));
    let (y0, y1) = if unit {
        let (lo, _) = padded_range(all().map(|p| p.1), 0.05).unwrap_or((0.0, 1.0));
        (lo.clamp(0.0, 0.95), 1.0)
    } else {
        // Losses are non-negative: start the axis at 0 unless the data goes below.
        let (lo, hi) = padded_range(all().map(|p| p.1), 0.05).unwrap_or((0.0, 1.0));
        let min = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
        (if min >= 0.0 { 0.0 } else { lo }, hi)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, LABEL_PX + 2))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .or_plot_err()?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|v| {
            // Epochs are whole numbers: leave fractional ticks blank.
            if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .axis_desc_style((FONT, LABEL_PX))
        .label_style((FONT, TICK_PX))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .or_plot_err()?;
    for (i, (name, pts)) in lines.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(3)))
            .or_plot_err()?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        if pts.len() <= 60 {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .or_plot_err()?;
        }
    }
    chart
        .configure_series_labels()
        .position(if unit {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        })
        .label_font((FONT, TICK_PX))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .or_plot_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_util::assert_valid_png;

    #[test]
    fn draws_loss_and_accuracy() {
        let dir = tempfile::tempdir().unwrap();
        let history: Vec<EpochMetrics> = (1..=12)
            .map(|e| EpochMetrics {
                epoch: e,
                train_loss: 1.6 / e as f64,
                val_loss: Some(1.7 / e as f64 + 0.1),
                train_acc: Some(1.0 - 0.6 / e as f64),
                val_acc: if e % 2 == 0 {
                    Some(0.8 - 0.5 / e as f64)
                } else {
                    None
                },
            })
            .collect();
        let p = dir.path().join("curves.png");
        training_curves(&p, &history, "Classifier training").unwrap();
        assert_valid_png(&p, (1400, 600));
        let p2 = dir.path().join("loss_only.png");
        let loss_only: Vec<EpochMetrics> = history
            .iter()
            .map(|e| EpochMetrics {
                train_acc: None,
                val_acc: None,
                ..e.clone()
            })
            .collect();
        training_curves(&p2, &loss_only, "Loss only").unwrap();
        assert_valid_png(&p2, (1400, 600));
        assert!(training_curves(&p, &[], "x").is_err());
    }
}

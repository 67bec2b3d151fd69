//! ROC and precision/recall curves.

use std::path::Path;

use plotters::prelude::*;

use super::{FONT, LABEL_PX, OrPlotErr, TICK_PX, TITLE_PX, check_finite, colour, render_png};
use crate::detection::{PrCurve, interpolated_ap};
use crate::error::{Result, invalid};
use crate::roc::RocCurve;

/// One ROC curve per `(name, curve)` plus the chance diagonal; the legend shows each AUC.
pub fn roc_curves(path: &Path, curves: &[(&str, &RocCurve)], title: &str) -> Result<()> {
    if curves.is_empty() {
        return Err(invalid!("no ROC curves to plot"));
    }
    for (name, c) in curves {
        if c.fpr.len() != c.tpr.len() {
            return Err(invalid!(
                "ROC curve {name}: {} FPR vs {} TPR points",
                c.fpr.len(),
                c.tpr.len()
            ));
        }
        check_finite(c.fpr.iter().chain(&c.tpr).copied(), name)?;
    }
    let lines: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(name, c)| {
            let auc = c
                .auc
                .map_or_else(|| "n/a".to_string(), |a| format!("{a:.3}"));
            (
                format!("{name} (AUC {auc})"),
                c.fpr.iter().copied().zip(c.tpr.iter().copied()).collect(),
            )
        })
        .collect();
    unit_square_plot(
        path,
        title,
        ("false-positive rate", "true-positive rate"),
        &lines,
        true,
        SeriesLabelPosition::LowerRight,
    )
}

/// Precision against recall for each `(name, curve)`; the legend shows the 101-point AP.
pub fn pr_curves(path: &Path, curves: &[(&str, &PrCurve)], title: &str) -> Result<()> {
    if curves.is_empty() {
        return Err(invalid!("no precision/recall curves to plot"));
    }
    let mut lines = Vec::new();
    for (name, c) in curves {
        if c.recall.len() != c.precision.len() {
            return Err(invalid!(
                "PR curve {name}: {} recall vs {} precision points",
                c.recall.len(),
                c.precision.len()
            ));
        }
        check_finite(c.recall.iter().chain(&c.precision).copied(), name)?;
        let ap = interpolated_ap(c).map_or_else(|| "n/a".to_string(), |a| format!("{a:.3}"));
        let mut pts: Vec<(f64, f64)> = Vec::with_capacity(c.recall.len() + 1);
        // Start at recall 0 with the first precision, so the curve reaches the y-axis.
        if let Some(&p0) = c.precision.first() {
            pts.push((0.0, p0));
        }
        pts.extend(c.recall.iter().copied().zip(c.precision.iter().copied()));
        lines.push((format!("{name} (AP@{:.2} {ap})", c.iou_threshold), pts));
    }
    unit_square_plot(
        path,
        title,
        ("recall", "precision"),
        &lines,
        false,
        SeriesLabelPosition::LowerLeft,
    )
}

fn unit_square_plot(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    lines: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
    legend_at: SeriesLabelPosition,
) -> Result<()> {
    render_png(path, (900, 800), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, TITLE_PX))
            .margin(20)
            .margin_right(30)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .or_plot_err()?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .axis_desc_style((FONT, LABEL_PX))
            .label_style((FONT, TICK_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .or_plot_err()?;
        if diagonal {
            let grey = RGBColor(150, 150, 150);
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (1.0, 1.0)],
                    8,
                    6,
                    grey.stroke_width(2),
                ))
                .or_plot_err()?
                .label("chance")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(2))
                });
        }
        for (i, (name, pts)) in lines.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(3)))
                .or_plot_err()?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(legend_at)
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
    use crate::detection::{ImageDetections, pr_curve};
    use crate::plot::test_util::assert_valid_png;
    use crate::roc::roc_curve;
    use sleeve_shared::PaBox;
    use sleeve_shared::detect::BoxF;

    #[test]
    fn draws_roc_curves() {
        let dir = tempfile::tempdir().unwrap();
        let y: Vec<bool> = (0..40).map(|i| i % 3 == 0).collect();
        let good: Vec<f32> = (0..40)
            .map(|i| {
                if i % 3 == 0 {
                    0.6 + (i % 7) as f32 * 0.05
                } else {
                    (i % 11) as f32 * 0.06
                }
            })
            .collect();
        let poor: Vec<f32> = (0..40).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
        let a = roc_curve(&good, &y).unwrap();
        let b = roc_curve(&poor, &y).unwrap();
        let p = dir.path().join("roc.png");
        roc_curves(&p, &[("rock", &a), ("pop", &b)], "ROC, one-vs-rest").unwrap();
        assert_valid_png(&p, (900, 800));
        assert!(roc_curves(&p, &[], "x").is_err());
    }

    #[test]
    fn draws_pr_curves() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<ImageDetections> = (0..20)
            .map(|i| {
                let gt = BoxF::new(0.1, 0.1, 0.3, 0.2);
                let off = (i % 4) as f32 * 0.03;
                ImageDetections {
                    ground_truth: if i % 5 == 4 { vec![] } else { vec![gt] },
                    detections: vec![PaBox {
                        bbox: BoxF::new(0.1 + off, 0.1, 0.3 + off, 0.2),
                        score: 1.0 - i as f32 / 25.0,
                    }],
                }
            })
            .collect();
        let c50 = pr_curve(&images, 0.5).unwrap();
        let c75 = pr_curve(&images, 0.75).unwrap();
        let p = dir.path().join("pr.png");
        pr_curves(
            &p,
            &[("IoU 0.5", &c50), ("IoU 0.75", &c75)],
            "PA label detector",
        )
        .unwrap();
        assert_valid_png(&p, (900, 800));
    }
}

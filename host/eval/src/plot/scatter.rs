//! 2-D embedding scatter plot, coloured by class.

use std::path::Path;

use plotters::prelude::*;

use super::{
    FONT, LABEL_PX, OrPlotErr, TICK_PX, TITLE_PX, check_finite, colour, padded_range, render_png,
};
use crate::error::{Result, invalid};

/// Scatter of `points` (e.g. from [`crate::pca::pca_2d`]) coloured by `labels`, with a
/// legend of class names. `axis_names` label the x and y axes (e.g. `"PC 1 (23 %)"`).
pub fn embedding_scatter(
    path: &Path,
    points: &[[f32; 2]],
    labels: &[usize],
    class_names: &[impl AsRef<str>],
    title: &str,
    axis_names: [&str; 2],
) -> Result<()> {
    if points.is_empty() {
        return Err(invalid!("no points to plot"));
    }
    if points.len() != labels.len() {
        return Err(invalid!(
            "{} points but {} labels",
            points.len(),
            labels.len()
        ));
    }
    if let Some(i) = labels.iter().position(|&l| l >= class_names.len()) {
        return Err(invalid!(
            "label {} of point {i} has no class name",
            labels[i]
        ));
    }
    check_finite(
        points.iter().flat_map(|p| p.iter().map(|&v| f64::from(v))),
        "points",
    )?;
    let (x0, x1) = padded_range(points.iter().map(|p| f64::from(p[0])), 0.05).unwrap_or((0.0, 1.0));
    let (y0, y1) = padded_range(points.iter().map(|p| f64::from(p[1])), 0.05).unwrap_or((0.0, 1.0));
    // Smaller, more transparent dots for big clouds.
    let (radius, alpha) = if points.len() > 2000 {
        (2, 0.5)
    } else if points.len() > 300 {
        (3, 0.65)
    } else {
        (5, 0.85)
    };
    render_png(path, (1000, 800), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, TITLE_PX))
            .margin(20)
            .margin_right(30)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .or_plot_err()?;
        chart
            .configure_mesh()
            .x_desc(axis_names[0])
            .y_desc(axis_names[1])
            .axis_desc_style((FONT, LABEL_PX))
            .label_style((FONT, TICK_PX))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .or_plot_err()?;
        for (c, name) in class_names.iter().enumerate() {
            let col = colour(c);
            let count = labels.iter().filter(|&&l| l == c).count();
            if count == 0 {
                continue;
            }
            let series = points
                .iter()
                .zip(labels)
                .filter(|&(_, &l)| l == c)
                .map(|(p, _)| {
                    Circle::new(
                        (f64::from(p[0]), f64::from(p[1])),
                        radius,
                        col.mix(alpha).filled(),
                    )
                });
            chart
                .draw_series(series)
                .or_plot_err()?
                .label(format!("{} ({count})", name.as_ref()))
                .legend(move |(x, y)| Circle::new((x + 8, y), 6, col.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
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
    use crate::plot::test_util::assert_valid_png;

    #[test]
    fn draws_coloured_clusters() {
        let dir = tempfile::tempdir().unwrap();
        let mut pts = Vec::new();
        let mut labels = Vec::new();
        for c in 0..3usize {
            for i in 0..40 {
                let a = i as f32 * 0.7;
                pts.push([c as f32 * 4.0 + a.cos(), (c % 2) as f32 * 3.0 + a.sin()]);
                labels.push(c);
            }
        }
        let p = dir.path().join("emb.png");
        embedding_scatter(
            &p,
            &pts,
            &labels,
            &["pop", "rock", "hiphop"],
            "Embeddings (PCA)",
            ["PC 1", "PC 2"],
        )
        .unwrap();
        assert_valid_png(&p, (1000, 800));
        assert!(embedding_scatter(&p, &pts, &labels, &["pop", "rock"], "x", ["a", "b"]).is_err());
    }
}

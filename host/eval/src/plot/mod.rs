//! PNG charts, rendered headless with plotters into memory, encoded with `image` and
//! written atomically. Text uses the system's sans-serif font through fontconfig.
//!
//! Every function takes the output path first and returns [`crate::Result`]; bad data
//! (empty series, mismatched lengths, non-finite values) is an error, not a panic.

mod bars;
mod calibration;
mod confusion;
mod curves;
mod roc;
mod scatter;

use std::fmt::Display;
use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{EvalError, Result};

pub use bars::{bar_chart, histogram};
pub use calibration::reliability_diagram;
pub use confusion::confusion_matrix;
pub use curves::{EpochMetrics, training_curves};
pub use roc::{pr_curves, roc_curves};
pub use scatter::embedding_scatter;

/// The drawing area every chart draws on.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Font family for all text.
pub(crate) const FONT: &str = "sans-serif";
/// Title size in pixels.
pub(crate) const TITLE_PX: u32 = 28;
/// Axis-description size in pixels.
pub(crate) const LABEL_PX: u32 = 20;
/// Tick-label and legend size in pixels.
pub(crate) const TICK_PX: u32 = 16;

/// Tableau-10 colours, for one series or class each.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// The `i`-th series colour (cycles after 10).
pub(crate) fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Converts a plotters (or any displayable) error into [`EvalError::Plot`].
pub(crate) trait OrPlotErr<T> {
    fn or_plot_err(self) -> Result<T>;
}

impl<T, E: Display> OrPlotErr<T> for std::result::Result<T, E> {
    fn or_plot_err(self) -> Result<T> {
        self.map_err(|e| EvalError::Plot(e.to_string()))
    }
}

/// Renders a `width × height` chart with `draw` on a white background and writes it to
/// `path` as PNG, atomically.
pub(crate) fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).or_plot_err()?;
        draw(&root)?;
        root.present().or_plot_err()?;
    }
    let img = RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| EvalError::Plot("bitmap buffer has the wrong size".into()))?;
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .or_plot_err()?;
    sleeve_shared::fsutil::write_atomic(path, &png).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    tracing::debug!(path = %path.display(), "wrote plot");
    Ok(())
}

/// `(min, max)` of finite values, padded by `pad` of the span on each side (a flat series
/// gets ±0.5); `None` when there are no values.
pub(crate) fn padded_range(values: impl IntoIterator<Item = f64>, pad: f64) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    let span = hi - lo;
    Some(if span > 0.0 {
        (lo - pad * span, hi + pad * span)
    } else {
        (lo - 0.5, hi + 0.5)
    })
}

/// Errors when any value is not finite; `what` names the series.
pub(crate) fn check_finite(values: impl IntoIterator<Item = f64>, what: &str) -> Result<()> {
    if let Some((i, v)) = values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(crate::error::invalid!(
            "{what}: value {i} is not finite ({v})"
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::Path;

    /// Decodes a PNG written by a plot function and checks it is a real, non-blank chart.
    pub fn assert_valid_png(path: &Path, size: (u32, u32)) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), size);
        let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(
            non_white > 1000,
            "{} is nearly blank ({non_white} non-white pixels)",
            path.display()
        );
        // Some pixels must be dark: text and axes were drawn.
        assert!(img.pixels().any(|p| p.0.iter().all(|&c| c < 60)));
    }
}

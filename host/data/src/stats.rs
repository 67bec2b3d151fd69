//! `sleeve dataset stats`: counts per genre and split, image sizes, file checks, and a PNG
//! overview plot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use indicatif::ParallelProgressIterator;
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::import::progress_bar;
use crate::manifest::{DROPPED_FILE, Split};

/// Image counts of one genre (or the total) per split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub val: usize,
    /// Test images.
    pub test: usize,
    /// Images without a split.
    pub unsplit: usize,
    /// All images.
    pub total: usize,
}

impl SplitCounts {
    fn add(&mut self, s: Option<Split>) {
        match s {
            Some(Split::Train) => self.train += 1,
            Some(Split::Val) => self.val += 1,
            Some(Split::Test) => self.test += 1,
            None => self.unsplit += 1,
        }
        self.total += 1;
    }
}

/// One bar of the image-size histogram (shorter side in pixels, `lo..hi`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SizeBin {
    /// Label such as `300-399`.
    pub label: String,
    /// Inclusive lower bound.
    pub lo: u32,
    /// Exclusive upper bound (`u32::MAX` for the last bin).
    pub hi: u32,
    /// Images in the bin.
    pub count: usize,
}

/// A file that is missing, altered or does not decode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadFile {
    /// Row id.
    pub id: String,
    /// Manifest path.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Min / median / max of a quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// Smallest value.
    pub min: u32,
    /// Median value.
    pub median: u32,
    /// Largest value.
    pub max: u32,
}

/// Everything `stats` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Manifest rows.
    pub rows: usize,
    /// Rows with an image.
    pub images: usize,
    /// URL rows not downloaded yet (no error recorded).
    pub pending_downloads: usize,
    /// URL rows whose download failed.
    pub failed_downloads: usize,
    /// Rows listed in `dropped.csv`.
    pub dropped: usize,
    /// Counts per genre.
    pub genres: BTreeMap<String, SplitCounts>,
    /// Counts over all genres.
    pub totals: SplitCounts,
    /// Near-duplicate groups (rows sharing a `group` key).
    pub near_duplicate_groups: usize,
    /// Histogram of the shorter image side.
    pub sizes: Vec<SizeBin>,
    /// Width spread.
    pub width: Spread,
    /// Height spread.
    pub height: Spread,
    /// Missing, altered or undecodable files (only checked with `verify`).
    pub bad_files: Vec<BadFile>,
    /// Whether files were checked.
    pub verified: bool,
}

/// Image size from a file check (None: unknown), or what is wrong with the file.
type FileCheck = std::result::Result<Option<(u32, u32)>, String>;

/// A bar layer of the per-genre plot: name, colour, height.
type Layer = (
    &'static str,
    plotters::style::RGBColor,
    fn(&SplitCounts) -> usize,
);

const BIN_EDGES: [u32; 9] = [0, 100, 200, 300, 400, 500, 750, 1000, 1500];

/// Computes statistics; with `verify`, every image is re-read, its SHA-256 checked and
/// fully decoded (sizes then come from the files, not the manifest).
pub fn compute(ds: &Dataset, verify: bool) -> Result<Stats> {
    let mut st = Stats {
        rows: ds.rows().len(),
        verified: verify,
        ..Default::default()
    };
    let dropped_path = ds.root().join(DROPPED_FILE);
    if dropped_path.is_file() {
        st.dropped =
            crate::manifest::read_csv_rows::<crate::manifest::DroppedRow>(&dropped_path)?.len();
    }
    let with_image: Vec<_> = ds.rows().iter().filter(|r| r.has_image()).collect();
    for r in ds
        .rows()
        .iter()
        .filter(|r| !r.has_image() && !r.url.is_empty())
    {
        if r.error.is_empty() {
            st.pending_downloads += 1;
        } else {
            st.failed_downloads += 1;
        }
    }
    // Sizes: from the files (verify) or the manifest.
    let checked: Vec<FileCheck> = if verify {
        let pb = progress_bar(with_image.len() as u64, "checking");
        let v = with_image
            .par_iter()
            .progress_with(pb.clone())
            .map(|r| check_file(ds, r))
            .collect();
        pb.finish_and_clear();
        v
    } else {
        with_image
            .iter()
            .map(|r| Ok(r.width.zip(r.height)))
            .collect()
    };
    let mut widths = Vec::new();
    let mut heights = Vec::new();
    let mut bins: Vec<SizeBin> = BIN_EDGES
        .iter()
        .enumerate()
        .map(|(i, &lo)| {
            let hi = BIN_EDGES.get(i + 1).copied().unwrap_or(u32::MAX);
            let label = if hi == u32::MAX {
                format!("{lo}+")
            } else {
                format!("{lo}-{}", hi - 1)
            };
            SizeBin {
                label,
                lo,
                hi,
                count: 0,
            }
        })
        .collect();
    let mut groups = std::collections::HashSet::new();
    for (r, check) in with_image.iter().zip(checked) {
        let dims = match check {
            Ok(dims) => dims,
            Err(problem) => {
                st.bad_files.push(BadFile {
                    id: r.id.clone(),
                    path: r.path.clone(),
                    problem,
                });
                continue;
            }
        };
        st.images += 1;
        st.genres.entry(r.genre.clone()).or_default().add(r.split);
        st.totals.add(r.split);
        if !r.group.is_empty() {
            groups.insert(r.group.as_str());
        }
        if let Some((w, h)) = dims {
            widths.push(w);
            heights.push(h);
            let side = w.min(h);
            if let Some(b) = bins.iter_mut().find(|b| side >= b.lo && side < b.hi) {
                b.count += 1;
            }
        }
    }
    st.near_duplicate_groups = groups.len();
    st.sizes = bins;
    st.width = spread(&mut widths);
    st.height = spread(&mut heights);
    Ok(st)
}

fn check_file(ds: &Dataset, r: &crate::manifest::ManifestRow) -> FileCheck {
    let path = ds
        .image_path(r)
        .ok_or_else(|| "path outside the dataset".to_string())?;
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read: {e}"))?;
    if sleeve_shared::fsutil::sha256_hex(&bytes) != r.sha256 {
        return Err("content does not match its sha256".into());
    }
    let img =
        sleeve_shared::imageio::decode(&bytes).map_err(|e| format!("does not decode: {e}"))?;
    Ok(Some((img.width(), img.height())))
}

fn spread(v: &mut [u32]) -> Spread {
    if v.is_empty() {
        return Spread::default();
    }
    v.sort_unstable();
    Spread {
        min: v[0],
        median: v[v.len() / 2],
        max: v[v.len() - 1],
    }
}

/// Human-readable report.
pub fn render_text(st: &Stats) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:>7} {:>7} {:>7} {:>8} {:>7}",
        "genre", "train", "val", "test", "unsplit", "total"
    );
    let mut line = |name: &str, c: &SplitCounts| {
        let _ = writeln!(
            s,
            "{:<16} {:>7} {:>7} {:>7} {:>8} {:>7}",
            name, c.train, c.val, c.test, c.unsplit, c.total
        );
    };
    for (g, c) in &st.genres {
        line(g, c);
    }
    line("TOTAL", &st.totals);
    let _ = writeln!(
        s,
        "rows {} | images {} | pending downloads {} | failed downloads {} | dropped {} | near-duplicate groups {}",
        st.rows,
        st.images,
        st.pending_downloads,
        st.failed_downloads,
        st.dropped,
        st.near_duplicate_groups
    );
    let _ = writeln!(
        s,
        "width  min/median/max {}/{}/{} px, height {}/{}/{} px",
        st.width.min, st.width.median, st.width.max, st.height.min, st.height.median, st.height.max
    );
    let _ = write!(s, "shorter side:");
    for b in st.sizes.iter().filter(|b| b.count > 0) {
        let _ = write!(s, " {}: {}", b.label, b.count);
    }
    let _ = writeln!(s);
    if st.verified {
        let _ = writeln!(s, "files checked: {} bad", st.bad_files.len());
        for b in &st.bad_files {
            let _ = writeln!(s, "  BAD {} ({}): {}", b.id, b.path, b.problem);
        }
    }
    s
}

/// Draws the overview PNG (images per genre stacked by split; shorter-side histogram) and
/// writes it atomically.
pub fn plot(st: &Stats, out: &Path) -> Result<()> {
    use plotters::prelude::*;
    const W: u32 = 1400;
    const H: u32 = 560;
    let mut buf = vec![0u8; (W * H * 3) as usize];
    let err =
        |e: &dyn std::fmt::Display| DataError::Invalid(format!("plotting {}: {e}", out.display()));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (left, right) = root.split_horizontally(W * 3 / 5);

        let genres: Vec<&String> = st.genres.keys().collect();
        let n = genres.len().max(1);
        let ymax = st
            .genres
            .values()
            .map(|c| c.total)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut chart = ChartBuilder::on(&left)
            .caption("Images per genre and split", ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0..ymax + ymax * 3 / 10 + 1)
            .map_err(|e| err(&e))?;
        let label_of = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                genres.get(*i).map(|g| g.to_string()).unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&label_of)
            .y_desc("images")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;
        let layers: [Layer; 4] = [
            ("unsplit", RGBColor(170, 170, 170), |c| c.total),
            ("test", RGBColor(214, 39, 40), |c| c.train + c.val + c.test),
            ("val", RGBColor(255, 127, 14), |c| c.train + c.val),
            ("train", RGBColor(31, 119, 180), |c| c.train),
        ];
        for (name, color, height) in layers {
            if name == "unsplit" && st.totals.unsplit == 0 {
                continue;
            }
            chart
                .draw_series(
                    Histogram::vertical(&chart)
                        .style(color.filled())
                        .margin(8)
                        .data(st.genres.values().enumerate().map(|(i, c)| (i, height(c)))),
                )
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;

        let bins: Vec<&SizeBin> = st.sizes.iter().collect();
        let nb = bins.len().max(1);
        let bmax = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1);
        let mut hist = ChartBuilder::on(&right)
            .caption("Shorter image side (px)", ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d((0..nb - 1).into_segmented(), 0..bmax + bmax / 10 + 1)
            .map_err(|e| err(&e))?;
        let bin_label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                bins.get(*i).map(|b| b.label.clone()).unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        hist.configure_mesh()
            .disable_x_mesh()
            .x_labels(nb)
            .x_label_formatter(&bin_label)
            .y_desc("images")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(&e))?;
        hist.draw_series(
            Histogram::vertical(&hist)
                .style(RGBColor(44, 160, 44).filled())
                .margin(4)
                .data(bins.iter().enumerate().map(|(i, b)| (i, b.count))),
        )
        .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    let img = image::RgbImage::from_raw(W, H, buf)
        .ok_or_else(|| DataError::Invalid("plot buffer has the wrong size".into()))?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| err(&e))?;
    sleeve_shared::fsutil::write_atomic(out, png.get_ref()).map_err(|e| DataError::io(out, e))
}

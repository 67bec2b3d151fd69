//! Real printed Parental Advisory labels: the hand-checked box list, the label-free cover
//! list, their split, and the detector's numbers on them.
//!
//! * `real-boxes.csv` (header [`REAL_BOXES_HEADER`]): one row per label box, pixel
//!   coordinates of the original cover image (`x0 < x1`, `y0 < y1`, origin top-left), and
//!   how the box was confirmed ([`Confirmed`]). A cover with two labels has two rows. `#`
//!   starts a comment line.
//! * `real-negatives.txt`: covers confirmed by eye to carry no label, one file name per
//!   line (`#` starts a comment).
//!
//! Covers are named by file name (covers5 names are unique across genres) and found under
//! `COVERS/<genre>/`. The split ([`real_split`]) extends the detector's cover split:
//! `h = sha256(file name)[..8]` as an integer; `h % 10 == 0` → test (the held-out tenth
//! the synthetic sets use), else `(h / 10) % 2 == 0` → val, else train.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use sleeve_eval::detection::{
    DetectionReport, ImageDetections, ImageLevelReport, detection_report, image_level_report,
    image_max_scores,
};
use sleeve_eval::roc::OperatingPoint;
use sleeve_shared::detect::BoxF;
use sleeve_shared::fsutil::sha256_hex;

use crate::ap::eval_decode_params;
use crate::onnx::PaDetector;

/// The header line of `real-boxes.csv`.
pub const REAL_BOXES_HEADER: &str = "file,x0,y0,x1,y1,confirmed";

/// Largest coordinate accepted (pixels): covers are a few hundred to a few thousand wide.
pub const MAX_COORD: f32 = 20_000.0;

/// How a box was confirmed during review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confirmed {
    /// A detector proposal accepted as it was.
    Accepted,
    /// A detector proposal with its corners corrected by hand.
    Adjusted,
    /// Drawn by hand (no usable proposal).
    Drawn,
}

impl Confirmed {
    /// The word used in the CSV.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Adjusted => "adjusted",
            Self::Drawn => "drawn",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "accepted" => Some(Self::Accepted),
            "adjusted" => Some(Self::Adjusted),
            "drawn" => Some(Self::Drawn),
            _ => None,
        }
    }
}

/// One confirmed label box.
#[derive(Clone, Debug, PartialEq)]
pub struct RealBox {
    /// Cover file name (no folder).
    pub file: String,
    /// The box, pixels of the original image.
    pub bbox: BoxF,
    /// How it was confirmed.
    pub confirmed: Confirmed,
}

/// A problem in a list file, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

fn line_err(line: usize, message: impl Into<String>) -> LineError {
    LineError {
        line,
        message: message.into(),
    }
}

/// Checks a cover file name: no folders, no spaces or commas, an image extension.
pub fn check_file_name(name: &str) -> std::result::Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if name.contains(['/', '\\', ',', ' ', '\t']) || name.starts_with('.') {
        return Err(format!(
            "'{name}' is not a plain file name (no folders, spaces or commas)"
        ));
    }
    if ![".jpg", ".jpeg", ".png", ".webp"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return Err(format!("'{name}' is not a .jpg/.jpeg/.png/.webp file"));
    }
    Ok(())
}

/// Parses `real-boxes.csv` text. Comment (`#`) and blank lines are skipped; the first other
/// line must be [`REAL_BOXES_HEADER`]; every row needs six fields, a valid file name,
/// finite coordinates in `[0, MAX_COORD]` with `x0 < x1` and `y0 < y1` (at least 2 px each
/// way), and a known `confirmed` word. Identical rows are refused.
pub fn parse_real_boxes(text: &str) -> std::result::Result<Vec<RealBox>, LineError> {
    let mut out = Vec::new();
    let mut header_seen = false;
    let mut seen = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            if line != REAL_BOXES_HEADER {
                return Err(line_err(
                    n,
                    format!("expected the header '{REAL_BOXES_HEADER}', found '{line}'"),
                ));
            }
            header_seen = true;
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 6 {
            return Err(line_err(
                n,
                format!("{} fields, expected 6 ({REAL_BOXES_HEADER})", f.len()),
            ));
        }
        check_file_name(f[0]).map_err(|m| line_err(n, m))?;
        let mut c = [0f32; 4];
        for (k, name) in ["x0", "y0", "x1", "y1"].iter().enumerate() {
            let v: f32 = f[k + 1]
                .parse()
                .map_err(|_| line_err(n, format!("{name} '{}' is not a number", f[k + 1])))?;
            if !(v.is_finite() && (0.0..=MAX_COORD).contains(&v)) {
                return Err(line_err(
                    n,
                    format!("{name} {v} is outside [0, {MAX_COORD}]"),
                ));
            }
            c[k] = v;
        }
        if c[2] - c[0] < 2.0 || c[3] - c[1] < 2.0 {
            return Err(line_err(
                n,
                format!(
                    "box {:?} is empty or inverted (needs x0 < x1 and y0 < y1, 2 px or more)",
                    c
                ),
            ));
        }
        let confirmed = Confirmed::parse(f[5]).ok_or_else(|| {
            line_err(
                n,
                format!(
                    "confirmed '{}' is not one of accepted, adjusted, drawn",
                    f[5]
                ),
            )
        })?;
        if !seen.insert(line.to_string()) {
            return Err(line_err(n, "duplicate row"));
        }
        out.push(RealBox {
            file: f[0].to_string(),
            bbox: BoxF::new(c[0], c[1], c[2], c[3]),
            confirmed,
        });
    }
    if !header_seen {
        return Err(line_err(
            text.lines().count().max(1),
            format!("no header line '{REAL_BOXES_HEADER}'"),
        ));
    }
    Ok(out)
}

/// `real-boxes.csv` text for `boxes` (header first; coordinates rounded to 0.1 px).
pub fn format_real_boxes(boxes: &[RealBox], comment: &str) -> String {
    let mut s = String::new();
    for l in comment.lines() {
        s.push_str(&format!("# {l}\n"));
    }
    s.push_str(REAL_BOXES_HEADER);
    s.push('\n');
    for b in boxes {
        s.push_str(&format!(
            "{},{:.1},{:.1},{:.1},{:.1},{}\n",
            b.file,
            b.bbox.x0,
            b.bbox.y0,
            b.bbox.x1,
            b.bbox.y1,
            b.confirmed.as_str()
        ));
    }
    s
}

/// Parses a cover list (`real-negatives.txt`): one file name per line, `#` comments,
/// blank lines skipped; bad names and duplicates are refused with their line.
pub fn parse_cover_list(text: &str) -> std::result::Result<Vec<String>, LineError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let name = raw.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        check_file_name(name).map_err(|m| line_err(i + 1, m))?;
        if !seen.insert(name.to_string()) {
            return Err(line_err(i + 1, format!("'{name}' is listed twice")));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Reads and parses `real-boxes.csv`; errors name the file and line.
pub fn read_real_boxes(path: &Path) -> Result<Vec<RealBox>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_real_boxes(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Reads and parses a cover list; errors name the file and line.
pub fn read_cover_list(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_cover_list(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Which part of the real set a cover belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RealSplit {
    /// Training covers (may be trained on).
    Train,
    /// Validation covers: model selection and threshold calibration.
    Val,
    /// Test covers: the held-out tenth, never trained or calibrated on.
    Test,
}

impl RealSplit {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }

    /// Parses `train`, `val` or `test`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Self::Train),
            "val" => Ok(Self::Val),
            "test" => Ok(Self::Test),
            o => bail!("unknown real split '{o}' (train, val or test)"),
        }
    }
}

/// The split of a cover by its file name (module docs).
pub fn real_split(file_name: &str) -> RealSplit {
    let h = u64::from_str_radix(&sha256_hex(file_name.as_bytes())[..8], 16).unwrap_or(0);
    if h.is_multiple_of(10) {
        RealSplit::Test
    } else if (h / 10).is_multiple_of(2) {
        RealSplit::Val
    } else {
        RealSplit::Train
    }
}

/// A real cover with its confirmed labels (none for a label-free cover).
#[derive(Clone, Debug)]
pub struct RealCover {
    /// File name.
    pub file: String,
    /// Where it is.
    pub path: PathBuf,
    /// Genre folder.
    pub genre: String,
    /// Label boxes, pixels of the original image (empty: label-free).
    pub boxes: Vec<BoxF>,
}

/// Index of `DIR/<genre>/<file>`: file name → (path, genre).
pub fn index_covers(dir: &Path) -> Result<HashMap<String, (PathBuf, String)>> {
    let pool = crate::data::CoverPool::scan(dir)?;
    let mut out = HashMap::new();
    for (p, g) in pool.covers {
        let name = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.insert(name, (p, g));
    }
    Ok(out)
}

/// Joins the box list and the negative list with the cover folder: positives (grouped by
/// file) then negatives, sorted by file name. A cover in both lists, or listed but missing
/// under `covers`, is an error.
pub fn real_covers(
    boxes: &[RealBox],
    negatives: &[String],
    covers: &HashMap<String, (PathBuf, String)>,
) -> Result<Vec<RealCover>> {
    let mut by_file: BTreeMap<&str, Vec<BoxF>> = BTreeMap::new();
    for b in boxes {
        by_file.entry(&b.file).or_default().push(b.bbox);
    }
    let mut out = Vec::new();
    let find = |f: &str| {
        covers
            .get(f)
            .cloned()
            .ok_or_else(|| anyhow!("cover {f} is listed but not found in the cover folder"))
    };
    for (f, bs) in &by_file {
        let (path, genre) = find(f)?;
        out.push(RealCover {
            file: f.to_string(),
            path,
            genre,
            boxes: bs.clone(),
        });
    }
    for f in negatives {
        if by_file.contains_key(f.as_str()) {
            bail!("cover {f} is both in the box list and in the label-free list");
        }
        let (path, genre) = find(f)?;
        out.push(RealCover {
            file: f.clone(),
            path,
            genre,
            boxes: Vec::new(),
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

/// The centred square the preprocessing crops (`crop_fraction` 1): `(x0, y0, side)`.
pub fn crop_square(width: u32, height: u32) -> (f32, f32, f32) {
    let side = width.min(height) as f32;
    (
        (width as f32 - side) / 2.0,
        (height as f32 - side) / 2.0,
        side,
    )
}

/// A pixel box of a `width × height` image in the detector's normalised coordinates.
pub fn to_normalised(b: &BoxF, width: u32, height: u32) -> BoxF {
    let (ox, oy, s) = crop_square(width, height);
    BoxF::new(
        (b.x0 - ox) / s,
        (b.y0 - oy) / s,
        (b.x1 - ox) / s,
        (b.y1 - oy) / s,
    )
    .clipped()
}

/// A detector box (normalised) in pixels of a `width × height` image.
pub fn to_pixels(b: &BoxF, width: u32, height: u32) -> BoxF {
    let (ox, oy, s) = crop_square(width, height);
    BoxF::new(ox + b.x0 * s, oy + b.y0 * s, ox + b.x1 * s, oy + b.y1 * s)
}

/// Runs `det` on every cover (low decoding threshold, as for AP) and pairs its boxes with
/// the ground truth, both normalised.
pub fn detect_real(det: &dyn PaDetector, covers: &[RealCover]) -> Result<Vec<ImageDetections>> {
    let params = eval_decode_params();
    let mut out = Vec::with_capacity(covers.len());
    for chunk in covers.chunks(32) {
        let imgs: Vec<image::RgbImage> = chunk
            .iter()
            .map(|c| {
                sleeve_shared::imageio::open_rgb(&c.path)
                    .with_context(|| format!("decoding {}", c.path.display()))
            })
            .collect::<Result<_>>()?;
        let dets = det.detect_images(&imgs, &params)?;
        for ((c, im), d) in chunk.iter().zip(&imgs).zip(dets) {
            out.push(ImageDetections {
                ground_truth: c
                    .boxes
                    .iter()
                    .map(|b| to_normalised(b, im.width(), im.height()))
                    .collect(),
                detections: d,
            });
        }
    }
    Ok(out)
}

/// The detector's numbers on one real set.
#[derive(Clone, Debug, Serialize)]
pub struct RealReport {
    /// Set name (`real:val`, `real:test`).
    pub name: String,
    /// Covers with a label.
    pub n_positive: usize,
    /// Label-free covers.
    pub n_negative: usize,
    /// Label boxes.
    pub n_boxes: usize,
    /// The kiosk decision threshold the detector ships with.
    pub shipped_threshold: f64,
    /// Image-level recall at the shipped threshold.
    pub recall_at_shipped: f64,
    /// False-positive rate on label-free covers at the shipped threshold.
    pub fpr_at_shipped: f64,
    /// Best recall with FPR ≤ `max_fpr`, and where.
    pub recall_at_max_fpr: f64,
    /// The FPR budget.
    pub max_fpr: f64,
    /// Image-level ROC AUC (best score per cover).
    pub image_auc: Option<f64>,
    /// Box AP at IoU 0.5 (COCO 101-point).
    pub ap50: Option<f64>,
    /// Full image-level report (operating points with counts).
    pub image_level: ImageLevelReport,
    /// Full box-level report.
    pub boxes: DetectionReport,
}

/// Scores detections on a real set at the shipped `threshold` and the `max_fpr` budget.
pub fn real_report(
    name: &str,
    images: &[ImageDetections],
    threshold: f64,
    max_fpr: f64,
) -> Result<RealReport> {
    let (scores, has) = image_max_scores(images);
    let image_level = image_level_report(&scores, &has, max_fpr, threshold)
        .map_err(|e| anyhow!("{name}: {e}"))?;
    let boxes = detection_report(images).map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(RealReport {
        name: name.into(),
        n_positive: image_level.n_positive,
        n_negative: image_level.n_images - image_level.n_positive,
        n_boxes: boxes.n_ground_truth,
        shipped_threshold: threshold,
        recall_at_shipped: image_level.at_threshold.tpr,
        fpr_at_shipped: image_level.at_threshold.fpr,
        recall_at_max_fpr: image_level.at_fpr.tpr,
        max_fpr,
        image_auc: image_level.auc,
        ap50: boxes.ap50,
        image_level,
        boxes,
    })
}

/// The kiosk threshold chosen on a validation set: the best recall with FPR ≤ `max_fpr`
/// (ties: the lowest FPR, then the highest threshold). Fails when no finite threshold
/// meets the budget or the set lacks positives or negatives.
pub fn calibrate_threshold(images: &[ImageDetections], max_fpr: f64) -> Result<OperatingPoint> {
    let (scores, has) = image_max_scores(images);
    let pos = has.iter().filter(|h| **h).count();
    if pos == 0 || pos == has.len() {
        bail!(
            "calibration needs covers with and without a label ({pos} of {} have one)",
            has.len()
        );
    }
    let op = sleeve_eval::roc::recall_at_fpr(&scores, &has, max_fpr)
        .map_err(|e| anyhow!("calibration: {e}"))?;
    if !(op.threshold.is_finite() && op.threshold > 0.0 && op.threshold <= 1.0) {
        bail!(
            "no threshold in (0, 1] keeps the false-positive rate at or below {max_fpr} (best: {})",
            op.threshold
        );
    }
    Ok(op)
}

/// Operating point of `images` at `threshold`.
pub fn at_threshold(images: &[ImageDetections], threshold: f64) -> Result<OperatingPoint> {
    let (scores, has) = image_max_scores(images);
    sleeve_eval::roc::operating_point(&scores, &has, threshold).map_err(|e| anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sleeve_shared::results::PaBox;

    const HEAD: &str = "file,x0,y0,x1,y1,confirmed\n";

    #[test]
    fn parses_rows_comments_and_multiple_boxes() {
        let text = format!(
            "# boxes\n{HEAD}a.jpg,10,200,60,280,accepted\n\n# second label\na.jpg,250,10,290.5,40,drawn\nb.png,0,0,300,300,adjusted\n"
        );
        let b = parse_real_boxes(&text).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[1].bbox, BoxF::new(250.0, 10.0, 290.5, 40.0));
        assert_eq!(b[2].confirmed, Confirmed::Adjusted);
        // Writing and reading again gives the same boxes.
        assert_eq!(
            parse_real_boxes(&format_real_boxes(&b, "round trip")).unwrap(),
            b
        );
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let cases = [
            ("file,x0,y0,x1,y1\n", 1, "header"),
            (&format!("{HEAD}a.jpg,1,2,3\n") as &str, 2, "4 fields"),
            (
                &format!("{HEAD}a.jpg,1,2,30,40,accepted\nb.jpg,x,2,30,40,drawn\n"),
                3,
                "not a number",
            ),
            (
                &format!("{HEAD}#c\na.jpg,30,2,10,40,drawn\n"),
                3,
                "inverted",
            ),
            (&format!("{HEAD}a.jpg,1,2,30,40,guessed\n"), 2, "confirmed"),
            (&format!("{HEAD}a.jpg,-1,2,30,40,drawn\n"), 2, "outside"),
            (&format!("{HEAD}a.jpg,1,2,NaN,40,drawn\n"), 2, "outside"),
            (&format!("{HEAD}a.jpg,1,2,30,99999,drawn\n"), 2, "outside"),
            (
                &format!("{HEAD}x/a.jpg,1,2,30,40,drawn\n"),
                2,
                "plain file name",
            ),
            (&format!("{HEAD}a.txt,1,2,30,40,drawn\n"), 2, ".jpg"),
            (
                &format!("{HEAD}a.jpg,1,2,30,40,drawn\n\na.jpg,1,2,30,40,drawn\n"),
                4,
                "duplicate",
            ),
            ("# only a comment\n", 1, "no header"),
        ];
        for (text, line, what) in cases {
            let e = parse_real_boxes(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn cover_lists_refuse_duplicates_and_bad_names() {
        let l = parse_cover_list("# neg\na.jpg  # hiphop\n\nb.jpg\n").unwrap();
        assert_eq!(l, vec!["a.jpg", "b.jpg"]);
        assert_eq!(parse_cover_list("a.jpg\na.jpg\n").unwrap_err().line, 2);
        assert_eq!(parse_cover_list("a.jpg\n../b.jpg\n").unwrap_err().line, 2);
    }

    #[test]
    fn split_is_stable_and_roughly_balanced() {
        let names: Vec<String> = (0..3000).map(|i| format!("{i:016x}.jpg")).collect();
        let mut n = BTreeMap::new();
        for f in &names {
            *n.entry(real_split(f)).or_insert(0usize) += 1;
            assert_eq!(real_split(f), real_split(f));
        }
        // The test split is exactly the detector's held-out tenth.
        let pool = crate::data::CoverPool {
            covers: names
                .iter()
                .map(|f| (PathBuf::from(f), "g".to_string()))
                .collect(),
        };
        let held = pool.split(crate::data::Split::Holdout).len();
        assert_eq!(n[&RealSplit::Test], held);
        assert!((200..400).contains(&held), "{held}");
        assert!((1100..1600).contains(&n[&RealSplit::Val]), "{n:?}");
        assert!((1100..1600).contains(&n[&RealSplit::Train]), "{n:?}");
    }

    #[test]
    fn joins_lists_and_refuses_conflicts() {
        let mut covers = HashMap::new();
        for f in ["a.jpg", "b.jpg", "c.jpg"] {
            covers.insert(f.to_string(), (PathBuf::from(f), "hiphop".to_string()));
        }
        let boxes = vec![RealBox {
            file: "b.jpg".into(),
            bbox: BoxF::new(1.0, 1.0, 9.0, 9.0),
            confirmed: Confirmed::Drawn,
        }];
        let set = real_covers(&boxes, &["a.jpg".into()], &covers).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!((set[0].file.as_str(), set[0].boxes.len()), ("a.jpg", 0));
        assert_eq!((set[1].file.as_str(), set[1].boxes.len()), ("b.jpg", 1));
        assert!(real_covers(&boxes, &["b.jpg".into()], &covers).is_err());
        assert!(real_covers(&boxes, &["zz.jpg".into()], &covers).is_err());
    }

    #[test]
    fn pixel_and_normalised_boxes_round_trip_on_non_square_images() {
        // 400 × 300: the centred 300 square starts at x = 50.
        let b = BoxF::new(80.0, 30.0, 140.0, 90.0);
        let n = to_normalised(&b, 400, 300);
        assert!((n.x0 - 0.1).abs() < 1e-6 && (n.y1 - 0.3).abs() < 1e-6);
        let back = to_pixels(&n, 400, 300);
        assert!((back.x0 - 80.0).abs() < 1e-4 && (back.y1 - 90.0).abs() < 1e-4);
    }

    fn img(gt: &[BoxF], dets: &[(BoxF, f32)]) -> ImageDetections {
        ImageDetections {
            ground_truth: gt.to_vec(),
            detections: dets
                .iter()
                .map(|(b, s)| PaBox {
                    bbox: *b,
                    score: *s,
                })
                .collect(),
        }
    }

    /// A generated set with known boxes: 4 covers with one label each, 50 without.
    /// Positives score 0.9 (hit), 0.6 (hit), 0.3 (hit), 0.8 (box in the wrong place) —
    /// negatives: one at 0.7, one at 0.2, the rest nothing.
    fn known_set() -> Vec<ImageDetections> {
        let l = BoxF::new(0.70, 0.80, 0.95, 0.95);
        let off = BoxF::new(0.05, 0.05, 0.20, 0.15);
        let mut v = vec![
            img(&[l], &[(l, 0.9)]),
            img(&[l], &[(l, 0.6)]),
            img(&[l], &[(l, 0.3)]),
            img(&[l], &[(off, 0.8)]),
            img(&[], &[(off, 0.7)]),
            img(&[], &[(off, 0.2)]),
        ];
        v.extend((0..48).map(|_| img(&[], &[])));
        v
    }

    #[test]
    fn hand_computed_recall_fpr_and_ap() {
        let set = known_set();
        let r = real_report("real:test", &set, 0.5, 0.02).unwrap();
        assert_eq!((r.n_positive, r.n_negative, r.n_boxes), (4, 50, 4));
        // At 0.5: covers 0.9, 0.6, 0.8 flagged (3 of 4); negative 0.7 flagged (1 of 50).
        assert_eq!(r.recall_at_shipped, 0.75);
        assert_eq!(r.fpr_at_shipped, 0.02);
        // FPR ≤ 2 % allows one false positive: threshold 0.3 catches all four covers but
        // also the 0.7 negative only (0.2 stays below): recall 1, FPR 0.02.
        assert_eq!(r.recall_at_max_fpr, 1.0);
        assert!((r.image_level.at_fpr.threshold - 0.3).abs() < 1e-6);
        // AUC: positives {0.9, 0.6, 0.3, 0.8} vs negatives {0.7, 0.2, 48 × 0}:
        // pairs lost: 0.6 < 0.7 and 0.3 < 0.7 → 2 of 200 → 0.99.
        assert!((r.image_auc.unwrap() - 0.99).abs() < 1e-9);
        // Boxes ranked 0.9 TP, 0.8 FP, 0.7 FP, 0.6 TP, 0.3 TP, 0.2 FP over 4 labels:
        // precision at recall 0.25: 1, 0.5: 0.5, 0.75: 0.6 → interpolated envelope
        // 1 (r ≤ .25), 0.6 (r ≤ .75), 0 beyond: (26·1 + 50·0.6) / 101.
        let want = (26.0 + 50.0 * 0.6) / 101.0;
        assert!((r.ap50.unwrap() - want).abs() < 1e-9, "{:?}", r.ap50);
        // Calibration on the same set picks the 0.3 point.
        let op = calibrate_threshold(&set, 0.02).unwrap();
        assert!((op.threshold - 0.3).abs() < 1e-6);
        assert_eq!((op.tp, op.fp), (4, 1));
        // With no false positive allowed: 0.8 (hits 0.9 and the misplaced 0.8): 2 of 4.
        let op = calibrate_threshold(&set, 0.0).unwrap();
        assert!((op.threshold - 0.8).abs() < 1e-6);
        assert_eq!((op.tp, op.fp), (2, 0));
        let all_neg: Vec<ImageDetections> = set[4..].to_vec();
        assert!(calibrate_threshold(&all_neg, 0.02).is_err());
    }
}

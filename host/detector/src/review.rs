//! Boxing real labels by review: the detector proposes boxes at a low threshold, contact
//! sheets show them numbered, a short review file accepts, fixes or rejects them, and
//! [`apply_review`] turns that into `real-boxes.csv` rows and label-free covers.
//!
//! Proposals CSV ([`PROPOSALS_HEADER`]): one row per proposed box, plus one row with empty
//! box fields for a cover without any proposal, so every reviewed cover has a tile number.
//! Box coordinates are pixels of the original image.
//!
//! Review file, one decision per line (`#` comments; `T` is a tile number, `T.k` a
//! proposal):
//!
//! ```text
//! accept 3.0 4.0 7.1            # proposals kept as they are
//! adjust 6.0 12 200 60 280      # proposal 6.0 with corrected corners x0 y0 x1 y1 (pixels)
//! draw 8 12 200 60 280          # a box drawn by hand on tile 8
//! none 1 2 5 10-14              # covers without a label (ranges inclusive)
//! skip 9                        # unsure: left out of both lists
//! ```
//!
//! Every tile of the proposals needs exactly one kind of decision: boxes (any number of
//! accept/adjust/draw), `none`, or `skip`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use sleeve_shared::detect::{BoxF, DecodeParams};
use sleeve_synth::sheet::{Tile, compose};

use crate::onnx::PaDetector;
use crate::real::{Confirmed, LineError, MAX_COORD, RealBox, RealCover, check_file_name};

/// Header of the proposals CSV.
pub const PROPOSALS_HEADER: &str = "tile,file,genre,box,x0,y0,x1,y1,score";

/// One proposal row.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// Tile number (1-based, one per cover).
    pub tile: usize,
    /// Cover file name.
    pub file: String,
    /// Genre folder.
    pub genre: String,
    /// Box number within the tile and the box (pixels) with its score; `None` when the
    /// detector proposed nothing for this cover.
    pub boxed: Option<(usize, BoxF, f32)>,
}

/// Runs `det` over `covers` and keeps boxes scoring at least `threshold` (at most
/// `max_boxes` per cover); tiles are numbered from `first_tile` in the order given.
pub fn propose(
    det: &dyn PaDetector,
    covers: &[RealCover],
    threshold: f32,
    max_boxes: usize,
    first_tile: usize,
) -> Result<Vec<Proposal>> {
    let params = DecodeParams {
        score_threshold: threshold,
        iou_threshold: 0.45,
        max_detections: max_boxes,
    };
    let mut out = Vec::new();
    for (ci, chunk) in covers.chunks(32).enumerate() {
        let imgs: Vec<RgbImage> = chunk
            .iter()
            .map(|c| {
                sleeve_shared::imageio::open_rgb(&c.path)
                    .with_context(|| format!("decoding {}", c.path.display()))
            })
            .collect::<Result<_>>()?;
        let dets = det.detect_images(&imgs, &params)?;
        for (j, ((c, im), d)) in chunk.iter().zip(&imgs).zip(dets).enumerate() {
            let tile = first_tile + ci * 32 + j;
            let base = |boxed| Proposal {
                tile,
                file: c.file.clone(),
                genre: c.genre.clone(),
                boxed,
            };
            if d.is_empty() {
                out.push(base(None));
            }
            for (k, b) in d.iter().enumerate() {
                let px = crate::real::to_pixels(&b.bbox, im.width(), im.height());
                out.push(base(Some((k, px, b.score))));
            }
        }
    }
    Ok(out)
}

/// CSV text of proposals.
pub fn format_proposals(p: &[Proposal]) -> String {
    let mut s = format!("{PROPOSALS_HEADER}\n");
    for r in p {
        match r.boxed {
            Some((k, b, score)) => s.push_str(&format!(
                "{},{},{},{k},{:.1},{:.1},{:.1},{:.1},{score:.4}\n",
                r.tile, r.file, r.genre, b.x0, b.y0, b.x1, b.y1
            )),
            None => s.push_str(&format!("{},{},{},,,,,,\n", r.tile, r.file, r.genre)),
        }
    }
    s
}

fn num<T: std::str::FromStr>(s: &str, what: &str, line: usize) -> Result<T, LineError> {
    s.trim().parse().map_err(|_| LineError {
        line,
        message: format!("{what} '{s}' is not a number"),
    })
}

/// Parses a proposals CSV written by [`format_proposals`].
pub fn parse_proposals(text: &str) -> std::result::Result<Vec<Proposal>, LineError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == PROPOSALS_HEADER => {}
        _ => {
            return Err(LineError {
                line: 1,
                message: format!("expected the header '{PROPOSALS_HEADER}'"),
            });
        }
    }
    let mut out = Vec::new();
    for (i, raw) in lines {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = raw.split(',').collect();
        if f.len() != 9 {
            return Err(LineError {
                line: n,
                message: format!("{} fields, expected 9", f.len()),
            });
        }
        check_file_name(f[1]).map_err(|m| LineError {
            line: n,
            message: m,
        })?;
        let tile: usize = num(f[0], "tile", n)?;
        let boxed = if f[3].trim().is_empty() {
            None
        } else {
            let k: usize = num(f[3], "box", n)?;
            let c: Vec<f32> = (4..8)
                .map(|j| num::<f32>(f[j], "coordinate", n))
                .collect::<Result<_, _>>()?;
            if c.iter()
                .any(|v| !(v.is_finite() && (0.0..=MAX_COORD).contains(v)))
                || c[2] < c[0]
                || c[3] < c[1]
            {
                return Err(LineError {
                    line: n,
                    message: format!("box {c:?} is not x0 ≤ x1, y0 ≤ y1 inside [0, {MAX_COORD}]"),
                });
            }
            let score: f32 = num(f[8], "score", n)?;
            if !(0.0..=1.0).contains(&score) {
                return Err(LineError {
                    line: n,
                    message: format!("score {score} is outside [0, 1]"),
                });
            }
            Some((k, BoxF::new(c[0], c[1], c[2], c[3]), score))
        };
        out.push(Proposal {
            tile,
            file: f[1].to_string(),
            genre: f[2].to_string(),
            boxed,
        });
    }
    Ok(out)
}

/// What the review decided for one tile.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Label boxes (pixels) and how each was confirmed.
    Boxes(Vec<(BoxF, Confirmed)>),
    /// No label on this cover.
    None,
    /// Unsure: left out.
    Skip,
}

/// Outcome of [`apply_review`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReviewResult {
    /// Confirmed label boxes.
    pub boxes: Vec<RealBox>,
    /// Label-free covers (file, genre).
    pub negatives: Vec<(String, String)>,
    /// Skipped covers.
    pub skipped: Vec<String>,
}

fn parse_box(tokens: &[&str], line: usize) -> Result<BoxF, LineError> {
    if tokens.len() != 4 {
        return Err(LineError {
            line,
            message: format!("expected x0 y0 x1 y1, found {} numbers", tokens.len()),
        });
    }
    let c: Vec<f32> = tokens
        .iter()
        .map(|t| num::<f32>(t, "coordinate", line))
        .collect::<Result<_, _>>()?;
    if c.iter()
        .any(|v| !(v.is_finite() && (0.0..=MAX_COORD).contains(v)))
        || c[2] - c[0] < 2.0
        || c[3] - c[1] < 2.0
    {
        return Err(LineError {
            line,
            message: format!("box {c:?} is not x0 < x1, y0 < y1 inside [0, {MAX_COORD}]"),
        });
    }
    Ok(BoxF::new(c[0], c[1], c[2], c[3]))
}

/// Applies a review file to proposals. Refuses unknown tiles or proposals, a tile with
/// conflicting decisions (boxes and `none`/`skip`), and tiles left undecided.
pub fn apply_review(proposals: &[Proposal], review: &str) -> Result<ReviewResult> {
    let mut tiles: BTreeMap<usize, (&str, &str)> = BTreeMap::new();
    let mut props: BTreeMap<(usize, usize), BoxF> = BTreeMap::new();
    for p in proposals {
        if let Some((f, _)) = tiles.insert(p.tile, (&p.file, &p.genre))
            && f != p.file
        {
            bail!("tile {} names two covers ({f}, {})", p.tile, p.file);
        }
        if let Some((k, b, _)) = p.boxed {
            props.insert((p.tile, k), b);
        }
    }
    let mut decided: BTreeMap<usize, Decision> = BTreeMap::new();
    let tile_of = |t: &str, line: usize| -> Result<usize> {
        let n: usize = t
            .parse()
            .map_err(|_| anyhow!("line {line}: tile '{t}' is not a number"))?;
        if !tiles.contains_key(&n) {
            bail!("line {line}: there is no tile {n}");
        }
        Ok(n)
    };
    let prop_of = |t: &str, line: usize| -> Result<(usize, BoxF)> {
        let (a, b) = t
            .split_once('.')
            .ok_or_else(|| anyhow!("line {line}: '{t}' is not a proposal like 12.0"))?;
        let tile = tile_of(a, line)?;
        let k: usize = b
            .parse()
            .map_err(|_| anyhow!("line {line}: '{t}' is not a proposal like 12.0"))?;
        let bx = props
            .get(&(tile, k))
            .ok_or_else(|| anyhow!("line {line}: tile {tile} has no proposal {k}"))?;
        Ok((tile, *bx))
    };
    let mut add = |tile: usize, d: Decision, line: usize| -> Result<()> {
        match (decided.get_mut(&tile), d) {
            (None, d) => {
                decided.insert(tile, d);
            }
            (Some(Decision::Boxes(v)), Decision::Boxes(mut more)) => v.append(&mut more),
            (Some(_), _) => bail!("line {line}: tile {tile} already has another decision"),
        }
        Ok(())
    };
    for (i, raw) in review.lines().enumerate() {
        let line = i + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let tok: Vec<&str> = text.split_whitespace().collect();
        let args = &tok[1..];
        match tok[0] {
            "accept" | "none" | "skip" if args.is_empty() => {
                bail!("line {line}: '{}' needs at least one tile", tok[0])
            }
            "accept" => {
                for a in args {
                    let (t, b) = prop_of(a, line)?;
                    add(t, Decision::Boxes(vec![(b, Confirmed::Accepted)]), line)?;
                }
            }
            "adjust" => {
                let Some(first) = args.first() else {
                    bail!("line {line}: adjust T.k x0 y0 x1 y1");
                };
                let (t, _) = prop_of(first, line)?;
                let b = parse_box(&args[1..], line).map_err(|e| anyhow!("{e}"))?;
                add(t, Decision::Boxes(vec![(b, Confirmed::Adjusted)]), line)?;
            }
            "draw" => {
                let Some(first) = args.first() else {
                    bail!("line {line}: draw T x0 y0 x1 y1");
                };
                let t = tile_of(first, line)?;
                let b = parse_box(&args[1..], line).map_err(|e| anyhow!("{e}"))?;
                add(t, Decision::Boxes(vec![(b, Confirmed::Drawn)]), line)?;
            }
            "none" | "skip" => {
                let d = if tok[0] == "none" {
                    Decision::None
                } else {
                    Decision::Skip
                };
                for a in args {
                    // `T` or an inclusive range `A-B`.
                    let (lo, hi) = match a.split_once('-') {
                        Some((x, y)) => (tile_of(x, line)?, tile_of(y, line)?),
                        None => (tile_of(a, line)?, tile_of(a, line)?),
                    };
                    if lo > hi {
                        bail!("line {line}: range {a} runs backwards");
                    }
                    for t in tiles.range(lo..=hi).map(|(t, _)| *t) {
                        add(t, d.clone(), line)?;
                    }
                }
            }
            other => {
                bail!("line {line}: unknown decision '{other}' (accept, adjust, draw, none, skip)")
            }
        }
    }
    let missing: Vec<String> = tiles
        .keys()
        .filter(|t| !decided.contains_key(t))
        .map(|t| t.to_string())
        .collect();
    if !missing.is_empty() {
        bail!("tiles without a decision: {}", missing.join(" "));
    }
    let mut out = ReviewResult::default();
    for (t, d) in decided {
        let (file, genre) = tiles[&t];
        match d {
            Decision::Boxes(v) => out.boxes.extend(v.into_iter().map(|(b, c)| RealBox {
                file: file.to_string(),
                bbox: b,
                confirmed: c,
            })),
            Decision::None => out.negatives.push((file.to_string(), genre.to_string())),
            Decision::Skip => out.skipped.push(file.to_string()),
        }
    }
    Ok(out)
}

/// The smallest box holding all `boxes`.
fn union(mut boxes: impl Iterator<Item = BoxF>) -> Option<BoxF> {
    let first = boxes.next()?;
    Some(boxes.fold(first, |u, b| {
        BoxF::new(
            u.x0.min(b.x0),
            u.y0.min(b.y0),
            u.x1.max(b.x1),
            u.y1.max(b.y1),
        )
    }))
}

/// A square window around `u` (1.5 × its longer side, at least a quarter of the image),
/// inside a `w × h` image: `(x0, y0, side)`.
fn crop_window(u: &BoxF, w: u32, h: u32) -> (u32, u32, u32) {
    let side = (u.width().max(u.height()) * 1.5)
        .max(w.min(h) as f32 / 4.0)
        .min(w.min(h) as f32);
    let (cx, cy) = u.centre();
    let x0 = (cx - side / 2.0).clamp(0.0, w as f32 - side);
    let y0 = (cy - side / 2.0).clamp(0.0, h as f32 - side);
    (x0 as u32, y0 as u32, side as u32)
}

/// Review sheets: tiles of `per_sheet` covers each, `columns` wide, every proposal drawn
/// with its number `T.k` (score in the caption). With `crop`, each cover with proposals is
/// cropped to a square around them (to judge their fit). Returns the PNGs in tile order.
pub fn review_sheets(
    proposals: &[Proposal],
    covers: &std::collections::HashMap<String, (std::path::PathBuf, String)>,
    per_sheet: usize,
    columns: u32,
    cell: u32,
    crop: bool,
) -> Result<Vec<RgbImage>> {
    let mut by_tile: BTreeMap<usize, Vec<&Proposal>> = BTreeMap::new();
    for p in proposals {
        by_tile.entry(p.tile).or_default().push(p);
    }
    let tiles: Vec<(usize, Vec<&Proposal>)> = by_tile.into_iter().collect();
    let mut sheets = Vec::new();
    for chunk in tiles.chunks(per_sheet.max(1)) {
        let mut ts = Vec::new();
        for (t, ps) in chunk {
            let file = &ps[0].file;
            let (path, _) = covers
                .get(file)
                .ok_or_else(|| anyhow!("cover {file} is not in the cover folder"))?;
            let image = sleeve_shared::imageio::open_rgb(path)
                .with_context(|| format!("decoding {}", path.display()))?;
            let mut boxed: Vec<_> = ps.iter().filter_map(|p| p.boxed).collect();
            let image = match (crop, union(boxed.iter().map(|b| b.1))) {
                (true, Some(u)) => {
                    let (x0, y0, side) = crop_window(&u, image.width(), image.height());
                    for b in &mut boxed {
                        b.1 = BoxF::new(
                            b.1.x0 - x0 as f32,
                            b.1.y0 - y0 as f32,
                            b.1.x1 - x0 as f32,
                            b.1.y1 - y0 as f32,
                        );
                    }
                    imageops::crop_imm(&image, x0, y0, side, side).to_image()
                }
                _ => image,
            };
            let scores: Vec<String> = boxed
                .iter()
                .map(|(k, _, s)| format!("{k}:{:.2}", s))
                .collect();
            ts.push(Tile {
                caption: format!("{t} {}", scores.join(" ")),
                boxes: boxed.iter().map(|(_, b, _)| *b).collect(),
                box_labels: boxed.iter().map(|(k, _, _)| format!("{t}.{k}")).collect(),
                image,
                distractors: vec![],
                corners: None,
            });
        }
        sheets.push(compose(&ts, columns, cell));
    }
    Ok(sheets)
}

/// One cover enlarged `scale` times with a labelled pixel grid every `step` original
/// pixels, for reading box corners.
pub fn zoom_view(image: &RgbImage, boxes: &[BoxF], scale: u32, step: u32) -> RgbImage {
    let (w, h) = (image.width() * scale, image.height() * scale);
    let mut big = imageops::resize(image, w, h, FilterType::Triangle);
    let grid = Rgb([255, 0, 255]);
    let step = step.max(5);
    for gx in (0..image.width()).step_by(step as usize) {
        for y in (0..h).step_by(2) {
            big.put_pixel(gx * scale, y, grid);
        }
    }
    for gy in (0..image.height()).step_by(step as usize) {
        for x in (0..w).step_by(2) {
            big.put_pixel(x, gy * scale, grid);
        }
    }
    let mut tile = Tile {
        image: big,
        boxes: boxes
            .iter()
            .map(|b| {
                BoxF::new(
                    b.x0 * scale as f32,
                    b.y0 * scale as f32,
                    b.x1 * scale as f32,
                    b.y1 * scale as f32,
                )
            })
            .collect(),
        box_labels: vec![],
        distractors: vec![],
        corners: None,
        caption: String::new(),
    };
    // Coordinates of the grid lines along the top and left edges.
    let mut labels = Vec::new();
    for g in (0..image.width().max(image.height())).step_by((step * 2) as usize) {
        labels.push(g);
    }
    tile.caption = format!("grid every {step} px (magenta)");
    let mut out = compose(std::slice::from_ref(&tile), 1, w);
    for g in labels {
        let p = (g * scale) as i32 + 4;
        draw_text(&mut out, &g.to_string(), p + 2, 6);
        draw_text(&mut out, &g.to_string(), 6, p + 2);
    }
    out
}

fn draw_text(img: &mut RgbImage, s: &str, x: i32, y: i32) {
    use embedded_graphics::Drawable;
    use embedded_graphics::mono_font::MonoTextStyle;
    use embedded_graphics::pixelcolor::Rgb888;
    use embedded_graphics::prelude::Point;
    use embedded_graphics::text::{Baseline, Text};
    let (w, hh) = (s.len() as i32 * 6 + 2, 11);
    for yy in y.max(0)..(y + hh).min(img.height() as i32) {
        for xx in x.max(0)..(x + w).min(img.width() as i32) {
            img.put_pixel(xx as u32, yy as u32, Rgb([255, 255, 255]));
        }
    }
    let style = MonoTextStyle::new(&sleeve_synth::text::FONT_6X10, Rgb888::new(0, 0, 0));
    let _ = Text::with_baseline(s, Point::new(x + 1, y), style, Baseline::Top)
        .draw(&mut sleeve_synth::canvas::RgbCanvas(img));
}

/// Writes an image as PNG, atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut buf = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
        .context("encoding PNG")?;
    sleeve_shared::fsutil::write_atomic(path, &buf)
        .with_context(|| format!("writing {}", path.display()))
}

/// Covers named by tile numbers (`BTreeSet` of tiles) from proposals: file names in order.
pub fn files_of_tiles(proposals: &[Proposal], tiles: &BTreeSet<usize>) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for p in proposals {
        if tiles.contains(&p.tile) {
            seen.entry(p.tile).or_insert_with(|| p.file.clone());
        }
    }
    seen.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Vec<Proposal> {
        let p = |tile: usize, file: &str, boxed| Proposal {
            tile,
            file: file.into(),
            genre: "hiphop".into(),
            boxed,
        };
        vec![
            p(
                1,
                "a.jpg",
                Some((0, BoxF::new(10.0, 200.0, 60.0, 280.0), 0.8)),
            ),
            p(1, "a.jpg", Some((1, BoxF::new(0.0, 0.0, 30.0, 20.0), 0.1))),
            p(2, "b.jpg", None),
            p(3, "c.jpg", Some((0, BoxF::new(5.0, 5.0, 50.0, 40.0), 0.3))),
            p(4, "d.jpg", None),
        ]
    }

    #[test]
    fn proposals_round_trip() {
        let p = props();
        let back = parse_proposals(&format_proposals(&p)).unwrap();
        assert_eq!(back.len(), p.len());
        assert_eq!(back[0].boxed.unwrap().0, 0);
        assert!(back[2].boxed.is_none());
        assert_eq!(parse_proposals("tile,file\n").unwrap_err().line, 1);
        let bad = format!("{PROPOSALS_HEADER}\n1,a.jpg,g,0,1,2,3,4,1.5\n");
        assert_eq!(parse_proposals(&bad).unwrap_err().line, 2);
        let bad = format!("{PROPOSALS_HEADER}\n1,a.jpg,g,,,,,,\n1,a.jpg,g,0,5,2,3,4,0.5\n");
        let e = parse_proposals(&bad).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("x0 ≤ x1"), "{e}");
    }

    #[test]
    fn review_accepts_adjusts_draws_and_rejects() {
        let r = apply_review(
            &props(),
            "accept 1.0  # the big one\nadjust 3.0 4 4 52 41\ndraw 3 200 200 250 230\nnone 2\nskip 4\n",
        )
        .unwrap();
        assert_eq!(r.boxes.len(), 3);
        assert_eq!(r.boxes[0].confirmed, Confirmed::Accepted);
        assert_eq!(r.boxes[0].bbox, BoxF::new(10.0, 200.0, 60.0, 280.0));
        assert_eq!(r.boxes[1].confirmed, Confirmed::Adjusted);
        assert_eq!(r.boxes[2].confirmed, Confirmed::Drawn);
        assert_eq!(r.boxes[2].file, "c.jpg");
        assert_eq!(
            r.negatives,
            vec![("b.jpg".to_string(), "hiphop".to_string())]
        );
        assert_eq!(r.skipped, vec!["d.jpg".to_string()]);
        // Ranges cover every tile in between.
        let r = apply_review(&props(), "accept 1.0\nnone 2-4\n").unwrap();
        assert_eq!(r.negatives.len(), 3);
    }

    #[test]
    fn review_errors_are_specific() {
        let cases = [
            ("accept 1.0\nnone 2 3\n", "without a decision: 4"),
            ("accept 1.5\n", "no proposal 5"),
            ("accept 9.0\n", "no tile 9"),
            ("accept 1.0\nnone 1 2 3 4\n", "line 2: tile 1 already"),
            ("draw 2 10 10 5 20\nnone 1 3 4\n", "line 1: box"),
            ("frob 1\n", "unknown decision"),
            ("none\n", "needs at least one tile"),
            ("none 3-1\n", "backwards"),
            ("accept 1.0\nnone 1-4\n", "line 2: tile 1 already"),
        ];
        for (text, want) in cases {
            let e = apply_review(&props(), text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn sheets_and_zoom_have_the_expected_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut covers = std::collections::HashMap::new();
        for f in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] {
            let path = dir.path().join(f);
            RgbImage::from_pixel(300, 300, Rgb([200, 30, 30]))
                .save(&path)
                .unwrap();
            covers.insert(f.to_string(), (path, "hiphop".to_string()));
        }
        let sheets = review_sheets(&props(), &covers, 3, 3, 100, false).unwrap();
        assert_eq!(sheets.len(), 2);
        assert!(sheets[0].width() > 300 && sheets[1].width() == 100 + 8);
        // The proposal box is drawn in green on the first tile.
        let green = sheets[0].pixels().filter(|p| p.0 == [40, 255, 60]).count();
        assert!(green > 50, "{green}");
        // Cropped: the first cover shows only the square around its two proposals.
        let cropped = review_sheets(&props(), &covers, 1, 1, 100, true).unwrap();
        assert_eq!(cropped.len(), 4);
        let (x0, y0, side) = crop_window(&BoxF::new(0.0, 0.0, 60.0, 280.0), 300, 300);
        assert_eq!((x0, y0, side), (0, 0, 300));
        let (x0, y0, side) = crop_window(&BoxF::new(250.0, 10.0, 290.0, 40.0), 300, 300);
        assert_eq!((x0, y0, side), (225, 0, 75));
        let z = zoom_view(
            &RgbImage::new(100, 80),
            &[BoxF::new(10.0, 10.0, 50.0, 30.0)],
            3,
            10,
        );
        assert!(z.width() >= 300 && z.height() >= 240);
    }
}

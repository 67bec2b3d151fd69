//! `sleeve pa-boxes`: boxing real printed Parental Advisory labels by review
//! (`propose` → `sheets`/`zoom` → a review file → `apply`; `check` validates the lists).
//! Formats: [`sleeve_detector::review`] and [`sleeve_detector::real`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use sleeve_shared::fsutil::write_atomic;

use sleeve_detector::real::{
    RealCover, RealSplit, format_real_boxes, index_covers, read_cover_list, read_real_boxes,
    real_covers, real_split,
};
use sleeve_detector::review::{
    apply_review, files_of_tiles, format_proposals, parse_proposals, propose, review_sheets,
    save_png, zoom_view,
};

/// `sleeve pa-boxes` subcommands.
#[derive(Subcommand, Debug)]
pub enum PaBoxesCmd {
    /// Run a detector at a low threshold over covers and write proposals (CSV, pixels).
    Propose(ProposeArgs),
    /// Contact sheets of proposals, each box numbered `tile.box`.
    Sheets(SheetsArgs),
    /// Enlarged covers with a pixel grid, to read box corners for `adjust`/`draw`.
    Zoom(ZoomArgs),
    /// Apply review files to proposals: write `real-boxes.csv` and `real-negatives.txt`.
    Apply(ApplyArgs),
    /// Validate `real-boxes.csv` / `real-negatives.txt` and count them per split.
    Check(CheckArgs),
}

/// `sleeve pa-boxes propose`.
#[derive(Args, Debug)]
pub struct ProposeArgs {
    /// Detector: a bundle folder (its ONNX file runs in tract) or a burn checkpoint.
    #[arg(long, default_value = "models/default")]
    pub detector: PathBuf,
    /// Covers `DIR/<genre>/*.jpg`.
    #[arg(long)]
    pub covers: PathBuf,
    /// Covers to propose for (file names, `#` comments); all covers when absent.
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Leave out covers named in these lists (repeatable), e.g. already reviewed ones.
    #[arg(long)]
    pub exclude: Vec<PathBuf>,
    /// Keep only covers of these real splits (train, val, test; comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub split: Vec<String>,
    /// Keep only covers of these genres (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub genre: Vec<String>,
    /// Pick this many covers at random (seeded) after filtering.
    #[arg(long)]
    pub sample: Option<usize>,
    /// Seed of `--sample`.
    #[arg(long, default_value_t = 14)]
    pub seed: u64,
    /// Lowest score proposed.
    #[arg(long, default_value_t = 0.05)]
    pub threshold: f32,
    /// At most this many proposals per cover.
    #[arg(long, default_value_t = 3)]
    pub max_boxes: usize,
    /// Number of the first tile (keep tile numbers unique across batches).
    #[arg(long, default_value_t = 1)]
    pub first_tile: usize,
    /// Proposals CSV to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// `sleeve pa-boxes sheets`.
#[derive(Args, Debug)]
pub struct SheetsArgs {
    /// Proposals CSV.
    #[arg(long)]
    pub proposals: PathBuf,
    /// Covers `DIR/<genre>/*.jpg`.
    #[arg(long)]
    pub covers: PathBuf,
    /// Folder for `sheet-NNN.png`.
    #[arg(long)]
    pub out: PathBuf,
    /// Covers per sheet.
    #[arg(long, default_value_t = 30)]
    pub per_sheet: usize,
    /// Grid columns.
    #[arg(long, default_value_t = 6)]
    pub columns: u32,
    /// Width of a cell in pixels.
    #[arg(long, default_value_t = 240)]
    pub cell: u32,
    /// Crop each cover to a square around its proposals (to judge how they fit).
    #[arg(long)]
    pub crop: bool,
}

/// `sleeve pa-boxes zoom`.
#[derive(Args, Debug)]
pub struct ZoomArgs {
    /// Proposals CSV.
    #[arg(long)]
    pub proposals: PathBuf,
    /// Covers `DIR/<genre>/*.jpg`.
    #[arg(long)]
    pub covers: PathBuf,
    /// Tiles to enlarge (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub tiles: Vec<usize>,
    /// Folder for `zoom-T.png`.
    #[arg(long)]
    pub out: PathBuf,
    /// Enlargement.
    #[arg(long, default_value_t = 2)]
    pub scale: u32,
    /// Grid spacing in original pixels.
    #[arg(long, default_value_t = 10)]
    pub grid: u32,
}

/// `sleeve pa-boxes apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// `PROPOSALS.csv=REVIEW.txt` pairs (repeatable), applied in order.
    #[arg(long = "batch", value_name = "PROPOSALS=REVIEW", required = true)]
    pub batches: Vec<String>,
    /// `real-boxes.csv` to write.
    #[arg(long)]
    pub out_boxes: PathBuf,
    /// `real-negatives.txt` to write.
    #[arg(long)]
    pub out_negatives: PathBuf,
}

/// `sleeve pa-boxes check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// `real-boxes.csv`.
    #[arg(long)]
    pub boxes: PathBuf,
    /// `real-negatives.txt`.
    #[arg(long)]
    pub negatives: PathBuf,
    /// Covers folder: also check that every listed cover exists.
    #[arg(long)]
    pub covers: Option<PathBuf>,
}

/// Runs a `sleeve pa-boxes` command.
pub fn run(cmd: PaBoxesCmd) -> Result<()> {
    match cmd {
        PaBoxesCmd::Propose(a) => run_propose(a),
        PaBoxesCmd::Sheets(a) => run_sheets(a),
        PaBoxesCmd::Zoom(a) => run_zoom(a),
        PaBoxesCmd::Apply(a) => run_apply(a),
        PaBoxesCmd::Check(a) => run_check(a),
    }
}

fn run_propose(a: ProposeArgs) -> Result<()> {
    let index = index_covers(&a.covers)?;
    let mut names: Vec<String> = match &a.list {
        Some(l) => read_cover_list(l)?,
        None => {
            let mut v: Vec<String> = index.keys().cloned().collect();
            v.sort();
            v
        }
    };
    let mut excluded = HashSet::new();
    for l in &a.exclude {
        excluded.extend(read_cover_list(l)?);
    }
    let splits = a
        .split
        .iter()
        .map(|s| RealSplit::parse(s.trim()))
        .collect::<Result<Vec<_>>>()?;
    names.retain(|n| !excluded.contains(n));
    names.retain(|n| splits.is_empty() || splits.contains(&real_split(n)));
    if !a.genre.is_empty() {
        names.retain(|n| index.get(n).is_some_and(|(_, g)| a.genre.contains(g)));
    }
    if let Some(k) = a.sample {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
        names.shuffle(&mut rng);
        names.truncate(k);
        names.sort();
    }
    if names.is_empty() {
        bail!("no covers left to propose for");
    }
    let covers: Vec<RealCover> = names
        .iter()
        .map(|n| {
            let (path, genre) = index
                .get(n)
                .cloned()
                .ok_or_else(|| anyhow!("cover {n} is not under {}", a.covers.display()))?;
            Ok(RealCover {
                file: n.clone(),
                path,
                genre,
                boxes: vec![],
            })
        })
        .collect::<Result<_>>()?;
    let det = sleeve_detector::onnx::load_any(&a.detector)?;
    let t = std::time::Instant::now();
    let p = propose(
        det.as_ref(),
        &covers,
        a.threshold,
        a.max_boxes,
        a.first_tile,
    )?;
    write_atomic(&a.out, format_proposals(&p).as_bytes())
        .with_context(|| format!("writing {}", a.out.display()))?;
    let boxed = p.iter().filter(|r| r.boxed.is_some()).count();
    println!(
        "{} covers (tiles {}..={}), {boxed} proposals ≥ {} in {:.0} s → {}",
        covers.len(),
        a.first_tile,
        a.first_tile + covers.len() - 1,
        a.threshold,
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

fn read_proposals(path: &std::path::Path) -> Result<Vec<sleeve_detector::review::Proposal>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_proposals(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn run_sheets(a: SheetsArgs) -> Result<()> {
    let p = read_proposals(&a.proposals)?;
    let index = index_covers(&a.covers)?;
    let sheets = review_sheets(&p, &index, a.per_sheet, a.columns, a.cell, a.crop)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for (i, s) in sheets.iter().enumerate() {
        save_png(s, &a.out.join(format!("sheet-{:03}.png", i + 1)))?;
    }
    println!("{} sheets in {}", sheets.len(), a.out.display());
    Ok(())
}

fn run_zoom(a: ZoomArgs) -> Result<()> {
    let p = read_proposals(&a.proposals)?;
    let index = index_covers(&a.covers)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for t in &a.tiles {
        let set: BTreeSet<usize> = [*t].into();
        let Some(file) = files_of_tiles(&p, &set).pop() else {
            bail!("no tile {t} in {}", a.proposals.display());
        };
        let (path, _) = index
            .get(&file)
            .ok_or_else(|| anyhow!("cover {file} is not under {}", a.covers.display()))?;
        let img = sleeve_shared::imageio::open_rgb(path)
            .with_context(|| format!("decoding {}", path.display()))?;
        let boxes: Vec<_> = p
            .iter()
            .filter(|r| r.tile == *t)
            .filter_map(|r| r.boxed.map(|(_, b, _)| b))
            .collect();
        save_png(
            &zoom_view(&img, &boxes, a.scale, a.grid),
            &a.out.join(format!("zoom-{t}.png")),
        )?;
        println!("tile {t}: {file} {}x{}", img.width(), img.height());
    }
    Ok(())
}

fn run_apply(a: ApplyArgs) -> Result<()> {
    let mut boxes = Vec::new();
    let mut negatives: BTreeMap<String, String> = BTreeMap::new();
    let mut decided: BTreeMap<String, String> = BTreeMap::new();
    let mut skipped = 0;
    for b in &a.batches {
        let (p, r) = b
            .split_once('=')
            .ok_or_else(|| anyhow!("--batch '{b}' is not PROPOSALS=REVIEW"))?;
        let props = read_proposals(std::path::Path::new(p))?;
        let review = std::fs::read_to_string(r).with_context(|| format!("reading {r}"))?;
        let res = apply_review(&props, &review).with_context(|| format!("applying {r}"))?;
        let mut mark = |file: &str| -> Result<()> {
            if let Some(prev) = decided.insert(file.to_string(), r.to_string()) {
                bail!("{file} is decided both in {prev} and in {r}");
            }
            Ok(())
        };
        let files: BTreeSet<&str> = res.boxes.iter().map(|b| b.file.as_str()).collect();
        for f in files {
            mark(f)?;
        }
        for (f, g) in &res.negatives {
            mark(f)?;
            negatives.insert(f.clone(), g.clone());
        }
        for f in &res.skipped {
            mark(f)?;
        }
        skipped += res.skipped.len();
        boxes.extend(res.boxes);
    }
    boxes.sort_by(|x, y| x.file.cmp(&y.file));
    let comment = format!(
        "Printed Parental Advisory labels on covers5 covers, boxed by review\n\
         (sleeve pa-boxes; docs/detector.md). Pixels of the original image.\n\
         confirmed: accepted = detector proposal kept, adjusted = proposal corrected,\n\
         drawn = drawn by hand. {} boxes on {} covers.",
        boxes.len(),
        boxes
            .iter()
            .map(|b| b.file.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    );
    write_atomic(&a.out_boxes, format_real_boxes(&boxes, &comment).as_bytes())
        .with_context(|| format!("writing {}", a.out_boxes.display()))?;
    let mut neg = String::from(
        "# covers5 covers checked by eye to carry no printed Parental Advisory label\n\
         # (sleeve pa-boxes review; docs/detector.md). One file name per line; # genre.\n",
    );
    for (f, g) in &negatives {
        neg.push_str(&format!("{f}  # {g}\n"));
    }
    write_atomic(&a.out_negatives, neg.as_bytes())
        .with_context(|| format!("writing {}", a.out_negatives.display()))?;
    println!(
        "{} boxes, {} label-free covers, {skipped} skipped → {}, {}",
        boxes.len(),
        negatives.len(),
        a.out_boxes.display(),
        a.out_negatives.display()
    );
    Ok(())
}

fn run_check(a: CheckArgs) -> Result<()> {
    let boxes = read_real_boxes(&a.boxes)?;
    let negatives = read_cover_list(&a.negatives)?;
    let mut counts: BTreeMap<(RealSplit, bool), usize> = BTreeMap::new();
    let files: BTreeSet<&str> = boxes.iter().map(|b| b.file.as_str()).collect();
    for f in &files {
        *counts.entry((real_split(f), true)).or_default() += 1;
    }
    for f in &negatives {
        if files.contains(f.as_str()) {
            bail!(
                "{f} is both in {} and in {}",
                a.boxes.display(),
                a.negatives.display()
            );
        }
        *counts.entry((real_split(f), false)).or_default() += 1;
    }
    let mut how: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &boxes {
        *how.entry(b.confirmed.as_str()).or_default() += 1;
    }
    if let Some(dir) = &a.covers {
        let index = index_covers(dir)?;
        let set = real_covers(&boxes, &negatives, &index)?;
        let mut genres: BTreeMap<(&str, bool), usize> = BTreeMap::new();
        for c in &set {
            *genres
                .entry((c.genre.as_str(), !c.boxes.is_empty()))
                .or_default() += 1;
        }
        println!("by genre (labelled, label-free):");
        let names: BTreeSet<&str> = genres.keys().map(|k| k.0).collect();
        for g in names {
            println!(
                "  {g:12} {:4} {:4}",
                genres.get(&(g, true)).unwrap_or(&0),
                genres.get(&(g, false)).unwrap_or(&0)
            );
        }
    }
    println!(
        "{} boxes on {} covers ({how:?}), {} label-free covers",
        boxes.len(),
        files.len(),
        negatives.len()
    );
    for s in [RealSplit::Train, RealSplit::Val, RealSplit::Test] {
        println!(
            "  {:5} labelled {:4}  label-free {:4}",
            s.as_str(),
            counts.get(&(s, true)).unwrap_or(&0),
            counts.get(&(s, false)).unwrap_or(&0)
        );
    }
    Ok(())
}

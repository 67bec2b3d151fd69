//! Measures catalogue recognition on synthetic camera scenes (used by
//! `scripts/bench-catalogue.sh`; real covers, so never part of the tests).
//!
//! ```text
//! catalogue_eval --catalogue FILE --negatives LIST [--queries N] [--seed S] [--records OUT.jsonl]
//!                [--candidates K]   (finder outlines matched per scene, best match wins)
//!                [--holds N]        (also N-frame holds with the kiosk's hold rule)
//!                [--hold-records OUT.jsonl] (each hold's per-frame best entry and scores)
//!                [--record-frames N] (matching frames in a row a hold needs; the kiosk's default)
//!                [--finder-size PX] [--finder-edges colour|per-channel] [--finder-min-angle DEG]
//!                [--finder-canny LOW,HIGH]
//!                [--retry-canny LOW,HIGH|off]  (the finder's second pass; default 10,30)
//!                [--align N] [--align-evals N] [--align-side PX] [--align-floor S]
//!                [--align-steps A,B,C]
//!                                   (outline alignment to the N best entries; 0: off)
//!                [--threshold T] [--margin M]   (the operating point alignment and holds use)
//!                [--dump DIR] [--dump-limit N] (misses of the first N scenes as images)
//!                [--same-record CSV] (uncatalogued covers that are the same record as an entry,
//!                                     dropped from the uncatalogued set when their entry is in)
//! catalogue_eval --covers DIR --catalogue-size N ...     (in-process catalogue, for tuning)
//! catalogue_eval --timing-only ...                        (search time and file size only)
//! ```
//!
//! Catalogued covers (entries of the catalogue) and covers *not* in it (`--negatives`,
//! one image path per line) are rendered into kiosk scenes (`sleeve_synth::scenes`, every
//! frame with a sleeve), the sleeve is found and rectified as the kiosk does, and matched.
//! Prints one JSON object: recognition and false matches at the default threshold and
//! margin, a threshold sweep, a threshold calibrated on half of the scenes and checked on the
//! other half, search time for 1k/10k/100k generated entries and the file size at 10k.
//! `with_true_corners` repeats the recognition numbers with each scene rectified from its
//! true sleeve corners instead of the finder's: the descriptor alone, without finder errors.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use image::RgbImage;
use serde_json::json;
use sleeve_edge::catalogue::{DEFAULT_CANDIDATES, MatchConfig, OutlineHit, match_frame};
use sleeve_edge::cli::{EdgesArg, parse_canny, parse_retry};
use sleeve_edge::finder::{EdgeMethod, FinderConfig, SleeveQuad, find_sleeve_candidates, rectify};
use sleeve_shared::RgbView;
use sleeve_shared::catalogue::{
    CELL_DIM, Catalogue, CatalogueEntry, DESCRIPTOR_DIM, Index, describe_quantized,
};
use sleeve_synth::scenes::{SceneConfig, render_hold, render_scene};

struct Opts {
    catalogue: Option<PathBuf>,
    negatives: Option<PathBuf>,
    covers: Option<PathBuf>,
    catalogue_size: usize,
    queries: usize,
    max_negatives: usize,
    seed: u64,
    records: Option<PathBuf>,
    timing_only: bool,
    rect: u32,
    dump: Option<PathBuf>,
    dump_limit: usize,
    hold_records: Option<PathBuf>,
    candidates: usize,
    min_angle: Option<f32>,
    finder_size: Option<u32>,
    finder_edges: Option<EdgeMethod>,
    holds: usize,
    matching: MatchConfig,
    canny: Option<(f32, f32)>,
    same_record: Option<PathBuf>,
}

fn parse() -> anyhow::Result<Opts> {
    let mut o = Opts {
        catalogue: None,
        negatives: None,
        covers: None,
        catalogue_size: 3000,
        queries: 1000,
        max_negatives: 100_000,
        seed: 1,
        records: None,
        timing_only: false,
        rect: 224,
        dump: None,
        dump_limit: 60,
        hold_records: None,
        candidates: DEFAULT_CANDIDATES,
        min_angle: None,
        finder_size: None,
        finder_edges: None,
        holds: 0,
        matching: MatchConfig::default(),
        same_record: None,
        canny: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--catalogue" => o.catalogue = Some(val()?.into()),
            "--negatives" => o.negatives = Some(val()?.into()),
            "--covers" => o.covers = Some(val()?.into()),
            "--catalogue-size" => o.catalogue_size = val()?.parse()?,
            "--queries" => o.queries = val()?.parse()?,
            "--max-negatives" => o.max_negatives = val()?.parse()?,
            "--seed" => o.seed = val()?.parse()?,
            "--records" => o.records = Some(val()?.into()),
            "--rect" => o.rect = val()?.parse()?,
            "--timing-only" => o.timing_only = true,
            "--dump" => o.dump = Some(val()?.into()),
            "--dump-limit" => o.dump_limit = val()?.parse()?,
            "--holds" => o.holds = val()?.parse()?,
            "--hold-records" => o.hold_records = Some(val()?.into()),
            "--record-frames" => o.matching.record_frames = val()?.parse()?,
            "--finder-min-angle" => o.min_angle = Some(val()?.parse()?),
            "--finder-size" => o.finder_size = Some(val()?.parse()?),
            "--finder-canny" => {
                // the same parser and ranges as `sleeve-edge run --finder-canny`
                let v = val()?;
                o.canny =
                    Some(parse_canny(&v).map_err(|e| anyhow::anyhow!("--finder-canny: {e}"))?);
            }
            "--retry-canny" => {
                // the same parser as `sleeve-edge run --match-retry-canny`
                let v = val()?;
                o.matching.retry_canny = parse_retry(&v)
                    .map_err(|e| anyhow::anyhow!("--retry-canny: {e}"))?
                    .0;
            }
            "--finder-edges" => {
                // the same names as `sleeve-edge run --finder-edges`
                let v = val()?;
                let e = <EdgesArg as clap::ValueEnum>::from_str(&v, false)
                    .map_err(|e| anyhow::anyhow!("--finder-edges {v}: {e}"))?;
                o.finder_edges = Some(e.into());
            }
            "--candidates" => o.candidates = val()?.parse::<usize>()?.max(1),
            "--align" => o.matching.align.entries = val()?.parse()?,
            "--align-evals" => o.matching.align.max_evals = val()?.parse()?,
            "--align-side" => o.matching.align.side = val()?.parse()?,
            "--align-floor" => o.matching.align.floor = val()?.parse()?,
            "--align-steps" => {
                let v: Vec<f32> = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
                o.matching.align.steps = v
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("--align-steps takes three fractions"))?;
            }
            "--threshold" => o.matching.threshold = val()?.parse()?,
            "--margin" => o.matching.margin = val()?.parse()?,
            "--same-record" => o.same_record = Some(val()?.into()),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

fn load(path: &Path) -> anyhow::Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .to_rgb8())
}

fn describe(img: &RgbImage) -> anyhow::Result<Vec<i8>> {
    let v = RgbView::new(img.width(), img.height(), img.as_raw())?;
    Ok(describe_quantized(&v)?)
}

fn list_images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                ["jpg", "jpeg", "png", "webp"].contains(&e.to_ascii_lowercase().as_str())
            }) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Deterministic shuffle (xorshift Fisher–Yates).
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// One rendered scene's outcome.
#[derive(Clone, Copy)]
struct Outcome {
    catalogued: bool,
    truth: Option<u32>,
    found: bool,
    best: Option<u32>,
    score: f32,
    second: f32,
    /// Best score before outline alignment.
    unaligned: f32,
    /// The outline came from the finder's second pass.
    retried: bool,
    /// The outline matched, and the sleeve's true corners (for `--records`).
    quad: Option<[(f32, f32); 4]>,
    corners: Option<[(f32, f32); 4]>,
}

fn main() -> anyhow::Result<()> {
    let o = parse()?;
    let t0 = Instant::now();
    let mut report = json!({});
    if !o.timing_only {
        let (catalogue, sources, negatives) = setup(&o)?;
        let index = catalogue.index();
        let mut outcomes = Vec::new();
        let mut oracles = Vec::new();
        let mut aligned_scenes = 0usize;
        // (finder + matching time in ms, aligned) per scene
        let mut match_ms: Vec<(f64, bool, bool)> = Vec::new();
        let mut finder_ms: Vec<f64> = Vec::new();
        let cfg = SceneConfig {
            no_sleeve_prob: 0.0,
            ..SceneConfig::default()
        };
        let mut finder = FinderConfig::default();
        if let Some(a) = o.min_angle {
            finder.min_corner_angle = a;
        }
        if let Some(s) = o.finder_size {
            finder.work_size = s;
        }
        if let Some(e) = o.finder_edges {
            finder.edges = e;
        }
        if let Some((l, h)) = o.canny {
            finder.canny_low = l;
            finder.canny_high = h;
        }
        let mut order: Vec<usize> = (0..sources.len()).collect();
        shuffle(&mut order, o.seed);
        order.truncate(o.queries);
        let jobs: Vec<(PathBuf, Option<u32>)> = order
            .iter()
            .map(|&i| (sources[i].clone(), Some(i as u32)))
            .chain(
                negatives
                    .iter()
                    .take(o.max_negatives)
                    .map(|p| (p.clone(), None)),
            )
            .collect();
        eprintln!(
            "{} catalogued + {} other scenes",
            order.len(),
            jobs.len() - order.len()
        );
        for (k, (path, truth)) in jobs.iter().enumerate() {
            let cover = load(path)?;
            let scene = render_scene(
                Some(&cover),
                None,
                &cfg,
                o.seed.wrapping_mul(7919) + k as u64,
            );
            let mut out = Outcome {
                catalogued: truth.is_some(),
                truth: *truth,
                found: false,
                best: None,
                score: -1.0,
                second: -1.0,
                unaligned: -1.0,
                retried: false,
                quad: None,
                corners: scene.corners,
            };
            let mut oracle = out;
            let t_match = Instant::now();
            let (matched, find_ms) = best_hit(&scene.image, &index, &finder, &o);
            finder_ms.push(find_ms);
            match_ms.push((
                t_match.elapsed().as_secs_f64() * 1e3,
                matched.is_some_and(|m| m.aligned),
                // the second pass ran: no match from the first
                o.matching.retry_canny.is_some()
                    && matched.is_none_or(|m| m.retried || !o.matching.accepts(&m.hit)),
            ));
            if let Some(OutlineHit {
                hit,
                quad: q,
                aligned,
                unaligned,
                retried,
            }) = matched
            {
                out.unaligned = unaligned;
                out.retried = retried;
                aligned_scenes += usize::from(aligned);
                if let Some(d) = &o.dump
                    && truth.is_some()
                    && Some(hit.entry) != *truth
                    && k < o.dump_limit
                {
                    std::fs::create_dir_all(d)?;
                    if let Some(r) = rectify(&scene.image, &q, o.rect) {
                        r.save(d.join(format!("{k}_rect.png")))?;
                    }
                    scene.image.save(d.join(format!("{k}_scene.png")))?;
                    std::fs::write(
                        d.join(format!("{k}_quad.json")),
                        json!({"found": q, "truth": scene.corners,
                            "truth_score": scene.corners.map(|c| sleeve_edge::finder::score_outline(&scene.image, &finder, &c)),
                            "candidates": find_sleeve_candidates(&scene.image, &finder, 16)}).to_string(),
                    )?;
                }
                out.found = true;
                out.quad = Some(q.corners);
                out.best = Some(hit.entry);
                out.score = hit.score;
                out.second = hit.second;
            }
            // The same scene rectified with the true corners: the descriptor alone.
            if let Some(corners) = scene.corners
                && let Some(r) = rectify(
                    &scene.image,
                    &SleeveQuad {
                        corners,
                        score: 1.0,
                    },
                    o.rect,
                )
                && let Some(hit) = index.search(&describe(&r)?)
            {
                oracle.found = true;
                oracle.best = Some(hit.entry);
                oracle.score = hit.score;
                oracle.second = hit.second;
            }
            oracles.push(oracle);
            outcomes.push(out);
            if k % 200 == 199 {
                eprintln!("{} scenes, {:.0} s", k + 1, t0.elapsed().as_secs_f64());
            }
        }
        if let Some(p) = &o.records {
            let lines: Vec<String> = outcomes
                .iter()
                .zip(&jobs)
                .zip(&oracles)
                .map(|((x, (query, _)), oracle)| {
                    let entry = x.best.and_then(|e| catalogue.entries.get(e as usize));
                    json!({"catalogued": x.catalogued, "found": x.found, "correct": x.best.is_some() && x.best == x.truth,
                        "score": x.score, "second": x.second, "unaligned": x.unaligned, "retried": x.retried,
                        "quad": x.quad, "corners": x.corners, "true_corners_score": oracle.score,
                        "true_corners_entry": oracle.best, "truth": x.truth, "query": query, "entry": entry.map(|e| &e.source)})
                    .to_string()
                })
                .collect();
            std::fs::write(p, lines.join("\n") + "\n")?;
        }
        report = evaluate(&outcomes, catalogue.entries.len(), &o.matching);
        report["aligned_scenes"] = json!(aligned_scenes);
        report["retried_scenes"] = json!(outcomes.iter().filter(|x| x.retried).count());
        report["retry_canny"] = json!(o.matching.retry_canny);
        report["find_ms"] = percentiles(finder_ms);
        report["find_and_match_ms"] = json!({
            "all": percentiles(match_ms.iter().map(|m| m.0).collect()),
            "aligned": percentiles(match_ms.iter().filter(|m| m.1).map(|m| m.0).collect()),
            "second_pass": percentiles(match_ms.iter().filter(|m| m.2).map(|m| m.0).collect()),
        });
        report["align"] = json!({"entries": o.matching.align.entries,
            "max_evals": o.matching.align.max_evals, "side": o.matching.align.side,
            "floor": o.matching.align.floor, "steps": o.matching.align.steps});
        let mut true_corners = evaluate(&oracles, catalogue.entries.len(), &o.matching);
        if let Some(m) = true_corners.as_object_mut() {
            m.remove("sweep");
        }
        report["with_true_corners"] = true_corners;
        if o.holds > 0 {
            report["holds"] = hold_eval(&o, &index, &finder, &jobs, &cfg)?;
        }
    }
    report["search"] = timing()?;
    report["wall_s"] = json!(t0.elapsed().as_secs_f64());
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// As the kiosk does ([`match_frame`]): each candidate outline rectified and matched, the
/// best score wins, aligned when it is not a match at the operating point, and the finder's
/// second pass when still none is.
fn best_hit(
    image: &RgbImage,
    index: &Index,
    finder: &FinderConfig,
    o: &Opts,
) -> (Option<OutlineHit>, f64) {
    let t = Instant::now();
    let outlines = find_sleeve_candidates(image, finder, o.candidates);
    let find_ms = t.elapsed().as_secs_f64() * 1e3;
    (
        match_frame(index, image, finder, &outlines, None, o.rect, &o.matching),
        find_ms,
    )
}

/// The kiosk's answer per hold: `o.holds` frames of one held sleeve (`render_hold`), each
/// matched at the default threshold and margin; a record is shown once the same entry
/// matched the kiosk's `record_frames` frames in a row. Two worker threads.
fn hold_eval(
    o: &Opts,
    index: &Index,
    finder: &FinderConfig,
    jobs: &[(PathBuf, Option<u32>)],
    cfg: &SceneConfig,
) -> anyhow::Result<serde_json::Value> {
    let need = o.matching.record_frames.max(1);
    let half = jobs.len().div_ceil(2).max(1);
    type Hold = (Option<u32>, Option<u32>, Vec<serde_json::Value>);
    let shown: Vec<Hold> = std::thread::scope(|s| {
        let workers: Vec<_> = jobs
            .chunks(half)
            .enumerate()
            .map(|(c, chunk)| {
                s.spawn(move || -> anyhow::Result<Vec<Hold>> {
                    let mut out = Vec::with_capacity(chunk.len());
                    for (i, (path, truth)) in chunk.iter().enumerate() {
                        let seed = o.seed.wrapping_mul(104_729) + (c * half + i) as u64;
                        let frames = render_hold(Some(&load(path)?), None, cfg, seed, o.holds);
                        let (mut run, mut shown) = (None::<(u32, u32)>, None);
                        let mut seen = Vec::new();
                        for f in &frames {
                            let hit = best_hit(&f.image, index, finder, o).0.map(|h| h.hit);
                            seen.push(json!(hit.map(|h| (h.entry, h.score, h.second))));
                            let m = hit.filter(|h| o.matching.accepts(h)).map(|h| h.entry);
                            run = match (m, run) {
                                (Some(e), Some((p, n))) if e == p => Some((e, n + 1)),
                                (Some(e), _) => Some((e, 1)),
                                (None, _) => None,
                            };
                            if shown.is_none()
                                && let Some((e, n)) = run
                                && n >= need
                            {
                                shown = Some(e);
                            }
                        }
                        out.push((*truth, shown, seen));
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a hold worker panicked"))?
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect())
    })?;
    if let Some(p) = &o.hold_records {
        let lines: Vec<String> = shown
            .iter()
            .map(|(t, s, seen)| json!({"truth": t, "shown": s, "frames": seen}).to_string())
            .collect();
        std::fs::write(p, lines.join("\n") + "\n")?;
    }
    let shown: Vec<(Option<u32>, Option<u32>)> =
        shown.into_iter().map(|(t, s, _)| (t, s)).collect();
    let cat: Vec<_> = shown.iter().filter(|(t, _)| t.is_some()).collect();
    let neg: Vec<_> = shown.iter().filter(|(t, _)| t.is_none()).collect();
    let share = |n: usize, of: usize| n as f64 / of.max(1) as f64;
    Ok(json!({
        "frames_per_hold": o.holds,
        "record_frames": need,
        "threshold": o.matching.threshold,
        "margin": o.matching.margin,
        "catalogued_holds": cat.len(),
        "uncatalogued_holds": neg.len(),
        "recognised": share(cat.iter().filter(|(t, s)| s.is_some() && s == t).count(), cat.len()),
        "wrong_record": share(cat.iter().filter(|(t, s)| s.is_some() && s != t).count(), cat.len()),
        "false_match": share(neg.iter().filter(|(_, s)| s.is_some()).count(), neg.len()),
    }))
}

/// The last two components of a path (`genre/file.jpg` in covers5), for comparing lists
/// made from differently rooted paths.
fn tail2(p: &Path) -> String {
    let parts: Vec<_> = p.components().rev().take(2).collect();
    parts
        .iter()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `negatives` without the covers a same-record list (CSV: uncatalogued, catalogued, ...;
/// `#` comments and a header) pairs with a catalogued cover that is in `sources`.
fn drop_same_records(
    list: &Path,
    sources: &[PathBuf],
    negatives: Vec<PathBuf>,
) -> anyhow::Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let catalogued: std::collections::HashSet<String> = sources.iter().map(|p| tail2(p)).collect();
    let mut same = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("uncatalogued,") {
            continue;
        }
        let mut cols = line.split(',');
        let (Some(a), Some(b)) = (cols.next(), cols.next()) else {
            bail!(
                "{}:{}: expected `uncatalogued,catalogued`",
                list.display(),
                n + 1
            );
        };
        if catalogued.contains(b.trim()) {
            same.insert(a.trim().to_string());
        }
    }
    let before = negatives.len();
    let kept: Vec<PathBuf> = negatives
        .into_iter()
        .filter(|p| !same.contains(&tail2(p)))
        .collect();
    eprintln!(
        "{} uncatalogued covers dropped as the same record as an entry ({})",
        before - kept.len(),
        list.display()
    );
    Ok(kept)
}

/// The catalogue, each entry's cover path (vector order) and the covers not in it.
fn setup(o: &Opts) -> anyhow::Result<(Catalogue, Vec<PathBuf>, Vec<PathBuf>)> {
    if let Some(path) = &o.catalogue {
        let c = Catalogue::read(path).with_context(|| format!("reading {}", path.display()))?;
        let sources: Vec<PathBuf> = c.entries.iter().map(|e| PathBuf::from(&e.source)).collect();
        let negatives = match &o.negatives {
            Some(list) => std::fs::read_to_string(list)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(PathBuf::from)
                .collect(),
            None => Vec::new(),
        };
        let negatives = match &o.same_record {
            Some(list) => drop_same_records(list, &sources, negatives)?,
            None => negatives,
        };
        return Ok((c, sources, negatives));
    }
    let Some(dir) = &o.covers else {
        bail!("give --catalogue FILE or --covers DIR");
    };
    let mut all = list_images(dir)?;
    shuffle(&mut all, 12345);
    let n = o.catalogue_size.min(all.len());
    let negatives = all.split_off(n);
    let mut c = Catalogue::default();
    for (i, p) in all.iter().enumerate() {
        let v = describe(&load(p)?)?;
        c.push(entry(i as u64, &p.display().to_string()), &[v])?;
    }
    Ok((c, all, negatives))
}

fn entry(id: u64, source: &str) -> CatalogueEntry {
    CatalogueEntry {
        id,
        artist: format!("Artist number {id}"),
        title: format!("A fairly typical album title {id}"),
        bin: "Rock / Indie".into(),
        extra: vec![
            ("price".into(), "14.99".into()),
            ("sku".into(), format!("SKU-{id:07}")),
        ],
        source: source.into(),
        image_sha256: "ab".repeat(32),
        phash: "0123456789abcdef".into(),
        views: 1,
    }
}

fn rate(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Recognition and false matches for one operating point over a subset.
fn point(xs: &[&Outcome], t: f32, m: f32) -> (f64, f64, f64) {
    let accepted = |x: &Outcome| x.found && x.score >= t && x.score - x.second >= m;
    let cat: Vec<_> = xs.iter().filter(|x| x.catalogued).collect();
    let neg: Vec<_> = xs.iter().filter(|x| !x.catalogued).collect();
    let right = cat
        .iter()
        .filter(|x| accepted(x) && x.best == x.truth)
        .count();
    let wrong = cat
        .iter()
        .filter(|x| accepted(x) && x.best != x.truth)
        .count();
    let false_neg = neg.iter().filter(|x| accepted(x)).count();
    (
        rate(right, cat.len()),
        rate(wrong, cat.len()),
        rate(false_neg, neg.len()),
    )
}

fn evaluate(out: &[Outcome], entries: usize, at: &MatchConfig) -> serde_json::Value {
    let (t0, m0) = (at.threshold, at.margin);
    let all: Vec<&Outcome> = out.iter().collect();
    let cat: Vec<_> = all.iter().filter(|x| x.catalogued).copied().collect();
    let neg: Vec<_> = all.iter().filter(|x| !x.catalogued).copied().collect();
    let found_cat: Vec<_> = cat.iter().filter(|x| x.found).copied().collect();
    let retrieval = rate(
        found_cat.iter().filter(|x| x.best == x.truth).count(),
        found_cat.len(),
    );
    let (top1, wrong, fm) = point(&all, t0, m0);
    let (top1_found, _, _) = point(&found_cat, t0, m0);
    let mut sweep = Vec::new();
    for m in [0.0f32, 0.02, 0.05, 0.1] {
        for k in 0..=40 {
            let t = 0.55 + 0.01 * k as f32;
            let (a, w, f) = point(&all, t, m);
            sweep.push(
                json!({"threshold": t, "margin": m, "top1": a, "wrong": w, "false_match": f}),
            );
        }
    }
    // Calibrate on the even scenes (smallest threshold with false matches <= 1 %, per
    // margin, best recognition), check on the odd ones.
    let even: Vec<&Outcome> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, x)| *x)
        .collect();
    let odd: Vec<&Outcome> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, x)| *x)
        .collect();
    let mut best: Option<(f32, f32, f64)> = None;
    for m in [0.0f32, 0.02, 0.05, 0.1] {
        for k in 0..=90 {
            let t = 0.50 + 0.005 * k as f32;
            let (a, _, f) = point(&even, t, m);
            if f <= 0.01 && best.is_none_or(|b| a > b.2) {
                best = Some((t, m, a));
            }
        }
    }
    let calibrated = best.map(|(t, m, a)| {
        let (ta, tw, tf) = point(&odd, t, m);
        json!({"threshold": t, "margin": m, "calibration_top1": a,
            "held_out": {"top1": ta, "wrong": tw, "false_match": tf}})
    });
    json!({
        "catalogue_entries": entries,
        "catalogued_scenes": cat.len(),
        "uncatalogued_scenes": neg.len(),
        "sleeve_found": {"catalogued": rate(found_cat.len(), cat.len()),
            "uncatalogued": rate(neg.iter().filter(|x| x.found).count(), neg.len())},
        "retrieval_top1_when_found": retrieval,
        "default_operating_point": {
            "threshold": t0, "margin": m0,
            "top1": top1, "top1_when_found": top1_found, "wrong_match": wrong, "false_match": fm,
        },
        "calibrated": calibrated,
        "sweep": sweep,
    })
}

/// p50 / p95 / max of a sample (null when empty).
fn percentiles(mut v: Vec<f64>) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    json!({"n": v.len(), "p50": at(0.5), "p95": at(0.95), "max": at(1.0)})
}

/// Search time per query over generated entries, and the file size at 10k.
fn timing() -> anyhow::Result<serde_json::Value> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 56) as u8 as i8
    };
    let mut out = serde_json::Map::new();
    for n in [1_000usize, 10_000, 100_000] {
        let vectors: Vec<i8> = (0..n * DESCRIPTOR_DIM).map(|_| rnd()).collect();
        let index = Index::new(DESCRIPTOR_DIM, CELL_DIM, vectors, (0..n as u32).collect())?;
        let queries: Vec<Vec<i8>> = (0..20)
            .map(|_| (0..DESCRIPTOR_DIM).map(|_| rnd()).collect())
            .collect();
        let mut times = Vec::new();
        for q in queries
            .iter()
            .cycle()
            .take(if n > 10_000 { 40 } else { 200 })
        {
            let t = Instant::now();
            std::hint::black_box(index.search(q));
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        out.insert(format!("{n}"), json!({"p50_ms": p(0.5), "p95_ms": p(0.95)}));
    }
    let mut c = Catalogue::default();
    for i in 0..10_000u64 {
        let v: Vec<i8> = (0..DESCRIPTOR_DIM).map(|_| rnd()).collect();
        c.push(entry(i, &format!("covers/bin-{}/{i:07}.jpg", i % 40)), &[v])?;
    }
    out.insert("file_bytes_10k".into(), json!(c.to_bytes().len()));
    Ok(serde_json::Value::Object(out))
}

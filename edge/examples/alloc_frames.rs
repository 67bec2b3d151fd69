//! Counts heap allocations per analysed frame, stage by stage (used by
//! `scripts/bench-edge.sh`; a measurement, so never part of the tests).
//!
//! ```text
//! alloc_frames [BUNDLE_DIR] [FRAMES] [WARMUP]
//! ```
//!
//! Synthetic kiosk scenes are held as MJPEG (as `sleeve-edge bench` does), then each frame
//! runs through the kiosk's stages with dhat's counting allocator installed: JPEG decoding,
//! the sleeve finder, rectification, the models (`Engine::analyze`: preprocessing, inference,
//! box decoding) and the whole `Pipeline::process` (finder + rectify + models + decision).
//! Prints one JSON object with the allocations (blocks) and bytes per frame of each stage,
//! after `WARMUP` frames.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;
use sleeve_edge::bench::as_mjpeg;
use sleeve_edge::finder::{FinderConfig, find_sleeve_candidates, rectify};
use sleeve_edge::source::FrameSource;
use sleeve_edge::source::synthetic::{SceneCovers, SyntheticScenes};
use sleeve_edge::{Bundle, Engine, Pipeline, PipelineConfig};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Blocks and bytes allocated while `f` runs.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    let before = dhat::HeapStats::get();
    let out = f();
    let after = dhat::HeapStats::get();
    (
        out,
        after.total_blocks - before.total_blocks,
        after.total_bytes - before.total_bytes,
    )
}

#[derive(Default)]
struct Tally {
    blocks: Vec<u64>,
    bytes: Vec<u64>,
}

impl Tally {
    fn push(&mut self, blocks: u64, bytes: u64) {
        self.blocks.push(blocks);
        self.bytes.push(bytes);
    }

    fn json(&self) -> serde_json::Value {
        let med = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        let n = self.blocks.len().max(1) as f64;
        json!({
            "allocations_median": med(&self.blocks),
            "allocations_mean": self.blocks.iter().sum::<u64>() as f64 / n,
            "allocations_max": self.blocks.iter().max().copied().unwrap_or(0),
            "bytes_median": med(&self.bytes),
            "bytes_mean": self.bytes.iter().sum::<u64>() as f64 / n,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bundle_dir = PathBuf::from(args.first().map_or("models/default", String::as_str));
    let frames: usize = args.get(1).map_or(Ok(20), |s| s.parse())?;
    let warmup: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let _profiler = dhat::Profiler::builder().testing().build();

    let bundle = Bundle::load(&bundle_dir)
        .with_context(|| format!("loading bundle {}", bundle_dir.display()))?;
    let engine = Engine::load(&bundle, 1).context("building the inference plans")?;
    let rect_size = engine.classifier().preprocess_config().input_size;
    let mut source = SyntheticScenes::new(
        sleeve_synth::scenes::SceneConfig::default(),
        SceneCovers::Procedural,
        7,
        8,
        Some((warmup + frames) as u64),
    );
    let mut held = Vec::new();
    while let Some(f) = source.next_frame()? {
        held.push(as_mjpeg(f)?);
    }
    let finder = FinderConfig::default();
    let mut pipeline = Pipeline::new(engine, PipelineConfig::default());
    let mut decode = Tally::default();
    let mut find = Tally::default();
    let mut rect = Tally::default();
    let mut models = Tally::default();
    let mut whole = Tally::default();
    let mut with_sleeve = 0;
    for (i, m) in held.iter().enumerate() {
        let (frame, b, y) = counted(|| m.decode());
        let frame = frame?;
        let (quads, fb, fy) = counted(|| find_sleeve_candidates(&frame.image, &finder, 1));
        let rectified = quads
            .first()
            .map(|q| counted(|| rectify(&frame.image, q, rect_size)));
        let analysed = match &rectified {
            Some((Some(img), ..)) => Some(counted(|| pipeline.engine().analyze(img))),
            _ => None,
        };
        let (report, pb, py) = counted(|| pipeline.process(&frame));
        report?;
        if i < warmup {
            continue;
        }
        decode.push(b, y);
        find.push(fb, fy);
        if let (Some((_, rb, ry)), Some((a, ab, ay))) = (&rectified, analysed) {
            a?;
            rect.push(*rb, *ry);
            models.push(ab, ay);
            with_sleeve += 1;
        }
        whole.push(pb, py);
    }
    let report = json!({
        "bundle": bundle_dir,
        "frames": frames,
        "frames_with_sleeve": with_sleeve,
        "warmup": warmup,
        "counter": "dhat (blocks = heap allocations, reallocations included)",
        "per_frame": {
            "decode_mjpeg": decode.json(),
            "find_sleeve": find.json(),
            "rectify": rect.json(),
            "models": models.json(),
            "pipeline_process": whole.json(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

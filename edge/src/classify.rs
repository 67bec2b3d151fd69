//! One cover image to one JSON answer: the code path of `sleeve-edge classify`, shared by
//! the command line and the local HTTP API (`POST /api/classify`), so both answer alike.

use anyhow::Context;
use image::RgbImage;
use serde_json::{Value, json};

use crate::catalogue::Recogniser;
use crate::engine::Engine;
use crate::finder::{FinderConfig, find_sleeve_candidates, rectify};
use crate::output::analysis_json;

/// How to classify one image.
#[derive(Clone, Debug)]
pub struct ClassifyOptions {
    /// How many genres to list under `"top"`.
    pub top_k: usize,
    /// Find and rectify the sleeve first instead of taking the whole image as the cover.
    pub find: bool,
    /// Views averaged (1 to [`crate::views::MAX_VIEWS`]).
    pub views: u32,
    /// The sleeve finder's settings when `find`.
    pub finder: FinderConfig,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        Self {
            top_k: 3,
            find: false,
            views: 1,
            finder: FinderConfig::default(),
        }
    }
}

/// The side a found sleeve is rectified to: the larger of the two models' inputs.
pub fn rectified_side(engine: &Engine) -> u32 {
    engine.classifier().preprocess_config().input_size.max(
        engine
            .detector()
            .map(|d| d.preprocess_config().input_size)
            .unwrap_or(0),
    )
}

/// Classifies one decoded image: top-k genres, PA flag, score and boxes, the sleeve
/// outline when `find`, and the catalogue record when a recogniser is given. The caller
/// adds `"image"` (what the image was) and `"latency_ms"`.
pub fn classify_image(
    engine: &Engine,
    recogniser: Option<&Recogniser>,
    img: RgbImage,
    opts: &ClassifyOptions,
) -> anyhow::Result<Value> {
    // the finder's candidate outlines, best first, for the catalogue
    let mut outlines = Vec::new();
    let (cover, sleeve, frame) = if opts.find {
        let wanted = recogniser.map_or(1, |r| r.candidates());
        outlines = find_sleeve_candidates(&img, &opts.finder, wanted);
        let q = *outlines.first().context("no sleeve found in the image")?;
        (
            rectify(&img, &q, rectified_side(engine)).context("degenerate sleeve outline")?,
            Some(q),
            Some(img),
        )
    } else {
        (img, None, None)
    };
    let analysis = crate::views::analyze_views(engine, &cover, opts.views)?;
    let labels = engine.labels();
    let mut v = analysis_json(&analysis, labels, engine.pa_threshold());
    v["top"] = json!(
        analysis
            .top_k(opts.top_k)
            .top
            .iter()
            .map(|g| json!({
                "genre": labels.name(g.index as usize).unwrap_or("?"), "p": g.score,
            }))
            .collect::<Vec<_>>()
    );
    v["sleeve"] = json!(sleeve);
    if let Some(r) = recogniser {
        let rec = match &frame {
            Some(f) => r.recognise_frame(f, &opts.finder, &outlines, Some(&cover), cover.width()),
            None => r.recognise(&cover),
        };
        v["record"] = json!(rec.record);
        v["record_score"] = json!(rec.best_score);
    }
    Ok(v)
}

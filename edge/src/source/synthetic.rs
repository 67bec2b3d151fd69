//! Synthetic kiosk scenes from `sleeve-synth` as a frame source (demos, tests, benches):
//! every frame comes with its ground truth (sleeve corners, genre, Parental Advisory).

use std::time::Instant;

use image::RgbImage;
use sleeve_shared::labels::COVERS5;
use sleeve_synth::covers::styled_cover;
use sleeve_synth::scenes::{SceneConfig, render_scene};

use crate::engine::ms;
use crate::error::Result;
use crate::source::{Frame, FrameSource, FrameTruth};

/// Which covers the scenes show.
#[derive(Clone, Debug)]
pub enum SceneCovers {
    /// Procedural covers in the five development genres' styles, cycling.
    Procedural,
    /// Given covers with their genre and PA truth, cycling; each is held for
    /// `frames_per_cover` frames so the kiosk can settle.
    Fixed(Vec<(RgbImage, Option<String>, bool)>),
}

/// Rendered scenes, `frames_per_cover` frames (each re-rendered with a new seed: a sleeve
/// moving slightly in the hand) per cover.
pub struct SyntheticScenes {
    cfg: SceneConfig,
    covers: SceneCovers,
    seed: u64,
    frames_per_cover: u64,
    limit: Option<u64>,
    next: u64,
}

impl SyntheticScenes {
    /// A scene stream; `limit` frames or endless.
    pub fn new(
        cfg: SceneConfig,
        covers: SceneCovers,
        seed: u64,
        frames_per_cover: u64,
        limit: Option<u64>,
    ) -> Self {
        Self {
            cfg,
            covers,
            seed,
            frames_per_cover: frames_per_cover.max(1),
            limit,
            next: 0,
        }
    }
}

impl FrameSource for SyntheticScenes {
    fn describe(&self) -> String {
        format!("synthetic scenes (seed {})", self.seed)
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.limit.is_some_and(|l| self.next >= l) {
            return Ok(None);
        }
        let i = self.next;
        let item = i / self.frames_per_cover;
        let seed = self.seed.wrapping_mul(1_000_003).wrapping_add(i);
        let t = Instant::now();
        let (scene, pa_truth) = match &self.covers {
            SceneCovers::Procedural => {
                let genre = COVERS5[(item % COVERS5.len() as u64) as usize];
                let cover = styled_cover(genre, self.seed.wrapping_add(item), 320);
                let s = render_scene(Some(&cover), Some(genre), &self.cfg, seed);
                let pa = !s.pa_boxes.is_empty();
                (s, pa)
            }
            SceneCovers::Fixed(list) if !list.is_empty() => {
                let (cover, genre, pa) = &list[(item % list.len() as u64) as usize];
                let s = render_scene(Some(cover), genre.as_deref(), &self.cfg, seed);
                let pa = *pa || !s.pa_boxes.is_empty();
                (s, pa)
            }
            SceneCovers::Fixed(_) => return Ok(None),
        };
        self.next += 1;
        let truth = FrameTruth {
            corners: scene.corners,
            pa: scene.corners.is_some() && pa_truth,
            genre: scene.corners.and(scene.genre.clone()),
        };
        Ok(Some(Frame {
            image: scene.image,
            index: i,
            name: format!("scene {i}"),
            decode_ms: ms(t),
            truth: Some(truth),
        }))
    }
}

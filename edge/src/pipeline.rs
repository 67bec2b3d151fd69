//! One frame through the kiosk: find the sleeve, rectify, analyse, stabilise.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use crate::catalogue::{DEFAULT_RECORD_FRAMES, Recogniser, RecordEvent, RecordHold, RecordMatch};
use crate::engine::{Analysis, Engine, ms};
use crate::error::Result;
use crate::finder::{FinderConfig, SleeveQuad, find_sleeve_candidates, rectify};
use crate::reuse::{Reuse, ReuseConfig, Step, thumbnail};
use crate::source::{Frame, FrameTruth};
use crate::stabilize::{Event, Observation, Stabilizer, StabilizerConfig, StableDecision};

/// Pipeline settings.
#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    /// Sleeve finder tuning.
    pub finder: FinderConfig,
    /// Decision smoothing; its `abstain_threshold` and PA thresholds are taken from the
    /// bundle unless [`PipelineConfig::abstain_override`] is set.
    pub stabilizer: StabilizerConfig,
    /// Abstain threshold that replaces the bundle's.
    pub abstain_override: Option<f32>,
    /// Treat every frame as the whole cover (no sleeve finding), e.g. for scans.
    pub whole_frame: bool,
    /// Reuse the last analysis while the sleeve looks the same; `None` runs the models on
    /// every frame (what `bench` measures).
    pub reuse: Option<ReuseConfig>,
}

/// Per-stage wall-clock times of one frame, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StageTimes {
    /// Reading and decoding the frame (from the source).
    pub decode: f64,
    /// Finding and rectifying the sleeve.
    pub find: f64,
    /// Preprocessing.
    pub preprocess: f64,
    /// Classifier.
    pub classify: f64,
    /// Detector.
    pub detect: f64,
    /// Catalogue descriptor and search (0 without a catalogue).
    pub recognise: f64,
    /// Everything, decode included.
    pub total: f64,
}

/// What happened to one frame.
#[derive(Clone, Debug, Serialize)]
pub struct FrameReport {
    /// Frame index.
    pub index: u64,
    /// Frame origin.
    pub name: String,
    /// The sleeve, if found.
    pub sleeve: Option<SleeveQuad>,
    /// Model results for the rectified sleeve.
    pub analysis: Option<Analysis>,
    /// True when `analysis` was reused from an earlier frame showing the same sleeve.
    pub reused: bool,
    /// A change of the shown answer, if this frame caused one.
    pub event: Option<Event>,
    /// The answer on screen after this frame.
    pub stable: Option<StableDecision>,
    /// Stage timings.
    pub times: StageTimes,
    /// Ground truth, when the source knows it.
    pub truth: Option<FrameTruth>,
    /// The catalogued record this frame's sleeve matched, if any.
    pub record: Option<RecordMatch>,
    /// Best catalogue similarity of this frame's sleeve (match or not).
    pub record_score: Option<f32>,
    /// A change of the shown record, if this frame caused one.
    pub record_event: Option<RecordEvent>,
    /// The record on screen after this frame.
    pub shown_record: Option<RecordMatch>,
    /// The rectified sleeve (not serialised).
    #[serde(skip)]
    pub rectified: Option<RgbImage>,
}

/// Engine + finder + stabilizer.
pub struct Pipeline {
    engine: Engine,
    cfg: PipelineConfig,
    stabilizer: Stabilizer,
    rect_size: u32,
    reuse: Option<Reuse<Analysis>>,
    recogniser: Option<Recogniser>,
    hold: RecordHold,
}

impl Pipeline {
    /// A pipeline over loaded models.
    pub fn new(engine: Engine, mut cfg: PipelineConfig) -> Self {
        cfg.stabilizer.abstain_threshold =
            cfg.abstain_override.unwrap_or(engine.abstain_threshold());
        let pa = engine.pa_threshold();
        cfg.stabilizer.pa_on = pa;
        cfg.stabilizer.pa_off = cfg.stabilizer.pa_off.min(pa * 0.7);
        let rect_size = engine.classifier().preprocess_config().input_size.max(
            engine
                .detector()
                .map(|d| d.preprocess_config().input_size)
                .unwrap_or(0),
        );
        let stabilizer = Stabilizer::new(cfg.stabilizer.clone(), engine.labels().clone());
        let reuse = cfg.reuse.map(Reuse::new);
        let hold = RecordHold::new(DEFAULT_RECORD_FRAMES, cfg.stabilizer.clear_frames);
        Self {
            engine,
            cfg,
            stabilizer,
            rect_size,
            reuse,
            recogniser: None,
            hold,
        }
    }

    /// Recognises catalogued records with `recogniser` (see [`crate::catalogue`]).
    pub fn with_recogniser(mut self, recogniser: Option<Recogniser>) -> Self {
        if let Some(r) = &recogniser {
            self.hold = RecordHold::new(r.config().record_frames, self.cfg.stabilizer.clear_frames);
        }
        self.recogniser = recogniser;
        self
    }

    /// The catalogue matcher, if any.
    pub fn recogniser(&self) -> Option<&Recogniser> {
        self.recogniser.as_ref()
    }

    /// The models.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The settings in effect.
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// The answer on screen.
    pub fn current(&self) -> Option<&StableDecision> {
        self.stabilizer.current()
    }

    /// Runs one frame.
    pub fn process(&mut self, frame: &Frame) -> Result<FrameReport> {
        let t0 = Instant::now();
        let mut times = StageTimes {
            decode: frame.decode_ms,
            ..StageTimes::default()
        };
        if let Some(r) = &mut self.recogniser {
            r.tick();
        }
        let t = Instant::now();
        // The finder's candidate outlines, best first (the runner-ups are only worth
        // rectifying for the catalogue).
        let mut outlines: Vec<SleeveQuad> = Vec::new();
        let (sleeve, rectified) = if self.cfg.whole_frame {
            let (w, h) = (frame.image.width() as f32, frame.image.height() as f32);
            let quad = SleeveQuad {
                corners: [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)],
                score: 1.0,
            };
            (Some(quad), Some(frame.image.clone()))
        } else {
            let wanted = self.recogniser.as_ref().map_or(1, |r| r.candidates());
            outlines = find_sleeve_candidates(&frame.image, &self.cfg.finder, wanted);
            match outlines.first().copied() {
                Some(q) => (Some(q), rectify(&frame.image, &q, self.rect_size)),
                None => (None, None),
            }
        };
        times.find = ms(t);
        let (analysis, reused) = match &rectified {
            Some(img) => {
                let (a, reused) = self.analyze_or_reuse(img)?;
                (Some(a), reused)
            }
            None => {
                if let Some(r) = &mut self.reuse {
                    r.clear();
                }
                (None, false)
            }
        };
        if let Some(a) = analysis.as_ref().filter(|_| !reused) {
            times.preprocess = a.times.preprocess;
            times.classify = a.times.classify;
            times.detect = a.times.detect;
        }
        let event = self
            .stabilizer
            .update(analysis.as_ref().map(|a| Observation {
                probs: &a.probs,
                pa_score: a.pa_score,
            }));
        let (recognition, record_event) = match &self.recogniser {
            Some(r) => {
                let rec = if self.cfg.whole_frame {
                    rectified
                        .as_ref()
                        .map(|img| r.recognise(img))
                        .unwrap_or_default()
                } else {
                    r.recognise_frame(
                        &frame.image,
                        &self.cfg.finder,
                        &outlines,
                        rectified.as_ref(),
                        self.rect_size,
                    )
                };
                let ev = self.hold.update(rec.record.as_ref());
                (rec, ev)
            }
            None => (Default::default(), None),
        };
        times.recognise = recognition.ms;
        times.total = ms(t0) + frame.decode_ms;
        Ok(FrameReport {
            index: frame.index,
            name: frame.name.clone(),
            sleeve,
            analysis,
            reused,
            event,
            stable: self.stabilizer.current().cloned(),
            times,
            truth: frame.truth.clone(),
            record: recognition.record,
            record_score: recognition.best_score,
            record_event,
            shown_record: self.hold.shown().cloned(),
            rectified,
        })
    }

    /// The models' answer for a rectified sleeve, or the hold's answer when the sleeve looks
    /// the same (see [`crate::reuse`]): the first views of a hold are analysed and averaged,
    /// later frames reuse the average. The flag says whether the models were skipped.
    fn analyze_or_reuse(&mut self, rectified: &RgbImage) -> Result<(Analysis, bool)> {
        let Some(reuse) = &mut self.reuse else {
            return Ok((self.engine.analyze(rectified)?, false));
        };
        let thumb = thumbnail(rectified);
        match reuse.step(&thumb) {
            Step::Reuse(a) => Ok((a, true)),
            Step::AddView(held, views) => {
                let a = held.merge_view(self.engine.analyze(rectified)?, views);
                reuse.add_view(a.clone());
                Ok((a, false))
            }
            Step::Analyse => {
                let a = self.engine.analyze(rectified)?;
                reuse.store(thumb, a.clone());
                Ok((a, false))
            }
        }
    }
}

//! The kiosk loop: frames in, screens and JSON lines out, until the source ends, the
//! frame limit is reached, the screen is closed or a stop is requested.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::display::{Screen, ScreenState, render};
use crate::error::Result;
use crate::notify::Notifier;
use crate::output::{JsonLines, event_line, frame_line, record_line};
use crate::pipeline::{FrameReport, Pipeline, StageTimes};
use crate::source::FrameSource;

/// Loop settings.
#[derive(Clone, Debug, Default)]
pub struct KioskOptions {
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
    /// Write a JSON line per frame instead of per decision.
    pub every_frame: bool,
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    /// Frames processed.
    pub frames: u64,
    /// Frames in which a sleeve was found.
    pub sleeves: u64,
    /// Decision and clear events.
    pub events: u64,
    /// Frames whose analysis failed, plus input files that could not be read (each
    /// logged with its name and skipped).
    pub failed_frames: u64,
    /// Of `failed_frames`, the input files that could not be read.
    pub bad_inputs: u64,
    /// Per-frame stage times.
    #[serde(skip)]
    pub times: Vec<StageTimes>,
}

/// Screens, JSON output and notifications around a [`Pipeline`].
pub struct Kiosk {
    /// The per-frame pipeline.
    pub pipeline: Pipeline,
    /// Where screens go (may be empty: headless).
    pub screens: Vec<Box<dyn Screen>>,
    /// JSON-lines output, if any.
    pub json: Option<JsonLines>,
    /// systemd notifications.
    pub notifier: Notifier,
    /// Loop settings.
    pub options: KioskOptions,
}

impl Kiosk {
    /// Runs until the end of `source`, `max_frames`, a closed screen or `stop`.
    /// `observe` sees every frame's report (tests, benches).
    pub fn run(
        &mut self,
        source: &mut dyn FrameSource,
        stop: Arc<AtomicBool>,
        mut observe: impl FnMut(&FrameReport),
    ) -> Result<RunSummary> {
        let mut summary = RunSummary::default();
        let mut fps = 0.0f32;
        let mut last = Instant::now();
        self.notifier.ready();
        tracing::info!(source = %source.describe(), "kiosk running");
        while !stop.load(Ordering::Relaxed)
            && self.options.max_frames.is_none_or(|m| summary.frames < m)
        {
            let Some(frame) = source.next_frame()? else {
                break;
            };
            summary.frames += 1;
            self.notifier.watchdog();
            let report = match self.pipeline.process(&frame) {
                Ok(r) => r,
                Err(e) => {
                    summary.failed_frames += 1;
                    tracing::error!(frame = frame.index, error = %e, "frame failed");
                    continue;
                }
            };
            summary.sleeves += u64::from(report.sleeve.is_some());
            summary.times.push(report.times);
            let dt = last.elapsed().as_secs_f32().max(1e-6);
            last = Instant::now();
            fps = if fps == 0.0 {
                1.0 / dt
            } else {
                0.8 * fps + 0.2 / dt
            };
            if let Some(json) = &mut self.json {
                if self.options.every_frame {
                    let e = self.pipeline.engine();
                    json.write(&frame_line(&report, e.labels(), e.pa_threshold()))?;
                }
                if let Some(ev) = &report.event
                    && !self.options.every_frame
                {
                    json.write(&event_line(&report, ev))?;
                }
                if let Some(ev) = &report.record_event
                    && !self.options.every_frame
                {
                    json.write(&record_line(&report, ev))?;
                }
            }
            if let Some(ev) = &report.event {
                summary.events += 1;
                tracing::info!(frame = report.index, event = ?ev, "decision changed");
            }
            if let Some(ev) = &report.record_event {
                tracing::info!(frame = report.index, event = ?ev, "record changed");
            }
            // Rendering costs milliseconds: only when some screen shows this frame.
            if self.screens.iter().any(|s| s.wants(report.index)) {
                let screen = render(&ScreenState {
                    frame: &frame.image,
                    sleeve: report.sleeve.as_ref(),
                    decision: report.stable.as_ref(),
                    record: report.shown_record.as_ref(),
                    fps,
                });
                for s in &mut self.screens {
                    s.show(report.index, &screen)?;
                }
                if self.screens.iter().any(|s| !s.is_open()) {
                    break;
                }
            }
            observe(&report);
        }
        self.notifier.stopping();
        summary.bad_inputs = source.bad_inputs();
        summary.failed_frames += summary.bad_inputs;
        Ok(summary)
    }
}

//! JSON lines for store systems: one line per stable decision (or per frame).
//!
//! A line is written with a single `write_all` + flush, so a reader tailing the file never
//! sees half a record. The file is opened for appending (a kiosk log grows; it is not
//! rewritten, so the temp-file-and-rename scheme used for other outputs does not apply).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::catalogue::RecordEvent;
use crate::engine::Analysis;
use crate::error::{EdgeError, Result};
use crate::pipeline::FrameReport;
use crate::stabilize::{Event, StableDecision};

/// A JSON-lines sink.
pub struct JsonLines {
    out: Box<dyn Write + Send>,
    target: String,
}

impl JsonLines {
    /// Lines to standard output.
    pub fn stdout() -> Self {
        Self {
            out: Box::new(std::io::stdout()),
            target: "stdout".into(),
        }
    }

    /// Lines appended to `path` (created if missing).
    pub fn file(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| out_err(path, e))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| out_err(path, e))?;
        Ok(Self {
            out: Box::new(f),
            target: path.display().to_string(),
        })
    }

    /// Lines into any writer (tests).
    pub fn writer(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            target: "writer".into(),
        }
    }

    /// Writes one value as one line.
    pub fn write(&mut self, v: &Value) -> Result<()> {
        let mut line = serde_json::to_string(v).map_err(|e| EdgeError::Output {
            target: self.target.clone(),
            message: e.to_string(),
        })?;
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.flush())
            .map_err(|e| EdgeError::Output {
                target: self.target.clone(),
                message: e.to_string(),
            })
    }
}

fn out_err(path: &Path, e: std::io::Error) -> EdgeError {
    EdgeError::Output {
        target: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn decision_json(d: &StableDecision) -> Value {
    json!({
        "genre": d.genre,
        "uncertain": d.genre.is_none(),
        "confidence": d.confidence,
        "top3": d.top3.iter().map(|(g, p)| json!({"genre": g, "p": p})).collect::<Vec<_>>(),
        "pa": d.pa,
        "pa_score": d.pa_score,
    })
}

/// The line for a change of the shown answer.
pub fn event_line(report: &FrameReport, event: &Event) -> Value {
    let mut v = match event {
        Event::Decision(d) => {
            let mut v = decision_json(d);
            v["event"] = json!("decision");
            v
        }
        Event::Cleared => json!({"event": "cleared"}),
    };
    if let Some(r) = &report.shown_record {
        v["record"] = json!(r);
    }
    v["frame"] = json!(report.index);
    v["source"] = json!(report.name);
    v["ts_ms"] = json!(now_ms());
    v
}

/// The line for a change of the shown catalogue record (`"event": "record"`): the record
/// (artist, title, bin, extra columns, score) or `null` when it cleared.
pub fn record_line(report: &FrameReport, event: &RecordEvent) -> Value {
    let record = match event {
        RecordEvent::Shown(r) => json!(r),
        RecordEvent::Cleared => Value::Null,
    };
    json!({
        "event": "record",
        "record": record,
        "frame": report.index,
        "source": report.name,
        "ts_ms": now_ms(),
    })
}

/// Per-frame details of an analysis (top-3 by label name, PA boxes).
pub fn analysis_json(a: &Analysis, labels: &sleeve_shared::LabelSet, pa_threshold: f32) -> Value {
    json!({
        "top": a.top_k(3).top.iter().map(|g| json!({
            "genre": labels.name(g.index as usize).unwrap_or("?"),
            "p": g.score,
        })).collect::<Vec<_>>(),
        "pa": a.pa_score >= pa_threshold,
        "pa_score": a.pa_score,
        "pa_boxes": a.pa.iter().map(|b| json!({
            "box": [b.bbox.x0, b.bbox.y0, b.bbox.x1, b.bbox.y1], "score": b.score,
        })).collect::<Vec<_>>(),
    })
}

/// The line for one frame (`--every-frame`).
pub fn frame_line(
    report: &FrameReport,
    labels: &sleeve_shared::LabelSet,
    pa_threshold: f32,
) -> Value {
    let mut v = json!({
        "event": "frame",
        "frame": report.index,
        "source": report.name,
        "ts_ms": now_ms(),
        "sleeve": report.sleeve,
        "result": report.analysis.as_ref().map(|a| analysis_json(a, labels, pa_threshold)),
        "reused": report.reused,
        "stable": report.stable.as_ref().map(decision_json),
        "times_ms": report.times,
    });
    // Catalogue fields only when a catalogue is in use (lines stay as they were without).
    if let Some(score) = report.record_score {
        v["record"] = json!(report.record);
        v["record_score"] = json!(score);
    }
    if let Some(r) = &report.shown_record {
        v["shown_record"] = json!(r);
    }
    v
}

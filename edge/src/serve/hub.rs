//! The hand-off between the frame loop and everything that reports on it (HTTP clients,
//! server-sent events, MQTT): a bounded ring of recent decisions, run counters and health,
//! behind one mutex that is only ever held to copy a few values. The frame loop never waits
//! on a client: readers clone `Arc`s under the lock and do their I/O after releasing it, and
//! the ring drops its oldest entry when full.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::kiosk::RunSummary;
use crate::output::{event_line, now_ms, record_line};
use crate::pipeline::FrameReport;

/// Decisions kept for `GET /api/decisions` when no size is given.
pub const DEFAULT_RING: usize = 256;
/// A source that delivered no frame for this long is reported as `"stalled"`.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// What is being run, fixed at start-up (shown by `/api/status`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunInfo {
    /// Bundle name from its manifest.
    pub bundle: String,
    /// Bundle directory.
    pub bundle_path: String,
    /// Genre labels, model order.
    pub labels: Vec<String>,
    /// Classifier precision in use.
    pub classifier_precision: String,
    /// Detector precision in use (`None` without a detector).
    pub detector_precision: Option<String>,
    /// Half-precision plans.
    pub f16: bool,
    /// The frame source, as the kiosk log names it.
    pub source: String,
}

/// One published decision: a JSON line as written by `--json`, numbered.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Increasing from 1, never reused within a run.
    pub id: u64,
    /// `"decision"`, `"cleared"` or `"record"`.
    pub event: String,
    /// The line, with its `"id"`.
    pub line: Arc<Value>,
}

/// The latest kiosk screen, encoded.
#[derive(Clone, Debug)]
pub struct Screenshot {
    /// JPEG bytes.
    pub jpeg: Arc<Vec<u8>>,
    /// Frame index it shows.
    pub frame: u64,
    /// When it was encoded (ms since the Unix epoch).
    pub ts_ms: u64,
}

#[derive(Default)]
struct State {
    ring: VecDeque<Entry>,
    next_id: u64,
    frames: u64,
    sleeves: u64,
    fps: f32,
    last_frame: Option<Instant>,
    current: Option<Arc<Value>>,
    finished: Option<RunSummary>,
    screen: Option<Screenshot>,
    closed: bool,
}

/// Shared state between the frame loop and its reporters.
pub struct Hub {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
    started: Instant,
    started_ms: u64,
    info: Mutex<RunInfo>,
}

impl Hub {
    /// A hub keeping the last `capacity` decisions (at least 1).
    pub fn new(info: RunInfo, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            changed: Condvar::new(),
            capacity: capacity.max(1),
            started: Instant::now(),
            started_ms: now_ms(),
            info: Mutex::new(info),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A reader that panicked leaves plain data behind: keep serving it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names the frame source (known only once it is open).
    pub fn set_source(&self, source: String) {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).source = source;
    }

    /// Called by the frame loop for every analysed frame: counts it, and publishes the
    /// decision and record events it caused. Never blocks on a reader.
    pub fn observe(&self, report: &FrameReport) {
        let mut lines = Vec::new();
        if let Some(ev) = &report.event {
            lines.push(event_line(report, ev));
        }
        if let Some(ev) = &report.record_event {
            lines.push(record_line(report, ev));
        }
        let now = Instant::now();
        let mut s = self.lock();
        s.frames += 1;
        s.sleeves += u64::from(report.sleeve.is_some());
        if let Some(last) = s.last_frame {
            let dt = now.duration_since(last).as_secs_f32().max(1e-6);
            s.fps = if s.fps == 0.0 {
                1.0 / dt
            } else {
                0.8 * s.fps + 0.2 / dt
            };
        }
        s.last_frame = Some(now);
        for line in lines {
            let is_answer = line["event"] != "record";
            let entry = push(&mut s, self.capacity, line);
            if is_answer {
                s.current = (entry.event == "decision").then(|| entry.line.clone());
            }
        }
        drop(s);
        self.changed.notify_all();
    }

    /// Publishes a line that did not come from a frame (tests, start-up messages).
    pub fn publish(&self, line: Value) -> u64 {
        let mut s = self.lock();
        let id = push(&mut s, self.capacity, line).id;
        drop(s);
        self.changed.notify_all();
        id
    }

    /// Marks the run as over (status shows `"ended"`; waiting readers wake up).
    pub fn finish(&self, summary: &RunSummary) {
        self.lock().finished = Some(summary.clone());
        self.changed.notify_all();
    }

    /// Wakes every waiting reader for good (server shutdown).
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Whether [`Hub::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Decisions with an id above `since`, oldest first, at most `limit`; and the newest
    /// id so far (0 when none).
    pub fn since(&self, since: u64, limit: usize) -> (Vec<Entry>, u64) {
        let s = self.lock();
        let newest = s.next_id - 1;
        let v = s
            .ring
            .iter()
            .filter(|e| e.id > since)
            .take(limit)
            .cloned()
            .collect();
        (v, newest)
    }

    /// Like [`Hub::since`], but waits up to `timeout` for something new; returns early
    /// (possibly empty) when the hub closes or the run finishes.
    pub fn wait_since(&self, since: u64, limit: usize, timeout: Duration) -> Vec<Entry> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if s.next_id - 1 > since || s.closed {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Vec::new();
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        s.ring
            .iter()
            .filter(|e| e.id > since)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The newest decision id (0 when none).
    pub fn newest_id(&self) -> u64 {
        self.lock().next_id - 1
    }

    /// Stores a freshly encoded screen.
    pub fn set_screen(&self, shot: Screenshot) {
        self.lock().screen = Some(shot);
    }

    /// The latest encoded screen.
    pub fn screen(&self) -> Option<Screenshot> {
        self.lock().screen.clone()
    }

    /// The JSON of `GET /api/status` (and the retained MQTT status).
    pub fn status_json(&self) -> Value {
        let info = self.info.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let s = self.lock();
        let age = s.last_frame.map(|t| t.elapsed());
        let state = if s.finished.is_some() {
            "ended"
        } else {
            match age {
                None => "waiting",
                Some(a) if a >= STALL_AFTER => "stalled",
                Some(_) => "running",
            }
        };
        json!({
            "status": "online",
            "version": env!("CARGO_PKG_VERSION"),
            "bundle": {
                "name": info.bundle,
                "path": info.bundle_path,
                "labels": info.labels,
                "classifier_precision": info.classifier_precision,
                "detector_precision": info.detector_precision,
                "f16": info.f16,
            },
            "camera": {
                "source": info.source,
                "state": state,
                "last_frame_age_ms": age.map(|a| a.as_millis() as u64),
            },
            "fps": if state == "running" { s.fps } else { 0.0 },
            "frames": s.frames,
            "sleeves": s.sleeves,
            "decisions": s.next_id - 1,
            "current": s.current.as_deref(),
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "started_ms": self.started_ms,
            "last_error": crate::serve::log::last_error(),
            "screen_frame": s.screen.as_ref().map(|sh| sh.frame),
        })
    }
}

fn push(s: &mut State, capacity: usize, mut line: Value) -> Entry {
    let id = s.next_id;
    s.next_id += 1;
    line["id"] = json!(id);
    let event = line["event"].as_str().unwrap_or("decision").to_string();
    let entry = Entry {
        id,
        event,
        line: Arc::new(line),
    };
    while s.ring.len() >= capacity {
        s.ring.pop_front();
    }
    s.ring.push_back(entry.clone());
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_numbered() {
        let hub = Hub::new(RunInfo::default(), 3);
        for i in 0..5 {
            hub.publish(json!({"event": "decision", "n": i}));
        }
        let (v, newest) = hub.since(0, 100);
        assert_eq!(newest, 5);
        assert_eq!(v.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(v[0].line["n"], 2);
        let (v, _) = hub.since(4, 100);
        assert_eq!(v.len(), 1);
        assert_eq!(hub.since(0, 2).0.len(), 2);
    }

    #[test]
    fn waiters_wake_on_publish_and_time_out_otherwise() {
        let hub = Hub::new(RunInfo::default(), 8);
        let t = Instant::now();
        assert!(hub.wait_since(0, 10, Duration::from_millis(50)).is_empty());
        assert!(t.elapsed() >= Duration::from_millis(50));
        let h = hub.clone();
        let waiter = std::thread::spawn(move || h.wait_since(0, 10, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        hub.publish(json!({"event": "cleared"}));
        let got = waiter.join().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event, "cleared");
    }

    #[test]
    fn status_reports_waiting_then_ended() {
        let hub = Hub::new(RunInfo::default(), 8);
        assert_eq!(hub.status_json()["camera"]["state"], "waiting");
        hub.finish(&RunSummary::default());
        assert_eq!(hub.status_json()["camera"]["state"], "ended");
    }
}

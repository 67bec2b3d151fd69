//! The most recent warning or error, for `/api/status`: a `tracing` layer that keeps the
//! last WARN/ERROR event of the process (the kiosk already logs every failure it
//! survives: a camera that dropped out, a frame that failed, a bad file).

use std::fmt::Write as _;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use serde::Serialize;

use crate::output::now_ms;

/// The most recent warning or error logged, as `/api/status` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedError {
    /// `"WARN"` or `"ERROR"`.
    pub level: String,
    /// The message with its fields.
    pub message: String,
    /// When (ms since the Unix epoch).
    pub ts_ms: u64,
}

static LAST: Mutex<Option<LoggedError>> = Mutex::new(None);

/// Records the last WARN or ERROR event; add it to the subscriber in `main`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LastErrorLayer;

impl<S: Subscriber> Layer<S> for LastErrorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return;
        }
        let mut text = Fields(String::new());
        event.record(&mut text);
        remember(level.as_str(), text.0);
    }
}

/// Stores `message` as the last error (also used directly by tests).
pub fn remember(level: &str, message: String) {
    let e = LoggedError {
        level: level.to_string(),
        message,
        ts_ms: now_ms(),
    };
    *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
}

/// The last WARN/ERROR event, if any.
pub fn last_error() -> Option<LoggedError> {
    LAST.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let sep = if self.0.is_empty() { "" } else { " " };
        if field.name() == "message" {
            let _ = write!(self.0, "{sep}{value:?}");
        } else {
            let _ = write!(self.0, "{sep}{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let sep = if self.0.is_empty() { "" } else { " " };
        if field.name() == "message" {
            let _ = write!(self.0, "{sep}{value}");
        } else {
            let _ = write!(self.0, "{sep}{}={value}", field.name());
        }
    }
}

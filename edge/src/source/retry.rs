//! Keeping a failing source alive: report, back off, reconnect, try again.

use std::time::Duration;

use crate::error::Result;
use crate::source::{Frame, FrameSource};

/// How [`Retrying`] backs off.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait (the wait doubles up to this).
    pub max: Duration,
    /// Consecutive failures after which the error is returned; `None` = retry forever.
    pub max_failures: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
            max_failures: None,
        }
    }
}

/// A source wrapper that turns errors into logged retries with exponential backoff.
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
    failures: u64,
}

impl<S: FrameSource> Retrying<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            failures: 0,
        }
    }

    /// Total failures seen so far (for reports and tests).
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: FrameSource> FrameSource for Retrying<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let mut consecutive = 0u32;
        let mut wait = self.policy.initial;
        loop {
            match self.inner.next_frame() {
                Ok(f) => return Ok(f),
                Err(e) => {
                    consecutive += 1;
                    self.failures += 1;
                    if self.policy.max_failures.is_some_and(|m| consecutive >= m) {
                        tracing::error!(source = %self.inner.describe(), error = %e, consecutive, "frame source gave up");
                        return Err(e);
                    }
                    tracing::warn!(
                        source = %self.inner.describe(), error = %e, retry_in_ms = wait.as_millis() as u64,
                        "frame source failed; retrying"
                    );
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(self.policy.max);
                    if let Err(e) = self.inner.reconnect() {
                        tracing::warn!(source = %self.inner.describe(), error = %e, "reconnect failed");
                    }
                }
            }
        }
    }

    fn reconnect(&mut self) -> Result<()> {
        self.inner.reconnect()
    }

    fn bad_inputs(&self) -> u64 {
        self.inner.bad_inputs()
    }
}

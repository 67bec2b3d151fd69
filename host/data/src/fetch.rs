//! Downloader for URL rows: concurrent, with timeouts, retries with exponential backoff, a
//! size cap, a content-type check and a full decode check. Resumable: rows that already
//! have an image are skipped, and the manifest is saved periodically so an interruption
//! loses little. Several rows with the same URL are downloaded once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::dataset::Dataset;
use crate::error::Result;
use crate::import::progress_bar;
use crate::store::{ImageCheckError, ImageInfo, ImageStore, inspect_image};

/// Downloader settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Parallel downloads.
    pub concurrency: usize,
    /// Time limit for one request, body included.
    pub timeout: Duration,
    /// Extra attempts after a retryable failure (timeouts, connection errors, 5xx, 429).
    pub retries: u32,
    /// Largest accepted image in bytes.
    pub max_bytes: u64,
    /// First retry delay; doubled on each further retry.
    pub backoff: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: u32,
    /// Also retry rows whose earlier download failed (default true).
    pub retry_failed: bool,
    /// How often the manifest is saved while downloading.
    pub save_every: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            timeout: Duration::from_secs(20),
            retries: 3,
            max_bytes: 10 * 1024 * 1024,
            backoff: Duration::from_millis(500),
            max_redirects: 5,
            retry_failed: true,
            save_every: Duration::from_secs(5),
        }
    }
}

/// Why one download failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    /// HTTP error status.
    #[error("http {0}")]
    Http(u16),
    /// The request took longer than the timeout.
    #[error("timeout")]
    Timeout,
    /// Larger than `max_bytes`.
    #[error("too large (over {0} bytes)")]
    TooLarge(u64),
    /// The server said it is not an image.
    #[error("not an image (content-type {0})")]
    NotImage(String),
    /// The bytes do not decode as an image.
    #[error("undecodable image: {0}")]
    Undecodable(String),
    /// Too many redirects (a loop).
    #[error("redirect loop")]
    RedirectLoop,
    /// Connection, DNS, TLS or protocol problem.
    #[error("network: {0}")]
    Network(String),
    /// The image could not be written.
    #[error("store: {0}")]
    Store(String),
}

impl FetchFailure {
    /// Short category for summaries (`http 404`, `timeout`, …).
    pub fn category(&self) -> String {
        match self {
            FetchFailure::Http(c) => format!("http {c}"),
            FetchFailure::Timeout => "timeout".into(),
            FetchFailure::TooLarge(_) => "too large".into(),
            FetchFailure::NotImage(_) => "not an image".into(),
            FetchFailure::Undecodable(_) => "undecodable".into(),
            FetchFailure::RedirectLoop => "redirect loop".into(),
            FetchFailure::Network(_) => "network".into(),
            FetchFailure::Store(_) => "store".into(),
        }
    }

    /// Worth another attempt?
    pub fn retryable(&self) -> bool {
        match self {
            FetchFailure::Timeout | FetchFailure::Network(_) => true,
            FetchFailure::Http(c) => *c >= 500 || *c == 429 || *c == 408,
            _ => false,
        }
    }
}

/// What [`fetch`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Rows that needed a download.
    pub todo: usize,
    /// Rows that already had their image.
    pub already_done: usize,
    /// Rows skipped because an earlier attempt failed (with `retry_failed` off).
    pub skipped_failed: usize,
    /// Rows downloaded now.
    pub ok: usize,
    /// Failed rows per [`FetchFailure::category`].
    pub failed: BTreeMap<String, usize>,
    /// Stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// Builds the HTTP agent for the options.
pub fn agent(opts: &FetchOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .max_redirects(opts.max_redirects)
        .http_status_as_error(true)
        .user_agent(concat!("sleeve-dataset/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// One download attempt: status, content-type and size checks, then the body.
pub fn download_once(
    agent: &ureq::Agent,
    url: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, FetchFailure> {
    let mut resp = agent.get(url).call().map_err(map_err)?;
    if let Some(ct) = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        let ct = ct.to_ascii_lowercase();
        let ok = ct.starts_with("image/")
            || ct.starts_with("application/octet-stream")
            || ct.starts_with("binary/octet-stream");
        if !ok {
            return Err(FetchFailure::NotImage(ct));
        }
    }
    if resp.body().content_length().is_some_and(|n| n > max_bytes) {
        return Err(FetchFailure::TooLarge(max_bytes));
    }
    resp.body_mut()
        .with_config()
        .limit(max_bytes)
        .read_to_vec()
        .map_err(|e| match map_err(e) {
            FetchFailure::Network(m) if m.contains("limit") => FetchFailure::TooLarge(max_bytes),
            other => other,
        })
}

fn map_err(e: ureq::Error) -> FetchFailure {
    match e {
        ureq::Error::StatusCode(c) => FetchFailure::Http(c),
        ureq::Error::Timeout(_) => FetchFailure::Timeout,
        ureq::Error::TooManyRedirects => FetchFailure::RedirectLoop,
        ureq::Error::BodyExceedsLimit(n) => FetchFailure::TooLarge(n),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => FetchFailure::Timeout,
        other => FetchFailure::Network(other.to_string()),
    }
}

/// Downloads with retries and exponential backoff, then checks the image decodes.
pub fn download_image(
    agent: &ureq::Agent,
    url: &str,
    opts: &FetchOptions,
    stop: &AtomicBool,
) -> Result<(ImageInfo, Vec<u8>), FetchFailure> {
    let mut attempt = 0;
    loop {
        let res = download_once(agent, url, opts.max_bytes).and_then(|bytes| {
            let info = inspect_image(&bytes).map_err(|e| match e {
                ImageCheckError::UnknownFormat => {
                    FetchFailure::NotImage("unrecognised bytes".into())
                }
                other => FetchFailure::Undecodable(other.to_string()),
            })?;
            Ok((info, bytes))
        });
        match res {
            Err(f) if f.retryable() && attempt < opts.retries && !stop.load(Ordering::Relaxed) => {
                let delay = opts.backoff.saturating_mul(1 << attempt.min(16));
                tracing::debug!("{url}: {f}; retrying in {delay:?}");
                std::thread::sleep(delay);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Downloads every URL row without an image, stores the images and updates the rows
/// (saving the manifest every `save_every` and at the end). Stops early, saving what is
/// done, when `stop` becomes true.
pub fn fetch(ds: &mut Dataset, opts: &FetchOptions, stop: &AtomicBool) -> Result<FetchReport> {
    let mut report = FetchReport::default();
    let mut by_url: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in ds.rows().iter().enumerate() {
        if r.url.is_empty() {
            continue;
        }
        if r.has_image() {
            report.already_done += 1;
        } else if !r.error.is_empty() && !opts.retry_failed {
            report.skipped_failed += 1;
        } else {
            by_url.entry(r.url.clone()).or_default().push(i);
        }
    }
    let jobs: Vec<(String, Vec<usize>)> = by_url.into_iter().collect();
    report.todo = jobs.iter().map(|j| j.1.len()).sum();
    if jobs.is_empty() {
        return Ok(report);
    }
    let agent = agent(opts);
    let store = ImageStore::new(ds.root());
    let next = AtomicUsize::new(0);
    let pb = progress_bar(report.todo as u64, "downloading");
    let (tx, rx) = mpsc::channel::<(usize, Result<(ImageInfo, String), FetchFailure>)>();
    let workers = opts.concurrency.clamp(1, 256).min(jobs.len());
    let mut last_save = Instant::now();
    let mut save_result = Ok(());
    // a local write failure (full disk, permissions) stops the run; it is not the row's fault
    let mut store_error: Option<String> = None;
    let halt = AtomicBool::new(false);
    let halted = || stop.load(Ordering::Relaxed) || halt.load(Ordering::Relaxed);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (jobs, next, agent, store, halted) = (&jobs, &next, &agent, &store, &halted);
            s.spawn(move || {
                loop {
                    if halted() {
                        break;
                    }
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some((url, _)) = jobs.get(j) else { break };
                    let res = download_image(agent, url, opts, stop).and_then(|(info, bytes)| {
                        let rel = store
                            .put(&info, &bytes)
                            .map_err(|e| FetchFailure::Store(e.to_string()))?;
                        Ok((info, rel))
                    });
                    if tx.send((j, res)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for (j, res) in rx {
            let rows = &jobs[j].1;
            match &res {
                Ok((info, rel)) => {
                    for &i in rows {
                        let r = &mut ds.rows_mut()[i];
                        r.sha256 = info.sha256.clone();
                        r.path = rel.clone();
                        r.width = Some(info.width);
                        r.height = Some(info.height);
                        r.phash = info.phash.clone();
                        r.error.clear();
                    }
                    report.ok += rows.len();
                    *counts.entry("ok").or_insert(0) += rows.len();
                }
                Err(FetchFailure::Store(e)) => {
                    if store_error.is_none() {
                        store_error = Some(e.clone());
                    }
                    halt.store(true, Ordering::Relaxed);
                }
                Err(f) => {
                    tracing::warn!("{}: {f}", jobs[j].0);
                    for &i in rows {
                        ds.rows_mut()[i].error = f.to_string();
                    }
                    *report.failed.entry(f.category()).or_insert(0) += rows.len();
                    *counts.entry("failed").or_insert(0) += rows.len();
                }
            }
            pb.inc(rows.len() as u64);
            pb.set_message(format!(
                "downloading (ok {}, failed {})",
                counts.get("ok").unwrap_or(&0),
                counts.get("failed").unwrap_or(&0)
            ));
            if last_save.elapsed() >= opts.save_every {
                if let Err(e) = ds.save() {
                    save_result = Err(e);
                    halt.store(true, Ordering::Relaxed);
                }
                last_save = Instant::now();
            }
        }
    });
    pb.finish_and_clear();
    save_result?;
    if let Some(e) = store_error {
        // keep what was stored before the failure (if the manifest can still be written)
        ds.save()?;
        return Err(crate::DataError::Invalid(format!(
            "cannot store images in {}: {e}; the {} stored before that are recorded: rerun \
             `sleeve dataset fetch` when there is room",
            ds.root().display(),
            report.ok
        )));
    }
    report.interrupted = stop.load(Ordering::Relaxed);
    ds.save()?;
    Ok(report)
}

//! Request routing and the JSON endpoints.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the staff page |
//! | `GET /api/status` | bundle, precision, fps, camera state, uptime, last error |
//! | `GET /api/decisions?since=ID&limit=N` | decisions after `ID` from the ring, oldest first |
//! | `GET /api/events` | server-sent events, one per decision (`Last-Event-ID` resumes) |
//! | `GET /api/screen.jpg` | the latest kiosk screen |
//! | `POST /api/classify?find=1&views=K&top_k=N&name=S` | the body is an image; the answer is `sleeve-edge classify`'s JSON |
//!
//! Errors are JSON `{"error": "..."}` with a fitting status (400, 401, 404, 405, 413, 415,
//! 422, 503).

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Instant;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response};

use crate::catalogue::Recogniser;
use crate::classify::{ClassifyOptions, classify_image};
use crate::engine::{Engine, ms};
use crate::serve::{Ctx, page, sse};
use crate::views::MAX_VIEWS;

/// Builds the engine (and catalogue recogniser) that `POST /api/classify` uses.
pub type EngineFactory =
    Box<dyn Fn() -> anyhow::Result<(Engine, Option<Recogniser>)> + Send + Sync>;

/// The models behind `POST /api/classify`: a second engine, separate from the frame
/// loop's, built on the first request and used by one request at a time (others get 503).
pub struct Classifier {
    factory: EngineFactory,
    loaded: Mutex<Option<(Engine, Option<Recogniser>)>>,
}

impl Classifier {
    /// Builds the models on first use with `factory`.
    pub fn lazy(factory: EngineFactory) -> Self {
        Self {
            factory,
            loaded: Mutex::new(None),
        }
    }

    /// Uses these models.
    pub fn ready(engine: Engine, recogniser: Option<Recogniser>) -> Self {
        Self {
            factory: Box::new(|| anyhow::bail!("already loaded")),
            loaded: Mutex::new(Some((engine, recogniser))),
        }
    }
}

/// Most bytes of an oversized streamed upload read and dropped before the 413 answer.
const DRAIN_MAX: u64 = 16 << 20;

/// Why a classify request failed, with its HTTP status.
#[derive(Debug)]
struct Failure(u16, String);

fn fail(code: u16, msg: impl Into<String>) -> Failure {
    Failure(code, msg.into())
}

type Reply = Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn json_reply(code: u16, v: &Value) -> Reply {
    Response::from_data(serde_json::to_vec(v).unwrap_or_default())
        .with_status_code(code)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"))
}

fn error_reply(code: u16, message: &str) -> Reply {
    json_reply(code, &json!({ "error": message }))
}

/// Answers one request (SSE requests are handed to their own thread).
pub(crate) fn handle(mut rq: Request, ctx: &Arc<Ctx>) {
    let t = Instant::now();
    let method = rq.method().clone();
    let url = rq.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let reply = if path == "/" || path == "/index.html" {
        match method {
            Method::Get | Method::Head => page::reply(),
            _ => error_reply(405, "the page only answers GET"),
        }
    } else if !path.starts_with("/api/") {
        error_reply(404, &format!("no such page: {path}"))
    } else if !authorized(&rq, &params, ctx.opts.token.as_deref()) {
        error_reply(
            401,
            "missing or wrong token: send `Authorization: Bearer TOKEN` (or ?token=TOKEN)",
        )
        .with_header(header("WWW-Authenticate", "Bearer"))
    } else {
        match (&method, path) {
            (Method::Get, "/api/status") => json_reply(200, &ctx.hub.status_json()),
            (Method::Get, "/api/decisions") => decisions(&params, ctx),
            (Method::Get, "/api/events") => {
                match sse::start(rq, &params, ctx) {
                    Ok(()) => {}
                    Err(back) => {
                        let (rq, reply) = *back;
                        respond(rq, reply, &method, path, t)
                    }
                }
                return;
            }
            (Method::Get, "/api/screen.jpg") => screen(ctx),
            (Method::Post, "/api/classify") => match classify(&mut rq, &params, ctx) {
                Ok(v) => json_reply(200, &v),
                Err(Failure(code, msg)) => error_reply(code, &msg),
            },
            (_, "/api/status" | "/api/decisions" | "/api/events" | "/api/screen.jpg") => {
                error_reply(405, &format!("{path} only answers GET"))
            }
            (_, "/api/classify") => error_reply(405, "/api/classify only answers POST"),
            _ => error_reply(404, &format!("no such endpoint: {path}")),
        }
    };
    respond(rq, reply, &method, path, t);
}

fn respond(rq: Request, reply: Reply, method: &Method, path: &str, t: Instant) {
    let code = reply.status_code().0;
    if let Err(e) = rq.respond(reply) {
        tracing::debug!(error = %e, path, "http: client went away");
    }
    tracing::debug!(%method, path, code, ms = ms(t), "http");
}

/// Whether the request carries the token (always true without one).
fn authorized(rq: &Request, params: &HashMap<String, String>, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let bearer = rq
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
        .map(str::trim);
    let given = bearer.or(params.get("token").map(String::as_str));
    given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A number query parameter in `range`, or `default` when absent.
fn param_u64(
    params: &HashMap<String, String>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let Some(raw) = params.get(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(v) if range.contains(&v) => Ok(v),
        Ok(v) => Err(format!(
            "{name}={v} is outside {}..={}",
            range.start(),
            range.end()
        )),
        Err(_) => Err(format!("{name}='{raw}' is not a whole number")),
    }
}

fn decisions(params: &HashMap<String, String>, ctx: &Ctx) -> Reply {
    let since = param_u64(params, "since", 0, 0..=u64::MAX);
    let limit = param_u64(params, "limit", 100, 1..=10_000);
    let (since, limit) = match (since, limit) {
        (Ok(s), Ok(l)) => (s, l as usize),
        (Err(e), _) | (_, Err(e)) => return error_reply(400, &e),
    };
    let (entries, newest) = ctx.hub.since(since, limit);
    let next = entries.last().map(|e| e.id).unwrap_or(since.min(newest));
    json_reply(
        200,
        &json!({
            "decisions": entries.iter().map(|e| &*e.line).collect::<Vec<_>>(),
            "newest": newest,
            "next": next,
        }),
    )
}

fn screen(ctx: &Ctx) -> Reply {
    match ctx.hub.screen() {
        Some(shot) => Response::from_data((*shot.jpeg).clone())
            .with_header(header("Content-Type", "image/jpeg"))
            .with_header(header("Cache-Control", "no-store"))
            .with_header(header("X-Frame", &shot.frame.to_string())),
        None => error_reply(503, "no screen yet: the kiosk has not rendered a frame")
            .with_header(header("Retry-After", "1")),
    }
}

fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, Failure> {
    match params
        .get(name)
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None => Ok(false),
        Some("1" | "true" | "yes" | "") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(other) => Err(fail(400, format!("{name}='{other}': use 1 or 0"))),
    }
}

fn classify(
    rq: &mut Request,
    params: &HashMap<String, String>,
    ctx: &Ctx,
) -> Result<Value, Failure> {
    let t = Instant::now();
    let Some(classifier) = &ctx.classifier else {
        return Err(fail(404, "classify is not enabled on this server"));
    };
    let content_type = rq
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_ascii_lowercase())
        .unwrap_or_default();
    if content_type.starts_with("multipart/") {
        return Err(fail(
            415,
            "send the image as the raw request body (curl --data-binary @cover.jpg), not a form",
        ));
    }
    let max = ctx.opts.max_upload;
    if rq.body_length().is_some_and(|n| n > max) {
        // Not decoded, but read and dropped when not huge, so the client (still sending)
        // can read the answer.
        if rq
            .body_length()
            .is_some_and(|n| n as u64 <= max as u64 + DRAIN_MAX)
        {
            let _ = std::io::copy(
                &mut rq.as_reader().take(DRAIN_MAX + max as u64),
                &mut std::io::sink(),
            );
        }
        return Err(fail(
            413,
            format!(
                "upload of {} bytes is over the {max}-byte limit",
                rq.body_length().unwrap_or(0)
            ),
        ));
    }
    let opts = ClassifyOptions {
        top_k: param_u64(params, "top_k", 3, 1..=100).map_err(|e| fail(400, e))? as usize,
        find: flag(params, "find")?,
        views: param_u64(params, "views", 1, 1..=u64::from(MAX_VIEWS)).map_err(|e| fail(400, e))?
            as u32,
        ..ClassifyOptions::default()
    };
    let name = params
        .get("name")
        .cloned()
        .unwrap_or_else(|| "upload".into());
    let mut body = Vec::new();
    rq.as_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| fail(400, format!("reading the upload: {e}")))?;
    if body.len() > max {
        // Read (and drop) a bounded rest, so a client still sending can read the answer.
        let _ = std::io::copy(&mut rq.as_reader().take(DRAIN_MAX), &mut std::io::sink());
        return Err(fail(413, format!("upload is over the {max}-byte limit")));
    }
    if body.is_empty() {
        return Err(fail(
            400,
            "empty body: send the image bytes as the request body",
        ));
    }
    let img = sleeve_shared::imageio::decode_rgb(&body)
        .map_err(|e| fail(400, format!("bad image ({} bytes): {e}", body.len())))?;
    let mut slot = match classifier.loaded.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => {
            return Err(fail(503, "busy with another classify request; retry"));
        }
    };
    if slot.is_none() {
        let loaded = (classifier.factory)().map_err(|e| fail(500, format!("{e:#}")))?;
        *slot = Some(loaded);
    }
    let (engine, recogniser) = slot.as_mut().expect("loaded above");
    if let Some(r) = recogniser.as_mut() {
        r.reload_if_changed();
    }
    let mut v = classify_image(engine, recogniser.as_ref(), img, &opts)
        .map_err(|e| fail(422, format!("{e:#}")))?;
    v["image"] = json!(name);
    v["latency_ms"] = json!(ms(t));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abcdef", b"abcdef"));
        assert!(!same_secret(b"abcdef", b"abcdeg"));
        assert!(!same_secret(b"abc", b"abcdef"));
    }

    #[test]
    fn numbers_are_range_checked() {
        let p: HashMap<String, String> = [("views".to_string(), "9".to_string())].into();
        assert!(
            param_u64(&p, "views", 1, 1..=8)
                .unwrap_err()
                .contains("outside")
        );
        assert_eq!(param_u64(&p, "top_k", 3, 1..=8), Ok(3));
        let p: HashMap<String, String> = [("since".to_string(), "x".to_string())].into();
        assert!(
            param_u64(&p, "since", 0, 0..=9)
                .unwrap_err()
                .contains("not a whole")
        );
    }
}

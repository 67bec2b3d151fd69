//! `GET /api/events`: server-sent events, one `decision`/`cleared`/`record` event per
//! published line, with its ring id as the event id (a reconnecting browser resumes with
//! `Last-Event-ID`). Each stream has its own thread, blocked on the hub's condition
//! variable; a comment line every 15 s finds clients that went away.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tiny_http::Request;

use crate::serve::Ctx;

/// Keep-alive comment interval.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

type Reply = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

/// Starts a stream on its own thread; gives the request back with an error reply when it
/// cannot (too many streams, bad `since`).
pub(crate) fn start(
    rq: Request,
    params: &HashMap<String, String>,
    ctx: &Arc<Ctx>,
) -> Result<(), Box<(Request, Reply)>> {
    let reply = |code: u16, msg: &str| {
        tiny_http::Response::from_data(
            serde_json::to_vec(&serde_json::json!({"error": msg})).unwrap_or_default(),
        )
        .with_status_code(code)
        .with_header(
            tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                .expect("valid header"),
        )
    };
    let resume = rq
        .headers()
        .iter()
        .find(|h| h.field.equiv("Last-Event-ID"))
        .map(|h| h.value.as_str().to_string())
        .or_else(|| params.get("since").cloned());
    let since = match resume {
        None => ctx.hub.newest_id(),
        Some(s) => match s.trim().parse::<u64>() {
            Ok(v) => v,
            Err(_) => {
                return Err(Box::new((
                    rq,
                    reply(400, &format!("since='{s}' is not a whole number")),
                )));
            }
        },
    };
    let open = ctx.streams.fetch_add(1, Ordering::SeqCst);
    if open >= ctx.opts.max_streams {
        ctx.streams.fetch_sub(1, Ordering::SeqCst);
        return Err(Box::new((
            rq,
            reply(
                503,
                &format!("{open} event streams already open; try later"),
            ),
        )));
    }
    let ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("http-sse".into())
        .spawn(move || {
            let writer = rq.into_writer();
            if let Err(e) = stream(writer, since, &ctx) {
                tracing::debug!(error = %e, "http: event stream ended");
            }
            ctx.streams.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "http: cannot start an event stream thread");
    }
    Ok(())
}

fn stream(mut w: Box<dyn Write + Send>, mut since: u64, ctx: &Ctx) -> std::io::Result<()> {
    w.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          Connection: close\r\nX-Accel-Buffering: no\r\n\r\nretry: 2000\n\n",
    )?;
    w.flush()?;
    let mut last_write = Instant::now();
    while !ctx.stop.load(Ordering::Relaxed) && !ctx.hub.is_closed() {
        let entries = ctx.hub.wait_since(since, 64, Duration::from_secs(1));
        for e in &entries {
            let data = serde_json::to_string(&*e.line).unwrap_or_default();
            write!(w, "id: {}\nevent: {}\ndata: {data}\n\n", e.id, e.event)?;
            since = e.id;
        }
        if !entries.is_empty() {
            w.flush()?;
            last_write = Instant::now();
        } else if last_write.elapsed() >= KEEPALIVE {
            w.write_all(b": keep-alive\n\n")?;
            w.flush()?;
            last_write = Instant::now();
        }
    }
    Ok(())
}

//! The kiosk's local HTTP server (`sleeve-edge run --http ADDR:PORT`): a JSON API, live
//! decisions as server-sent events, the latest screen as JPEG, a classify endpoint and a
//! staff page, on `tiny_http` worker threads.
//!
//! The frame loop only writes to a [`Hub`]; the server reads from it. Loopback by default;
//! bound to any other address it requires a bearer token and refuses to start without one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

pub mod api;
pub mod hub;
pub mod log;
pub mod page;
pub mod screen;
pub mod sse;

pub use api::Classifier;
pub use hub::{Entry, Hub, RunInfo, Screenshot};
pub use log::LastErrorLayer;
pub use screen::WebScreen;

/// The environment variable read for the token when `--http-token` is not given.
pub const TOKEN_ENV: &str = "SLEEVE_HTTP_TOKEN";
/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;
/// Default largest `POST /api/classify` body.
pub const DEFAULT_MAX_UPLOAD: usize = 8 << 20;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen (port 0 picks a free one; see [`Server::addr`]).
    pub addr: SocketAddr,
    /// Bearer token required on `/api/*`; mandatory off loopback.
    pub token: Option<String>,
    /// Largest accepted upload, bytes.
    pub max_upload: usize,
    /// Request worker threads.
    pub workers: usize,
    /// Most concurrent server-sent-event streams.
    pub max_streams: usize,
}

impl ServeOptions {
    /// Defaults for `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            token: None,
            max_upload: DEFAULT_MAX_UPLOAD,
            workers: 4,
            max_streams: 8,
        }
    }
}

/// Why the server did not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// Off loopback without a token.
    #[error(
        "refusing to serve on {0} without a token: the API would be open to the whole network. \
         Pass --http-token TOKEN (or set {TOKEN_ENV}), or bind to 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// A token too short to be a secret.
    #[error(
        "the HTTP token is {0} characters long; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 16`)"
    )]
    WeakToken(usize),
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        message: String,
    },
}

/// Checks the address/token combination before anything is loaded.
pub fn check_security(addr: &SocketAddr, token: Option<&str>) -> Result<(), ServeError> {
    match token {
        Some(t) if t.chars().count() < MIN_TOKEN_LEN => {
            Err(ServeError::WeakToken(t.chars().count()))
        }
        Some(_) => Ok(()),
        None if addr.ip().is_loopback() => Ok(()),
        None => Err(ServeError::TokenRequired(*addr)),
    }
}

/// A running server; stops when dropped.
pub struct Server {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    hub: Arc<Hub>,
}

/// What request handlers share.
pub(crate) struct Ctx {
    pub hub: Arc<Hub>,
    pub opts: ServeOptions,
    pub classifier: Option<Classifier>,
    pub stop: Arc<AtomicBool>,
    pub streams: AtomicUsize,
}

impl Server {
    /// Binds and starts the workers. `classifier` answers `POST /api/classify` (404
    /// without).
    pub fn start(
        opts: ServeOptions,
        hub: Arc<Hub>,
        classifier: Option<Classifier>,
    ) -> Result<Self, ServeError> {
        check_security(&opts.addr, opts.token.as_deref())?;
        let bind_err = |e: &dyn std::fmt::Display| ServeError::Bind {
            addr: opts.addr,
            message: e.to_string(),
        };
        let listener = listen(opts.addr).map_err(|e| bind_err(&e))?;
        let http = tiny_http::Server::from_listener(listener, None).map_err(|e| bind_err(&e))?;
        let addr = http.server_addr().to_ip().ok_or_else(|| ServeError::Bind {
            addr: opts.addr,
            message: "not an IP listener".into(),
        })?;
        let http = Arc::new(http);
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            hub: hub.clone(),
            opts: opts.clone(),
            classifier,
            stop: stop.clone(),
            streams: AtomicUsize::new(0),
        });
        let mut workers = Vec::new();
        for i in 0..opts.workers.max(1) {
            let (http, ctx) = (http.clone(), ctx.clone());
            let w = std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || worker(&http, &ctx))
                .map_err(|e| ServeError::Bind {
                    addr,
                    message: format!("cannot start a worker thread: {e}"),
                })?;
            workers.push(w);
        }
        tracing::info!(
            "http: listening on http://{addr}/ (token {})",
            if opts.token.is_some() {
                "required"
            } else {
                "off"
            }
        );
        Ok(Self {
            http,
            addr,
            stop,
            workers,
            hub,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends open event streams and joins the workers.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.hub.close();
        for _ in 0..self.workers.len() {
            self.http.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A listening socket with `TCP_NODELAY`, which the accepted connections inherit:
/// `tiny_http` writes a response through a 1 KiB buffer, so a larger one leaves in two
/// segments, and with Nagle's algorithm the second waits for the client's delayed ACK
/// (measured: 48 ms p50 for the 0.9 KB status instead of 0.1 ms).
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

fn worker(http: &tiny_http::Server, ctx: &Arc<Ctx>) {
    while !ctx.stop.load(Ordering::Relaxed) {
        match http.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(rq)) => api::handle(rq, ctx),
            Ok(None) => {}
            Err(e) => {
                if ctx.stop.load(Ordering::Relaxed) {
                    break;
                }
                tracing::debug!(error = %e, "http: receive failed");
            }
        }
    }
}

//! systemd readiness and watchdog notifications (`sd_notify`), written directly over the
//! Unix datagram socket named by `NOTIFY_SOCKET`. Without that variable, nothing happens.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// A notifier; inert when the process is not run by systemd with `Type=notify`.
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
}

enum Target {
    Path(std::path::PathBuf),
    #[cfg(target_os = "linux")]
    Abstract(Vec<u8>),
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Self {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|s| {
            let s = s.to_string_lossy().into_owned();
            if let Some(name) = s.strip_prefix('@') {
                #[cfg(target_os = "linux")]
                return Some(Target::Abstract(name.as_bytes().to_vec()));
                #[cfg(not(target_os = "linux"))]
                return None;
            }
            (!s.is_empty()).then(|| Target::Path(s.into()))
        });
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_micros);
        Self {
            target,
            watchdog,
            last_ping: None,
        }
    }

    /// Whether notifications go anywhere.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends a raw state string such as `READY=1`; errors are logged, never fatal. The
    /// socket is non-blocking: a notify socket nobody reads (its queue holds ~10 datagrams)
    /// must not freeze the kiosk loop.
    pub fn send(&self, state: &str) {
        let Some(target) = &self.target else { return };
        let socket = UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s));
        let result = socket.and_then(|sock| match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p),
            #[cfg(target_os = "linux")]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)
            }
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, state, "sd_notify failed");
        }
    }

    /// Tells systemd start-up is complete.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// Pets the watchdog, at most every half watchdog period (call once per frame).
    pub fn watchdog(&mut self) {
        let Some(period) = self.watchdog else { return };
        if self.last_ping.is_none_or(|t| t.elapsed() >= period / 2) {
            self.send("WATCHDOG=1");
            self.last_ping = Some(Instant::now());
        }
    }

    /// Tells systemd the service is stopping.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut n = Notifier {
            target: Some(Target::Path(path)),
            watchdog: Some(Duration::from_secs(10)),
            last_ping: None,
        };
        n.ready();
        n.watchdog();
        n.watchdog(); // rate-limited: no second datagram
        n.stopping();
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        server.set_nonblocking(true).unwrap();
        while let Ok(k) = server.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(got, ["READY=1", "WATCHDOG=1", "STOPPING=1"]);
        let inert = Notifier {
            target: None,
            watchdog: None,
            last_ping: None,
        };
        assert!(!inert.is_active());
        inert.ready();
    }
}

//! MQTT events for store systems (`sleeve-edge run --mqtt mqtt://host:port`), through
//! `rumqttc`:
//!
//! * `TOPIC/available`: `online` (retained) once connected; the broker publishes the last
//!   will `offline` (retained) when the kiosk disappears, and the kiosk itself on a clean stop;
//! * `TOPIC/status`: the JSON of `GET /api/status`, retained, on connect and every 30 s;
//! * `TOPIC/decision`: each decision or clear line, as `--json` writes it (QoS 1);
//! * `TOPIC/record`: each catalogue record line.
//!
//! The frame loop never waits on the broker: a feeder thread reads the [`Hub`] and hands
//! messages to the client's bounded queue without blocking (dropped, counted and logged
//! once when the queue is full); a connection thread reconnects with backoff (0.5 s doubling
//! to 30 s). The kiosk runs on whether the broker is there or not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{Client, Connection, Event, LastWill, Packet, QoS};
use serde_json::Value;
use thiserror::Error;

use crate::serve::Hub;

/// Environment variable for the broker password (when the URL names a user only).
pub const PASSWORD_ENV: &str = "SLEEVE_MQTT_PASSWORD";
/// Messages queued for the broker before new ones are dropped.
pub const QUEUE: usize = 256;
/// Interval of the retained status message.
pub const STATUS_EVERY: Duration = Duration::from_secs(30);

/// Broker and topic settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttOptions {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// User name and password, if any.
    pub login: Option<(String, String)>,
    /// Topic prefix (no wildcards, no trailing `/`).
    pub topic: String,
    /// MQTT client id.
    pub client_id: String,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

/// A bad `--mqtt` or `--mqtt-topic`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MqttConfigError {
    /// The URL does not parse.
    #[error("--mqtt '{url}': {reason} (expected mqtt://[user[:password]@]host[:port])")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The topic is not usable for publishing.
    #[error("--mqtt-topic '{topic}': {reason}")]
    Topic {
        /// The topic given.
        topic: String,
        /// What is wrong.
        reason: String,
    },
}

impl MqttOptions {
    /// Parses `mqtt://[user[:password]@]host[:port]` (port 1883 by default; `tcp://` is
    /// the same). A user without a password takes it from `SLEEVE_MQTT_PASSWORD`.
    pub fn parse(url: &str, topic: &str) -> Result<Self, MqttConfigError> {
        let bad = |reason: &str| MqttConfigError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = match url.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => rest,
            Some(("mqtts" | "ssl" | "ws" | "wss", _)) => {
                return Err(bad(
                    "TLS and websockets are not built in; use plain mqtt:// on the shop LAN or a local bridge",
                ));
            }
            Some((scheme, _)) => return Err(bad(&format!("unknown scheme '{scheme}'"))),
            None => return Err(bad("missing mqtt:// scheme")),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains(['/', '?', '#']) {
            return Err(bad("paths and query strings are not used"));
        }
        let (login, hostport) = match rest.rsplit_once('@') {
            Some((cred, hp)) => {
                let (user, pass) = match cred.split_once(':') {
                    Some((u, p)) => (u.to_string(), p.to_string()),
                    None => (
                        cred.to_string(),
                        std::env::var(PASSWORD_ENV).unwrap_or_default(),
                    ),
                };
                if user.is_empty() {
                    return Err(bad("empty user name"));
                }
                (Some((user, pass)), hp)
            }
            None => (None, rest),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [ipv6]:port
            let (h, after) = h.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 1883,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad(&format!("port '{p}' is not 1 to 65535"))),
            },
        };
        check_topic(topic)?;
        Ok(Self {
            host,
            port,
            login,
            topic: topic.to_string(),
            client_id: format!("sleeve-edge-{}", std::process::id()),
            keep_alive: Duration::from_secs(15),
            max_backoff: Duration::from_secs(30),
        })
    }

    fn sub(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.topic)
    }
}

fn check_topic(topic: &str) -> Result<(), MqttConfigError> {
    let reason = if topic.is_empty() {
        Some("empty")
    } else if topic.contains(['+', '#']) {
        Some("wildcards (+, #) cannot be published to")
    } else if topic.ends_with('/') || topic.starts_with('/') {
        Some("no leading or trailing '/'")
    } else if topic.contains('\0') || topic.len() > 200 {
        Some("too long or contains NUL")
    } else {
        None
    };
    match reason {
        Some(r) => Err(MqttConfigError::Topic {
            topic: topic.to_string(),
            reason: r.to_string(),
        }),
        None => Ok(()),
    }
}

/// Counters of a publisher.
#[derive(Debug, Default)]
pub struct MqttStats {
    /// Successful connections (1 after the first ConnAck).
    pub connects: AtomicU64,
    /// Messages handed to the client queue.
    pub queued: AtomicU64,
    /// Messages dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Connection errors seen.
    pub errors: AtomicU64,
}

/// A running publisher; [`MqttPublisher::stop`] says `offline` and disconnects.
pub struct MqttPublisher {
    client: Client,
    opts: MqttOptions,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Counters (tests, logs).
    pub stats: Arc<MqttStats>,
}

impl MqttPublisher {
    /// Starts the connection and feeder threads; returns at once (the broker may be down).
    pub fn start(opts: MqttOptions, hub: Arc<Hub>) -> std::io::Result<Self> {
        let mut o = rumqttc::MqttOptions::new(opts.client_id.clone(), opts.host.clone(), opts.port);
        o.set_keep_alive(opts.keep_alive);
        o.set_max_packet_size(256 << 10, 256 << 10);
        o.set_last_will(LastWill::new(
            opts.sub("available"),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some((u, p)) = &opts.login {
            o.set_credentials(u.clone(), p.clone());
        }
        let (client, connection) = Client::new(o, QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(MqttStats::default());
        let conn = {
            let (client, opts, stop, stats, hub) = (
                client.clone(),
                opts.clone(),
                stop.clone(),
                stats.clone(),
                hub.clone(),
            );
            std::thread::Builder::new()
                .name("mqtt-conn".into())
                .spawn(move || connection_loop(connection, &client, &opts, &stop, &stats, &hub))?
        };
        let feed = {
            let (client, opts, stop, stats) =
                (client.clone(), opts.clone(), stop.clone(), stats.clone());
            std::thread::Builder::new()
                .name("mqtt-feed".into())
                .spawn(move || feed_loop(&client, &opts, &stop, &stats, &hub))?
        };
        tracing::info!(
            broker = %format!("{}:{}", opts.host, opts.port),
            topic = %opts.topic,
            "mqtt: publishing decisions"
        );
        Ok(Self {
            client,
            opts,
            stop,
            threads: vec![conn, feed],
            stats,
        })
    }

    /// Publishes `offline` (retained), disconnects and joins the threads (at most ~2 s).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.client.try_publish(
            self.opts.sub("available"),
            QoS::AtLeastOnce,
            true,
            "offline",
        );
        let _ = self.client.try_disconnect();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for MqttPublisher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn publish(client: &Client, stats: &MqttStats, topic: String, retain: bool, payload: Vec<u8>) {
    match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
        Ok(()) => {
            stats.queued.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            if stats.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    "mqtt: queue full (broker unreachable?); dropping messages until it drains"
                );
            }
        }
    }
}

fn status_payload(hub: &Hub) -> Vec<u8> {
    serde_json::to_vec(&hub.status_json()).unwrap_or_default()
}

fn connection_loop(
    mut connection: Connection,
    client: &Client,
    opts: &MqttOptions,
    stop: &AtomicBool,
    stats: &MqttStats,
    hub: &Hub,
) {
    let initial = Duration::from_millis(500);
    let mut backoff = initial;
    let mut connected = false;
    let mut stopping_since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            // Give the offline message and DISCONNECT up to 2 s to go out.
            let t = *stopping_since.get_or_insert_with(Instant::now);
            if !connected || t.elapsed() > Duration::from_secs(2) {
                return;
            }
        }
        match connection.recv_timeout(Duration::from_millis(500)) {
            Err(rumqttc::RecvTimeoutError::Timeout) => {}
            Err(rumqttc::RecvTimeoutError::Disconnected) => return,
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                connected = true;
                backoff = initial;
                stats.connects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(broker = %format!("{}:{}", opts.host, opts.port), "mqtt: connected");
                publish(
                    client,
                    stats,
                    opts.sub("available"),
                    true,
                    b"online".to_vec(),
                );
                publish(client, stats, opts.sub("status"), true, status_payload(hub));
            }
            Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                stats.errors.fetch_add(1, Ordering::Relaxed);
                if connected || stats.errors.load(Ordering::Relaxed) == 1 {
                    tracing::warn!(error = %e, retry_in_s = backoff.as_secs_f32(), "mqtt: broker connection lost or refused; retrying");
                } else {
                    tracing::debug!(error = %e, "mqtt: reconnect failed");
                }
                connected = false;
                sleep_unless(stop, backoff);
                backoff = (backoff * 2).min(opts.max_backoff);
            }
        }
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
}

fn feed_loop(client: &Client, opts: &MqttOptions, stop: &AtomicBool, stats: &MqttStats, hub: &Hub) {
    let mut since = hub.newest_id();
    let mut last_status = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        for e in hub.wait_since(since, 64, Duration::from_millis(500)) {
            since = e.id;
            let leaf = if e.event == "record" {
                "record"
            } else {
                "decision"
            };
            let payload = serde_json::to_vec::<Value>(&e.line).unwrap_or_default();
            publish(client, stats, opts.sub(leaf), false, payload);
        }
        if last_status.elapsed() >= STATUS_EVERY {
            publish(client, stats, opts.sub("status"), true, status_payload(hub));
            last_status = Instant::now();
        }
        if hub.is_closed() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let o = MqttOptions::parse("mqtt://broker.lan", "sleeve/kiosk").unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.login.clone()),
            ("broker.lan", 1883, None)
        );
        let o = MqttOptions::parse("tcp://u:p@10.0.0.5:1884/", "shop/k1").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("10.0.0.5", 1884));
        assert_eq!(o.login, Some(("u".into(), "p".into())));
        let o = MqttOptions::parse("mqtt://[::1]:1999", "t").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("::1", 1999));
        for bad in [
            "broker:1883",
            "mqtts://b",
            "http://b",
            "mqtt://",
            "mqtt://b:0",
            "mqtt://b:x",
            "mqtt://b/x",
        ] {
            assert!(MqttOptions::parse(bad, "t").is_err(), "{bad}");
        }
        for bad in ["", "a/#", "a/+/b", "/a", "a/"] {
            assert!(matches!(
                MqttOptions::parse("mqtt://b", bad),
                Err(MqttConfigError::Topic { .. })
            ));
        }
    }
}

//! MQTT against a real broker: Debian's `mosquitto`, started here on a free loopback port
//! (installed by `scripts/setup.sh`; the tests say so and pass without checking anything
//! when it is missing).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions as ClientOptions, Packet, QoS};
use serde_json::{Value, json};
use sleeve_edge::mqtt::{MqttOptions, MqttPublisher};
use sleeve_edge::serve::{Hub, RunInfo};

use crate::serve::{fixture, spawn_run};

fn mosquitto() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker on 127.0.0.1:`port`, killed on drop.
struct Broker(Child);

impl Broker {
    fn start(bin: &Path, dir: &Path, port: u16) -> Self {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let t = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "mosquitto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Subscribes to `topic/#`; yields (topic, payload, retained).
fn subscribe(port: u16, topic: &str) -> Receiver<(String, Vec<u8>, bool)> {
    let mut o = ClientOptions::new(format!("test-sub-{port}"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(o, 16);
    client
        .subscribe(format!("{topic}/#"), QoS::AtLeastOnce)
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _client = client; // keeps the connection's request channel open
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx
                        .send((p.topic.clone(), p.payload.to_vec(), p.retain))
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    rx
}

/// Waits for a message on `topic` whose payload satisfies `want`.
fn expect(
    rx: &Receiver<(String, Vec<u8>, bool)>,
    topic: &str,
    within: Duration,
    want: impl Fn(&[u8], bool) -> bool,
) -> Vec<u8> {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((t, p, retain)) if t == topic && want(&p, retain) => return p,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no matching message on {topic}"),
            Err(e) => panic!("subscriber died: {e}"),
        }
    }
}

macro_rules! need_mosquitto {
    () => {
        match mosquitto() {
            Some(b) => b,
            None => {
                eprintln!(
                    "SKIPPED: mosquitto is not installed (scripts/setup.sh installs it); \
                     the MQTT test checked nothing"
                );
                return;
            }
        }
    };
}

#[test]
fn publishes_decisions_status_and_offline() {
    let bin = need_mosquitto!();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(&bin, dir.path(), port);
    let rx = subscribe(port, "test/k1");
    std::thread::sleep(Duration::from_millis(200)); // subscription in place
    let hub = Hub::new(RunInfo::default(), 16);
    let opts = MqttOptions::parse(&format!("mqtt://127.0.0.1:{port}"), "test/k1").unwrap();
    let publisher = MqttPublisher::start(opts, hub.clone()).unwrap();
    let within = Duration::from_secs(10);
    expect(&rx, "test/k1/available", within, |p, _| p == b"online");
    let status = expect(&rx, "test/k1/status", within, |_, _| true);
    let status: Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["status"], "online");
    assert!(status["camera"]["state"].is_string());

    hub.publish(json!({"event": "decision", "genre": "rock", "pa": false}));
    hub.publish(json!({"event": "record", "record": null}));
    let d: Value =
        serde_json::from_slice(&expect(&rx, "test/k1/decision", within, |_, _| true)).unwrap();
    assert_eq!(
        (d["genre"].as_str(), d["id"].as_u64()),
        (Some("rock"), Some(1))
    );
    let r: Value =
        serde_json::from_slice(&expect(&rx, "test/k1/record", within, |_, _| true)).unwrap();
    assert_eq!(r["id"], 2);

    publisher.stop();
    expect(&rx, "test/k1/available", within, |p, _| p == b"offline");
    // Retained for whoever subscribes later.
    let late = subscribe(port, "test/k1");
    expect(&late, "test/k1/available", within, |p, retained| {
        p == b"offline" && retained
    });
}

#[test]
fn keeps_running_while_the_broker_is_down_and_reconnects() {
    let bin = need_mosquitto!();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hub = Hub::new(RunInfo::default(), 16);
    let mut opts = MqttOptions::parse(&format!("mqtt://127.0.0.1:{port}"), "test/k2").unwrap();
    opts.max_backoff = Duration::from_millis(1000);
    let publisher = MqttPublisher::start(opts, hub.clone()).unwrap();
    // No broker: publishing decisions never blocks the caller.
    let t = Instant::now();
    for i in 0..50 {
        hub.publish(json!({"event": "decision", "genre": "pop", "n": i}));
    }
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        publisher
            .stats
            .connects
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert!(
        publisher
            .stats
            .errors
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    let _broker = Broker::start(&bin, dir.path(), port);
    let rx = subscribe(port, "test/k2");
    // The retained "online" shows the publisher reconnected by itself.
    expect(&rx, "test/k2/available", Duration::from_secs(15), |p, _| {
        p == b"online"
    });
    hub.publish(json!({"event": "decision", "genre": "jazz"}));
    expect(&rx, "test/k2/decision", Duration::from_secs(10), |p, _| {
        serde_json::from_slice::<Value>(p).unwrap()["genre"] == "jazz"
    });
    publisher.stop();
}

#[test]
fn a_killed_kiosk_leaves_its_last_will() {
    let bin = need_mosquitto!();
    let dir = tempfile::tempdir().unwrap();
    let (bundle, _) = fixture(dir.path());
    let port = free_port();
    let _broker = Broker::start(&bin, dir.path(), port);
    let rx = subscribe(port, "test/k3");
    std::thread::sleep(Duration::from_millis(200));
    let frames = dir.path().join("frames");
    let url = format!("mqtt://127.0.0.1:{port}");
    let (mut child, _) = spawn_run(
        &[
            "--bundle",
            bundle.to_str().unwrap(),
            "--files",
            frames.to_str().unwrap(),
            "--loop",
            "--mqtt",
            &url,
            "--mqtt-topic",
            "test/k3",
        ],
        false,
    );
    let within = Duration::from_secs(60);
    expect(&rx, "test/k3/available", within, |p, _| p == b"online");
    let d: Value =
        serde_json::from_slice(&expect(&rx, "test/k3/decision", within, |_, _| true)).unwrap();
    assert!(d["event"] == "decision" || d["event"] == "cleared", "{d}");
    // SIGKILL: no clean DISCONNECT, so the broker publishes the will.
    child.kill().unwrap();
    child.wait().unwrap();
    expect(&rx, "test/k3/available", Duration::from_secs(10), |p, _| {
        p == b"offline"
    });
}

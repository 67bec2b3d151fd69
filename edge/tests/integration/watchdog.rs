//! The systemd notification path of the real binary (issue 18): `sleeve-edge run` under a
//! local `NOTIFY_SOCKET` sends READY=1, pets the watchdog (WATCHDOG=1) while frames flow,
//! and says STOPPING=1 at the end.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use sleeve_edge::fixtures::{TinyBundle, tiny_cover, write_tiny_bundle};

#[test]
fn run_notifies_ready_watchdog_and_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("b");
    write_tiny_bundle(&bundle, &TinyBundle::default()).unwrap();
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for i in 0..3 {
        tiny_cover(i, 96, false)
            .save(frames.join(format!("f{i}.png")))
            .unwrap();
    }
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // Read while the kiosk runs, as systemd does (the socket's queue is short).
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 128];
        while let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let last = m == "STOPPING=1";
            got.push(m);
            if last {
                break;
            }
        }
        got
    });
    let out = Command::new(env!("CARGO_BIN_EXE_sleeve-edge"))
        .args(["run", "--bundle", bundle.to_str().unwrap(), "--whole-frame"])
        .args([
            "--files",
            frames.to_str().unwrap(),
            "--loop",
            "--max-frames",
            "40",
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        // A 2 ms watchdog: pinged at most every 1 ms, so several times in 40 frames.
        .env("WATCHDOG_USEC", "2000")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = reader.join().unwrap();
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    assert_eq!(
        got.last().map(String::as_str),
        Some("STOPPING=1"),
        "{got:?}"
    );
    let pings = got.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 2, "watchdog pinged {pings} times: {got:?}");
}

/// A notify socket nobody reads must not freeze the kiosk (found by the test above: the
/// socket's queue holds about 10 datagrams and the sends used to block).
#[test]
fn an_unread_notify_socket_does_not_block_the_kiosk() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("b");
    write_tiny_bundle(&bundle, &TinyBundle::default()).unwrap();
    let frame = tmp.path().join("f.png");
    tiny_cover(0, 96, false).save(&frame).unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let _sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sleeve-edge"))
        .args(["run", "--bundle", bundle.to_str().unwrap(), "--whole-frame"])
        .args([
            "--files",
            frame.to_str().unwrap(),
            "--loop",
            "--max-frames",
            "60",
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("sleeve-edge blocked on an unread notify socket");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
}

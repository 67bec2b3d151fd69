//! The local HTTP API on 127.0.0.1: JSON of a file run, the screen, server-sent events,
//! uploads (size limit, bad images), the token, and `sleeve-edge run --http` end to end.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde_json::Value;
use sleeve_edge::bundle::Bundle;
use sleeve_edge::display::png::write_png;
use sleeve_edge::engine::Engine;
use sleeve_edge::fixtures::{TinyBundle, tiny_cover, tiny_scene, write_tiny_bundle};
use sleeve_edge::kiosk::{Kiosk, KioskOptions, RunSummary};
use sleeve_edge::notify::Notifier;
use sleeve_edge::serve::{
    Classifier, Hub, RunInfo, ServeError, ServeOptions, Server, WebScreen, check_security,
};
use sleeve_edge::source::ImageFiles;
use sleeve_edge::{Pipeline, PipelineConfig};

const TOKEN: &str = "0123456789abcdef-test";

/// A tiny bundle and 12 camera-like frames: a hip-hop sleeve with a PA label (4), no
/// sleeve (4), a rock sleeve (4).
pub fn fixture(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let bundle = dir.join("bundle");
    write_tiny_bundle(&bundle, &TinyBundle::default()).unwrap();
    let corners = [(170.0, 80.0), (470.0, 95.0), (460.0, 390.0), (160.0, 380.0)];
    let hiphop = tiny_cover(2, 256, true);
    let rock = tiny_cover(4, 256, false);
    let mut files = Vec::new();
    for (i, cover) in [Some(&hiphop), None, Some(&rock)].into_iter().enumerate() {
        for s in 0..4u32 {
            let p = dir.join(format!("frames/f{:02}.png", files.len()));
            write_png(&p, &tiny_scene(640, 480, cover, corners, s + 10 * i as u32)).unwrap();
            files.push(p);
        }
    }
    (bundle, files)
}

fn engine(bundle: &Path) -> Engine {
    Engine::load(&Bundle::load(bundle).unwrap(), 1).unwrap()
}

fn hub_for(engine: &Engine) -> Arc<Hub> {
    Hub::new(
        RunInfo {
            bundle: "tiny-test-bundle".into(),
            labels: engine.labels().names().to_vec(),
            classifier_precision: "f32".into(),
            ..RunInfo::default()
        },
        64,
    )
}

/// Runs the kiosk over `files` once, publishing to `hub` (screens every frame).
fn run_kiosk(bundle: &Path, files: &[PathBuf], hub: &Arc<Hub>) -> RunSummary {
    let mut kiosk = Kiosk {
        pipeline: Pipeline::new(engine(bundle), PipelineConfig::default()),
        screens: vec![Box::new(WebScreen::new(hub.clone(), 1))],
        json: None,
        notifier: Notifier::from_env(),
        options: KioskOptions::default(),
    };
    let mut source = ImageFiles::from_paths(files.to_vec(), false);
    let summary = kiosk
        .run(&mut source, Arc::new(AtomicBool::new(false)), |r| {
            hub.observe(r)
        })
        .unwrap();
    drop(kiosk); // joins the screen encoder: the last screen is stored
    hub.finish(&summary);
    summary
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GET with an optional bearer token: status, content type and body.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut rq = agent().get(format!("http://{addr}{path}"));
    if let Some(t) = token {
        rq = rq.header("Authorization", format!("Bearer {t}"));
    }
    let mut r = rq.call().unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (r.status().as_u16(), ct, r.body_mut().read_to_vec().unwrap())
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (code, ct, body) = get(addr, path, None);
    assert_eq!(ct, "application/json", "{path}");
    (code, serde_json::from_slice(&body).unwrap())
}

fn post(addr: SocketAddr, path: &str, ct: &str, body: &[u8]) -> (u16, Value) {
    let mut r = agent()
        .post(format!("http://{addr}{path}"))
        .header("Content-Type", ct)
        .send(body)
        .unwrap();
    let code = r.status().as_u16();
    (
        code,
        serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap(),
    )
}

fn png_bytes(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn api_reports_a_file_run() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, files) = fixture(dir.path());
    let hub = hub_for(&engine(&bundle));
    let server = Server::start(ServeOptions::new(loopback()), hub.clone(), None).unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    let (code, s) = get_json(addr, "/api/status");
    assert_eq!(code, 200);
    assert_eq!(s["camera"]["state"], "waiting");
    assert_eq!(s["frames"], 0);
    let (code, _) = get_json(addr, "/api/screen.jpg");
    assert_eq!(code, 503, "no screen before the first frame");

    let summary = run_kiosk(&bundle, &files, &hub);
    assert_eq!(summary.frames, 12);

    let (code, s) = get_json(addr, "/api/status");
    assert_eq!(code, 200);
    assert_eq!(s["frames"], 12);
    assert_eq!(s["sleeves"], 8);
    assert_eq!(s["camera"]["state"], "ended");
    assert_eq!(s["bundle"]["name"], "tiny-test-bundle");
    assert_eq!(s["bundle"]["labels"][2], "hiphop");
    assert_eq!(s["decisions"], 3);
    assert_eq!(s["current"]["genre"], "rock");
    assert!(s["uptime_s"].as_f64().unwrap() > 0.0);

    let (code, d) = get_json(addr, "/api/decisions?since=0");
    assert_eq!(code, 200);
    let got: Vec<(u64, &str, Option<&str>, Option<bool>)> = d["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_u64().unwrap(),
                l["event"].as_str().unwrap(),
                l["genre"].as_str(),
                l["pa"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "decision", Some("hiphop"), Some(true)),
            (2, "cleared", None, None),
            (3, "decision", Some("rock"), Some(false)),
        ]
    );
    assert_eq!(
        (d["newest"].as_u64(), d["next"].as_u64()),
        (Some(3), Some(3))
    );
    let (_, d) = get_json(addr, "/api/decisions?since=1&limit=1");
    assert_eq!(d["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(d["decisions"][0]["id"], 2);
    assert_eq!(d["next"], 2);
    let (_, d) = get_json(addr, "/api/decisions?since=3");
    assert!(d["decisions"].as_array().unwrap().is_empty());
    let (code, e) = get_json(addr, "/api/decisions?since=abc");
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("since='abc'"), "{e}");
    let (code, e) = get_json(addr, "/api/decisions?limit=0");
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("limit=0"), "{e}");

    let (code, ct, jpeg) = get(addr, "/api/screen.jpg", None);
    assert_eq!((code, ct.as_str()), (200, "image/jpeg"));
    let screen = sleeve_shared::imageio::decode_rgb(&jpeg).unwrap();
    assert!(screen.width() >= 320 && screen.height() >= 240);

    let (code, ct, page) = get(addr, "/", None);
    assert_eq!((code, ct.as_str()), (200, "text/html; charset=utf-8"));
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("/api/events") && page.contains("Sleeve kiosk"));

    assert_eq!(get_json(addr, "/api/nothing").0, 404);
    assert_eq!(get(addr, "/favicon.ico", None).0, 404);
    assert_eq!(post(addr, "/api/status", "text/plain", b"x").0, 405);
    assert_eq!(
        post(addr, "/api/classify", "image/png", b"x").0,
        404,
        "no classifier on this server"
    );
    server.stop();
}

#[test]
fn uploads_are_limited_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, _) = fixture(dir.path());
    let engine = engine(&bundle);
    let hub = hub_for(&engine);
    let mut opts = ServeOptions::new(loopback());
    opts.max_upload = 20_000;
    let server = Server::start(opts, hub, Some(Classifier::ready(engine, None))).unwrap();
    let addr = server.addr();
    let cover = png_bytes(&tiny_cover(4, 64, false));
    assert!(cover.len() < 20_000);

    let (code, v) = post(
        addr,
        "/api/classify?name=rock.png&top_k=2",
        "image/png",
        &cover,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["image"], "rock.png");
    assert_eq!(v["top"][0]["genre"], "rock");
    assert_eq!(v["top"].as_array().unwrap().len(), 2);
    assert_eq!(v["pa"], false);
    assert!(v["latency_ms"].as_f64().unwrap() > 0.0);

    // Over the limit: refused with 413, whether the size is announced or streamed.
    let big = png_bytes(&image::RgbImage::from_fn(300, 300, |x, y| {
        image::Rgb([
            (x * 7 % 251) as u8,
            (y * 13 % 241) as u8,
            ((x ^ y) % 256) as u8,
        ])
    }));
    assert!(big.len() > 20_000);
    let (code, e) = post(addr, "/api/classify", "image/png", &big);
    assert_eq!(code, 413, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("20000-byte limit"),
        "{e}"
    );
    // Streamed (chunked, no length): the server stops reading past the limit; the client
    // gets the 413 (or, had it still been sending, a closed connection), never a 200.
    for _ in 0..3 {
        match agent()
            .post(format!("http://{addr}/api/classify"))
            .send(ureq::SendBody::from_reader(&mut &big[..]))
        {
            Ok(mut r) => {
                assert_eq!(r.status().as_u16(), 413, "chunked upload");
                assert!(r.body_mut().read_to_string().unwrap().contains("limit"));
            }
            Err(e) => assert!(matches!(e, ureq::Error::Io(_)), "{e}"),
        }
    }

    // Not an image, a cut-off JPEG, nothing, a form, a bad parameter: 400/415 with a reason.
    let (code, e) = post(addr, "/api/classify", "image/png", b"hello, not an image");
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("bad image"), "{e}");
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode_image(&tiny_cover(1, 128, false))
        .unwrap();
    let cut = jpeg.len() * 9 / 10;
    let (code, e) = post(addr, "/api/classify", "image/jpeg", &jpeg[..cut]);
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("truncated"), "{e}");
    let (code, e) = post(addr, "/api/classify", "image/png", b"");
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("empty"), "{e}");
    let (code, e) = post(
        addr,
        "/api/classify",
        "multipart/form-data; boundary=x",
        &cover,
    );
    assert_eq!(code, 415);
    assert!(
        e["error"].as_str().unwrap().contains("raw request body"),
        "{e}"
    );
    let (code, e) = post(addr, "/api/classify?views=99", "image/png", &cover);
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("views=99"), "{e}");
    // The server is still fine.
    assert_eq!(post(addr, "/api/classify", "image/png", &cover).0, 200);
    server.stop();
}

#[test]
fn token_is_required_off_loopback_and_checked() {
    let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let lan: SocketAddr = "192.168.1.20:8080".parse().unwrap();
    assert!(matches!(
        check_security(&any, None),
        Err(ServeError::TokenRequired(_))
    ));
    assert!(matches!(
        check_security(&lan, None),
        Err(ServeError::TokenRequired(_))
    ));
    assert!(matches!(
        check_security(&any, Some("short")),
        Err(ServeError::WeakToken(5))
    ));
    assert!(check_security(&any, Some(TOKEN)).is_ok());
    assert!(check_security(&loopback(), None).is_ok());
    assert!(check_security(&"[::1]:80".parse().unwrap(), None).is_ok());
    // Refused before the socket is bound.
    assert!(matches!(
        Server::start(
            ServeOptions::new(any),
            Hub::new(RunInfo::default(), 4),
            None
        ),
        Err(ServeError::TokenRequired(_))
    ));

    let mut opts = ServeOptions::new(loopback());
    opts.token = Some(TOKEN.into());
    let server = Server::start(opts, Hub::new(RunInfo::default(), 4), None).unwrap();
    let addr = server.addr();
    let (code, _, body) = get(addr, "/api/status", None);
    assert_eq!(code, 401);
    assert!(String::from_utf8_lossy(&body).contains("Bearer"));
    assert_eq!(
        get(addr, "/api/status", Some("0123456789abcdef-nope")).0,
        401
    );
    assert_eq!(get(addr, "/api/screen.jpg", None).0, 401);
    assert_eq!(get(addr, "/api/events", None).0, 401);
    assert_eq!(get(addr, "/api/status", Some(TOKEN)).0, 200);
    assert_eq!(
        get(addr, &format!("/api/status?token={TOKEN}"), None).0,
        200
    );
    assert_eq!(get(addr, "/", None).0, 200, "the page itself holds no data");
    server.stop();
}

#[test]
fn events_stream_delivers_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, files) = fixture(dir.path());
    let hub = hub_for(&engine(&bundle));
    let server = Server::start(ServeOptions::new(loopback()), hub.clone(), None).unwrap();
    let r = agent()
        .get(format!("http://{}/api/events", server.addr()))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers().get("content-type").unwrap().to_str().unwrap(),
        "text/event-stream"
    );
    let mut lines = BufReader::new(r.into_body().into_reader()).lines();
    // The decisions happen after the client connected.
    let kiosk = {
        let hub = hub.clone();
        std::thread::spawn(move || run_kiosk(&bundle, &files, &hub))
    };
    let mut events = Vec::new();
    let (mut id, mut kind) = (None, None);
    while events.len() < 3 {
        let line = lines.next().expect("stream ended early").unwrap();
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.parse::<u64>().unwrap());
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            let data: Value = serde_json::from_str(v).unwrap();
            assert_eq!(data["id"].as_u64(), id, "event id = line id");
            assert_eq!(data["event"].as_str(), kind.as_deref());
            events.push(data);
        }
    }
    kiosk.join().unwrap();
    assert_eq!(events[0]["event"], "decision");
    assert_eq!(events[0]["genre"], "hiphop");
    assert_eq!(events[0]["pa"], true);
    assert_eq!(events[1]["event"], "cleared");
    assert_eq!(events[2]["genre"], "rock");
    // Resuming from an id replays what followed it.
    let r = agent()
        .get(format!("http://{}/api/events", server.addr()))
        .header("Last-Event-ID", "2")
        .call()
        .unwrap();
    let mut lines = BufReader::new(r.into_body().into_reader()).lines();
    let first_id = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(v) = line.strip_prefix("id: ") {
            break v.to_string();
        }
    };
    assert_eq!(first_id, "3");
    server.stop();
}

/// `sleeve-edge run` with `args` in the background; returns it and its HTTP address
/// (read from the log) when `http` is set.
pub fn spawn_run(args: &[&str], http: bool) -> (Child, Option<SocketAddr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sleeve-edge"))
        .arg("run")
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove(sleeve_edge::serve::TOKEN_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if !http {
        return (child, None);
    }
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split('/').next().unwrap().to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("sleeve-edge did not start its server");
    (child, Some(addr.parse().unwrap()))
}

#[test]
fn run_serves_the_api_and_classifies_like_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, files) = fixture(dir.path());
    let frames = dir.path().join("frames");
    let (b, f) = (bundle.to_str().unwrap(), frames.to_str().unwrap());
    let (mut child, addr) = spawn_run(
        &[
            "--bundle",
            b,
            "--files",
            f,
            "--loop",
            "--http",
            "127.0.0.1:0",
        ],
        true,
    );
    let addr = addr.unwrap();
    let t = Instant::now();
    let status = loop {
        let (code, s) = get_json(addr, "/api/status");
        assert_eq!(code, 200);
        if s["decisions"].as_u64() >= Some(2) || t.elapsed() > Duration::from_secs(60) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["camera"]["state"], "running", "{status}");
    assert_eq!(status["camera"]["source"], "12 image file(s)");
    assert_eq!(status["bundle"]["classifier_precision"], "f32");
    assert!(status["decisions"].as_u64().unwrap() >= 2, "{status}");

    // POST /api/classify answers with `sleeve-edge classify`'s JSON, whole image and --find.
    let cover = dir.path().join("cover.png");
    write_png(&cover, &tiny_cover(3, 128, true)).unwrap();
    for (query, flag) in [("", None), ("?find=1", Some("--find"))] {
        let image = if flag.is_some() { &files[0] } else { &cover };
        let cli = Command::new(env!("CARGO_BIN_EXE_sleeve-edge"))
            .args(["classify", "--bundle", b])
            .args(flag)
            .arg(image)
            .output()
            .unwrap();
        assert!(
            cli.status.success(),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        let mut want: Value = serde_json::from_slice(&cli.stdout).unwrap();
        let mut bytes = Vec::new();
        std::fs::File::open(image)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let (code, mut got) = post(addr, &format!("/api/classify{query}"), "image/png", &bytes);
        assert_eq!(code, 200, "{got}");
        for v in [&mut want, &mut got] {
            let o = v.as_object_mut().unwrap();
            o.remove("latency_ms").unwrap();
            o.remove("image").unwrap();
        }
        assert_eq!(got, want);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn run_refuses_an_open_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec!["--http", "0.0.0.0:0"],
            "refusing to serve on 0.0.0.0:0 without a token",
        ),
        (
            vec!["--http", "0.0.0.0:0", "--http-token", "short"],
            "at least 16",
        ),
        (vec!["--http", "nowhere:port"], "--http 'nowhere:port'"),
        (
            vec!["--mqtt", "mqtts://broker"],
            if cfg!(feature = "mqtt") {
                "TLS"
            } else {
                "without the `mqtt` feature"
            },
        ),
    ] {
        // A missing bundle: the refusal must come first, before anything loads.
        let out = Command::new(env!("CARGO_BIN_EXE_sleeve-edge"))
            .args(["run", "--bundle"])
            .arg(dir.path().join("missing"))
            .args(["--files", "x.png"])
            .args(&args)
            .env_remove(sleeve_edge::serve::TOKEN_ENV)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("bundle"),
            "{args:?}: checked after the bundle: {err}"
        );
    }
}

#[test]
fn event_streams_are_limited() {
    let mut opts = ServeOptions::new(loopback());
    opts.max_streams = 1;
    let hub = Hub::new(RunInfo::default(), 4);
    let server = Server::start(opts, hub.clone(), None).unwrap();
    let url = format!("http://{}/api/events", server.addr());
    let first = agent().get(&url).call().unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let (code, _, body) = get(server.addr(), "/api/events", None);
    assert_eq!(code, 503);
    assert!(String::from_utf8_lossy(&body).contains("already open"));
    // The open stream still works.
    hub.publish(serde_json::json!({"event": "decision", "genre": "pop"}));
    let mut lines = BufReader::new(first.into_body().into_reader()).lines();
    let data = loop {
        let l = lines.next().unwrap().unwrap();
        if let Some(d) = l.strip_prefix("data: ") {
            break d.to_string();
        }
    };
    assert!(data.contains("\"pop\""));
    server.stop();
}

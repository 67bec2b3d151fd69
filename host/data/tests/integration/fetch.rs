//! The downloader against a local HTTP server on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{jpg, png, write};
use sleeve_data::Dataset;
use sleeve_data::dedupe::DedupeOptions;
use sleeve_data::fetch::FetchOptions;
use sleeve_data::pipeline::{ImportSource, fetch_into, import_into};
use sleeve_data::select::Selection;
use tiny_http::{Header, Response, Server, StatusCode};

struct TestServer {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    server: Arc<Server>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap()
}

fn serve() -> TestServer {
    let server = Arc::new(Server::http("127.0.0.1:0").unwrap());
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let (srv, h) = (server.clone(), hits.clone());
    std::thread::spawn(move || {
        for req in srv.incoming_requests() {
            let h = h.clone();
            std::thread::spawn(move || {
                let url = req.url().to_string();
                let n = {
                    let mut m = h.lock().unwrap();
                    let e = m.entry(url.clone()).or_insert(0);
                    *e += 1;
                    *e
                };
                let image = |bytes: Vec<u8>, ct: &str| {
                    Response::from_data(bytes).with_header(header("Content-Type", ct))
                };
                let _ = match url.as_str() {
                    "/ok.png" => req.respond(image(png(1), "image/png")),
                    "/ok2.jpg" => req.respond(image(jpg(2, 64), "image/jpeg")),
                    "/redirect" => req.respond(
                        Response::empty(StatusCode(302))
                            .with_header(header("Location", "/ok2.jpg")),
                    ),
                    "/flaky.png" if n <= 2 => req.respond(Response::empty(StatusCode(503))),
                    "/flaky.png" => req.respond(image(png(3), "image/png")),
                    "/slow.png" => {
                        std::thread::sleep(Duration::from_secs(3));
                        req.respond(image(png(4), "image/png"))
                    }
                    "/big.png" => req.respond(image(vec![0u8; 50_000], "image/png")),
                    "/bigchunked.png" => {
                        let data = std::io::Cursor::new(vec![0u8; 50_000]);
                        req.respond(Response::new(
                            StatusCode(200),
                            vec![header("Content-Type", "image/png")],
                            data,
                            None,
                            None,
                        ))
                    }
                    "/page.html" => req.respond(image(
                        b"<html>hi</html>".to_vec(),
                        "text/html; charset=utf-8",
                    )),
                    "/fake.png" => req.respond(image(b"GIF? no, garbage".to_vec(), "image/png")),
                    "/corrupt.png" => {
                        let p = png(5);
                        req.respond(image(p[..p.len() / 2].to_vec(), "image/png"))
                    }
                    "/loop" => req.respond(
                        Response::empty(StatusCode(302)).with_header(header("Location", "/loop")),
                    ),
                    _ => req.respond(Response::empty(StatusCode(404))),
                };
            });
        }
    });
    TestServer { base, hits, server }
}

fn opts() -> FetchOptions {
    FetchOptions {
        concurrency: 4,
        timeout: Duration::from_millis(400),
        retries: 3,
        max_bytes: 10_000,
        backoff: Duration::from_millis(10),
        save_every: Duration::from_millis(0),
        ..Default::default()
    }
}

#[test]
fn fetch_downloads_classifies_failures_and_resumes() {
    let srv = serve();
    let tmp = tempfile::tempdir().unwrap();
    let rows = [
        ("ok", "/ok.png"),
        ("ok-again", "/ok.png"),
        ("redirect", "/redirect"),
        ("flaky", "/flaky.png"),
        ("missing", "/missing.png"),
        ("slow", "/slow.png"),
        ("big", "/big.png"),
        ("bigchunked", "/bigchunked.png"),
        ("html", "/page.html"),
        ("fake", "/fake.png"),
        ("corrupt", "/corrupt.png"),
        ("loop", "/loop"),
    ];
    let mut csv = String::from("id,url,genre\n");
    for (id, path) in rows {
        csv.push_str(&format!("{id},{}{path},rock\n", srv.base));
    }
    write(&tmp.path().join("list.csv"), csv.as_bytes());
    let out = tmp.path().join("ds");
    let s = import_into(
        &out,
        &ImportSource::Csv(tmp.path().join("list.csv")),
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap();
    assert_eq!(s.ingest.urls, rows.len());

    // Interrupted before anything starts: nothing lost, nothing done.
    let stop = AtomicBool::new(true);
    let (r, _) = fetch_into(&out, &opts(), DedupeOptions::default(), &stop).unwrap();
    assert!(r.interrupted);
    assert_eq!(r.ok, 0);

    let stop = AtomicBool::new(false);
    let (r, d) = fetch_into(&out, &opts(), DedupeOptions::default(), &stop).unwrap();
    assert!(!r.interrupted);
    assert_eq!(r.todo, rows.len());
    assert_eq!(r.ok, 4, "{r:?}");
    let f = |k: &str| r.failed.get(k).copied().unwrap_or(0);
    assert_eq!(f("http 404"), 1, "{r:?}");
    assert_eq!(f("timeout"), 1, "{r:?}");
    assert_eq!(f("too large"), 2, "{r:?}");
    assert_eq!(f("not an image"), 2, "{r:?}");
    assert_eq!(f("undecodable"), 1, "{r:?}");
    assert_eq!(f("redirect loop"), 1, "{r:?}");
    // two rows with the same URL: one download; as exact duplicates one row is dropped.
    assert_eq!(srv.hits.lock().unwrap()["/ok.png"], 1);
    assert_eq!(d.exact_removed, 1);
    assert_eq!(
        srv.hits.lock().unwrap()["/flaky.png"],
        3,
        "retried after two 503s"
    );
    assert_eq!(
        srv.hits.lock().unwrap()["/missing.png"],
        1,
        "404 is not retried"
    );

    let ds = Dataset::open(&out).unwrap();
    let row = |id: &str| ds.rows().iter().find(|r| r.id == id).unwrap().clone();
    let ok = row("ok");
    assert!(ok.has_image() && ok.error.is_empty());
    assert_eq!(std::fs::read(out.join(&ok.path)).unwrap(), png(1));
    assert_eq!(row("redirect").width, Some(64));
    assert_eq!(row("missing").error, "http 404");
    assert!(!row("slow").has_image());
    assert_eq!(ds.records().len(), 3);

    // Resume: done rows are skipped; with retry_failed off, failures too.
    let o = FetchOptions {
        retry_failed: false,
        ..opts()
    };
    let (r, _) = fetch_into(&out, &o, DedupeOptions::default(), &stop).unwrap();
    assert_eq!(
        (r.todo, r.ok, r.already_done, r.skipped_failed),
        (0, 0, 3, 8)
    );
    assert_eq!(
        srv.hits.lock().unwrap()["/ok.png"],
        1,
        "nothing downloaded again"
    );
}

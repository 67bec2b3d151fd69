//! kill -9 and a full disk against the `sleeve` commands that write (issue 18): after a
//! kill the previous state is intact or a rerun completes it; when a write fails (a full
//! disk, injected with a file-size limit) the error names what was being written and
//! nothing earlier is lost.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::hostile::{bundle_is_valid, count_files, expect, sleeve_cmd, text};

/// Runs `sleeve args` where no file may grow past 8 KiB: writes past that fail with
/// EFBIG (SIGXFSZ ignored), the way writes fail on a full disk.
fn sleeve_on_a_full_disk(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sleeve"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("sh runs")
}

/// The run failed cleanly: exit 1, no panic, and the error names `needle`.
fn failed_cleanly(out: &Output, needle: &str) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "exit status:\n{t}");
    assert!(!t.contains("panicked"), "panicked:\n{t}");
    assert!(t.contains(needle), "expected '{needle}' in:\n{t}");
}

/// Starts `sleeve args` and kills it (SIGKILL) after `at`.
fn kill_after(args: &[&str], at: Duration) {
    let mut child = sleeve_cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sleeve starts");
    std::thread::sleep(at);
    let _ = child.kill();
    let _ = child.wait();
}

/// Kill moments spread over a run that takes `full` (including one past its end).
fn moments(full: Duration) -> impl Iterator<Item = Duration> {
    (0..6u32).map(move |i| full.mul_f64(0.15 + 0.2 * f64::from(i)))
}

/// A folder-per-genre tree of `per` distinct noisy 64x64 PNG covers for two genres (each
/// file is larger than the 8 KiB a "full disk" run may write).
fn covers(dir: &Path, per: u32) {
    for (g, base) in [("rock", [160u8, 30, 30]), ("pop", [30u8, 30, 160])] {
        let d = dir.join(g);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..per {
            let img = image::RgbImage::from_fn(64, 64, |x, y| {
                // a pattern of its own per cover (what dedupe sees) plus low noise (so
                // PNG cannot compress it below 8 KiB)
                let pattern = ((x * (i + 3) + y * (17 + 2 * base[0] as u32) + i * 29) % 50) as u8;
                let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ ((i + 7) * 97))
                    .wrapping_mul(2_246_822_519);
                let noise = |shift: u32| ((h >> shift) & 15) as u8;
                image::Rgb([
                    base[0]
                        .saturating_add(2 * pattern)
                        .saturating_add(noise(28)),
                    base[1].saturating_add(pattern).saturating_add(noise(20)),
                    base[2]
                        .saturating_add(((x * y) % 23) as u8)
                        .saturating_add(noise(12)),
                ])
            });
            img.save(d.join(format!("{g}{i}.png"))).unwrap();
        }
    }
}

/// `manifest.csv` rows, sorted (the order of rows is not part of the contract).
fn manifest_rows(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("manifest.csv")).unwrap();
    let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
    rows.sort();
    rows
}

#[test]
fn dataset_import_killed_or_out_of_space_resumes_to_the_same_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("covers");
    covers(&src, 12);
    let s = src.to_str().unwrap();
    let reference = tmp.path().join("ref");
    let r = reference.to_str().unwrap();
    let t0 = Instant::now();
    expect(
        &["dataset", "import", "--from", "folder", s, "--out", r],
        0,
        &[],
    );
    let full = t0.elapsed();
    let want = manifest_rows(&reference);
    assert!(want.len() > 20, "{want:?}");

    let d = tmp.path().join("d");
    let ds = d.to_str().unwrap();
    for at in moments(full) {
        kill_after(
            &["dataset", "import", "--from", "folder", s, "--out", ds],
            at,
        );
        if d.join("manifest.csv").exists() {
            // whatever was recorded is readable and a subset of the full import
            for row in manifest_rows(&d) {
                assert!(want.contains(&row), "kill after {at:?} left {row}");
            }
        }
    }
    expect(
        &["dataset", "import", "--from", "folder", s, "--out", ds],
        0,
        &[],
    );
    assert_eq!(manifest_rows(&d), want);

    // out of space: a clear error naming the dataset, and an earlier dataset untouched
    let e = tmp.path().join("e");
    let es = e.to_str().unwrap();
    let out = sleeve_on_a_full_disk(&["dataset", "import", "--from", "folder", s, "--out", es]);
    failed_cleanly(&out, es);
    assert_eq!(manifest_rows(&d), want);
}

#[test]
fn synth_killed_or_out_of_space_leaves_a_consistent_output() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    let ds = d.to_str().unwrap();
    let args = |per: &'static str| {
        vec![
            "synth",
            "covers",
            "--out",
            ds,
            "--size",
            "96",
            "--per-genre",
            per,
            "--force",
        ]
    };
    let consistent = |when: &str| {
        let coco: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("annotations.json"))
                .unwrap_or_else(|e| panic!("{when}: no annotations: {e}")),
        )
        .unwrap_or_else(|e| panic!("{when}: annotations unreadable: {e}"));
        let entries = coco["images"].as_array().unwrap().len();
        assert_eq!(count_files(&d, "jpg"), entries, "{when}: images = entries");
        entries
    };
    let t0 = Instant::now();
    expect(&args("6"), 0, &[]);
    let full = t0.elapsed();
    assert_eq!(consistent("first run"), 30);
    for at in moments(full) {
        kill_after(&args("3"), at);
        let n = consistent(&format!("kill after {at:?}"));
        assert!(n == 30 || n == 15, "kill after {at:?}: {n} entries");
    }
    let before = consistent("before the full disk");
    let out = sleeve_on_a_full_disk(&args("6"));
    failed_cleanly(&out, ds);
    assert_eq!(consistent("after the full disk"), before);
}

#[test]
fn export_out_of_space_keeps_the_previous_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    let bs = b.to_str().unwrap();
    expect(&["export", "demo", "--out", bs, "--size", "32"], 0, &[bs]);
    let old = bundle_is_valid(&b).unwrap();
    let out = sleeve_on_a_full_disk(&["export", "demo", "--out", bs, "--size", "32"]);
    failed_cleanly(&out, bs);
    let now = bundle_is_valid(&b).unwrap();
    assert_eq!(now.labels, old.labels);
    // and the next run with room succeeds
    expect(&["export", "demo", "--out", bs, "--size", "32"], 0, &[bs]);
    bundle_is_valid(&b).unwrap();
}

#[test]
fn training_killed_or_out_of_space_resumes_from_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("covers");
    covers(&data, 10);
    let run = tmp.path().join("run");
    let (dd, rs) = (data.to_str().unwrap(), run.to_str().unwrap());
    let train = |resume: bool| {
        let mut a = vec![
            "train",
            "classifier",
            "--arch",
            "scratch",
            "--data",
            dd,
            "--out",
            rs,
            "--size",
            "32",
            "--epochs",
            "4",
            "--batch-size",
            "4",
            "--patience",
            "0",
        ];
        if resume {
            a.push("--resume");
        }
        a
    };
    let t0 = Instant::now();
    expect(&train(false), 0, &[]);
    let full = t0.elapsed();
    std::fs::remove_dir_all(&run).unwrap();
    for at in moments(full) {
        kill_after(&train(true), at);
        let state = run.join("checkpoint").join("state.json");
        if state.exists() {
            let s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&state).unwrap())
                    .unwrap_or_else(|e| panic!("kill after {at:?}: checkpoint unreadable: {e}"));
            assert!(s["epoch"].as_u64().unwrap() <= 4, "{s}");
        }
    }
    let done = expect(&train(true), 0, &[]);
    assert!(!done.contains("panicked"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["epochs"].as_u64(), Some(4), "{summary}");
    // a full disk while checkpointing: a clear error naming the run
    let other = tmp.path().join("other");
    let os = other.to_str().unwrap();
    let out = sleeve_on_a_full_disk(&[
        "train",
        "classifier",
        "--arch",
        "scratch",
        "--data",
        dd,
        "--out",
        os,
        "--size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "4",
    ]);
    failed_cleanly(&out, os);
}

/// A local HTTP server answering `/NAME` with the bytes of `dir/NAME` (404 when absent),
/// each response after `delay`.
fn file_server(dir: &Path, delay: Duration) -> (String, std::sync::Arc<tiny_http::Server>) {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let (srv, dir) = (server.clone(), dir.to_path_buf());
    std::thread::spawn(move || {
        for req in srv.incoming_requests() {
            let path = dir.join(req.url().trim_start_matches('/'));
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = match std::fs::read(&path) {
                    Ok(bytes) => req.respond(tiny_http::Response::from_data(bytes).with_header(
                        tiny_http::Header::from_bytes("Content-Type", "image/png").unwrap(),
                    )),
                    Err(_) => req.respond(tiny_http::Response::empty(404)),
                };
            });
        }
    });
    (base, server)
}

#[test]
fn fetch_killed_or_out_of_space_resumes_to_the_same_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("covers");
    covers(&src, 6);
    let (base, _server) = file_server(&src, Duration::from_millis(30));
    let mut csv = String::from("id,url,genre\n");
    for g in ["rock", "pop"] {
        for i in 0..6 {
            csv.push_str(&format!("{g}{i},{base}/{g}/{g}{i}.png,{g}\n"));
        }
    }
    let list = tmp.path().join("list.csv");
    std::fs::write(&list, csv).unwrap();
    let ls = list.to_str().unwrap();
    let imported = |name: &str| {
        let d = tmp.path().join(name);
        let ds = d.to_str().unwrap().to_string();
        expect(
            &["dataset", "import", "--from", "csv", ls, "--out", &ds],
            0,
            &[],
        );
        (d, ds)
    };
    let fetch = |ds: &str| -> Vec<String> {
        ["dataset", "fetch", "--data", ds, "--concurrency", "1"]
            .map(String::from)
            .to_vec()
    };

    // the reference: one uninterrupted fetch
    let (reference, rs) = imported("ref");
    let f = fetch(&rs);
    let t0 = Instant::now();
    expect(&f.iter().map(String::as_str).collect::<Vec<_>>(), 0, &[]);
    let full = t0.elapsed();
    let want = manifest_rows(&reference);
    assert_eq!(count_files(&reference, "png"), 12, "{want:?}");

    // killed at six moments, then a rerun completes it to the same manifest
    let (d, ds) = imported("d");
    let f = fetch(&ds);
    let a: Vec<&str> = f.iter().map(String::as_str).collect();
    let pending = manifest_rows(&d);
    for at in moments(full) {
        kill_after(&a, at);
        assert_eq!(
            manifest_rows(&d).len(),
            pending.len(),
            "kill after {at:?}: rows lost or added"
        );
    }
    expect(&a, 0, &[]);
    assert_eq!(manifest_rows(&d), want);
    assert_eq!(count_files(&d, "png"), 12);

    // out of space: a clear error naming the dataset, no row lost, and the rerun with room
    // completes it
    let (e, es) = imported("e");
    let before = manifest_rows(&e);
    let f = fetch(&es);
    let a: Vec<&str> = f.iter().map(String::as_str).collect();
    let out = sleeve_on_a_full_disk(&a);
    failed_cleanly(&out, &es);
    assert_eq!(manifest_rows(&e).len(), before.len());
    expect(&a, 0, &[]);
    assert_eq!(manifest_rows(&e), want);
}

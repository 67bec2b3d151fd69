//! `sleeve` against hostile inputs, kill -9 and Ctrl-C.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sleeve_shared::fsutil::sha256_file;
use sleeve_shared::manifest::{BundleManifest, MANIFEST_FILE};

pub(crate) fn sleeve_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sleeve"));
    c.args(args).env("RUST_LOG", "warn");
    c
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `sleeve`; asserts exit `want`, no panic, and every needle in the output.
pub(crate) fn expect(args: &[&str], want: i32, needles: &[&str]) -> String {
    let out = sleeve_cmd(args).output().expect("sleeve runs");
    let t = text(&out);
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 101, "{args:?}: panicked:\n{t}");
    assert!(!t.contains("panicked"), "{args:?}: panicked:\n{t}");
    assert_eq!(code, want, "{args:?}: exit status\n{t}");
    for n in needles {
        assert!(t.contains(n), "{args:?}: expected '{n}' in:\n{t}");
    }
    t
}

/// Checks a bundle the way the kiosk does: a valid manifest and every file's SHA-256.
pub(crate) fn bundle_is_valid(dir: &Path) -> Result<BundleManifest, String> {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).map_err(|e| e.to_string())?;
    let m = BundleManifest::from_json(&text).map_err(|e| e.to_string())?;
    let mut files = m.classifier.files.clone();
    files.extend(m.detector.iter().flat_map(|d| d.model.files.clone()));
    for f in files {
        let h = sha256_file(&dir.join(&f.path)).map_err(|e| format!("{}: {e}", f.path))?;
        if h != f.sha256 {
            return Err(format!("{} fails its SHA-256 check", f.path));
        }
    }
    Ok(m)
}

fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Issue 18 (3): `S export demo --out b` killed at any moment must leave the old bundle
/// valid (12 of 30 kill timings broke it on 2539ea5).
#[test]
fn export_killed_mid_way_leaves_the_old_bundle_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    let bs = b.to_str().unwrap();
    let t0 = Instant::now();
    expect(&["export", "demo", "--out", bs, "--size", "32"], 0, &[bs]);
    let full = t0.elapsed();
    let old = bundle_is_valid(&b).unwrap();
    // Kill at spread-out moments of a re-export, including late ones (while files are
    // being written) and one past the end.
    for i in 0..8u32 {
        let at = full.mul_f64(0.3 + 0.1 * f64::from(i));
        let mut child = sleeve_cmd(&["export", "demo", "--out", bs, "--size", "32"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let m = bundle_is_valid(&b)
            .unwrap_or_else(|e| panic!("kill after {at:?} broke the bundle: {e}"));
        assert_eq!(m.labels, old.labels);
    }
    // The next run completes and removes what killed runs left beside the bundle.
    expect(&["export", "demo", "--out", bs, "--size", "32"], 0, &[bs]);
    bundle_is_valid(&b).unwrap();
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
    let names: Vec<String> = std::fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
    // A directory holding other things is not replaced.
    let other = tmp.path().join("docs");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = other.to_str().unwrap();
    expect(
        &["export", "demo", "--out", o, "--size", "32"],
        1,
        &[o, "notes.txt", "not part of a bundle"],
    );
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );
}

/// Issue 18 (1): a manifest number out of range is refused by `export verify`, not a panic.
#[test]
fn export_verify_refuses_hostile_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    let bs = b.to_str().unwrap();
    expect(&["export", "demo", "--out", bs, "--size", "32"], 0, &[]);
    let p = b.join(MANIFEST_FILE);
    let good = std::fs::read_to_string(&p).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 3] = [
        ("feature map #0 size is 100000", |v| {
            v["detector"]["anchors"]["feature_maps"][0]["size"] = 100_000.into()
        }),
        ("detector input_size is 0", |v| {
            v["detector"]["model"]["preprocess"]["input_size"] = 0.into()
        }),
        ("'pop' is listed twice", |v| {
            v["labels"]["names"][0] = "Pop".into()
        }),
    ];
    for (needle, edit) in cases {
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        edit(&mut v);
        std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
        expect(
            &["export", "verify", "--bundle", bs],
            1,
            &[needle, MANIFEST_FILE],
        );
    }
    // Under the bundle minimum (16) but over the demo's own (8): refused before writing.
    expect(
        &["export", "demo", "--out", bs, "--size", "12"],
        1,
        &["input_size is 12"],
    );
}

pub(crate) fn count_files(dir: &Path, ext: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += count_files(&p, ext);
        } else if p.extension().is_some_and(|x| x == ext) {
            n += 1;
        }
    }
    n
}

/// Issue 18 (8): `synth --force` replaces the output as a whole; conflicting genres are
/// an error.
#[test]
fn synth_force_replaces_the_whole_output() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    let ds = d.to_str().unwrap();
    let covers = |n: &str, extra: &[&str]| {
        let mut a = vec![
            "synth",
            "covers",
            "--out",
            ds,
            "--size",
            "48",
            "--per-genre",
        ];
        a.push(n);
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>, want: i32, needles: &[&str]| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        expect(&a, want, needles)
    };
    run(covers("4", &[]), 0, &[]);
    assert_eq!(count_files(&d, "jpg"), 20);
    run(covers("1", &[]), 1, &["already exists", "--force"]);
    run(covers("1", &["--force"]), 0, &[]);
    let coco: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("annotations.json")).unwrap())
            .unwrap();
    let images = coco["images"].as_array().unwrap().len();
    assert_eq!(images, 5);
    assert_eq!(count_files(&d, "jpg"), images, "images on disk = entries");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );

    run(
        covers("1", &["--force", "--genres", "hiphop,Hip-Hop,rap"]),
        1,
        &["--genres", "'Hip-Hop' is the same genre"],
    );
    assert_eq!(
        count_files(&d, "jpg"),
        5,
        "refused run left the output alone"
    );
    // A folder that is not a synth output is not taken over.
    let other = tmp.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "x").unwrap();
    let o = other.to_str().unwrap();
    expect(
        &["synth", "covers", "--out", o, "--per-genre", "1", "--force"],
        1,
        &[o, "not a synth output"],
    );
    assert!(other.join("keep.txt").exists());
}

/// Issue 14: `synth pa --designs` takes a design mix; a bad one is refused naming the
/// value, a single design is what the annotations record.
#[test]
fn synth_pa_designs_are_chosen_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("pa");
    let ds = d.to_str().unwrap();
    let base = [
        "synth",
        "pa",
        "--out",
        ds,
        "--count",
        "6",
        "--size",
        "64",
        "--label-prob",
        "1",
    ];
    let with = |designs: &'static str| {
        let mut a = base.to_vec();
        a.extend_from_slice(&["--designs", designs]);
        a
    };
    expect(
        &with("fancy=1"),
        2,
        &["--designs", "unknown design `fancy`", "wide_bar"],
    );
    expect(&with("classic=-2"), 2, &["--designs", "0..=1000"]);
    assert!(!d.exists(), "a refused run wrote nothing");
    expect(&with("two_line=1"), 0, &[]);
    let coco: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("annotations.json")).unwrap())
            .unwrap();
    let anns = coco["annotations"].as_array().unwrap();
    assert!(!anns.is_empty());
    assert!(anns.iter().all(|a| a["design"] == "two_line"), "{anns:?}");
    assert_eq!(coco["info"]["designs"]["two_line"], 1.0);
}

/// A local HTTP server whose every response takes `delay`.
fn slow_server(delay: Duration) -> (String, std::sync::Arc<tiny_http::Server>) {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let srv = server.clone();
    std::thread::spawn(move || {
        for req in srv.incoming_requests() {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = req.respond(tiny_http::Response::empty(404));
            });
        }
    });
    (base, server)
}

/// Issue 18 (10): a huge `--timeout` panicked; fetch exited 0 after SIGINT.
#[test]
fn fetch_timeout_range_and_interrupt_status() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let dss = ds.to_str().unwrap();
    expect(
        &[
            "dataset",
            "fetch",
            "--data",
            dss,
            "--timeout",
            "1000000000000000000000s",
        ],
        2,
        &["--timeout", "is too long"],
    );
    expect(
        &["dataset", "fetch", "--data", dss, "--timeout", "2h"],
        2,
        &["--timeout", "outside 1ms to 1h"],
    );
    expect(
        &["dataset", "fetch", "--data", dss, "--timeout=-3s"],
        2,
        &["--timeout"],
    );
    expect(
        &[
            "dataset",
            "fetch",
            "--data",
            dss,
            "--max-bytes",
            "10 parsecs",
        ],
        2,
        &["--max-bytes", "unknown size unit"],
    );
    expect(
        &["dataset", "fetch", "--data", dss],
        1,
        &[dss, "not a dataset directory"],
    );

    let (base, server) = slow_server(Duration::from_millis(400));
    let mut csv = String::from("id,url,genre\n");
    for i in 0..40 {
        csv.push_str(&format!("r{i},{base}/c{i}.jpg,rock\n"));
    }
    let list = tmp.path().join("list.csv");
    std::fs::write(&list, csv).unwrap();
    expect(
        &[
            "dataset",
            "import",
            "--from",
            "csv",
            list.to_str().unwrap(),
            "--out",
            dss,
        ],
        0,
        &[],
    );
    expect(
        &["dataset", "fetch", "--data", dss, "--concurrency", "0"],
        1,
        &["--concurrency"],
    );
    let child = sleeve_cmd(&[
        "dataset",
        "fetch",
        "--data",
        dss,
        "--concurrency",
        "1",
        "--retries",
        "0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(130), "exit after SIGINT:\n{t}");
    assert!(t.contains("interrupted: re-run the same command"), "{t}");
    // What was done is saved: the manifest reads back with some rows marked failed.
    let m = std::fs::read_to_string(ds.join("manifest.csv")).unwrap();
    assert!(m.contains("http 404"), "{m}");
    server.unblock();
}

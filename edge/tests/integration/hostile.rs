//! Hostile inputs against the `sleeve-edge` binary (issue 18): every case asserts the exit
//! status, that nothing panicked (exit code 101) and that the error names the input.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use sleeve_edge::fixtures::{TinyBundle, tiny_cover, write_tiny_bundle};
use sleeve_shared::manifest::MANIFEST_FILE;

/// Runs `sleeve-edge` with `args`; returns the exit code and stdout + stderr.
fn edge(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sleeve-edge"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("sleeve-edge runs");
    status_and_text(&out)
}

/// The exit code (-1 when killed by a signal) and stdout + stderr of a finished run.
fn status_and_text(out: &std::process::Output) -> (i32, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Asserts exit `code`, no panic, and every needle in the output.
fn expect(case: &str, (code, text): (i32, String), want: i32, needles: &[&str]) {
    assert_ne!(code, 101, "{case}: panicked:\n{text}");
    assert!(!text.contains("panicked"), "{case}: panicked:\n{text}");
    assert_eq!(code, want, "{case}: exit status\n{text}");
    for n in needles {
        assert!(text.contains(n), "{case}: expected '{n}' in:\n{text}");
    }
}

fn tiny_bundle(dir: &Path) -> String {
    write_tiny_bundle(dir, &TinyBundle::default()).unwrap();
    dir.display().to_string()
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join(MANIFEST_FILE);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn cover_png(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    tiny_cover(1, 96, false).save(&p).unwrap();
    p
}

fn cover_jpeg(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    tiny_cover(2, 96, false).save(&p).unwrap();
    p
}

/// A valid greyscale PNG of `w × h` pixels (tiny on disk when the pixels are uniform).
fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(&vec![0u8; (w * h) as usize], w, h, ExtendedColorType::L8)
        .unwrap();
    out
}

/// One manifest edit and what the refusal must say, checked with `doctor` and `classify`.
struct ManifestCase {
    name: &'static str,
    edit: fn(&mut serde_json::Value),
    needle: &'static str,
}

const MANIFEST_CASES: &[ManifestCase] = &[
    // Issue 18 (1): anchor generation overflowed (exit 101) or tried to allocate 43 GB.
    ManifestCase {
        name: "anchor map size 100000",
        edit: |v| v["detector"]["anchors"]["feature_maps"][0]["size"] = 100_000.into(),
        needle: "feature map #0 size is 100000",
    },
    ManifestCase {
        name: "anchor map size 30000",
        edit: |v| v["detector"]["anchors"]["feature_maps"][0]["size"] = 30_000.into(),
        needle: "feature map #0 size is 30000",
    },
    // Issue 18 (6): the bundle checks' gaps.
    ManifestCase {
        name: "input_size 1",
        edit: |v| v["classifier"]["preprocess"]["input_size"] = 1.into(),
        needle: "classifier input_size is 1,",
    },
    ManifestCase {
        name: "input_size 4096",
        edit: |v| v["classifier"]["preprocess"]["input_size"] = 4096.into(),
        needle: "classifier input_size is 4096",
    },
    ManifestCase {
        name: "duplicate labels",
        edit: |v| v["labels"]["names"][1] = "country".into(),
        needle: "'country' is listed twice",
    },
    ManifestCase {
        name: "blank label",
        edit: |v| v["labels"]["names"][3] = "  ".into(),
        needle: "genre #3 is blank",
    },
    ManifestCase {
        name: "abstain threshold 5",
        edit: |v| v["metrics"]["classifier.abstain_threshold"] = 5.0.into(),
        needle: "classifier.abstain_threshold is 5",
    },
    ManifestCase {
        name: "score threshold 2",
        edit: |v| v["detector"]["decode"]["score_threshold"] = 2.0.into(),
        needle: "score_threshold is 2",
    },
    ManifestCase {
        name: "iou threshold -0.5",
        edit: |v| v["detector"]["decode"]["iou_threshold"] = (-0.5).into(),
        needle: "iou_threshold is -0.5",
    },
    ManifestCase {
        name: "max detections 0",
        edit: |v| v["detector"]["decode"]["max_detections"] = 0.into(),
        needle: "max_detections is 0",
    },
    ManifestCase {
        name: "fusion strength -1",
        edit: |v| v["fusion"]["strength"] = (-1.0).into(),
        needle: "fusion strength is -1",
    },
    ManifestCase {
        name: "temperature 0",
        edit: |v| v["metrics"]["classifier.temperature"] = 0.0.into(),
        needle: "classifier.temperature is 0",
    },
    ManifestCase {
        name: "format_version as a string",
        edit: |v| v["format_version"] = "1".into(),
        needle: "format_version must be a whole number",
    },
    ManifestCase {
        name: "negative anchor scale",
        edit: |v| v["detector"]["anchors"]["feature_maps"][1]["scales"][0] = (-0.1).into(),
        needle: "feature map #1 scales",
    },
];

#[test]
fn hostile_manifests_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let img = cover_png(tmp.path(), "cover.png");
    for (i, c) in MANIFEST_CASES.iter().enumerate() {
        let dir = tmp.path().join(format!("b{i}"));
        let b = tiny_bundle(&dir);
        edit_manifest(&dir, c.edit);
        expect(
            &format!("doctor: {}", c.name),
            edge(&["doctor", "--bundle", &b]),
            1,
            &[c.needle, &b],
        );
        expect(
            &format!("classify: {}", c.name),
            edge(&["classify", "--bundle", &b, img.to_str().unwrap()]),
            1,
            &[c.needle, &b],
        );
    }
}

/// Issue 18 (6): classifier and detector files swapped (hashes valid) name the mismatch.
#[test]
fn swapped_model_files_name_the_output_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tiny_bundle(tmp.path());
    edit_manifest(tmp.path(), |v| {
        let c = v["classifier"]["files"][0].clone();
        let d = v["detector"]["model"]["files"][0].clone();
        v["classifier"]["files"][0] = d;
        v["detector"]["model"]["files"][0] = c;
    });
    let img = cover_png(tmp.path(), "cover.png");
    expect(
        "swapped files",
        edge(&["classify", "--bundle", &b, img.to_str().unwrap()]),
        1,
        &[
            "detector.onnx",
            "this file has outputs [boxes, logits], the manifest says [logits]",
        ],
    );
}

#[test]
fn broken_bundle_directories_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tiny_bundle(tmp.path());
    std::fs::write(tmp.path().join(MANIFEST_FILE), "{ not json").unwrap();
    expect(
        "manifest not JSON",
        edge(&["doctor", "--bundle", &b]),
        1,
        &["is not JSON", &b],
    );
    let missing = tmp.path().join("nope");
    let missing = missing.to_str().unwrap();
    expect(
        "no bundle",
        edge(&["doctor", "--bundle", missing]),
        1,
        &[missing],
    );
}

#[test]
fn hostile_images_are_refused_by_classify() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tiny_bundle(&tmp.path().join("b"));
    let dir = tmp.path();
    // Issue 18 (2): over the side limit (old builds decoded any size: 20000² took 1.6 GB).
    let bomb = dir.join("bomb.png");
    std::fs::write(&bomb, png_bytes(8193, 64)).unwrap();
    // Issue 18 (5): a JPEG cut in half decoded to a half-grey picture and was classified.
    let good = cover_jpeg(dir, "good.jpg");
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.jpg");
    // Cut inside the scan data (the headers parse; the picture would be half grey).
    std::fs::write(&cut, &bytes[..bytes.len() * 4 / 5]).unwrap();
    let garbage = dir.join("garbage.png");
    std::fs::write(&garbage, b"this is not a png").unwrap();
    let empty = dir.join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let cases: [(&Path, &str); 5] = [
        (&bomb, "8193x64 pixels, over the 8192x8192 limit"),
        (&cut, "truncated"),
        (&garbage, "not a recognised image format"),
        (&empty, "not a recognised image format"),
        (&dir.join("missing.jpg"), "cannot read"),
    ];
    for (path, needle) in cases {
        let p = path.to_str().unwrap();
        expect(
            &format!("classify {p}"),
            edge(&["classify", "--bundle", &b, p]),
            1,
            &[p, needle, "1 of 1 image(s) failed"],
        );
    }
    // The good file still classifies.
    expect(
        "good jpeg",
        edge(&["classify", "--bundle", &b, good.to_str().unwrap()]),
        0,
        &["good.jpg"],
    );
}

/// Issue 18 (7): bad files in `run --files` are reported, counted and skipped; the good
/// files after ten bad ones in a row are still processed; the exit status says it failed.
#[test]
fn run_files_reports_and_skips_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tiny_bundle(&tmp.path().join("b"));
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for i in 0..10 {
        std::fs::write(frames.join(format!("a{i:02}.jpg")), b"broken").unwrap();
    }
    for i in 0..3 {
        tiny_cover(i, 96, false)
            .save(frames.join(format!("b{i:02}.png")))
            .unwrap();
    }
    let json = tmp.path().join("out.jsonl");
    let (code, text) = edge(&[
        "run",
        "--bundle",
        &b,
        "--files",
        frames.to_str().unwrap(),
        "--whole-frame",
        "--every-frame",
        "--json",
        json.to_str().unwrap(),
    ]);
    expect(
        "run --files with 10 bad files",
        (code, text.clone()),
        1,
        &[
            "a00.jpg",
            "a09.jpg",
            "10 of 13 input(s) failed (10 unreadable file(s))",
        ],
    );
    assert!(!text.contains("retrying"), "{text}");
    let lines = std::fs::read_to_string(&json).unwrap();
    assert_eq!(lines.lines().count(), 3, "the 3 good files ran:\n{lines}");
}

#[test]
fn out_of_range_command_line_numbers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tiny_bundle(tmp.path());
    let img = cover_png(tmp.path(), "c.png");
    for (flag, value, needle) in [
        ("--abstain", "5", "outside 0 to 1"),
        ("--ema-alpha", "-1", "outside 0 to 1"),
        ("--abstain", "NaN", "outside 0 to 1"),
    ] {
        expect(
            &format!("run {flag} {value}"),
            edge(&[
                "run",
                "--bundle",
                &b,
                "--files",
                img.to_str().unwrap(),
                &format!("{flag}={value}"),
            ]),
            2,
            &[flag, needle],
        );
    }
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = empty.to_str().unwrap();
    expect(
        "run --files on an empty folder",
        edge(&["run", "--bundle", &b, "--files", e]),
        1,
        &[e, "no image files found"],
    );
    expect(
        "bad sequence pattern",
        edge(&["run", "--bundle", &b, "--sequence", "frames.png"]),
        1,
        &["frames.png", "no %d placeholder"],
    );
    expect(
        "sequence pattern padding to a billion digits",
        edge(&["run", "--bundle", &b, "--sequence", "f_%0999999999d.png"]),
        1,
        &["f_%0999999999d.png", "at most 20"],
    );
}

/// `sleeve-edge run --files DIR --json FILE` with no file allowed past `limit_kib` (writes
/// then fail with EFBIG, as on a full disk).
fn run_json_with_a_size_limit(
    b: &str,
    frames: &Path,
    json: &Path,
    limit_kib: u32,
) -> (i32, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
            limit_kib * 2
        ))
        .arg(env!("CARGO_BIN_EXE_sleeve-edge"))
        .args(["run", "--bundle", b, "--files"])
        .arg(frames)
        .args([
            "--whole-frame",
            "--every-frame",
            "--reuse-diff",
            "0",
            "--json",
        ])
        .arg(json)
        .env("RUST_LOG", "warn")
        .output()
        .expect("sh runs");
    status_and_text(&out)
}

/// Issue 18 (kill -9 and full disk): the kiosk's decisions file keeps every line written
/// before a full disk or a kill -9; a full disk stops the run with an error naming the file.
#[test]
fn decisions_file_survives_a_full_disk_and_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tiny_bundle(&tmp.path().join("b"));
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for i in 0..60 {
        tiny_cover(i % 5, 96, false)
            .save(frames.join(format!("f{i:03}.png")))
            .unwrap();
    }
    let whole_lines = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .matches('\n')
            .count()
    };
    // an earlier day's lines, then a run on a "full disk" (1 KiB per file)
    let json = tmp.path().join("decisions.jsonl");
    std::fs::write(&json, "{\"event\":\"earlier\"}\n").unwrap();
    let (code, text) = run_json_with_a_size_limit(&b, &frames, &json, 1);
    assert_ne!(code, 101, "panicked:\n{text}");
    assert_eq!(code, 1, "a full disk is an error:\n{text}");
    assert!(
        text.contains(json.to_str().unwrap()),
        "names the file:\n{text}"
    );
    let kept = std::fs::read_to_string(&json).unwrap();
    assert!(kept.starts_with("{\"event\":\"earlier\"}\n"), "{kept}");
    assert!(kept.len() <= 1024, "{} bytes", kept.len());

    // kill -9 mid-run: every complete line parses and the earlier ones are kept
    let json = tmp.path().join("killed.jsonl");
    std::fs::write(&json, "{\"event\":\"earlier\"}\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sleeve-edge"))
        .args(["run", "--bundle", &b, "--files"])
        .arg(&frames)
        .args([
            "--whole-frame",
            "--every-frame",
            "--reuse-diff",
            "0",
            "--json",
        ])
        .arg(&json)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while whole_lines(&json) < 5 && t0.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(text.starts_with("{\"event\":\"earlier\"}\n"));
    // a kill between two writes can leave at most one unterminated line at the end
    let complete = text.rsplit_once('\n').map_or("", |(a, _)| a);
    for line in complete.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    assert!(complete.lines().count() >= 5, "{text}");
}

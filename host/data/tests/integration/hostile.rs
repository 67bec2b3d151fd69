//! Hostile inputs to the importers and the downloader (issue 18): each case checks the
//! result, that the input is named, and that nothing bad was stored.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::common::{jpg, png, write};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use sleeve_data::dedupe::DedupeOptions;
use sleeve_data::fetch::FetchOptions;
use sleeve_data::pipeline::{ImportSource, ImportSummary, fetch_into, import_into};
use sleeve_data::select::Selection;
use sleeve_data::{DataError, Dataset};

fn import(out: &std::path::Path, src: ImportSource) -> Result<ImportSummary, DataError> {
    import_into(out, &src, &Selection::default(), DedupeOptions::default())
}

fn issues(s: &ImportSummary) -> Vec<String> {
    s.ingest.issues.iter().map(|i| i.to_string()).collect()
}

fn has(issues: &[String], needles: &[&str]) -> bool {
    issues.iter().any(|i| needles.iter().all(|n| i.contains(n)))
}

/// A valid greyscale PNG of `w × h` black pixels.
fn png_of(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(&vec![0u8; (w * h) as usize], w, h, ExtendedColorType::L8)
        .unwrap();
    out
}

/// Issue 18 (4): `ln -s .. covers/country/loopdir` imported every genre again as country.
#[test]
fn folder_symlink_out_of_the_genre_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("covers");
    for i in 0..3 {
        write(&src.join(format!("country/c{i}.png")), &png(10 + i));
        write(&src.join(format!("rock/r{i}.png")), &png(20 + i));
    }
    std::os::unix::fs::symlink("..", src.join("country/loopdir")).unwrap();
    // A top-level link back to the root would read the tree again as genre "again".
    std::os::unix::fs::symlink(".", src.join("again")).unwrap();
    // A link that stays inside its genre folder is fine (a sub-folder of the same genre).
    write(&src.join("rock/inner/r9.png"), &png(29));
    std::os::unix::fs::symlink("inner", src.join("rock/alias")).unwrap();
    let out = tmp.path().join("ds");
    let s = import(&out, ImportSource::Folder(src.clone())).unwrap();
    let all = issues(&s);
    assert!(
        has(
            &all,
            &["loopdir", "leads outside genre folder", "not followed"]
        ),
        "{all:?}"
    );
    assert!(has(&all, &["again", "not followed"]), "{all:?}");
    let ds = Dataset::open(&out).unwrap();
    let counts = ds.genre_counts();
    assert_eq!(counts["country"], 3, "{counts:?}");
    // r9 is reachable twice (inner/ and alias/): stored once, as rock.
    assert_eq!(counts["rock"], 4, "{counts:?}");
    assert!(!counts.contains_key("again"), "{counts:?}");
}

/// Issue 18 (2, 5): decompression bombs and truncated JPEGs are refused at import, named,
/// and not stored.
#[test]
fn oversized_and_truncated_images_are_not_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("covers");
    write(&src.join("rock/bomb.png"), &png_of(9000, 16));
    let j = jpg(3, 64);
    write(&src.join("rock/cut.jpg"), &j[..j.len() * 4 / 5]);
    write(&src.join("rock/cut-end.jpg"), &j[..j.len() - 2]);
    write(&src.join("rock/good.jpg"), &j);
    write(&src.join("rock/empty.png"), b"");
    let out = tmp.path().join("ds");
    let s = import(&out, ImportSource::Folder(src)).unwrap();
    let all = issues(&s);
    assert!(has(&all, &["bomb.png", "9000x16 pixels, over"]), "{all:?}");
    assert!(has(&all, &["cut.jpg", "truncated"]), "{all:?}");
    assert!(has(&all, &["cut-end.jpg", "truncated"]), "{all:?}");
    assert!(has(&all, &["empty.png"]), "{all:?}");
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.records().len(), 1, "only good.jpg is stored");
}

/// Issue 18 (9): an unterminated quote swallowed the rest of the file with "1 field(s)".
#[test]
fn csv_unterminated_quote_names_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("img/a.png"), &png(1));
    let csv = "path,genre\nimg/a.png,rock\n\"img/b.png,pop\nimg/a.png,jazz\nimg/a.png,soul\n";
    write(&tmp.path().join("list.csv"), csv.as_bytes());
    let err = import(
        &tmp.path().join("ds"),
        ImportSource::Csv(tmp.path().join("list.csv")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("list.csv"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("unterminated quote"), "{err}");
    assert!(
        !tmp.path().join("ds/manifest.csv").exists(),
        "nothing imported"
    );
}

/// Issue 18 (9): a 100k-character cell is not a genre name.
#[test]
fn csv_overlong_fields_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("img/a.png"), &png(1));
    write(&tmp.path().join("img/b.png"), &png(2));
    let long = "x".repeat(100_000);
    let csv = format!("path,genre\nimg/a.png,{long}\nimg/b.png,rock\n");
    write(&tmp.path().join("list.csv"), csv.as_bytes());
    let out = tmp.path().join("ds");
    let s = import(&out, ImportSource::Csv(tmp.path().join("list.csv"))).unwrap();
    let all = issues(&s);
    assert!(
        has(
            &all,
            &["list.csv:2", "100000 bytes long, over the 4096-byte limit"]
        ),
        "{all:?}"
    );
    // Under the cell limit but over the genre-name limit.
    let csv = format!("path,genre\nimg/a.png,{}\n", "y".repeat(500));
    write(&tmp.path().join("list2.csv"), csv.as_bytes());
    let s = import(&out, ImportSource::Csv(tmp.path().join("list2.csv"))).unwrap();
    assert!(
        has(&issues(&s), &["list2.csv:2", "64-character limit"]),
        "{:?}",
        issues(&s)
    );
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.genre_counts().keys().collect::<Vec<_>>(), ["rock"]);
}

fn itunes_feed(url: &str) -> String {
    format!(
        r#"{{"feed": {{"entry": [{{
            "id": {{"attributes": {{"im:id": "42"}}}},
            "im:name": {{"label": "Album"}},
            "im:artist": {{"label": "Artist"}},
            "im:image": [{{"label": "{url}", "attributes": {{"height": "170"}}}}],
            "category": {{"attributes": {{"im:id": "21", "label": "Rock"}}}}
        }}]}}}}"#
    )
}

/// Issue 18 (10): a UTF-8 BOM in an iTunes feed gave an unhelpful error.
#[test]
fn itunes_feed_with_a_bom_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("feed.json");
    let text = format!("\u{feff}{}", itunes_feed("https://example.invalid/a.jpg"));
    write(&feed, text.as_bytes());
    let s = import(
        &tmp.path().join("ds"),
        ImportSource::Itunes {
            feeds: vec![feed],
            art_size: None,
        },
    )
    .unwrap();
    assert_eq!(s.ingest.urls, 1, "{:?}", issues(&s));
}

/// Issue 18 (10): iTunes/MuMu kept `file://` URLs that the CSV importer refuses.
#[test]
fn non_http_urls_are_refused_by_every_importer() {
    let tmp = tempfile::tempdir().unwrap();
    let feed = tmp.path().join("feed.json");
    write(&feed, itunes_feed("file:///etc/passwd").as_bytes());
    let s = import(
        &tmp.path().join("ds"),
        ImportSource::Itunes {
            feeds: vec![feed],
            art_size: None,
        },
    )
    .unwrap();
    assert_eq!(s.ingest.urls, 0);
    assert!(
        has(
            &issues(&s),
            &["feed.json", "'file:///etc/passwd' is not http(s)"]
        ),
        "{:?}",
        issues(&s)
    );
    let csv = tmp.path().join("mumu.csv");
    write(&csv, b"amazon_id,genre\nB01,Rock\n");
    let meta = tmp.path().join("meta.json");
    write(
        &meta,
        br#"[{"asin": "B01", "imUrl": "file:///etc/shadow"}]"#,
    );
    let s = import(
        &tmp.path().join("ds2"),
        ImportSource::Mumu {
            csv,
            metadata: meta,
        },
    )
    .unwrap();
    assert_eq!(s.ingest.urls, 0);
    assert!(
        has(&issues(&s), &["file:///etc/shadow", "not http(s)"]),
        "{:?}",
        issues(&s)
    );
}

/// Issue 18 (10): `.tmp` files left by a kill -9 are removed by the next run.
#[test]
fn stale_temp_files_are_cleaned_up_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("covers/rock/a.png"), &png(1));
    let out = tmp.path().join("ds");
    import(&out, ImportSource::Folder(tmp.path().join("covers"))).unwrap();
    let dead = u32::MAX - 7;
    let stale = [
        out.join(format!(".manifest.csv.tmp.{dead}")),
        out.join(format!("images/ab/.abcd.png.tmp.{dead}")),
    ];
    let alive = out.join(format!(".other.csv.tmp.{}", std::process::id()));
    for p in stale.iter().chain([&alive]) {
        write(p, b"half a file");
    }
    let (r, _) = fetch_into(
        &out,
        &FetchOptions {
            timeout: Duration::from_millis(100),
            ..Default::default()
        },
        DedupeOptions::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(r.todo, 0);
    for p in &stale {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    assert!(alive.exists(), "a running process's temp file is kept");
}

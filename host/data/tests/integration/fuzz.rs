//! Property-based fuzzing (issue 18) of the importers a user feeds: image-list CSVs,
//! iTunes feeds, MuMu CSV + metadata, and a hand-edited `manifest.csv`. A few dozen cases
//! in the suite; `scripts/fuzz.sh DURATION` runs them long via `PROPTEST_CASES`.
//!
//! Properties: nothing panics; an error names the file; accepted rows are in range.

use proptest::prelude::*;
use sleeve_data::Dataset;
use sleeve_data::import::{csv_list, itunes, mumu};
use sleeve_testkit::fuzz::config;

/// CSV-ish text: mostly commas, quotes, newlines, BOMs and path-like words.
fn csv_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\u{feff}".to_string()),
        Just("path".to_string()),
        Just("genre".to_string()),
        Just("url".to_string()),
        Just("id".to_string()),
        Just("img/a.png".to_string()),
        Just("../a.png".to_string()),
        Just("/etc/passwd".to_string()),
        Just("https://example.invalid/x.jpg".to_string()),
        Just("file:///x".to_string()),
        Just("Hip-Hop/Rap".to_string()),
        "[a-z ]{0,6}",
        ".{0,4}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|v| v.concat())
}

fn json_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"feed\"".to_string()),
        Just("\"entry\"".to_string()),
        Just("\"im:image\"".to_string()),
        Just("\"label\"".to_string()),
        Just("\"attributes\"".to_string()),
        Just("\"height\"".to_string()),
        Just("\"category\"".to_string()),
        Just("\"im:id\"".to_string()),
        Just("\"asin\"".to_string()),
        Just("\"imUrl\"".to_string()),
        Just("'asin'".to_string()),
        Just("\"https://e.invalid/a.jpg\"".to_string()),
        Just("\"99999999999999999999\"".to_string()),
        Just("1e999".to_string()),
        Just("-1".to_string()),
        Just("null".to_string()),
        Just("\n".to_string()),
        Just("\u{feff}".to_string()),
        ".{0,3}",
    ];
    prop::collection::vec(token, 0..80).prop_map(|v| v.concat())
}

fn with_file<T>(name: &str, text: &str, f: impl FnOnce(&std::path::Path) -> T) -> T {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("img")).unwrap();
    std::fs::write(tmp.path().join("img/a.png"), b"not really").unwrap();
    let p = tmp.path().join(name);
    std::fs::write(&p, text).unwrap();
    f(&p)
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn csv_list_never_panics(text in csv_text()) {
        with_file("list.csv", &text, |p| match csv_list::parse(p) {
            Ok(parsed) => {
                for c in &parsed.candidates {
                    prop_assert!(c.origin.starts_with("list.csv:"));
                    prop_assert!(c.genre.len() <= csv_list::MAX_FIELD_BYTES);
                }
                for i in &parsed.issues {
                    prop_assert!(i.location.starts_with("list.csv"), "{i}");
                }
                Ok(())
            }
            Err(e) => {
                prop_assert!(e.to_string().contains("list.csv"), "{e}");
                Ok(())
            }
        })?;
    }

    #[test]
    fn itunes_feed_never_panics(text in json_text()) {
        with_file("feed.json", &text, |p| {
            if let Err(e) = itunes::parse(p, Some(600)) {
                prop_assert!(e.to_string().contains("feed.json"), "{e}");
            }
            Ok(())
        })?;
    }

    #[test]
    fn mumu_never_panics(csv in csv_text(), meta in json_text()) {
        let tmp = tempfile::tempdir().unwrap();
        let (c, m) = (tmp.path().join("mumu.csv"), tmp.path().join("meta.json"));
        std::fs::write(&c, &csv).unwrap();
        std::fs::write(&m, &meta).unwrap();
        if let Err(e) = mumu::parse(&c, &m) {
            let s = e.to_string();
            prop_assert!(s.contains("mumu.csv") || s.contains("meta.json"), "{s}");
        }
    }

    /// A hand-edited `manifest.csv` opens or is refused with its name.
    #[test]
    fn dataset_manifest_never_panics(body in csv_text()) {
        let tmp = tempfile::tempdir().unwrap();
        let header = "id,sha256,path,genre,source,split,url,artist,album,width,height,phash,group,error\n";
        std::fs::write(tmp.path().join("manifest.csv"), format!("{header}{body}")).unwrap();
        match Dataset::open(tmp.path()) {
            Ok(ds) => {
                let _ = ds.records();
                let _ = ds.genre_counts();
            }
            Err(e) => prop_assert!(e.to_string().contains("manifest.csv"), "{e}"),
        }
    }
}

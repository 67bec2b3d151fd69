//! `--from csv`, `--from mumu`, `--from itunes`, with their bad-input cases.

use crate::common::{png, write};
use sleeve_data::Dataset;
use sleeve_data::dedupe::DedupeOptions;
use sleeve_data::pipeline::{ImportSource, import_into};
use sleeve_data::select::Selection;

fn import(out: &std::path::Path, src: ImportSource) -> sleeve_data::pipeline::ImportSummary {
    import_into(out, &src, &Selection::default(), DedupeOptions::default()).unwrap()
}

#[test]
fn csv_list_with_paths_urls_and_bad_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let lists = tmp.path().join("lists");
    write(&lists.join("img/a.png"), &png(1));
    write(&lists.join("img/b.png"), &png(2));
    write(&tmp.path().join("outside.png"), &png(3));
    let csv = "\
path,genre,id,artist,album,extra
img/a.png,Rock,,Ann,First,x
img/b.png,Hip-Hop/Rap,b1,Bob,Second,y
https://example.invalid/c.jpg,pop,c1,Cy,Third,z
../outside.png,rock,o1,,,
img/missing.png,rock,m1,,,
img/a.png,,e1,,,
,rock,n1,,,
img/b.png,pop,b1,,,
https://example.invalid/d.jpg,pop,c1,,,
short
";
    write(&lists.join("list.csv"), csv.as_bytes());
    let out = tmp.path().join("ds");
    let s = import(&out, ImportSource::Csv(lists.join("list.csv")));
    let issues: Vec<String> = s.ingest.issues.iter().map(|i| i.to_string()).collect();
    let has = |loc: &str, needle: &str| {
        issues
            .iter()
            .any(|i| i.starts_with(&format!("list.csv:{loc}:")) && i.contains(needle))
    };
    assert!(has("5", "escapes"), "{issues:?}");
    assert!(has("6", "not found"), "{issues:?}");
    assert!(has("7", "genre"), "{issues:?}");
    assert!(has("8", "no image path"), "{issues:?}");
    assert!(has("9", "'b1'"), "{issues:?}"); // b1 again with another genre: both dropped
    assert!(has("10", "duplicate id 'c1'"), "{issues:?}");
    assert!(has("11", "malformed"), "{issues:?}");
    let ds = Dataset::open(&out).unwrap();
    let ids: Vec<&str> = ds.rows().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["img/a.png", "c1"]);
    let a = &ds.rows()[0];
    assert_eq!(
        (a.genre.as_str(), a.artist.as_str(), a.album.as_str()),
        ("rock", "Ann", "First")
    );
    assert!(a.has_image());
    let c = &ds.rows()[1];
    assert!(!c.has_image());
    assert_eq!(c.url, "https://example.invalid/c.jpg");
    assert_eq!(s.ingest.urls, 1);

    // a list without the needed columns is an error naming the file.
    write(&lists.join("bad.csv"), b"foo,bar\n1,2\n");
    let e = import_into(
        &out,
        &ImportSource::Csv(lists.join("bad.csv")),
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bad.csv") && e.contains("image column"), "{e}");
}

#[test]
fn mumu_joins_on_amazon_id_json_lines_and_array() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "\
amazon_id,album_mbid,genre,other
B001,mb1,Rock,x
B002,mb2,Pop,y
B003,mb3,Jazz,z
B004,mb4,Electronic,w
,mb5,Rock,v
";
    write(
        &tmp.path().join("MuMu_dataset_single-label.csv"),
        csv.as_bytes(),
    );
    let lines = "\
{\"asin\": \"B001\", \"title\": \"Rock One\", \"imUrl\": \"http://img.invalid/1.jpg\"}
{'asin': 'B002', 'imUrl': 'http://img.invalid/2.jpg', 'salesRank': {'Music': 1}}
{\"asin\": \"B004\", \"title\": \"No image\"}
not json at all
{\"asin\": \"B999\", \"imUrl\": \"http://img.invalid/999.jpg\"}
";
    write(&tmp.path().join("meta.json"), lines.as_bytes());
    let out = tmp.path().join("ds");
    let s = import(
        &out,
        ImportSource::Mumu {
            csv: tmp.path().join("MuMu_dataset_single-label.csv"),
            metadata: tmp.path().join("meta.json"),
        },
    );
    let issues: Vec<String> = s.ingest.issues.iter().map(|i| i.to_string()).collect();
    assert!(
        issues
            .iter()
            .any(|i| i.contains("B003") && i.contains("not found")),
        "{issues:?}"
    );
    assert!(
        issues
            .iter()
            .any(|i| i.contains("B004") && i.contains("no imUrl")),
        "{issues:?}"
    );
    assert!(
        issues.iter().any(|i| i.contains("meta.json:4")),
        "{issues:?}"
    );
    assert!(
        issues
            .iter()
            .any(|i| i.contains(":6") && i.contains("empty amazon_id")),
        "{issues:?}"
    );
    let ds = Dataset::open(&out).unwrap();
    let got: Vec<(&str, &str, &str)> = ds
        .rows()
        .iter()
        .map(|r| (r.id.as_str(), r.genre.as_str(), r.url.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("amazon:B001", "rock", "http://img.invalid/1.jpg"),
            ("amazon:B002", "pop", "http://img.invalid/2.jpg"),
        ]
    );
    assert_eq!(ds.rows()[0].album, "Rock One");

    // the same metadata as one JSON array.
    let array = r#"[{"asin": "B003", "imUrl": "http://img.invalid/3.jpg"}, {"title": "no asin"}]"#;
    write(&tmp.path().join("meta_array.json"), array.as_bytes());
    let s = import(
        &out,
        ImportSource::Mumu {
            csv: tmp.path().join("MuMu_dataset_single-label.csv"),
            metadata: tmp.path().join("meta_array.json"),
        },
    );
    assert_eq!(s.ingest.urls, 1);
    assert!(
        s.ingest
            .issues
            .iter()
            .any(|i| i.location.contains("meta_array.json[1]"))
    );
    assert!(
        Dataset::open(&out)
            .unwrap()
            .rows()
            .iter()
            .any(|r| r.id == "amazon:B003" && r.genre == "jazz")
    );
}

fn entry(id: &str, genre_id: &str, label: &str, name: &str) -> String {
    format!(
        r#"{{"im:name": {{"label": "{name}"}},
            "im:image": [
              {{"label": "https://is1.invalid/{id}/55x55bb.png", "attributes": {{"height": "55"}}}},
              {{"label": "https://is1.invalid/{id}/170x170bb.png", "attributes": {{"height": "170"}}}},
              {{"label": "https://is1.invalid/{id}/60x60bb.png", "attributes": {{"height": "60"}}}}],
            "im:artist": {{"label": "Artist {id}"}},
            "id": {{"label": "https://music.invalid/{id}", "attributes": {{"im:id": "{id}"}}}},
            "category": {{"attributes": {{"im:id": "{genre_id}", "term": "{label}", "label": "{label}"}}}}}}"#
    )
}

#[test]
fn itunes_feeds_map_subgenres_and_take_the_largest_image() {
    let tmp = tempfile::tempdir().unwrap();
    let feed1 = format!(
        r#"{{"feed": {{"entry": [{}, {}, {}, {{"im:name": {{"label": "broken"}}}}]}}}}"#,
        entry("1", "1152", "Hard Rock", "Loud"),
        entry("2", "18", "Hip-Hop/Rap", "Beats"),
        entry("3", "77777", "Polka Fusion", "Odd"),
    );
    // a single entry is an object, not a list; album 2 again under another genre.
    let feed2 = format!(
        r#"{{"feed": {{"entry": {}}}}}"#,
        entry("2", "14", "Pop", "Beats")
    );
    write(&tmp.path().join("rock.json"), feed1.as_bytes());
    write(&tmp.path().join("pop.json"), feed2.as_bytes());
    write(&tmp.path().join("junk.json"), b"{\"not\": \"a feed\"}");
    let out = tmp.path().join("ds");
    let s = import(
        &out,
        ImportSource::Itunes {
            feeds: vec![tmp.path().join("rock.json"), tmp.path().join("pop.json")],
            art_size: None,
        },
    );
    let issues: Vec<String> = s.ingest.issues.iter().map(|i| i.to_string()).collect();
    assert!(
        issues.iter().any(|i| i.contains("rock.json: entry 3")),
        "{issues:?}"
    );
    assert!(
        issues
            .iter()
            .any(|i| i.contains("itunes:2") && i.contains("dropped from both")),
        "{issues:?}"
    );
    let ds = Dataset::open(&out).unwrap();
    let got: Vec<(&str, &str, &str)> = ds
        .rows()
        .iter()
        .map(|r| (r.id.as_str(), r.genre.as_str(), r.url.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("itunes:1", "rock", "https://is1.invalid/1/170x170bb.png"),
            (
                "itunes:3",
                "polkafusion",
                "https://is1.invalid/3/170x170bb.png"
            ),
        ]
    );
    assert_eq!(ds.rows()[0].artist, "Artist 1");
    assert_eq!(ds.rows()[0].album, "Loud");

    let e = import_into(
        &tmp.path().join("ds2"),
        &ImportSource::Itunes {
            feeds: vec![tmp.path().join("junk.json")],
            art_size: Some(600),
        },
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("junk.json") && e.contains("feed.entry"), "{e}");
}

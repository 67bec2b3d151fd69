//! `--from folder`, dedupe and the public loading API.

use crate::common::{jpg, png, write};
use sleeve_data::dedupe::DedupeOptions;
use sleeve_data::pipeline::{ImportSource, import_into};
use sleeve_data::select::Selection;
use sleeve_data::{Dataset, Split, load_any};

#[test]
fn folder_import_validates_dedupes_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("covers");
    for i in 0..6 {
        write(&src.join(format!("Rock/r{i}.png")), &png(100 + i));
        write(&src.join(format!("Hip-Hop/h{i}.jpg")), &jpg(200 + i, 64));
    }
    // exact duplicate within a genre: one is kept.
    write(&src.join("Rock/r0-copy.png"), &png(100));
    // near duplicate within a genre (same picture, bigger, re-encoded): kept, grouped.
    write(&src.join("Hip-Hop/h0-big.jpg"), &jpg(200, 96));
    // the same image under two genres: dropped from both.
    write(&src.join("Rock/shared.png"), &png(999));
    write(&src.join("Hip-Hop/shared.png"), &png(999));
    // bad input: corrupt image, truncated image, non-image file, unusable genre folder.
    write(
        &src.join("Rock/corrupt.jpg"),
        b"\xff\xd8\xff\xe0 definitely not a jpeg",
    );
    let p = png(5);
    write(&src.join("Rock/truncated.png"), &p[..p.len() / 2]);
    write(&src.join("Rock/notes.txt"), b"hello");
    write(&src.join("---/x.png"), &png(7));
    // empty genres: a folder with nothing in it, one with only a non-image file.
    std::fs::create_dir_all(src.join("Jazz")).unwrap();
    write(&src.join("Blues/readme.md"), b"no covers yet");

    let out = tmp.path().join("ds");
    let s = import_into(
        &out,
        &ImportSource::Folder(src.clone()),
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap();

    let issues: Vec<String> = s.ingest.issues.iter().map(|i| i.to_string()).collect();
    let has = |needle: &str| issues.iter().any(|i| i.contains(needle));
    assert!(has("corrupt.jpg"), "{issues:?}");
    assert!(has("truncated.png"), "{issues:?}");
    assert!(has("non-image"), "{issues:?}");
    assert!(has("not a usable genre name"), "{issues:?}");
    assert!(has("genre 'jazz' has no images"), "{issues:?}");
    assert!(has("genre 'blues' has no images"), "{issues:?}");
    assert_eq!(s.dedupe.exact_removed, 1);
    assert_eq!(s.dedupe.cross_genre_removed, 2);
    assert_eq!(s.dedupe.near_groups, 1);

    let ds = Dataset::open(&out).unwrap();
    let counts = ds.genre_counts();
    assert_eq!(counts["rock"], 6);
    assert_eq!(counts["hiphop"], 7);
    assert!(ds.rows().iter().all(|r| !r.id.contains("shared")));
    // images are stored by content hash, original bytes.
    let r1 = ds.rows().iter().find(|r| r.id == "Rock/r1.png").unwrap();
    assert_eq!(
        r1.path,
        format!("images/{}/{}.png", &r1.sha256[..2], r1.sha256)
    );
    assert_eq!(std::fs::read(out.join(&r1.path)).unwrap(), png(101));
    // of two identical files the first in manifest (path) order stays.
    assert!(ds.rows().iter().any(|r| r.id == "Rock/r0-copy.png"));
    assert!(!ds.rows().iter().any(|r| r.id == "Rock/r0.png"));
    // near duplicates share a group key.
    let g: Vec<_> = ds.rows().iter().filter(|r| !r.group.is_empty()).collect();
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].group, g[1].group);
    // dropped rows are listed with reasons.
    let dropped = std::fs::read_to_string(out.join("dropped.csv")).unwrap();
    assert!(
        dropped.contains("same image under genres hiphop, rock"),
        "{dropped}"
    );
    assert!(
        dropped.contains("exact duplicate of Rock/r0-copy.png"),
        "{dropped}"
    );

    // re-importing is idempotent: same manifest, no repeated dropped.csv lines.
    let manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    let again = import_into(
        &out,
        &ImportSource::Folder(src),
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap();
    assert_eq!(again.ingest.already_present, 13);
    assert_eq!(
        std::fs::read_to_string(out.join("manifest.csv")).unwrap(),
        manifest
    );
    assert_eq!(
        std::fs::read_to_string(out.join("dropped.csv")).unwrap(),
        dropped
    );
}

#[test]
fn selection_flags_filter_genres() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("covers");
    for (k, (g, n)) in [("rock", 5), ("pop", 3), ("jazz", 1), ("Electronica", 4)]
        .into_iter()
        .enumerate()
    {
        for i in 0..n {
            write(&src.join(format!("{g}/{i}.png")), &png(k as u64 * 1000 + i));
        }
    }
    let out = tmp.path().join("ds");
    let sel = Selection {
        genres: None,
        min_per_genre: Some(2),
        top_genres: Some(2),
    };
    let s = import_into(
        &out,
        &ImportSource::Folder(src.clone()),
        &sel,
        DedupeOptions::default(),
    )
    .unwrap();
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.genres(), vec!["electronic", "rock"]);
    assert_eq!(s.selected_away.len(), 4);

    let out2 = tmp.path().join("ds2");
    let sel = Selection {
        genres: Some(vec!["Pop".into(), "ELECTRONIC".into()]),
        ..Default::default()
    };
    let s = import_into(
        &out2,
        &ImportSource::Folder(src),
        &sel,
        DedupeOptions::default(),
    )
    .unwrap();
    assert_eq!(s.ingest.filtered, 6);
    assert_eq!(
        Dataset::open(&out2).unwrap().genres(),
        vec!["electronic", "pop"]
    );
}

#[test]
fn load_any_reads_plain_folders_split_folders_and_datasets() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    write(&plain.join("Rock/a.png"), &png(1));
    write(&plain.join("Pop/b.png"), &png(2));
    let recs = load_any(&plain).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(
        recs.iter()
            .all(|r| r.split.is_none() && r.sha256.is_none() && r.path.is_absolute())
    );
    assert_eq!(sleeve_data::genres_of(&recs), vec!["pop", "rock"]);

    let splitted = tmp.path().join("splitted");
    write(&splitted.join("train/rock/a.png"), &png(1));
    write(&splitted.join("val/rock/b.png"), &png(2));
    write(&splitted.join("test/pop/c.png"), &png(3));
    let recs = load_any(&splitted).unwrap();
    let test: Vec<_> = recs
        .iter()
        .filter(|r| r.split == Some(Split::Test))
        .collect();
    assert_eq!(test.len(), 1);
    assert_eq!(test[0].genre, "pop");

    let out = tmp.path().join("ds");
    import_into(
        &out,
        &ImportSource::Folder(plain.clone()),
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap();
    let recs = load_any(&out).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.sha256.is_some() && r.path.is_file()));
    assert_eq!(load_any(out.join("manifest.csv")).unwrap().len(), 2);
    // a dataset directory is not an image folder: its images/ is not a genre.
    let e = import_into(
        &tmp.path().join("ds2"),
        &ImportSource::Folder(out.clone()),
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("is a dataset directory"), "{e}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = load_any(&empty).unwrap_err().to_string();
    assert!(e.contains("no genre sub-folders with images"), "{e}");
    // a plain tree is not a dataset directory: the error says how to make one.
    let e = Dataset::open(&plain).unwrap_err().to_string();
    assert!(
        e.contains("no manifest.csv") && e.contains("dataset import"),
        "{e}"
    );
    assert!(load_any(tmp.path().join("nope")).is_err());
}

#[test]
fn open_rejects_bad_manifests_with_line_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("manifest.csv");
    let header =
        "id,sha256,path,genre,source,split,url,artist,album,width,height,phash,group,error\n";
    std::fs::write(
        &m,
        format!("{header}a,ab,../../etc/passwd,rock,csv,,,,,,,,,\n"),
    )
    .unwrap();
    let e = Dataset::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains(":2:") && e.contains("not inside"), "{e}");
    std::fs::write(
        &m,
        format!("{header}a,,,rock,csv,,http://x,,,,,,,\na,,,pop,csv,,http://y,,,,,,,\n"),
    )
    .unwrap();
    let e = Dataset::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains(":3:") && e.contains("duplicate id"), "{e}");
    std::fs::write(
        &m,
        format!("{header}a,,,rock,csv,holdout,http://x,,,,,,,\n"),
    )
    .unwrap();
    let e = Dataset::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("manifest.csv:2"), "{e}");
}

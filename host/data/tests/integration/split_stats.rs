//! Split determinism, stratification and leakage; dedupe rules; stats and plot.

use std::collections::HashMap;

use crate::common::{png, write};
use sleeve_data::dedupe::{DedupeOptions, dedupe};
use sleeve_data::manifest::ManifestRow;
use sleeve_data::pipeline::{ImportSource, import_into, split_dataset};
use sleeve_data::select::Selection;
use sleeve_data::split::{SplitConfig, split_records, split_rows};
use sleeve_data::{Dataset, Split, load_any, stats};

fn rows(n_per_genre: &[(&str, usize)]) -> Vec<ManifestRow> {
    let mut out = Vec::new();
    for (g, n) in n_per_genre {
        for i in 0..*n {
            out.push(ManifestRow {
                id: format!("{g}/{i}"),
                sha256: format!("{g}{i:04}"),
                path: format!("images/{g}/{i}.png"),
                genre: g.to_string(),
                ..Default::default()
            });
        }
    }
    out
}

const CFG: SplitConfig = SplitConfig {
    val: 0.1,
    test: 0.2,
    seed: 7,
};

#[test]
fn split_is_deterministic_and_order_independent() {
    let mut a = rows(&[("rock", 100), ("pop", 50), ("jazz", 7)]);
    let mut b = a.clone();
    b.reverse();
    split_rows(&mut a, &CFG).unwrap();
    split_rows(&mut b, &CFG).unwrap();
    let map = |v: &[ManifestRow]| -> HashMap<String, Option<Split>> {
        v.iter().map(|r| (r.id.clone(), r.split)).collect()
    };
    assert_eq!(map(&a), map(&b));
    let mut c = a.clone();
    split_rows(&mut c, &SplitConfig { seed: 8, ..CFG }).unwrap();
    assert_ne!(map(&a), map(&c), "another seed gives another split");
}

#[test]
fn split_is_stratified_per_genre() {
    let mut r = rows(&[("rock", 100), ("pop", 50), ("jazz", 7)]);
    split_rows(&mut r, &CFG).unwrap();
    let count = |g: &str, s: Split| {
        r.iter()
            .filter(|x| x.genre == g && x.split == Some(s))
            .count()
    };
    assert_eq!(
        (
            count("rock", Split::Test),
            count("rock", Split::Val),
            count("rock", Split::Train)
        ),
        (20, 10, 70)
    );
    assert_eq!(
        (
            count("pop", Split::Test),
            count("pop", Split::Val),
            count("pop", Split::Train)
        ),
        (10, 5, 35)
    );
    // small genres still get at least one val and test image.
    assert!(count("jazz", Split::Test) >= 1 && count("jazz", Split::Val) >= 1);
    assert!(
        split_rows(
            &mut r,
            &SplitConfig {
                val: 0.5,
                test: 0.5,
                seed: 1
            }
        )
        .is_err()
    );
}

#[test]
fn near_duplicate_groups_never_straddle_splits() {
    let mut r = rows(&[("rock", 60)]);
    for (i, row) in r.iter_mut().enumerate() {
        row.group = format!("g{}", i / 6); // 10 groups of 6
    }
    // rows without an image get no split
    r.push(ManifestRow {
        id: "pending".into(),
        genre: "rock".into(),
        url: "http://x/y.jpg".into(),
        ..Default::default()
    });
    split_rows(&mut r, &CFG).unwrap();
    let mut by_group: HashMap<&str, Vec<Option<Split>>> = HashMap::new();
    for row in r.iter().filter(|x| x.has_image()) {
        by_group
            .entry(row.group.as_str())
            .or_default()
            .push(row.split);
    }
    for (g, s) in by_group {
        assert!(
            s.windows(2).all(|w| w[0] == w[1]),
            "group {g} split across {s:?}"
        );
    }
    assert!(r.iter().any(|x| x.split == Some(Split::Test)));
    assert_eq!(r.last().unwrap().split, None);
}

#[test]
fn in_memory_split_for_plain_folders() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..20 {
        write(&tmp.path().join(format!("rock/{i}.png")), &png(i));
    }
    let mut recs = load_any(tmp.path()).unwrap();
    split_records(&mut recs, &CFG).unwrap();
    let test = recs.iter().filter(|r| r.split == Some(Split::Test)).count();
    assert_eq!(test, 4);
    assert!(recs.iter().all(|r| r.split.is_some()));
}

#[test]
fn dedupe_rules() {
    let mk = |id: &str, genre: &str, sha: &str, phash: &str| ManifestRow {
        id: id.into(),
        genre: genre.into(),
        sha256: sha.into(),
        path: format!("images/{sha}.png"),
        phash: phash.into(),
        ..Default::default()
    };
    let mut r = vec![
        mk("a", "rock", "s1", "0000000000000000"),
        mk("a-copy", "rock", "s1", "0000000000000000"),
        mk("b", "rock", "s2", "0000000000000007"), // 3 bits from a: near duplicate
        mk("c", "pop", "s3", "ffffffffffffffff"),
        mk("c-near", "rock", "s4", "fffffffffffffffe"), // near c, other genre
        mk("d", "pop", "s5", "00000000ffffffff"),
        mk("d-copy", "jazz", "s5", "00000000ffffffff"), // same bytes, other genre
        mk("e", "pop", "s6", "0f0f0f0f0f0f0f0f"),
    ];
    let rep = dedupe(&mut r, DedupeOptions::default());
    let ids: Vec<&str> = r.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b", "e"]);
    assert_eq!(rep.exact_removed, 1);
    assert_eq!(rep.cross_genre_removed, 4);
    assert_eq!(rep.near_groups, 1);
    assert_eq!(r[0].group, "a");
    assert_eq!(r[1].group, "a");
    assert_eq!(rep.conflicts.len(), 2);

    let mut r2 = vec![
        mk("a", "rock", "s1", "0000000000000000"),
        mk("b", "rock", "s2", "0000000000000007"),
    ];
    let rep = dedupe(
        &mut r2,
        DedupeOptions {
            near_threshold: Some(4),
            drop_near: true,
        },
    );
    assert_eq!(rep.near_removed, 1);
    assert_eq!(r2.len(), 1);
    let mut r3 = vec![
        mk("a", "rock", "s1", "0000000000000000"),
        mk("b", "pop", "s2", "0000000000000007"),
    ];
    dedupe(
        &mut r3,
        DedupeOptions {
            near_threshold: None,
            drop_near: false,
        },
    );
    assert_eq!(r3.len(), 2, "near-duplicate detection off");
}

#[test]
fn split_command_and_stats_with_corrupt_file_and_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("covers");
    for i in 0..12 {
        write(&src.join(format!("rock/{i}.png")), &png(i));
        write(&src.join(format!("pop/{i}.png")), &png(100 + i));
    }
    for i in 0..2 {
        write(&src.join(format!("jazz/{i}.png")), &png(200 + i));
    }
    let out = tmp.path().join("ds");
    import_into(
        &out,
        &ImportSource::Folder(src),
        &Selection::default(),
        DedupeOptions::default(),
    )
    .unwrap();
    let sel = Selection {
        min_per_genre: Some(5),
        ..Default::default()
    };
    let dropped = split_dataset(
        &out,
        &SplitConfig {
            val: 0.25,
            test: 0.25,
            seed: 3,
        },
        &sel,
    )
    .unwrap();
    assert_eq!(dropped.len(), 2);
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.split_records(Split::Test).len(), 6);
    assert_eq!(ds.split_records(Split::Val).len(), 6);
    assert_eq!(ds.split_records(Split::Train).len(), 12);

    // damage one stored image: stats reports it.
    let victim = ds.rows()[0].clone();
    std::fs::write(out.join(&victim.path), b"garbage").unwrap();
    let st = stats::compute(&ds, true).unwrap();
    assert_eq!(st.bad_files.len(), 1);
    assert_eq!(st.bad_files[0].id, victim.id);
    assert_eq!(st.images, 23);
    assert_eq!(st.dropped, 2);
    assert_eq!(st.genres["pop"].total + st.genres["rock"].total, 23);
    assert_eq!(st.sizes.iter().map(|b| b.count).sum::<usize>(), 23);
    assert_eq!(st.width.max, 64);
    let text = stats::render_text(&st);
    assert!(text.contains("TOTAL") && text.contains("BAD"), "{text}");
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains("\"bad_files\""));

    let plot = out.join("stats.png");
    stats::plot(&st, &plot).unwrap();
    let img = image::open(&plot).unwrap();
    assert_eq!((img.width(), img.height()), (1400, 560));
}

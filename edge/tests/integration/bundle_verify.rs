//! Bundle verification: good bundles load, tampered or incompatible ones are refused.

use sleeve_edge::bundle::Bundle;
use sleeve_edge::fixtures::{TinyBundle, write_tiny_bundle};
use sleeve_shared::manifest::MANIFEST_FILE;

fn refused(dir: &std::path::Path) -> String {
    match Bundle::load(dir) {
        Ok(_) => panic!("bundle {} should have been refused", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_bundle_loads() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let b = Bundle::load(dir.path()).unwrap();
    assert_eq!(b.manifest(), &m);
    assert_eq!(b.models().len(), 2);
}

#[test]
fn tampered_model_is_refused_by_sha256() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    let p = dir.path().join("classifier.onnx");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x55; // same size, different content
    std::fs::write(&p, &bytes).unwrap();
    let e = refused(dir.path());
    assert!(
        e.contains("SHA-256") && e.contains("classifier.onnx"),
        "{e}"
    );

    // A truncated file is caught by its size.
    std::fs::write(&p, &bytes[..n / 2]).unwrap();
    let e = refused(dir.path());
    assert!(e.contains("bytes"), "{e}");

    std::fs::remove_file(&p).unwrap();
    let e = refused(dir.path());
    assert!(e.contains("cannot be read"), "{e}");
}

fn edit_manifest(dir: &std::path::Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join(MANIFEST_FILE);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn wrong_format_or_preprocessing_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    edit_manifest(dir.path(), |v| v["format_version"] = 99.into());
    let e = refused(dir.path());
    assert!(e.contains("format version 99"), "{e}");

    write_tiny_bundle(dir.path(), &TinyBundle::default()).unwrap();
    edit_manifest(dir.path(), |v| {
        v["classifier"]["preprocess"]["version"] = 7.into()
    });
    let e = refused(dir.path());
    assert!(e.contains("preprocessing version 7"), "{e}");

    std::fs::write(dir.path().join(MANIFEST_FILE), "not json").unwrap();
    assert!(refused(dir.path()).contains("not JSON"));

    let empty = tempfile::tempdir().unwrap();
    let e = Bundle::load(empty.path()).unwrap_err().to_string();
    assert!(e.contains("manifest.json"), "{e}");
}

//! `sleeve-edge doctor`: what this machine offers and whether the bundle works here.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::bundle::Bundle;
use crate::engine::{Engine, MULTITHREAD, ms};

/// CPU SIMD features tract can use, as detected at run time.
pub fn cpu_features() -> Value {
    #[cfg(target_arch = "x86_64")]
    {
        json!({
            "arch": "x86_64",
            "sse4.1": std::arch::is_x86_feature_detected!("sse4.1"),
            "avx": std::arch::is_x86_feature_detected!("avx"),
            "avx2": std::arch::is_x86_feature_detected!("avx2"),
            "fma": std::arch::is_x86_feature_detected!("fma"),
            "avx512f": std::arch::is_x86_feature_detected!("avx512f"),
            "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    }
    #[cfg(target_arch = "aarch64")]
    {
        json!({
            "arch": "aarch64",
            "neon": std::arch::is_aarch64_feature_detected!("neon"),
            "fp16": std::arch::is_aarch64_feature_detected!("fp16"),
            "dotprod": std::arch::is_aarch64_feature_detected!("dotprod"),
            "i8mm": std::arch::is_aarch64_feature_detected!("i8mm"),
            "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        json!({ "arch": std::env::consts::ARCH })
    }
}

/// Cameras: `{"found": [...]}`, with a `note` when there are none or an `error` when the
/// list cannot be read.
pub fn cameras() -> Value {
    #[cfg(feature = "camera")]
    {
        match crate::source::camera::list_cameras() {
            Ok(list) if list.is_empty() => json!({
                "found": [],
                "note": "no V4L2 camera found: plug in a USB (UVC) camera, or run with --files, --sequence or --synthetic",
            }),
            Ok(list) => json!({ "found": list }),
            Err(e) => json!({ "found": [], "error": e.to_string() }),
        }
    }
    #[cfg(not(feature = "camera"))]
    {
        json!({ "error": "built without the `camera` feature" })
    }
}

/// Verifies and loads the bundle and times one inference on a grey image.
pub fn bundle_check(dir: &Path, threads: usize) -> Value {
    let t = Instant::now();
    let bundle = match Bundle::load(dir) {
        Ok(b) => b,
        Err(e) => return json!({ "ok": false, "dir": dir, "error": e.to_string() }),
    };
    let verify_ms = ms(t);
    let t = Instant::now();
    let engine = match Engine::load(&bundle, threads) {
        Ok(e) => e,
        Err(e) => return json!({ "ok": false, "dir": dir, "error": e.to_string() }),
    };
    let load_ms = ms(t);
    let m = bundle.manifest();
    let grey = image::RgbImage::from_pixel(256, 256, image::Rgb([128, 128, 128]));
    let t = Instant::now();
    let run = engine.analyze(&grey);
    json!({
        "ok": run.is_ok(),
        "dir": dir,
        "name": m.name,
        "labels": m.labels.names(),
        "classifier": m.classifier.selected.as_str(),
        "detector": m.detector.as_ref().map(|d| d.model.selected.as_str()),
        "fusion": m.fusion.is_some(),
        "abstain_threshold": engine.abstain_threshold(),
        "verify_ms": verify_ms,
        "load_ms": load_ms,
        "first_inference_ms": ms(t),
        "error": run.err().map(|e| e.to_string()),
    })
}

/// The full report.
pub fn report(bundle_dir: &Path, threads: usize) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "cpu": cpu_features(),
        "multithread_build": MULTITHREAD,
        "cameras": cameras(),
        "framebuffer": Path::new("/dev/fb0").exists(),
        "systemd_notify": std::env::var_os("NOTIFY_SOCKET").is_some(),
        "bundle": bundle_check(bundle_dir, threads),
    })
}

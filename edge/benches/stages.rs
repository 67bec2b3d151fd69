//! `cargo bench -p sleeve-edge`: the kiosk's CPU stages outside the models, on generated
//! frames, with a peer in the same run where one exists. Prints one JSON object.
//!
//! * preprocessing (`sleeve_shared::preprocess`, area-averaging resize + normalisation to
//!   NCHW) vs the `image` crate's `resize` (Triangle filter) + the same normalisation loop;
//! * sleeve finding and rectification on a 640×480 frame;
//! * SSD decoding + NMS of 3,000 anchors;
//! * catalogue outline alignment (the recognition's verification step) from an outline
//!   18 px off, against a one-entry catalogue of the sleeve's own (textured) cover, with
//!   its descriptor evaluations, corner error and allocations;
//! * the finder's kernels on a 1280×720 frame against the library calls they replace, in
//!   the same run: the working-image shrink (`resize::triangle` vs `image`'s Triangle
//!   resize, the same pixels), the Gaussian blur (`finder::blur` vs imageproc's `gaussian_blur_f32`, the
//!   same pixels) and the rectification (`finder::rectify` vs imageproc's `warp_into`, the
//!   same pixels);
//! * the sleeve finder at several working sizes (its cost is the frame's largest non-model
//!   stage), with heap allocations per call;
//! * with `SLEEVE_BENCH_BUNDLE=DIR` (e.g. `models/default`), the models: the joint model vs
//!   the two separate models on one rectified sleeve, with allocations per analysis.
//!
//! Allocations are counted by a counting global allocator installed in this bench binary
//! only (the kiosk binary uses the system allocator untouched).
//!
//! Each number is the median of 7 batches; ratios (ours / peer) matter more than absolute
//! times on a shared machine.

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use image::RgbImage;
use image::imageops::{self, FilterType};
use serde_json::json;
use sleeve_edge::bundle::Bundle;
use sleeve_edge::catalogue::{AlignConfig, align};
use sleeve_edge::engine::{Engine, Layout, PlanOptions};
use sleeve_edge::finder::{FinderConfig, SleeveQuad, find_sleeve, rectify};
use sleeve_edge::fixtures::{tiny_cover, tiny_scene};
use sleeve_shared::catalogue::{CELL_DIM, DESCRIPTOR_DIM, Index, describe_quantized};
use sleeve_shared::detect::{AnchorConfig, DecodeParams, decode_detections};
use sleeve_shared::preprocess::preprocess;
use sleeve_shared::{PreprocessConfig, RgbView};

/// The system allocator, counting allocations (this bench binary only).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations and bytes requested by one call of `f` (after one warm-up call).
fn allocations(mut f: impl FnMut()) -> serde_json::Value {
    f();
    let (n0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        ALLOC_BYTES.load(Ordering::Relaxed),
    );
    f();
    json!({
        "count": ALLOCS.load(Ordering::Relaxed) - n0,
        "bytes": ALLOC_BYTES.load(Ordering::Relaxed) - b0,
    })
}

/// Median milliseconds per call of `f`, over 7 batches of `iters` calls.
fn time_ms(iters: u32, mut f: impl FnMut()) -> f64 {
    f();
    let mut batches: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e3 / f64::from(iters)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[3]
}

/// The peer: `image`'s Triangle resize of the centre square, then the same normalisation.
fn peer_preprocess(img: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let side = w.min(h);
    let square = imageops::crop_imm(img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    let s = cfg.input_size;
    let small = imageops::resize(&square, s, s, FilterType::Triangle);
    let plane = (s * s) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, p) in small.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (p.0[c] as f32 / 255.0 - cfg.mean[c]) / cfg.std[c];
        }
    }
    out
}

/// The joint model vs the two models of a bundle on one rectified sleeve.
/// imageproc's bilinear perspective warp, as the finder's rectification called it before
/// `finder::warp` (the peer of `rectify_1280x720_to_320`).
fn peer_rectify(frame: &RgbImage, corners: [(f32, f32); 4], side: u32) -> RgbImage {
    use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp_into};
    let s = side as f32;
    let p = Projection::from_control_points(corners, [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)])
        .expect("a proper quad");
    let mut out = RgbImage::new(side, side);
    warp_into(
        frame,
        p,
        Interpolation::Bilinear,
        Border::Replicate,
        &mut out,
    );
    out
}

fn bench_models(dir: &std::path::Path, rectified: &RgbImage) -> serde_json::Value {
    let bundle = match Bundle::load(dir) {
        Ok(b) => b,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut out = serde_json::Map::new();
    for layout in [Layout::Separate, Layout::Joint] {
        let name = format!("{layout:?}").to_lowercase();
        let engine = match Engine::load_layout(&bundle, PlanOptions::default(), None, layout) {
            Ok(e) => e,
            Err(e) => {
                out.insert(name, json!({ "error": e.to_string() }));
                continue;
            }
        };
        let run = || {
            black_box(engine.analyze(rectified).expect("analysis"));
        };
        let ms = time_ms(3, run);
        out.insert(
            name,
            json!({ "analyze_ms": ms, "allocations": allocations(run) }),
        );
    }
    json!(out)
}

fn main() {
    let cover = tiny_cover(2, 256, true);
    let corners = [(170.0, 80.0), (470.0, 95.0), (460.0, 390.0), (160.0, 380.0)];
    let frame = tiny_scene(640, 480, Some(&cover), corners, 7);
    let finder = FinderConfig::default();
    let quad = find_sleeve(&frame, &finder).expect("the generated scene has a sleeve");
    let rectified = rectify(&frame, &quad, 320).expect("rectifiable");

    let mut stages = serde_json::Map::new();
    for size in [224u32, 320] {
        let cfg = PreprocessConfig::signed_unit(size);
        let view = RgbView::new(rectified.width(), rectified.height(), rectified.as_raw())
            .expect("valid view");
        let ours = time_ms(50, || {
            black_box(preprocess(&view, &cfg).expect("preprocess"));
        });
        let peer = time_ms(50, || {
            black_box(peer_preprocess(&rectified, &cfg));
        });
        stages.insert(
            format!("preprocess_320_to_{size}"),
            json!({"ours_ms": ours, "peer_image_resize_ms": peer, "ours_over_peer": ours / peer}),
        );
    }
    let find = time_ms(5, || {
        black_box(find_sleeve(&frame, &finder));
    });
    let rect = time_ms(20, || {
        black_box(rectify(&frame, &quad, 320));
    });
    stages.insert(
        "find_sleeve_640x480".into(),
        json!({ "ours_ms": find, "allocations": allocations(|| { black_box(find_sleeve(&frame, &finder)); }) }),
    );
    let contours_only = FinderConfig {
        line_proposals: false,
        ..finder.clone()
    };
    let ms = time_ms(5, || {
        black_box(find_sleeve(&frame, &contours_only));
    });
    stages.insert(
        "find_sleeve_640x480_contours_only".into(),
        json!({ "ours_ms": ms, "over_default": ms / find }),
    );
    for work in [320u32, 240, 200] {
        let cfg = FinderConfig {
            work_size: work,
            ..FinderConfig::default()
        };
        let found = find_sleeve(&frame, &cfg);
        let err = found.map(|q| q.max_corner_error(&quad.corners));
        let ms = time_ms(5, || {
            black_box(find_sleeve(&frame, &cfg));
        });
        stages.insert(
            format!("find_sleeve_640x480_work{work}"),
            json!({
                "ours_ms": ms,
                "over_default": ms / find,
                "max_corner_diff_vs_default_px": err,
            }),
        );
    }
    // The finder's kernels on a camera-sized frame, each against the library call it
    // replaced (the same pixels).
    let scale = 2.0;
    let hd_corners = corners.map(|(x, y)| (x * scale, y * scale * 0.75));
    let hd = tiny_scene(1280, 720, Some(&cover), hd_corners, 7);
    let work = sleeve_edge::resize::triangle(&hd, 320, 180);
    let kernels = [
        (
            "shrink_1280x720_to_320x180",
            time_ms(50, || {
                black_box(sleeve_edge::resize::triangle(&hd, 320, 180));
            }),
            time_ms(20, || {
                black_box(imageops::resize(&hd, 320, 180, FilterType::Triangle));
            }),
        ),
        (
            "blur_320x180_sigma_1_72",
            time_ms(100, || {
                black_box(sleeve_edge::finder::blur::gaussian_blur(&work, 1.72));
            }),
            time_ms(50, || {
                black_box(imageproc::filter::gaussian_blur_f32(&work, 1.72));
            }),
        ),
        (
            "rectify_1280x720_to_320",
            time_ms(50, || {
                black_box(rectify(
                    &hd,
                    &SleeveQuad {
                        corners: hd_corners,
                        score: 1.0,
                    },
                    320,
                ));
            }),
            time_ms(20, || {
                black_box(peer_rectify(&hd, hd_corners, 320));
            }),
        ),
    ];
    for (name, ours, peer) in kernels {
        stages.insert(
            name.into(),
            json!({"ours_ms": ours, "peer_ms": peer, "ours_over_peer": ours / peer}),
        );
    }
    stages.insert(
        "rectify_to_320".into(),
        json!({ "ours_ms": rect, "allocations": allocations(|| { black_box(rectify(&frame, &quad, 320)); }) }),
    );
    // A cover with structure at several scales (the flat test cover above gives the
    // descriptor nothing to align to), in the same scene geometry.
    let textured = RgbImage::from_fn(256, 256, |x, y| {
        let b = ((x * 13 / 256) * 3 + (y * 11 / 256) * 5) % 7;
        image::Rgb([
            (b * 36) as u8,
            ((x + 2 * y) / 3) as u8,
            (255 - b * 30) as u8,
        ])
    });
    let textured_frame = tiny_scene(640, 480, Some(&textured), corners, 7);
    let entry = describe_quantized(
        &RgbView::new(textured.width(), textured.height(), textured.as_raw()).expect("valid view"),
    )
    .expect("describable");
    let index = Index::new(DESCRIPTOR_DIM, CELL_DIM, entry, vec![0]).expect("one row");
    let off = sleeve_edge::finder::SleeveQuad {
        corners: corners.map(|(x, y)| (x + 15.0, y - 10.0)),
        score: 1.0,
    };
    let cfg = AlignConfig::default();
    let aligned = align(&textured_frame, &off, &index, &[0], &cfg).expect("alignable");
    let ms = time_ms(3, || {
        black_box(align(&textured_frame, &off, &index, &[0], &cfg));
    });
    stages.insert(
        "align_outline_640x480".into(),
        json!({
            "ours_ms": ms,
            "descriptor_evaluations": aligned.evals,
            "ms_per_evaluation": ms / aligned.evals as f64,
            "score": aligned.score,
            "max_corner_error_px": aligned.quad.max_corner_error(&corners),
            "start_max_corner_error_px": off.max_corner_error(&corners),
            "allocations": allocations(|| { black_box(align(&textured_frame, &off, &index, &[0], &cfg)); }),
        }),
    );
    if let Some(dir) = std::env::var_os("SLEEVE_BENCH_BUNDLE") {
        let rectified = rectify(&frame, &quad, 320).expect("rectifiable");
        stages.insert(
            "models".into(),
            bench_models(std::path::Path::new(&dir), &rectified),
        );
    }

    let anchors_cfg = AnchorConfig::ssdlite_320();
    let anchors = anchors_cfg.anchors();
    let deltas: Vec<f32> = (0..anchors.len() * 4)
        .map(|i| ((i as f32) * 0.37).sin() * 0.5)
        .collect();
    let logits: Vec<f32> = (0..anchors.len())
        .map(|i| {
            if i % 97 == 0 {
                3.0
            } else {
                -4.0 + ((i as f32) * 0.11).cos()
            }
        })
        .collect();
    let params = DecodeParams::default();
    let decode = time_ms(200, || {
        black_box(
            decode_detections(&anchors, anchors_cfg.variances, &deltas, &logits, &params)
                .expect("shapes match"),
        );
    });
    stages.insert(
        "decode_nms_3000_anchors".into(),
        json!({ "ours_ms": decode, "anchors": anchors.len() }),
    );
    let report = json!({
        "bench": "sleeve-edge stages",
        "frame": [640, 480],
        "stages": stages,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("serialisable")
    );
}

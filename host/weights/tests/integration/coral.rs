//! The real Coral file, when present (`/work/shared/weights` or `$SLEEVE_WEIGHTS_DIR`):
//! structure, padding facts and a cat. Skips (and says why) when the files are absent.

use std::path::PathBuf;

use sleeve_shared::PreprocessConfig;
use sleeve_shared::preprocess::{RgbView, preprocess};
use sleeve_weights::{Padding, read_tflite, reference};

fn weights_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SLEEVE_WEIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/weights"));
    let need = [
        "mobilenet_v2_1.0_224_quant.tflite",
        "imagenet_labels.txt",
        "cat.bmp",
    ];
    match need.iter().find(|f| !dir.join(f).exists()) {
        Some(f) => {
            eprintln!("skipping: {} not found", dir.join(f).display());
            None
        }
        None => Some(dir),
    }
}

#[test]
fn coral_mobilenet_v2_recognises_the_cat() {
    let Some(dir) = weights_dir() else { return };
    let w = read_tflite(dir.join("mobilenet_v2_1.0_224_quant.tflite")).unwrap();
    assert_eq!(w.num_classes, 1001);
    assert!(w.background_class);
    assert_eq!(w.input_size, 224);
    assert_eq!(
        w.input_norm.preprocess_config(224),
        PreprocessConfig::signed_unit(224)
    );
    let stride2: Vec<usize> = w
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| b.stride() == 2)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(stride2, [1, 3, 6, 13]);
    assert!(w.convs().iter().all(|c| c.padding == Padding::TfSame));

    let labels: Vec<String> = std::fs::read_to_string(dir.join("imagenet_labels.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(labels.len(), 1001);
    let img = image::open(dir.join("cat.bmp")).unwrap().to_rgb8();
    let view = RgbView::new(img.width(), img.height(), img.as_raw()).unwrap();
    let input = preprocess(&view, &w.input_norm.preprocess_config(224)).unwrap();
    let logits = reference::forward(&w, &input).unwrap();
    let top = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap();
    assert!((282..=286).contains(&top), "top-1 is {top} {}", labels[top]);
    assert!(labels[top].contains("cat"), "{}", labels[top]);
}

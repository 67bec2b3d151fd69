//! Renders every sleeve-eval chart from synthetic data, to eyeball them:
//! `cargo run -p sleeve-eval --example plot_gallery -- <out-dir>`.

use std::path::PathBuf;

use sleeve_eval::classification::{calibration, classification_report};
use sleeve_eval::detection::{ImageDetections, detection_report, image_max_scores};
use sleeve_eval::pca::pca_2d;
use sleeve_eval::plot::{self, EpochMetrics};
use sleeve_shared::PaBox;
use sleeve_shared::detect::BoxF;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/plot_gallery".into()),
    );
    let names = ["country", "electronic", "hiphop", "pop", "rock"];
    let mut rng = sleeve_shared::rng::SplitMix64::new(42);

    // A fake 5-class classifier: the true class gets a boosted logit.
    let n = 600;
    let y: Vec<usize> = (0..n).map(|i| i % 5).collect();
    let probs: Vec<Vec<f32>> = y
        .iter()
        .map(|&t| {
            let logits: Vec<f32> = (0..5)
                .map(|c| 2.0 * rng.next_f32() + if c == t { 1.3 } else { 0.0 })
                .collect();
            sleeve_shared::results::softmax(&logits)
        })
        .collect();
    let report = classification_report(&y, &probs, &names)?;
    println!("{report}");
    plot::confusion_matrix(
        &out.join("confusion.png"),
        &report.confusion,
        &names,
        "Confusion matrix (synthetic)",
    )?;
    let curves: Vec<(&str, &_)> = names.iter().copied().zip(&report.roc_curves).collect();
    plot::roc_curves(
        &out.join("roc.png"),
        &curves,
        "ROC, one-vs-rest (synthetic)",
    )?;
    let f1: Vec<f64> = report.per_class.iter().map(|m| m.f1).collect();
    plot::bar_chart(
        &out.join("f1.png"),
        &names,
        &f1,
        "F1 per genre (synthetic)",
        "F1",
    )?;
    let cal = calibration(&y, &probs, 10)?;
    plot::reliability_diagram(
        &out.join("reliability.png"),
        &cal.bins,
        "Calibration (synthetic)",
    )?;

    // Training curves.
    let history: Vec<EpochMetrics> = (1..=20)
        .map(|e| {
            let e_f = e as f64;
            EpochMetrics {
                epoch: e,
                train_loss: 1.6 * (-e_f / 6.0).exp() + 0.25,
                val_loss: Some(1.6 * (-e_f / 7.0).exp() + 0.45 + 0.004 * e_f),
                train_acc: Some(0.95 - 0.75 * (-e_f / 5.0).exp()),
                val_acc: Some(0.78 - 0.6 * (-e_f / 5.0).exp()),
            }
        })
        .collect();
    plot::training_curves(
        &out.join("training.png"),
        &history,
        "Classifier training (synthetic)",
    )?;

    // Embeddings: 5 Gaussian-ish blobs in 32-D.
    let emb: Vec<Vec<f32>> = y
        .iter()
        .map(|&t| {
            (0..32)
                .map(|j| if j % 5 == t { 2.0 } else { 0.0 } + rng.next_f32() * 1.5)
                .collect()
        })
        .collect();
    let (pca, pts) = pca_2d(&emb)?;
    let ax = [
        format!(
            "PC 1 ({:.0} % of variance)",
            100.0 * pca.explained_variance_ratio[0]
        ),
        format!(
            "PC 2 ({:.0} % of variance)",
            100.0 * pca.explained_variance_ratio[1]
        ),
    ];
    plot::embedding_scatter(
        &out.join("embedding.png"),
        &pts,
        &y,
        &names,
        "Embeddings, PCA (synthetic)",
        [&ax[0], &ax[1]],
    )?;

    // A fake PA detector.
    let images: Vec<ImageDetections> = (0..200)
        .map(|i| {
            let has = i % 3 != 0;
            let gt = BoxF::from_centre(0.2 + 0.6 * rng.next_f32(), 0.8, 0.16, 0.1);
            let mut dets = Vec::new();
            if has && rng.next_f32() < 0.9 {
                let j = 0.03 * rng.next_f32();
                dets.push(PaBox {
                    bbox: BoxF::from_centre(gt.centre().0 + j, 0.8 - j, 0.16, 0.1),
                    score: 0.5 + 0.5 * rng.next_f32(),
                });
            }
            if rng.next_f32() < 0.3 {
                dets.push(PaBox {
                    bbox: BoxF::from_centre(0.5, 0.3, 0.1, 0.1),
                    score: 0.6 * rng.next_f32(),
                });
            }
            ImageDetections {
                ground_truth: if has { vec![gt] } else { vec![] },
                detections: dets,
            }
        })
        .collect();
    let det = detection_report(&images)?;
    println!("{}", serde_json::to_string_pretty(&det)?);
    let c75 = sleeve_eval::detection::pr_curve(&images, 0.75)?;
    plot::pr_curves(
        &out.join("pr.png"),
        &[("IoU 0.50", &det.pr_curve50), ("IoU 0.75", &c75)],
        "PA detector (synthetic)",
    )?;
    let (max_scores, _) = image_max_scores(&images);
    let scores: Vec<f64> = max_scores.iter().map(|&s| f64::from(s)).collect();
    plot::histogram(
        &out.join("max_scores.png"),
        &scores,
        20,
        "Max PA score per image (synthetic)",
        "score",
    )?;
    println!("wrote plots to {}", out.display());
    Ok(())
}

//! Images for calibration, parity and comparison: from a dataset directory or any
//! folder-per-genre tree (via `sleeve_data::load_any`), decoded and run through
//! `sleeve_shared::preprocess` — the same path as training and the edge.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use sleeve_shared::preprocess::{PreprocessConfig, preprocess_rgb};

use crate::runtime::F32Tensor;

/// A preprocessed image and where it came from.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Image file.
    pub path: PathBuf,
    /// Canonical genre from the dataset (may be empty for unlabelled folders).
    pub genre: String,
    /// Model input `[1, 3, S, S]`.
    pub tensor: F32Tensor,
}

/// Decodes and preprocesses one image file.
pub fn load_tensor(path: &Path, cfg: &PreprocessConfig) -> Result<F32Tensor> {
    let img = sleeve_shared::imageio::open_rgb(path)
        .with_context(|| format!("decoding image {}", path.display()))?;
    let data = preprocess_rgb(&img, cfg).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(F32Tensor::new(cfg.shape().to_vec(), data)?)
}

/// Up to `count` images of `dir`, evenly spaced over its records sorted by path (a
/// deterministic, genre-balanced-ish subset), preprocessed with `cfg`. Unreadable images
/// are skipped with a warning; at least one must load.
pub fn load_samples(dir: &Path, count: usize, cfg: &PreprocessConfig) -> Result<Vec<Sample>> {
    let mut records = sleeve_data::load_any(dir)
        .with_context(|| format!("reading images from {}", dir.display()))?;
    ensure!(!records.is_empty(), "{} holds no images", dir.display());
    records.sort_by(|a, b| a.path.cmp(&b.path));
    let n = count.min(records.len()).max(1);
    let picked: Vec<_> = (0..n).map(|i| &records[i * records.len() / n]).collect();
    let bar = crate::progress(picked.len() as u64, "loading images");
    let mut out = Vec::with_capacity(n);
    for r in picked {
        match load_tensor(&r.path, cfg) {
            Ok(tensor) => out.push(Sample {
                path: r.path.clone(),
                genre: r.genre.clone(),
                tensor,
            }),
            Err(e) => tracing::warn!("skipping {}: {e:#}", r.path.display()),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    ensure!(
        !out.is_empty(),
        "no image of {} could be loaded",
        dir.display()
    );
    Ok(out)
}

/// Deterministic random inputs in [-1, 1] (the preprocessed value range).
pub fn random_inputs(shape: &[usize], n: usize, seed: u64) -> Vec<F32Tensor> {
    let mut rng = sleeve_shared::rng::SplitMix64::new(seed);
    let len = shape.iter().product();
    (0..n)
        .map(|_| F32Tensor {
            shape: shape.to_vec(),
            data: rng.uniform(len, -1.0, 1.0),
        })
        .collect()
}

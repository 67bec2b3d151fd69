//! Batched inference over image files.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use rayon::prelude::*;
use sleeve_shared::preprocess::PreprocessConfig;

use crate::checkpoint::Classifier;
use crate::images::{batch_tensor, load_rgb, tensor_values, to_input};
use crate::mobilenet::MobileNetV2;

/// Images per forward pass.
pub const BATCH: usize = 16;

/// Softmax class probabilities of `model` (in inference mode) for each image, through the
/// shared preprocessing. Errors name the file that failed.
pub fn predict_probs(
    model: &MobileNetV2,
    images: &[PathBuf],
    preprocess: &PreprocessConfig,
) -> Result<Vec<Vec<f32>>> {
    run_batches(images, preprocess, |x| model.forward(x))
}

/// [`predict_probs`] for a classifier of either architecture.
pub fn predict_probs_any(
    model: &Classifier,
    images: &[PathBuf],
    preprocess: &PreprocessConfig,
) -> Result<Vec<Vec<f32>>> {
    run_batches(images, preprocess, |x| model.forward(x))
}

/// Embeddings of a classifier of either architecture for each image.
pub fn embed_images(
    model: &Classifier,
    images: &[PathBuf],
    preprocess: &PreprocessConfig,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(BATCH) {
        let x = load_batch(chunk, preprocess)?;
        let e = model.embed(x);
        let [n, d] = e.dims();
        let v = tensor_values(e)?;
        out.extend((0..n).map(|i| v[i * d..(i + 1) * d].to_vec()));
    }
    Ok(out)
}

fn load_batch(paths: &[PathBuf], preprocess: &PreprocessConfig) -> Result<burn::tensor::Tensor<4>> {
    let inputs: Vec<Vec<f32>> = paths
        .par_iter()
        .map(|p| to_input(&load_rgb(p)?, preprocess))
        .collect::<Result<_>>()?;
    Ok(batch_tensor(
        &inputs,
        preprocess.input_size as usize,
        &Device::flex(),
    ))
}

fn run_batches(
    images: &[PathBuf],
    preprocess: &PreprocessConfig,
    f: impl Fn(burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2>,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(BATCH) {
        let logits = f(load_batch(chunk, preprocess)?);
        let [n, c] = logits.dims();
        let p = tensor_values(softmax(logits, 1))?;
        out.extend((0..n).map(|i| p[i * c..(i + 1) * c].to_vec()));
    }
    Ok(out)
}

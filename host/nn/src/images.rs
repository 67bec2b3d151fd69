//! Image files → model input tensors, always through `sleeve_shared::preprocess`.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use sleeve_shared::preprocess::{PreprocessConfig, preprocess_rgb};

/// Decodes an image file to RGB8 through the shared front door (size limits, truncated
/// JPEGs refused), naming the file on failure.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    sleeve_shared::imageio::open_rgb(path)
        .with_context(|| format!("cannot decode image {}", path.display()))
}

/// Preprocesses an RGB image into one `3·S·S` CHW slice (the shared contract).
pub fn to_input(img: &RgbImage, cfg: &PreprocessConfig) -> Result<Vec<f32>> {
    preprocess_rgb(img, cfg).map_err(|e| anyhow::anyhow!("preprocessing failed: {e}"))
}

/// Stacks preprocessed images (each `3·S·S`) into a `[N, 3, S, S]` tensor.
pub fn batch_tensor(inputs: &[Vec<f32>], size: usize, device: &Device) -> Tensor<4> {
    let mut flat = Vec::with_capacity(inputs.len() * 3 * size * size);
    for v in inputs {
        flat.extend_from_slice(v);
    }
    Tensor::from_data(TensorData::new(flat, [inputs.len(), 3, size, size]), device)
}

/// A float tensor's values as a `Vec<f32>`.
pub fn tensor_values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read tensor data: {e:?}"))
}

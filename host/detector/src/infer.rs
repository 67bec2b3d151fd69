//! Running a detector on images: preprocessing (always `sleeve_shared::preprocess`),
//! batched forward passes and decoding with `sleeve_shared::detect::decode_detections` —
//! the same decoding the edge runs.

use anyhow::{Result, anyhow};
use burn::tensor::{Device, Tensor};
use image::RgbImage;
use sleeve_shared::detect::{Anchor, DecodeParams, decode_detections};
use sleeve_shared::results::PaBox;

use crate::checkpoint::DetectorMeta;
use crate::data::preprocess_image;
use crate::model::SsdLite;

/// A loaded detector ready for inference on a plain (non-autodiff) device.
#[derive(Debug)]
pub struct Detector {
    /// The network.
    pub model: SsdLite,
    /// Its metadata.
    pub meta: DetectorMeta,
    /// Anchors in output order.
    pub anchors: Vec<Anchor>,
    device: Device,
}

/// Raw outputs of a batch: per image, box deltas (`4·A`) and logits (`A`).
pub type RawOutputs = Vec<(Vec<f32>, Vec<f32>)>;

impl Detector {
    /// Wraps a model and its metadata.
    pub fn new(model: SsdLite, meta: DetectorMeta, device: &Device) -> Self {
        let anchors = meta.model.anchors.anchors();
        Self {
            model,
            meta,
            anchors,
            device: device.clone(),
        }
    }

    /// Loads a checkpoint (see [`crate::checkpoint::load_detector`]).
    pub fn load(path: &std::path::Path, device: &Device) -> Result<Self> {
        let (model, meta) = crate::checkpoint::load_detector(path, device)?;
        Ok(Self::new(model, meta, device))
    }

    /// Raw head outputs for `images` (any size; preprocessing crops and resizes).
    pub fn raw(&self, images: &[RgbImage]) -> Result<RawOutputs> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.meta.preprocess.input_size as usize;
        let mut input = Vec::with_capacity(images.len() * 3 * s * s);
        for im in images {
            input.extend(preprocess_image(im, &self.meta.preprocess)?);
        }
        let x = Tensor::<1>::from_floats(input.as_slice(), &self.device).reshape([
            images.len(),
            3,
            s,
            s,
        ]);
        let (b, l) = self.model.forward(x);
        split_outputs(b, l, self.anchors.len())
    }

    /// Decoded detections per image with `params` (e.g. a low score threshold for AP).
    pub fn detect(&self, images: &[RgbImage], params: &DecodeParams) -> Result<Vec<Vec<PaBox>>> {
        self.raw(images)?
            .into_iter()
            .map(|(d, l)| {
                decode_detections(
                    &self.anchors,
                    self.meta.model.anchors.variances,
                    &d,
                    &l,
                    params,
                )
                .map_err(|e| anyhow!("{e}"))
            })
            .collect()
    }
}

/// Splits batched `[N, A, 4]` / `[N, A]` outputs into per-image vectors.
pub fn split_outputs(boxes: Tensor<3>, logits: Tensor<2>, anchors: usize) -> Result<RawOutputs> {
    let [n, a, _] = boxes.dims();
    if a != anchors {
        return Err(anyhow!(
            "model has {a} anchors, its configuration {anchors}"
        ));
    }
    let b = boxes
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("reading box outputs: {e:?}"))?;
    let l = logits
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("reading logits: {e:?}"))?;
    Ok((0..n)
        .map(|i| {
            (
                b[i * 4 * a..(i + 1) * 4 * a].to_vec(),
                l[i * a..(i + 1) * a].to_vec(),
            )
        })
        .collect())
}

//! The three training problems [`crate::fit::fit`] solves:
//! * [`HeadTask`]: cached embeddings → linear head (frozen backbone, seconds per epoch);
//! * [`FinetuneTask`]: cached activations entering the last K blocks → those blocks, the
//!   last conv and the head;
//! * [`ImageTask`]: images (augmented on the fly, loaded on rayon threads) → a whole
//!   network (scratch CNN or MobileNetV2 trained from scratch).

use anyhow::Result;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use sleeve_shared::preprocess::PreprocessConfig;

use crate::augment::AugmentConfig;
use crate::data::Sample;
use crate::features::load_view;
use crate::fit::Task;
use crate::images::{batch_tensor, tensor_values};
use crate::mobilenet::MobileNetV2;
use crate::scratch::ScratchCnn;

/// Dropout + linear layer: the same structure as MobileNetV2's classifier.
#[derive(Module, Debug)]
pub struct Head {
    /// Dropout on the embedding.
    pub dropout: Dropout,
    /// Linear layer.
    pub linear: Linear,
}

impl Head {
    /// A random head from `dim` features to `classes`.
    pub fn new(dim: usize, classes: usize, dropout: f64, device: &Device) -> Self {
        Self {
            dropout: DropoutConfig::new(dropout).init(),
            linear: LinearConfig::new(dim, classes).init(device),
        }
    }

    /// Features `[N, dim]` → logits.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.linear.forward(self.dropout.forward(x))
    }
}

/// A network that maps images to logits.
pub trait ImageClassifier: Module {
    /// Images `[N, 3, S, S]` → logits `[N, C]`.
    fn logits(&self, x: Tensor<4>) -> Tensor<2>;
}

impl ImageClassifier for MobileNetV2 {
    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward(x)
    }
}

impl ImageClassifier for ScratchCnn {
    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward(x)
    }
}

/// Row-major `[N, dim]` rows with labels.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Values, `len · dim`.
    pub values: Vec<f32>,
    /// Values per row.
    pub dim: usize,
    /// Class of each row.
    pub labels: Vec<usize>,
}

impl Rows {
    /// Stacks per-sample vectors.
    pub fn new(rows: Vec<Vec<f32>>, labels: Vec<usize>) -> Self {
        let dim = rows.first().map_or(0, Vec::len);
        let values = rows.into_iter().flatten().collect();
        Self {
            values,
            dim,
            labels,
        }
    }

    /// Appends another set with the same width.
    pub fn extend(&mut self, other: Rows) {
        if self.dim == 0 {
            self.dim = other.dim;
        }
        self.values.extend(other.values);
        self.labels.extend(other.labels);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows `idx` as a flat vector.
    pub fn gather(&self, idx: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            out.extend_from_slice(&self.values[i * self.dim..(i + 1) * self.dim]);
        }
        out
    }
}

fn softmax_values(logits: Tensor<2>) -> Result<Vec<f32>> {
    tensor_values(softmax(logits, 1))
}

/// Probabilities of every row of `rows` under `f`, in chunks of `batch`.
fn probs_in_chunks(
    rows: &Rows,
    batch: usize,
    mut f: impl FnMut(&[usize]) -> Result<Tensor<2>>,
) -> Result<Vec<f32>> {
    let idx: Vec<usize> = (0..rows.len()).collect();
    let mut out = Vec::new();
    for chunk in idx.chunks(batch.max(1)) {
        out.extend(softmax_values(f(chunk)?)?);
    }
    Ok(out)
}

/// Cached embeddings → [`Head`].
pub struct HeadTask {
    /// Training rows (all views).
    pub train: Rows,
    /// Validation rows (plain view).
    pub val: Rows,
    /// Device inputs are created on.
    pub device: Device,
}

impl Task for HeadTask {
    type Model = Head;
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn train_label(&self, i: usize) -> usize {
        self.train.labels[i]
    }
    fn train_logits(&self, model: &Head, idx: &[usize], _epoch: usize) -> Result<Tensor<2>> {
        let x = Tensor::from_data(
            TensorData::new(self.train.gather(idx), [idx.len(), self.train.dim]),
            &self.device,
        );
        Ok(model.forward(x))
    }
    fn val_probs(&self, model: &Head) -> Result<(Vec<f32>, Vec<usize>)> {
        let probs = probs_in_chunks(&self.val, 512, |idx| {
            let x = Tensor::from_data(
                TensorData::new(self.val.gather(idx), [idx.len(), self.val.dim]),
                &self.device,
            );
            Ok(model.forward(x))
        })?;
        Ok((probs, self.val.labels.clone()))
    }
}

/// Cached activations entering block `first_block` → the rest of a [`MobileNetV2`].
pub struct FinetuneTask {
    /// Training activations, flattened `[C, H, W]` per row.
    pub train: Rows,
    /// Validation activations.
    pub val: Rows,
    /// Shape `[C, H, W]` of one activation.
    pub shape: [usize; 3],
    /// First trained block.
    pub first_block: usize,
    /// Device inputs are created on.
    pub device: Device,
}

impl FinetuneTask {
    fn logits(&self, model: &MobileNetV2, rows: &Rows, idx: &[usize]) -> Tensor<2> {
        let [c, h, w] = self.shape;
        let x = Tensor::from_data(
            TensorData::new(rows.gather(idx), [idx.len(), c, h, w]),
            &self.device,
        );
        model.head(model.pool_features(model.forward_from(x, self.first_block)))
    }
}

impl Task for FinetuneTask {
    type Model = MobileNetV2;
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn train_label(&self, i: usize) -> usize {
        self.train.labels[i]
    }
    fn train_logits(&self, model: &MobileNetV2, idx: &[usize], _epoch: usize) -> Result<Tensor<2>> {
        Ok(self.logits(model, &self.train, idx))
    }
    fn val_probs(&self, model: &MobileNetV2) -> Result<(Vec<f32>, Vec<usize>)> {
        let probs = probs_in_chunks(&self.val, 64, |idx| Ok(self.logits(model, &self.val, idx)))?;
        Ok((probs, self.val.labels.clone()))
    }
}

/// Images → a whole network, augmented per epoch (view = epoch + 1).
pub struct ImageTask {
    /// Training images.
    pub train: Vec<Sample>,
    /// Validation images (plain view).
    pub val: Vec<Sample>,
    /// Preprocessing.
    pub preprocess: PreprocessConfig,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Augmentation seed.
    pub seed: u64,
    /// Device inputs are created on.
    pub device: Device,
}

impl ImageTask {
    fn batch(&self, samples: &[&Sample], view: u32) -> Result<Tensor<4>> {
        let inputs: Vec<Vec<f32>> = samples
            .par_iter()
            .map(|s| load_view(s, &self.preprocess, &self.augment, self.seed, view))
            .collect::<Result<_>>()?;
        Ok(batch_tensor(
            &inputs,
            self.preprocess.input_size as usize,
            &self.device,
        ))
    }
}

impl<M: ImageClassifier> Task for (ImageTask, std::marker::PhantomData<M>) {
    type Model = M;
    fn train_len(&self) -> usize {
        self.0.train.len()
    }
    fn train_label(&self, i: usize) -> usize {
        self.0.train[i].label
    }
    fn train_logits(&self, model: &M, idx: &[usize], epoch: usize) -> Result<Tensor<2>> {
        let s: Vec<&Sample> = idx.iter().map(|&i| &self.0.train[i]).collect();
        Ok(model.logits(self.0.batch(&s, epoch as u32 + 1)?))
    }
    fn val_probs(&self, model: &M) -> Result<(Vec<f32>, Vec<usize>)> {
        let mut probs = Vec::new();
        for chunk in self.0.val.chunks(32) {
            let s: Vec<&Sample> = chunk.iter().collect();
            probs.extend(softmax_values(model.logits(self.0.batch(&s, 0)?))?);
        }
        Ok((probs, self.0.val.iter().map(|s| s.label).collect()))
    }
}

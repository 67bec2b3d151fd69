//! The three training problems [`crate::fit::fit`] solves:
//! * [`HeadTask`]: cached embeddings → linear head (frozen backbone, seconds per epoch);
//! * [`FinetuneTask`]: cached activations entering the last K blocks → those blocks, the
//!   last conv and the head;
//! * [`FreshViewTask`]: freshly augmented images → frozen prefix (forward only) → the last
//!   blocks, the last conv and the head;
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
use crate::fit::{ClassifierTask, Mix, mixed};
use crate::images::{batch_tensor, tensor_values};
use crate::mobilenet::{EmbeddingKind, MobileNetV2};
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

/// Per-feature standardisation `(x − mean) / std` fitted on training rows. The head trains on
/// standardised rows (features of very different scales, e.g. the style statistics), then
/// [`fold_into`](Self::fold_into) moves the affine map into the linear layer, so the saved
/// model reads raw embeddings and the exported graph has no extra ops.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Mean of each feature.
    pub mean: Vec<f32>,
    /// 1 / standard deviation of each feature (1 for constant features).
    pub inv_std: Vec<f32>,
}

impl Standardizer {
    /// Fits the means and standard deviations of `rows`' columns.
    pub fn fit(rows: &Rows) -> Self {
        let (n, d) = (rows.len().max(1) as f64, rows.dim);
        let mut sum = vec![0f64; d];
        let mut sum_sq = vec![0f64; d];
        for row in rows.values.chunks(d.max(1)) {
            for (j, &v) in row.iter().enumerate() {
                sum[j] += f64::from(v);
                sum_sq[j] += f64::from(v) * f64::from(v);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let inv_std = sum_sq
            .iter()
            .zip(&mean)
            .map(|(sq, m)| {
                let sd = (sq / n - m * m).max(0.0).sqrt();
                if sd > 1e-6 { (1.0 / sd) as f32 } else { 1.0 }
            })
            .collect();
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            inv_std,
        }
    }

    /// Standardises `rows` in place.
    pub fn apply(&self, rows: &mut Rows) {
        let d = rows.dim.max(1);
        for row in rows.values.chunks_mut(d) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.mean[j]) * self.inv_std[j];
            }
        }
    }

    /// Standardises a batch `[N, D]` in the graph (for heads trained on top of layers that
    /// still learn).
    pub fn apply_tensor(&self, x: Tensor<2>) -> Tensor<2> {
        let device = x.device();
        let d = self.mean.len();
        let mean = Tensor::<2>::from_data(TensorData::new(self.mean.clone(), [1, d]), &device);
        let inv = Tensor::<2>::from_data(TensorData::new(self.inv_std.clone(), [1, d]), &device);
        (x - mean) * inv
    }

    /// A linear layer trained on standardised inputs → the same function of raw inputs:
    /// `W'ᵢ = Wᵢ / σᵢ`, `b' = b − Σᵢ W'ᵢ μᵢ` (burn stores `W` as `[in, out]`).
    pub fn fold_into(&self, linear: &Linear) -> Result<Linear> {
        let device = linear.weight.device();
        let [d_in, d_out] = linear.weight.dims();
        anyhow::ensure!(
            d_in == self.mean.len(),
            "standardizer has {} features, the layer {d_in}",
            self.mean.len()
        );
        let w = tensor_values(linear.weight.val())?;
        let b = match &linear.bias {
            Some(b) => tensor_values(b.val())?,
            None => vec![0.0; d_out],
        };
        let mut w2 = vec![0f32; d_in * d_out];
        let mut b2: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
        for i in 0..d_in {
            for o in 0..d_out {
                let v = w[i * d_out + o] * self.inv_std[i];
                w2[i * d_out + o] = v;
                b2[o] -= f64::from(v) * f64::from(self.mean[i]);
            }
        }
        let b2: Vec<f32> = b2.iter().map(|&v| v as f32).collect();
        let mut out = linear.clone();
        out.weight = burn::module::Param::initialized(
            linear.weight.id,
            Tensor::<1>::from_floats(w2.as_slice(), &device).reshape([d_in, d_out]),
        );
        let bias = Tensor::<1>::from_floats(b2.as_slice(), &device);
        out.bias = Some(match &linear.bias {
            Some(p) => burn::module::Param::initialized(p.id, bias),
            None => burn::module::Param::from_tensor(bias),
        });
        Ok(out)
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

impl ClassifierTask for HeadTask {
    type Model = Head;
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn train_label(&self, i: usize) -> usize {
        self.train.labels[i]
    }
    fn train_logits(
        &self,
        model: &Head,
        idx: &[usize],
        _epoch: usize,
        mix: Option<&Mix>,
    ) -> Result<Tensor<2>> {
        let x = Tensor::from_data(
            TensorData::new(self.train.gather(idx), [idx.len(), self.train.dim]),
            &self.device,
        );
        Ok(model.forward(mixed(x, mix)))
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
    fn logits(
        &self,
        model: &MobileNetV2,
        rows: &Rows,
        idx: &[usize],
        mix: Option<&Mix>,
    ) -> Tensor<2> {
        let [c, h, w] = self.shape;
        let x = Tensor::from_data(
            TensorData::new(rows.gather(idx), [idx.len(), c, h, w]),
            &self.device,
        );
        let x = mixed(x, mix);
        model.head(model.pool_features(model.forward_from(x, self.first_block)))
    }
}

impl ClassifierTask for FinetuneTask {
    type Model = MobileNetV2;
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn train_label(&self, i: usize) -> usize {
        self.train.labels[i]
    }
    fn train_logits(
        &self,
        model: &MobileNetV2,
        idx: &[usize],
        _epoch: usize,
        mix: Option<&Mix>,
    ) -> Result<Tensor<2>> {
        Ok(self.logits(model, &self.train, idx, mix))
    }
    fn val_probs(&self, model: &MobileNetV2) -> Result<(Vec<f32>, Vec<usize>)> {
        let probs = probs_in_chunks(&self.val, 64, |idx| {
            Ok(self.logits(model, &self.val, idx, None))
        })?;
        Ok((probs, self.val.labels.clone()))
    }
}

/// Images → the last blocks of a pretrained [`MobileNetV2`], on **fresh** augmented views
/// every epoch (view = epoch + 1): the frozen prefix (stem and blocks `..first_block`) runs
/// forward only, in inference mode with no autodiff graph, and its output enters the trained
/// blocks `first_block..`, the final 1×1 conv and the head. Validation reads cached prefix
/// activations of the plain images.
///
/// With a [`EmbeddingKind::Style`] network the head reads the style statistics: those of
/// the prefix's tapped blocks come with its activations, those of the trained blocks are
/// computed in the graph, and all are standardised by `standardizer` before the head (fold
/// it into the head when training ends).
pub struct FreshViewTask {
    /// Training images.
    pub train: Vec<Sample>,
    /// Prefix activations of the plain validation images (flattened `[C, H, W]` rows).
    pub val: Rows,
    /// Style statistics of the prefix's tapped blocks for the validation images (style
    /// networks whose prefix holds a tapped block only).
    pub val_taps: Option<Rows>,
    /// Shape `[C, H, W]` of one prefix activation.
    pub shape: [usize; 3],
    /// The frozen network in inference mode (only its prefix is used).
    pub prefix: MobileNetV2,
    /// First trained block.
    pub first_block: usize,
    /// Standardisation of the style embedding (style networks only).
    pub standardizer: Option<Standardizer>,
    /// Preprocessing.
    pub preprocess: PreprocessConfig,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Augmentation seed.
    pub seed: u64,
    /// Device inputs are created on.
    pub device: Device,
}

/// What the frozen prefix hands to the trained tail: activations entering block
/// `first_block`, and the style statistics of the prefix's tapped blocks (style networks).
pub struct PrefixOutput {
    /// `[B, C, H, W]` activations.
    pub activations: Tensor<4>,
    /// `[B, T]` style statistics, when the network reads style and the prefix holds a tap.
    pub taps: Option<Tensor<2>>,
}

impl FreshViewTask {
    /// Prefix outputs of view `view` of `samples`: decoded and augmented on rayon
    /// threads, then the frozen blocks, detached from any graph.
    pub fn prefix_batch(&self, samples: &[&Sample], view: u32) -> Result<PrefixOutput> {
        let inputs: Vec<Vec<f32>> = samples
            .par_iter()
            .map(|s| load_view(s, &self.preprocess, &self.augment, self.seed, view))
            .collect::<Result<_>>()?;
        let x = batch_tensor(&inputs, self.preprocess.input_size as usize, &self.device);
        Ok(match self.prefix.embedding_kind() {
            EmbeddingKind::Pooled => PrefixOutput {
                activations: self.prefix.forward_prefix(x, self.first_block).detach(),
                taps: None,
            },
            EmbeddingKind::Style => {
                let (a, t) = self.prefix.style_prefix(x, self.first_block);
                PrefixOutput {
                    activations: a.detach(),
                    taps: t.map(|t| t.detach()),
                }
            }
        })
    }

    /// Logits of the trained tail on prefix outputs.
    pub fn tail_logits(&self, model: &MobileNetV2, p: PrefixOutput) -> Tensor<2> {
        match model.embedding_kind() {
            EmbeddingKind::Pooled => {
                model.head(model.pool_features(model.forward_from(p.activations, self.first_block)))
            }
            EmbeddingKind::Style => {
                let e = model.style_from(p.activations, self.first_block, p.taps);
                let e = match &self.standardizer {
                    Some(st) => st.apply_tensor(e),
                    None => e,
                };
                model.head(e)
            }
        }
    }
}

impl ClassifierTask for FreshViewTask {
    type Model = MobileNetV2;
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn train_label(&self, i: usize) -> usize {
        self.train[i].label
    }
    fn train_logits(
        &self,
        model: &MobileNetV2,
        idx: &[usize],
        epoch: usize,
        mix: Option<&Mix>,
    ) -> Result<Tensor<2>> {
        let s: Vec<&Sample> = idx.iter().map(|&i| &self.train[i]).collect();
        let view = u32::try_from(epoch + 1).unwrap_or(u32::MAX);
        let p = self.prefix_batch(&s, view)?;
        let p = PrefixOutput {
            activations: mixed(p.activations, mix),
            taps: p.taps.map(|t| mixed(t, mix)),
        };
        Ok(self.tail_logits(model, p))
    }
    fn val_probs(&self, model: &MobileNetV2) -> Result<(Vec<f32>, Vec<usize>)> {
        let [c, h, w] = self.shape;
        let probs = probs_in_chunks(&self.val, 64, |idx| {
            let activations = Tensor::from_data(
                TensorData::new(self.val.gather(idx), [idx.len(), c, h, w]),
                &self.device,
            );
            let taps = self.val_taps.as_ref().map(|t| {
                Tensor::from_data(
                    TensorData::new(t.gather(idx), [idx.len(), t.dim]),
                    &self.device,
                )
            });
            Ok(self.tail_logits(model, PrefixOutput { activations, taps }))
        })?;
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

impl<M: ImageClassifier> ClassifierTask for (ImageTask, std::marker::PhantomData<M>) {
    type Model = M;
    fn train_len(&self) -> usize {
        self.0.train.len()
    }
    fn train_label(&self, i: usize) -> usize {
        self.0.train[i].label
    }
    fn train_logits(
        &self,
        model: &M,
        idx: &[usize],
        epoch: usize,
        mix: Option<&Mix>,
    ) -> Result<Tensor<2>> {
        let s: Vec<&Sample> = idx.iter().map(|&i| &self.0.train[i]).collect();
        Ok(model.logits(mixed(self.0.batch(&s, epoch as u32 + 1)?, mix)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_standardizer_gives_the_same_logits_on_raw_rows() {
        let device = Device::flex();
        device.seed(9);
        // three features on very different scales, one constant
        let raw: Vec<Vec<f32>> = (0..20)
            .map(|i| {
                let t = i as f32;
                vec![1000.0 + 50.0 * (t * 0.7).sin(), 0.001 * t, 3.0, -t]
            })
            .collect();
        let mut rows = Rows::new(raw.clone(), vec![0; 20]);
        let st = Standardizer::fit(&rows);
        assert_eq!(st.inv_std[2], 1.0);
        st.apply(&mut rows);
        // standardised columns: mean 0, variance 1 (constant column: 0)
        for j in [0, 1, 3] {
            let col: Vec<f32> = rows.values.iter().skip(j).step_by(4).copied().collect();
            let m = col.iter().sum::<f32>() / 20.0;
            let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / 20.0;
            assert!(m.abs() < 1e-4 && (v - 1.0).abs() < 1e-3, "col {j}: {m} {v}");
        }
        let linear = LinearConfig::new(4, 3).init(&device);
        let x_std = Tensor::<1>::from_floats(rows.values.as_slice(), &device).reshape([20, 4]);
        let flat: Vec<f32> = raw.into_iter().flatten().collect();
        let x_raw = Tensor::<1>::from_floats(flat.as_slice(), &device).reshape([20, 4]);
        let want = tensor_values(linear.forward(x_std)).unwrap();
        let folded = st.fold_into(&linear).unwrap();
        let got = tensor_values(folded.forward(x_raw)).unwrap();
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() < 1e-2 * (1.0 + a.abs()), "{a} vs {b}");
        }
        let wrong = LinearConfig::new(5, 3).init(&device);
        assert!(st.fold_into(&wrong).is_err());
    }
}

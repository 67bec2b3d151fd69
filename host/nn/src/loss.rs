//! Cross-entropy with label smoothing and per-class weights.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};

/// Mean weighted cross-entropy of `logits [N, C]` against class indices `targets`, with
/// smoothed targets `(1 − ε)·onehot + ε/C` and per-sample weights `class_weights[y]`
/// (normalised by their sum). `class_weights` empty means all ones.
pub fn cross_entropy(
    logits: Tensor<2>,
    targets: &[usize],
    smoothing: f32,
    class_weights: &[f32],
) -> Tensor<1> {
    let [n, c] = logits.dims();
    let device: Device = logits.device();
    let eps = smoothing.clamp(0.0, 1.0);
    let off = eps / c as f32;
    let mut q = vec![off; n * c];
    let mut w = vec![1.0f32; n];
    for (i, &y) in targets.iter().enumerate() {
        q[i * c + y] += 1.0 - eps;
        if let Some(cw) = class_weights.get(y) {
            w[i] = *cw;
        }
    }
    let wsum: f32 = w.iter().sum::<f32>().max(f32::MIN_POSITIVE);
    let q = Tensor::<2>::from_data(TensorData::new(q, [n, c]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(w, [n, 1]), &device);
    let per_sample = (log_softmax(logits, 1) * q).sum_dim(1).neg(); // [N, 1]
    (per_sample * w).sum().div_scalar(wsum)
}

/// Inverse-frequency class weights normalised to mean 1 (`n / (C · count_c)`); classes
/// absent from `labels` get weight 0.
pub fn balanced_class_weights(labels: &[usize], num_classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; num_classes];
    for &y in labels {
        if y < num_classes {
            counts[y] += 1;
        }
    }
    let n = labels.len() as f32;
    counts
        .iter()
        .map(|&k| {
            if k == 0 {
                0.0
            } else {
                n / (num_classes as f32 * k as f32)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(t: Tensor<1>) -> f32 {
        crate::images::tensor_values(t).unwrap()[0]
    }

    #[test]
    fn matches_hand_computed_values() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, 0.0, 0.0, 0.0, 1.0, 0.0], [2, 3]),
            &device,
        );
        let lse0 = (2f32.exp() + 2.0).ln();
        let lse1 = (1f32.exp() + 2.0).ln();
        let plain = ((lse0 - 2.0) + (lse1 - 1.0)) / 2.0;
        let got = scalar(cross_entropy(logits.clone(), &[0, 1], 0.0, &[]));
        assert!((got - plain).abs() < 1e-5, "{got} vs {plain}");
        // weights 3:1 on the two samples
        let weighted = (3.0 * (lse0 - 2.0) + (lse1 - 1.0)) / 4.0;
        let got = scalar(cross_entropy(
            logits.clone(),
            &[0, 1],
            0.0,
            &[3.0, 1.0, 1.0],
        ));
        assert!((got - weighted).abs() < 1e-5);
        // full smoothing: uniform target → mean of −log p over classes
        let uni0 = (3.0 * lse0 - 2.0) / 3.0;
        let uni1 = (3.0 * lse1 - 1.0) / 3.0;
        let got = scalar(cross_entropy(logits, &[0, 1], 1.0, &[]));
        assert!((got - (uni0 + uni1) / 2.0).abs() < 1e-5);
    }

    #[test]
    fn balanced_weights() {
        let w = balanced_class_weights(&[0, 0, 0, 1], 3);
        assert!((w[0] - 4.0 / 9.0).abs() < 1e-6);
        assert!((w[1] - 4.0 / 3.0).abs() < 1e-6);
        assert_eq!(w[2], 0.0);
    }
}

//! Loads framework-neutral pretrained weights ([`sleeve_weights::MobileNetV2Weights`], BN
//! folded) into the burn [`MobileNetV2`].
//!
//! Each folded `conv + bias` becomes the conv weight plus a BatchNorm that is the identity
//! until training touches it: γ = 1, β = bias, running mean = 0, running var = 1 − ε
//! (so `sqrt(var + ε) = 1`). The classifier head is copied when the class counts agree and
//! left randomly initialised otherwise.

use burn::module::{Param, RunningState};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use sleeve_weights::{ConvWeights, MobileNetV2Weights, Padding};

use crate::mobilenet::{ConvBnAct, MobileNetV2, MobileNetV2Config, PaddingMode};

/// Why weights do not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A layer's shape or structure differs.
    #[error("{layer}: {message}")]
    Mismatch {
        /// Which layer (e.g. `blocks.3.depthwise`).
        layer: String,
        /// What differs.
        message: String,
    },
    /// The weights' padding convention differs from the model's.
    #[error("weights use {weights:?} padding but the model was built with {model:?}")]
    Padding {
        /// Padding of the weights' stride-2 convs.
        weights: Padding,
        /// The model's padding mode.
        model: PaddingMode,
    },
}

/// What [`load_pretrained`] mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Source tensors copied into the model (conv weights, conv biases, head).
    pub tensors_mapped: usize,
    /// Source tensors available (`2 · convs + 2`).
    pub tensors_total: usize,
    /// Whether the classifier head was copied (class counts agree).
    pub head_copied: bool,
}

/// The padding mode that reproduces `weights` exactly.
pub fn padding_mode_of(weights: &MobileNetV2Weights) -> PaddingMode {
    match weights.stem.padding {
        Padding::TfSame => PaddingMode::TfSame,
        Padding::Symmetric(_) => PaddingMode::Symmetric,
    }
}

/// A model configuration matching `weights` at `width_mult` with `num_classes` outputs
/// (padding taken from the weights).
pub fn config_for(
    weights: &MobileNetV2Weights,
    width_mult: f32,
    num_classes: usize,
) -> MobileNetV2Config {
    MobileNetV2Config::new(num_classes)
        .with_width_mult(width_mult)
        .with_padding(padding_mode_of(weights))
}

/// Copies every tensor of `weights` into `model`, checking structure and shapes; the head
/// is copied only when `weights.num_classes == model.num_classes()`.
pub fn load_pretrained(
    mut model: MobileNetV2,
    weights: &MobileNetV2Weights,
) -> Result<(MobileNetV2, ImportReport), ImportError> {
    let model_padding = padding_of_model(&model);
    let weights_padding = padding_mode_of(weights);
    if model_padding != weights_padding {
        return Err(ImportError::Padding {
            weights: weights.stem.padding,
            model: model_padding,
        });
    }
    if model.blocks.len() != weights.blocks.len() {
        return Err(mismatch(
            "blocks",
            format!(
                "model has {} blocks, weights {}",
                model.blocks.len(),
                weights.blocks.len()
            ),
        ));
    }
    let mut mapped = 0;
    load_conv(&mut model.stem, &weights.stem, "stem")?;
    mapped += 2;
    for (i, (mb, wb)) in model.blocks.iter_mut().zip(&weights.blocks).enumerate() {
        match (&mut mb.expand, &wb.expand) {
            (Some(m), Some(w)) => {
                load_conv(m, w, &format!("blocks.{i}.expand"))?;
                mapped += 2;
            }
            (None, None) => {}
            _ => {
                return Err(mismatch(
                    &format!("blocks.{i}.expand"),
                    "expansion present in only one of model and weights".into(),
                ));
            }
        }
        load_conv(
            &mut mb.depthwise,
            &wb.depthwise,
            &format!("blocks.{i}.depthwise"),
        )?;
        load_conv(&mut mb.project, &wb.project, &format!("blocks.{i}.project"))?;
        mapped += 4;
    }
    load_conv(&mut model.last, &weights.last, "last")?;
    mapped += 2;
    let total = 2 * weights.convs().len() + 2;
    let head_copied = weights.num_classes == model.num_classes()
        && weights.classifier.in_features == model.embed_dim();
    if head_copied {
        load_linear(&mut model.classifier, &weights.classifier)?;
        mapped += 2;
    } else if weights.classifier.in_features != model.last_channels() {
        return Err(mismatch(
            "classifier",
            format!(
                "features {} in the weights, {} in the model",
                weights.classifier.in_features,
                model.last_channels()
            ),
        ));
    }
    Ok((
        model,
        ImportReport {
            tensors_mapped: mapped,
            tensors_total: total,
            head_copied,
        },
    ))
}

fn mismatch(layer: &str, message: String) -> ImportError {
    ImportError::Mismatch {
        layer: layer.to_string(),
        message,
    }
}

fn padding_of_model(model: &MobileNetV2) -> PaddingMode {
    use burn::nn::PaddingConfig2d;
    match model.stem.conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top != bottom || left != right => {
            PaddingMode::TfSame
        }
        _ => PaddingMode::Symmetric,
    }
}

fn load_conv(unit: &mut ConvBnAct, w: &ConvWeights, layer: &str) -> Result<(), ImportError> {
    let dims = unit.conv.weight.dims();
    if dims != w.weight.shape {
        return Err(mismatch(
            layer,
            format!(
                "weight shape {:?} in the model, {:?} in the weights",
                dims, w.weight.shape
            ),
        ));
    }
    if unit.conv.groups != w.groups || unit.conv.stride != [w.stride, w.stride] {
        return Err(mismatch(
            layer,
            format!(
                "groups/stride {}/{:?} in the model, {}/{} in the weights",
                unit.conv.groups, unit.conv.stride, w.groups, w.stride
            ),
        ));
    }
    let act = matches!(w.activation, sleeve_weights::Activation::Relu6);
    if unit.act != act {
        return Err(mismatch(layer, "activation differs".into()));
    }
    let device = unit.conv.weight.device();
    let c = w.out_channels();
    let weight = Tensor::<4>::from_data(TensorData::new(w.weight.data.clone(), dims), &device);
    unit.conv.weight = trainable(unit.conv.weight.id, weight);
    let bn = &mut unit.bn;
    let eps = bn.epsilon;
    bn.gamma = trainable(bn.gamma.id, vec1(vec![1.0; c], &device));
    bn.beta = trainable(bn.beta.id, vec1(w.bias.clone(), &device));
    bn.running_mean = RunningState::new(vec1(vec![0.0; c], &device));
    bn.running_var = RunningState::new(vec1(vec![(1.0 - eps) as f32; c], &device));
    Ok(())
}

/// An imported parameter that training may update: a plain tensor put into a `Param` is
/// otherwise marked inactive, and `Module::train` would keep it frozen (whether a recipe
/// trains it is decided by what its loss reaches, not by the import).
fn trainable<const D: usize>(id: burn::module::ParamId, value: Tensor<D>) -> Param<Tensor<D>> {
    Param::initialized(id, value).set_require_grad(true)
}

fn load_linear(layer: &mut Linear, w: &sleeve_weights::Linear) -> Result<(), ImportError> {
    let [din, dout] = layer.weight.dims();
    if din != w.in_features || dout != w.out_features {
        return Err(mismatch(
            "classifier",
            format!(
                "{din}→{dout} in the model, {}→{} in the weights",
                w.in_features, w.out_features
            ),
        ));
    }
    let device = layer.weight.device();
    // weights are [out, in]; burn's Linear stores [in, out]
    let mut t = vec![0.0f32; din * dout];
    for o in 0..dout {
        for i in 0..din {
            t[i * dout + o] = w.weight[o * din + i];
        }
    }
    let weight = Tensor::<2>::from_data(TensorData::new(t, [din, dout]), &device);
    layer.weight = trainable(layer.weight.id, weight);
    let bias = vec1(w.bias.clone(), &device);
    layer.bias = Some(match &layer.bias {
        Some(b) => trainable(b.id, bias),
        None => Param::from_tensor(bias),
    });
    Ok(())
}

fn vec1(v: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::tensor_values;
    use sleeve_weights::{WeightQuant, read_tflite, read_torchvision_safetensors, reference};

    fn random_input(side: usize, seed: u32) -> Vec<f32> {
        (0..3 * side * side)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn check_against_reference(weights: &MobileNetV2Weights, width: f32, side: usize) {
        let device = Device::flex();
        let cfg = config_for(weights, width, weights.num_classes);
        let (model, report) = load_pretrained(cfg.init(&device), weights).unwrap();
        assert_eq!(report.tensors_mapped, report.tensors_total);
        assert_eq!(report.tensors_total, 2 * 52 + 2);
        assert!(report.head_copied);
        let x = random_input(side, 7);
        let expected = reference::forward(weights, &x).unwrap();
        let input = crate::images::batch_tensor(&[x], side, &device);
        let got = tensor_values(model.forward(input)).unwrap();
        assert_eq!(got.len(), expected.len());
        let scale = expected.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-3 * scale, "{g} vs {e} (scale {scale})");
        }
    }

    #[test]
    fn torchvision_safetensors_maps_every_tensor_and_matches_reference() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnv2.safetensors");
        sleeve_weights::write_torchvision_safetensors(&path, 0.25, 4, 3).unwrap();
        let weights = read_torchvision_safetensors(&path).unwrap();
        check_against_reference(&weights, 0.25, 32);
    }

    #[test]
    fn tflite_same_padding_matches_reference() {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("mnv2.safetensors");
        // the TFLite reader accepts only width 1.0 (Coral's file)
        sleeve_weights::write_torchvision_safetensors(&st, 1.0, 3, 5).unwrap();
        let weights = read_torchvision_safetensors(&st).unwrap();
        // the same weights as a TFLite file: TF SAME (asymmetric) padding
        let tfl = dir.path().join("mnv2.tflite");
        sleeve_weights::write_tflite(&tfl, &weights, 32, WeightQuant::Float32).unwrap();
        let weights = read_tflite(&tfl).unwrap();
        assert_eq!(padding_mode_of(&weights), PaddingMode::TfSame);
        check_against_reference(&weights, 1.0, 32);
    }

    #[test]
    fn head_is_kept_when_classes_differ_and_padding_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnv2.safetensors");
        sleeve_weights::write_torchvision_safetensors(&path, 0.25, 4, 3).unwrap();
        let weights = read_torchvision_safetensors(&path).unwrap();
        let device = Device::flex();
        let cfg = config_for(&weights, 0.25, 2);
        let (_, report) = load_pretrained(cfg.init(&device), &weights).unwrap();
        assert!(!report.head_copied);
        assert_eq!(report.tensors_mapped, report.tensors_total - 2);
        let wrong = cfg.clone().with_padding(PaddingMode::TfSame).init(&device);
        assert!(matches!(
            load_pretrained(wrong, &weights),
            Err(ImportError::Padding { .. })
        ));
        let wrong_width = config_for(&weights, 0.5, 2).init(&device);
        assert!(matches!(
            load_pretrained(wrong_width, &weights),
            Err(ImportError::Mismatch { .. })
        ));
    }
}

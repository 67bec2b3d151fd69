//! Pretrained MobileNetV2 weights, read into one framework-neutral, BN-folded layout.
//!
//! Two sources, one result type ([`MobileNetV2Weights`]):
//! * [`read_tflite`]: TFLite files such as Coral's `mobilenet_v2_1.0_224_quant.tflite`
//!   (uint8 quantisation-aware trained; dequantised to f32; TF `SAME` padding; 1001 classes
//!   with background at 0; inputs in `[-1, 1]`);
//! * [`read_torchvision_safetensors`]: torchvision `mobilenet_v2` state dicts as safetensors
//!   (BN folded here; symmetric padding; 1000 or any number of classes; ImageNet mean/std;
//!   any width multiplier).
//!
//! [`read_weights`] picks the reader from the file's content. The layout conventions (OIHW,
//! padding, activations, input normalisation) are documented in [`layout`];
//! [`reference::forward`] is a naive f32 forward pass to check any framework against.
//! The `testkit` feature adds `tflite_write`, a TFLite writer for test weights.

pub mod error;
pub mod layout;
pub mod reference;
pub mod tflite;
#[cfg(feature = "testkit")]
pub mod tflite_write;
pub mod torchvision;

use std::path::Path;

pub use error::{Result, WeightsError};
pub use layout::{
    Activation, BatchNorm, ConvWeights, InputNorm, InvertedResidual, Linear, MobileNetV2Weights,
    Padding, Tensor4, fold_batch_norm,
};
pub use tflite::read_tflite;
#[cfg(feature = "testkit")]
pub use tflite_write::{WeightQuant, write_tflite};
pub use torchvision::{StateDict, read_torchvision_safetensors, write_torchvision_safetensors};

/// Reads MobileNetV2 weights from a TFLite file (recognised by its `TFL3` identifier) or
/// otherwise a torchvision safetensors file.
pub fn read_weights(path: impl AsRef<Path>) -> Result<MobileNetV2Weights> {
    let path = path.as_ref();
    let mut head = [0u8; 8];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| WeightsError::io(path, e))?;
        f.read(&mut head).map_err(|e| WeightsError::io(path, e))?
    };
    if n == 8 && &head[4..8] == b"TFL3" {
        read_tflite(path)
    } else {
        read_torchvision_safetensors(path)
    }
}

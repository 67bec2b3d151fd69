//! burn module → ONNX bytes (burn-onnx's tracing exporter), plus running the same module
//! in burn to get reference outputs for parity checks.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn_onnx::export::{ExportOutput, OnnxExporter};

use crate::ExportError;
use crate::runtime::F32Tensor;

/// Outputs of a forward pass that can be both exported and read back as f32.
pub trait ModelOutputs: ExportOutput {
    /// The outputs as f32 tensors, in graph-output order.
    fn to_f32(self) -> Result<Vec<F32Tensor>, ExportError>;
}

fn tensor_to_f32<const D: usize>(t: Tensor<D>) -> Result<F32Tensor, ExportError> {
    let shape = t.dims().to_vec();
    let data = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ExportError::Shape(format!("burn output is not readable as f32: {e:?}")))?;
    F32Tensor::new(shape, data)
}

impl<const D: usize> ModelOutputs for Tensor<D> {
    fn to_f32(self) -> Result<Vec<F32Tensor>, ExportError> {
        Ok(vec![tensor_to_f32(self)?])
    }
}

impl<const A: usize, const B: usize> ModelOutputs for (Tensor<A>, Tensor<B>) {
    fn to_f32(self) -> Result<Vec<F32Tensor>, ExportError> {
        Ok(vec![tensor_to_f32(self.0)?, tensor_to_f32(self.1)?])
    }
}

/// A burn tensor `[1, 3, S, S]` (or any rank-4 shape) from an [`F32Tensor`].
pub fn to_burn4(t: &F32Tensor, device: &Device) -> Result<Tensor<4>, ExportError> {
    let shape: [usize; 4] =
        t.shape.clone().try_into().map_err(|_| {
            ExportError::Shape(format!("expected a rank-4 input, got {:?}", t.shape))
        })?;
    Ok(Tensor::from_data(
        TensorData::new(t.data.clone(), shape),
        device,
    ))
}

/// Traces `forward` on a zero input of `input_shape` and returns the raw ONNX bytes
/// (opset 18, static shapes, weights embedded, burn's value names).
pub fn export_raw<M, O, F>(
    module: &M,
    input_shape: [usize; 4],
    forward: F,
) -> Result<Vec<u8>, ExportError>
where
    M: Module,
    O: ExportOutput,
    F: FnOnce(&M, Tensor<4>) -> O,
{
    let device = Device::default();
    let sample = Tensor::<4>::zeros(input_shape, &device);
    let model = OnnxExporter::new()
        .export(module, sample, forward)
        .map_err(|e| ExportError::Export(e.to_string()))?;
    Ok(model.into_bytes())
}

/// Runs `forward` in burn on `input` (default device, inference mode) and returns the
/// outputs as f32.
pub fn run_burn<M, O, F>(
    module: &M,
    input: &F32Tensor,
    forward: F,
) -> Result<Vec<F32Tensor>, ExportError>
where
    M: Module,
    O: ModelOutputs,
    F: FnOnce(&M, Tensor<4>) -> O,
{
    let device = Device::default();
    let x = to_burn4(input, &device)?;
    forward(module, x).to_f32()
}

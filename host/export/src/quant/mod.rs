//! Post-training int8 quantization as ONNX graph rewrites (burn cannot emit quantized
//! graphs): weight-only ([`weights`]) and full-integer ([`full`]) forms, calibrated
//! activation ranges ([`calib`]) and the arithmetic they share ([`math`]).

pub mod calib;
pub mod full;
pub mod math;
pub mod weights;

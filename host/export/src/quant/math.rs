//! Quantization arithmetic, exactly as ONNX `QuantizeLinear` defines it:
//! `q = saturate(round_half_to_even(x / scale) + zero_point)`.

/// Scale and zero point of one quantized tensor (or one channel of it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Step between adjacent integer levels.
    pub scale: f32,
    /// Integer that represents real 0.
    pub zero_point: i32,
}

/// Smallest scale used, so all-zero channels do not divide by zero.
pub const MIN_SCALE: f32 = 1e-12;

/// Rounds half to even (banker's rounding), as ONNX prescribes.
pub fn round_half_even(x: f32) -> f32 {
    x.round_ties_even()
}

/// Symmetric int8 parameters for values in `[-max_abs, max_abs]`: levels −127..=127,
/// zero point 0 (−128 is never produced, so products fit int8×int8 kernels symmetrically).
pub fn symmetric_i8(max_abs: f32) -> QParams {
    QParams {
        scale: (max_abs.abs() / 127.0).max(MIN_SCALE),
        zero_point: 0,
    }
}

/// Asymmetric uint8 parameters for values in `[min, max]`. The range is widened to contain
/// 0 so that zero (padding, ReLU's floor) is represented exactly.
pub fn asymmetric_u8(min: f32, max: f32) -> QParams {
    let lo = min.min(0.0);
    let hi = max.max(0.0);
    let scale = ((hi - lo) / 255.0).max(MIN_SCALE);
    let zero_point = round_half_even(-lo / scale).clamp(0.0, 255.0) as i32;
    QParams { scale, zero_point }
}

/// `x` → int8 with saturation at ±127 (symmetric weights).
pub fn quantize_i8(x: f32, q: QParams) -> i8 {
    (round_half_even(x / q.scale) + q.zero_point as f32).clamp(-127.0, 127.0) as i8
}

/// `x` → uint8 with saturation at 0..=255.
pub fn quantize_u8(x: f32, q: QParams) -> u8 {
    (round_half_even(x / q.scale) + q.zero_point as f32).clamp(0.0, 255.0) as u8
}

/// Integer level → real value.
pub fn dequantize(v: i32, q: QParams) -> f32 {
    (v - q.zero_point) as f32 * q.scale
}

/// Per-output-channel symmetric int8 quantization of a weight whose channel axis is the
/// outermost (`[O, …]`, conv weights): returns the int8 values and one scale per channel.
pub fn quantize_per_channel_outer(w: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / channels.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(channels);
    for c in 0..channels {
        let chunk = &w[c * per..(c + 1) * per];
        let p = symmetric_i8(chunk.iter().fold(0.0f32, |m, v| m.max(v.abs())));
        scales.push(p.scale);
        q.extend(chunk.iter().map(|&v| quantize_i8(v, p)));
    }
    (q, scales)
}

/// Per-column symmetric int8 quantization of a row-major `[rows, cols]` matrix (MatMul
/// weights `[in, out]`, channel axis 1): int8 values and one scale per column.
pub fn quantize_per_channel_inner(w: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let rows = w.len() / cols.max(1);
    let mut max_abs = vec![0.0f32; cols];
    for r in 0..rows {
        for c in 0..cols {
            max_abs[c] = max_abs[c].max(w[r * cols + c].abs());
        }
    }
    let params: Vec<QParams> = max_abs.iter().map(|&m| symmetric_i8(m)).collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &v)| quantize_i8(v, params[i % cols]))
        .collect();
    (q, params.iter().map(|p| p.scale).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_to_even() {
        for (x, r) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (-0.5, 0.0),
            (-1.5, -2.0),
            (2.4, 2.0),
            (-2.6, -3.0),
        ] {
            assert_eq!(round_half_even(x), r, "{x}");
        }
    }

    #[test]
    fn symmetric_scale_and_saturation() {
        // max |x| = 127/64 gives the exact scale 1/64, so the ties below are exact.
        let p = symmetric_i8(1.984375);
        assert_eq!(p.scale, 1.0 / 64.0);
        assert_eq!(p.zero_point, 0);
        assert_eq!(quantize_i8(1.984375, p), 127);
        assert_eq!(quantize_i8(-1.984375, p), -127);
        assert_eq!(quantize_i8(100.0, p), 127, "saturates at +127");
        assert_eq!(
            quantize_i8(-100.0, p),
            -127,
            "saturates at -127, never -128"
        );
        assert_eq!(quantize_i8(0.5 / 64.0, p), 0, "0.5 rounds to even 0");
        assert_eq!(quantize_i8(1.5 / 64.0, p), 2, "1.5 rounds to even 2");
        assert_eq!(quantize_i8(2.5 / 64.0, p), 2, "2.5 rounds to even 2");
        assert_eq!(quantize_i8(-2.5 / 64.0, p), -2, "-2.5 rounds to even -2");
        assert_eq!(symmetric_i8(0.0).scale, MIN_SCALE);
    }

    #[test]
    fn asymmetric_u8_params() {
        // [-1, 3]: scale 4/255, zero point round(255/4) = round(63.75) = 64.
        let p = asymmetric_u8(-1.0, 3.0);
        assert!((p.scale - 4.0 / 255.0).abs() < 1e-8);
        assert_eq!(p.zero_point, 64);
        assert_eq!(quantize_u8(0.0, p), 64, "zero is exact");
        assert_eq!(quantize_u8(-5.0, p), 0, "saturates at 0");
        assert_eq!(quantize_u8(5.0, p), 255, "saturates at 255");
        // A range that excludes 0 is widened to include it.
        let p = asymmetric_u8(2.0, 6.0);
        assert_eq!(p.zero_point, 0);
        assert!((p.scale - 6.0 / 255.0).abs() < 1e-8);
        assert!((dequantize(255, p) - 6.0).abs() < 1e-6);
    }

    #[test]
    fn per_channel_weights() {
        // Channel 0: max 127/64 (scale 1/64); channel 1: max 127/32 (scale 1/32).
        let w = [1.984375, -0.5078125, 0.0, 0.515625, 0.0, -3.96875];
        let (q, s) = quantize_per_channel_outer(&w, 2);
        assert_eq!(s, vec![1.0 / 64.0, 1.0 / 32.0]);
        assert_eq!(
            q,
            vec![127, -32, 0, 16, 0, -127],
            "-32.5 and 16.5 round to even"
        );
        // Columns of a row-major [2, 2] matrix: scales 1/64 and 1/128.
        let (q, s) = quantize_per_channel_inner(&[0.5078125, 0.51953125, -1.984375, -0.9921875], 2);
        assert_eq!(s, vec![1.0 / 64.0, 1.0 / 128.0]);
        assert_eq!(q, vec![32, 66, -127, -127], "32.5 and 66.5 round to even");
    }
}

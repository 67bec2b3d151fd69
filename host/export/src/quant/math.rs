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

/// Largest distance of a value from its grid level, in steps, for [`lossless_grid_i8`].
const GRID_TOLERANCE_STEPS: f32 = 0.01;

/// Finds an exact per-tensor int8 encoding of a weight that already lies on at most 256
/// evenly spaced levels containing 0 — as weights imported from a quantized model
/// (the Coral TFLite MobileNetV2) do, and keep doing while frozen. Returns the int8 values
/// and their scale and zero point, such that `dequantize(q, p)` reproduces every value to
/// float rounding; `None` when the values are not on such a grid, where requantizing
/// (per channel, symmetric) is the only option.
pub fn lossless_grid_i8(w: &[f32]) -> Option<(Vec<i8>, QParams)> {
    if w.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut levels: Vec<f32> = w.to_vec();
    levels.sort_by(f32::total_cmp);
    levels.dedup();
    if levels.len() < 2 || levels.len() > 256 {
        return None;
    }
    let step = levels
        .windows(2)
        .map(|p| p[1] - p[0])
        .fold(f32::INFINITY, f32::min);
    if step <= 0.0 || !step.is_finite() {
        return None;
    }
    // Integer level of every distinct value; 0 must be a level too (`(q - z) * s`).
    let mut index = Vec::with_capacity(levels.len());
    for &v in &levels {
        let k = v / step;
        if (k - k.round()).abs() > GRID_TOLERANCE_STEPS {
            return None;
        }
        index.push(k.round() as i64);
    }
    let (lo, hi) = (index[0], index[index.len() - 1]);
    // q = k + z must fit −128..=127 with z itself an int8.
    let z = (-128 - lo).max(-128);
    if z > 127 || hi + z > 127 {
        return None;
    }
    // Least-squares step over the levels, then check the reconstruction is exact.
    let (num, den) = levels
        .iter()
        .zip(&index)
        .fold((0.0f64, 0.0f64), |(n, d), (&v, &k)| {
            (n + v as f64 * k as f64, d + (k * k) as f64)
        });
    let p = QParams {
        scale: (num / den) as f32,
        zero_point: z as i32,
    };
    let max_abs = levels[0].abs().max(levels[levels.len() - 1].abs());
    let exact = levels
        .iter()
        .zip(&index)
        .all(|(&v, &k)| (dequantize(k as i32 + p.zero_point, p) - v).abs() <= max_abs * 1e-6);
    if !exact {
        return None;
    }
    let q = w
        .iter()
        .map(|&v| (round_half_even(v / p.scale) + p.zero_point as f32).clamp(-128.0, 127.0) as i8)
        .collect();
    Some((q, p))
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
    }

    #[test]
    fn lossless_grid_found_and_exact() {
        // An asymmetric uint8-style grid (step 0.0137, zero at level 40 of 0..=255), as a
        // TFLite per-tensor weight dequantizes to, scaled by a folded BatchNorm factor.
        let step = 0.0137f32 * 0.999_995;
        let w: Vec<f32> = (0..1000)
            .map(|i| (i * 37 % 256 - 40) as f32 * step)
            .collect();
        let (q, p) = lossless_grid_i8(&w).expect("values on a 256-level grid");
        assert_eq!(p.zero_point, -128 + 40, "level 0 of the grid maps to -128");
        for (&v, &qi) in w.iter().zip(&q) {
            let back = dequantize(qi as i32, p);
            assert!((back - v).abs() <= 1e-6 * 3.5, "{v} came back as {back}");
        }
        assert!(q.contains(&-128) && q.contains(&127), "all 256 levels used");
    }

    #[test]
    fn lossless_grid_refuses_what_it_cannot_hold() {
        // Continuous values (a trained head): no grid.
        let w: Vec<f32> = (0..500)
            .map(|i| ((i as f32) * 0.7123).sin() * 0.3)
            .collect();
        assert!(lossless_grid_i8(&w).is_none());
        // 257 levels: one too many for int8.
        let w: Vec<f32> = (0..257).map(|i| i as f32 * 0.01).collect();
        assert!(lossless_grid_i8(&w).is_none());
        // Evenly spaced but 0 is not a level (offset by half a step).
        let w: Vec<f32> = (0..10).map(|i| (i as f32 + 0.5) * 0.25).collect();
        assert!(lossless_grid_i8(&w).is_none());
        // A constant tensor and a NaN are left to the general path.
        assert!(lossless_grid_i8(&[0.5; 8]).is_none());
        assert!(lossless_grid_i8(&[0.0, f32::NAN, 1.0]).is_none());
    }
}

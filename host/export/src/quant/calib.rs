//! Activation ranges from calibration: the f32 model runs in tract with the tensors of
//! interest exposed as extra graph outputs; per tensor we keep the exact min/max and,
//! for the percentile and MSE methods, a histogram over that range (second pass).

use std::collections::HashMap;

use tract_onnx::pb::{ModelProto, ValueInfoProto};

use super::math::{asymmetric_u8, dequantize, quantize_u8};
use crate::ExportError;
use crate::proto;
use crate::runtime::{F32Tensor, TractModel};

/// Histogram resolution of the second calibration pass.
pub const HISTOGRAM_BINS: usize = 2048;

/// How a tensor's quantization range is chosen from calibration data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeMethod {
    /// Exact observed minimum and maximum.
    MinMax,
    /// The given percentile (e.g. 99.99) at the top and its mirror at the bottom.
    Percentile(f64),
    /// The clipping range that minimises the uint8 quantization mean squared error.
    Mse,
}

impl std::str::FromStr for RangeMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "minmax" => Ok(Self::MinMax),
            "mse" => Ok(Self::Mse),
            _ => {
                let p = s
                    .strip_prefix('p')
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|p| *p > 50.0 && *p <= 100.0)
                    .ok_or_else(|| {
                        format!("range method '{s}': use minmax, mse or pNN.NN (e.g. p99.99)")
                    })?;
                Ok(Self::Percentile(p))
            }
        }
    }
}

/// Calibrated range of one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lower bound.
    pub min: f32,
    /// Upper bound.
    pub max: f32,
}

struct Stats {
    min: f32,
    max: f32,
    hist: Vec<u64>,
}

impl Stats {
    fn bin(&self, v: f32) -> usize {
        let w = (self.max - self.min).max(f32::MIN_POSITIVE);
        (((v - self.min) / w) * HISTOGRAM_BINS as f32).clamp(0.0, (HISTOGRAM_BINS - 1) as f32)
            as usize
    }

    fn bin_centre(&self, i: usize) -> f32 {
        let w = (self.max - self.min) / HISTOGRAM_BINS as f32;
        self.min + (i as f32 + 0.5) * w
    }

    fn percentile_range(&self, p: f64) -> Range {
        let total: u64 = self.hist.iter().sum();
        let tail = ((1.0 - p / 100.0) * total as f64).floor() as u64;
        let mut acc = 0;
        let mut lo = 0;
        for (i, c) in self.hist.iter().enumerate() {
            acc += c;
            if acc > tail {
                lo = i;
                break;
            }
        }
        acc = 0;
        let mut hi = HISTOGRAM_BINS - 1;
        for (i, c) in self.hist.iter().enumerate().rev() {
            acc += c;
            if acc > tail {
                hi = i;
                break;
            }
        }
        let w = (self.max - self.min) / HISTOGRAM_BINS as f32;
        Range {
            min: if lo == 0 {
                self.min
            } else {
                self.min + lo as f32 * w
            },
            max: if hi == HISTOGRAM_BINS - 1 {
                self.max
            } else {
                self.min + (hi + 1) as f32 * w
            },
        }
    }

    fn mse_error(&self, r: Range) -> f64 {
        let q = asymmetric_u8(r.min, r.max);
        self.hist
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| {
                let x = self.bin_centre(i);
                let back = dequantize(quantize_u8(x, q) as i32, q);
                c as f64 * ((x - back) as f64).powi(2)
            })
            .sum()
    }

    fn mse_range(&self) -> Range {
        let full = Range {
            min: self.min,
            max: self.max,
        };
        let mut best = (self.mse_error(full), full);
        // Geometric grid of clipping factors from 1 down to about 0.01.
        for k in 1..=100 {
            let f = 0.955f32.powi(k);
            let r = Range {
                min: self.min * f,
                max: self.max * f,
            };
            let e = self.mse_error(r);
            if e < best.0 {
                best = (e, r);
            }
        }
        best.1
    }
}

/// A copy of `model` whose graph also outputs `tensors` (after its own outputs).
fn with_extra_outputs(model: &ModelProto, tensors: &[String]) -> Result<ModelProto, ExportError> {
    let mut m = model.clone();
    let g = proto::graph_mut(&mut m)?;
    for t in tensors {
        // Graph inputs are measured from the inputs themselves: listing a source as an
        // untyped output too makes tract forget the source's type.
        if !g.output.iter().any(|o| &o.name == t) && !g.input.iter().any(|i| &i.name == t) {
            g.output.push(ValueInfoProto {
                name: t.clone(),
                ..Default::default()
            });
        }
    }
    Ok(m)
}

/// Runs `inputs` through the f32 `model` and returns the range of every tensor in
/// `tensors` (value names of the graph), chosen by `method`.
pub fn calibrate(
    model: &ModelProto,
    tensors: &[String],
    inputs: &[F32Tensor],
    method: RangeMethod,
    progress: &indicatif::ProgressBar,
) -> Result<HashMap<String, Range>, ExportError> {
    if inputs.is_empty() {
        return Err(ExportError::Shape(
            "calibration needs at least one input".into(),
        ));
    }
    let base_outputs = proto::graph(model)?.output.len();
    let probe = with_extra_outputs(model, tensors)?;
    let mut order: Vec<String> = proto::graph(&probe)?.output[base_outputs..]
        .iter()
        .map(|o| o.name.clone())
        .collect();
    let n_probed = order.len();
    // Requested tensors that are the graph input (ranges from the input data).
    let input_name = proto::graph(model)?.input.first().map(|i| i.name.clone());
    let measures_input = input_name.as_ref().is_some_and(|n| tensors.contains(n));
    if let (true, Some(n)) = (measures_input, &input_name) {
        order.push(n.clone());
    }
    let runner = TractModel::load(&proto::encode(&probe))?;
    let mut stats: Vec<Stats> = order
        .iter()
        .map(|_| Stats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: vec![0; HISTOGRAM_BINS],
        })
        .collect();
    let passes = if method == RangeMethod::MinMax { 1 } else { 2 };
    progress.set_length((inputs.len() * passes) as u64);
    for pass in 0..passes {
        for x in inputs {
            let outs = runner.run(x)?;
            let mut values: Vec<&[f32]> = outs[base_outputs..]
                .iter()
                .map(|t| t.data.as_slice())
                .collect();
            values.truncate(n_probed);
            if measures_input {
                values.push(&x.data);
            }
            for (s, data) in stats.iter_mut().zip(values) {
                if pass == 0 {
                    for &v in data {
                        if v.is_finite() {
                            s.min = s.min.min(v);
                            s.max = s.max.max(v);
                        }
                    }
                } else {
                    for &v in data {
                        if v.is_finite() {
                            let b = s.bin(v);
                            s.hist[b] += 1;
                        }
                    }
                }
            }
            progress.inc(1);
        }
    }
    let mut out = HashMap::new();
    for (name, s) in order.iter().zip(&stats) {
        if !s.min.is_finite() || !s.max.is_finite() {
            return Err(ExportError::Graph(format!(
                "tensor '{name}' had no finite value during calibration"
            )));
        }
        let r = match method {
            RangeMethod::MinMax => Range {
                min: s.min,
                max: s.max,
            },
            RangeMethod::Percentile(p) => s.percentile_range(p),
            RangeMethod::Mse => s.mse_range(),
        };
        out.insert(name.clone(), r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f32]) -> Stats {
        let mut s = Stats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: vec![0; HISTOGRAM_BINS],
        };
        for &v in values {
            s.min = s.min.min(v);
            s.max = s.max.max(v);
        }
        for &v in values {
            let b = s.bin(v);
            s.hist[b] += 1;
        }
        s
    }

    #[test]
    fn percentile_drops_outliers() {
        let mut v: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        v.push(100.0);
        let s = stats(&v);
        let r = s.percentile_range(99.9);
        assert!(r.max < 1.5, "outlier clipped: {r:?}");
        assert!(r.max > 0.9, "bulk kept: {r:?}");
        assert_eq!(s.percentile_range(100.0).max, 100.0);
    }

    #[test]
    fn mse_clips_a_long_tail() {
        // A million values in [0, 1) and one at 50. Total squared error for a clip at m is
        // (50 - m)^2 + 1e6 * (m / 255)^2 / 12, minimised near m = 22: clipping the outlier
        // half-way costs less than the coarse steps it forces on everything else.
        let mut v: Vec<f32> = (0..1_000_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        v.push(50.0);
        let r = stats(&v).mse_range();
        assert!(r.max > 15.0 && r.max < 30.0, "{r:?}");
        // Without the outlier the full range is best.
        let r = stats(&v[..1000]).mse_range();
        assert!(r.max > 0.9, "{r:?}");
    }

    #[test]
    fn method_parsing() {
        assert_eq!("minmax".parse::<RangeMethod>(), Ok(RangeMethod::MinMax));
        assert_eq!(
            "p99.99".parse::<RangeMethod>(),
            Ok(RangeMethod::Percentile(99.99))
        );
        assert!("p10".parse::<RangeMethod>().is_err());
        assert!("avg".parse::<RangeMethod>().is_err());
    }
}

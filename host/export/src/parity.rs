//! Output agreement between two runs of a model: burn vs tract (export parity), and
//! f32 vs int8 (quantization quality).

use serde::{Deserialize, Serialize};

use sleeve_shared::manifest::Precision;

use crate::ExportError;
use crate::runtime::{F32Tensor, TractModel};

/// Maximum absolute difference per output over a set of inputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Inputs compared.
    pub inputs: usize,
    /// Largest |a − b| per output, over all inputs and elements.
    pub max_abs_diff: Vec<f32>,
    /// Mean |a − b| per output.
    pub mean_abs_diff: Vec<f32>,
    /// Fraction of inputs whose argmax over the last axis of output 0 agrees (top-1
    /// agreement for a classifier; per-anchor argmax is not meaningful for a detector).
    pub top1_agreement: f64,
}

impl Agreement {
    /// The largest difference over every output.
    pub fn worst(&self) -> f32 {
        self.max_abs_diff.iter().copied().fold(0.0, f32::max)
    }
}

/// Index of the largest value (first on ties); `None` for an empty slice.
pub fn argmax(v: &[f32]) -> Option<usize> {
    v.iter()
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (i, &x)| match best {
            Some((_, b)) if b >= x => best,
            _ => Some((i, x)),
        })
        .map(|(i, _)| i)
}

/// Compares output lists pairwise (same count and shapes required).
pub fn compare(pairs: &[(Vec<F32Tensor>, Vec<F32Tensor>)]) -> Result<Agreement, ExportError> {
    let Some((first, _)) = pairs.first() else {
        return Ok(Agreement::default());
    };
    let n_out = first.len();
    let mut max = vec![0.0f32; n_out];
    let mut sum = vec![0.0f64; n_out];
    let mut count = vec![0usize; n_out];
    let mut agree = 0usize;
    for (a, b) in pairs {
        if a.len() != n_out || b.len() != n_out {
            return Err(ExportError::Shape(format!(
                "output counts differ: {} vs {} (expected {n_out})",
                a.len(),
                b.len()
            )));
        }
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            if x.shape != y.shape {
                return Err(ExportError::Shape(format!(
                    "output {k} shapes differ: {:?} vs {:?}",
                    x.shape, y.shape
                )));
            }
            max[k] = max[k].max(x.max_abs_diff(y));
            sum[k] += x
                .data
                .iter()
                .zip(&y.data)
                .map(|(p, q)| (p - q).abs() as f64)
                .sum::<f64>();
            count[k] += x.data.len();
        }
        if argmax(&a[0].data) == argmax(&b[0].data) {
            agree += 1;
        }
    }
    Ok(Agreement {
        inputs: pairs.len(),
        max_abs_diff: max,
        mean_abs_diff: sum
            .iter()
            .zip(&count)
            .map(|(s, &c)| (s / c.max(1) as f64) as f32)
            .collect(),
        top1_agreement: agree as f64 / pairs.len() as f64,
    })
}

/// Runs two tract models on the same inputs and compares their outputs.
pub fn compare_models(
    reference: &TractModel,
    candidate: &TractModel,
    inputs: &[F32Tensor],
) -> Result<Agreement, ExportError> {
    let pairs = inputs
        .iter()
        .map(|x| Ok((reference.run(x)?, candidate.run(x)?)))
        .collect::<Result<Vec<_>, ExportError>>()?;
    compare(&pairs)
}

/// Picks the precision to ship: the fastest form whose top-1 agreement with f32 is at
/// least `min_agreement`, preferring the smaller file when within 10 % of the fastest.
pub fn select_precision(
    candidates: &[(Precision, f64, u64, f64)],
    min_agreement: f64,
) -> Precision {
    let ok: Vec<_> = candidates
        .iter()
        .filter(|c| c.0 == Precision::F32 || c.3 >= min_agreement)
        .collect();
    let fastest = ok.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
    ok.iter()
        .filter(|c| c.1 <= fastest * 1.1)
        .min_by_key(|c| c.2)
        .map(|c| c.0)
        .unwrap_or(Precision::F32)
}

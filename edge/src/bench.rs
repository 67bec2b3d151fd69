//! Latency statistics for `sleeve-edge bench`: per-stage percentiles, fps, peak memory.

use serde::Serialize;

use crate::pipeline::StageTimes;

/// Summary of one stage's latencies, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Mean.
    pub mean: f64,
    /// Maximum.
    pub max: f64,
}

/// Nearest-rank percentiles of `values` (any order); zeros when empty.
pub fn percentiles(values: &[f64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Percentiles {
        p50: rank(0.50),
        p95: rank(0.95),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        max: v[v.len() - 1],
    }
}

/// Percentiles of every stage.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageStats {
    /// Frame decoding.
    pub decode: Percentiles,
    /// Sleeve finding + rectification.
    pub find: Percentiles,
    /// Preprocessing.
    pub preprocess: Percentiles,
    /// Classifier.
    pub classify: Percentiles,
    /// Detector.
    pub detect: Percentiles,
    /// Whole frame.
    pub total: Percentiles,
}

impl StageStats {
    /// Statistics over a run's per-frame times.
    pub fn of(times: &[StageTimes]) -> Self {
        let col = |f: fn(&StageTimes) -> f64| percentiles(&times.iter().map(f).collect::<Vec<_>>());
        Self {
            decode: col(|t| t.decode),
            find: col(|t| t.find),
            preprocess: col(|t| t.preprocess),
            classify: col(|t| t.classify),
            detect: col(|t| t.detect),
            total: col(|t| t.total),
        }
    }
}

/// Peak resident memory of this process in KiB (`VmHWM` of `/proc/self/status`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = percentiles(&v);
        assert_eq!((p.p50, p.p95, p.max), (50.0, 95.0, 100.0));
        assert!((p.mean - 50.5).abs() < 1e-9);
        assert_eq!(percentiles(&[7.0]).p95, 7.0);
        assert_eq!(percentiles(&[]), Percentiles::default());
        assert!(peak_rss_kib().is_some_and(|k| k > 0));
    }
}

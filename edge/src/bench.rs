//! Latency statistics for `sleeve-edge bench`: per-stage percentiles, fps, peak memory.

use std::io::Cursor;
use std::time::Instant;

use anyhow::Context;
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, RgbImage};
use serde::Serialize;

use crate::pipeline::StageTimes;
use crate::source::Frame;

/// JPEG quality of [`as_mjpeg`] frames, about what UVC webcams send.
pub const MJPEG_QUALITY: u8 = 85;

/// A frame held as the JPEG bytes a UVC camera sends in MJPEG mode.
pub struct MjpegFrame {
    /// The frame, its pixels dropped.
    frame: Frame,
    /// Its JPEG encoding.
    jpeg: Vec<u8>,
}

/// Encodes a (synthetic) frame as a camera's MJPEG frame, so a benchmark times JPEG decoding
/// — what a real camera costs — instead of the scene generator's rendering.
pub fn as_mjpeg(mut frame: Frame) -> anyhow::Result<MjpegFrame> {
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, MJPEG_QUALITY)
        .encode_image(&frame.image)
        .with_context(|| format!("encoding {} as JPEG", frame.name))?;
    frame.image = RgbImage::new(0, 0);
    Ok(MjpegFrame { frame, jpeg })
}

impl MjpegFrame {
    /// Decodes the JPEG back into the frame, with the decoding time as `decode_ms`.
    pub fn decode(&self) -> anyhow::Result<Frame> {
        let t = Instant::now();
        let image = image::load(Cursor::new(&self.jpeg), ImageFormat::Jpeg)
            .with_context(|| format!("decoding the JPEG of {}", self.frame.name))?
            .into_rgb8();
        Ok(Frame {
            image,
            decode_ms: t.elapsed().as_secs_f64() * 1e3,
            ..self.frame.clone()
        })
    }

    /// Size of the JPEG in bytes.
    pub fn jpeg_bytes(&self) -> usize {
        self.jpeg.len()
    }
}

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

    #[test]
    fn mjpeg_frames_decode_to_the_same_picture() {
        let image = RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
        });
        let frame = Frame {
            image: image.clone(),
            index: 3,
            name: "scene 3".into(),
            decode_ms: 123.0,
            truth: None,
        };
        let m = as_mjpeg(frame).unwrap();
        assert!(m.jpeg_bytes() > 0 && m.jpeg_bytes() < 64 * 48 * 3);
        let back = m.decode().unwrap();
        assert_eq!((back.index, back.name.as_str()), (3, "scene 3"));
        assert_eq!(back.image.dimensions(), (64, 48));
        assert!(back.decode_ms < 123.0, "decode time replaces the source's");
        let err: f64 = back
            .image
            .pixels()
            .zip(image.pixels())
            .flat_map(|(a, b)| {
                a.0.iter()
                    .zip(b.0)
                    .map(|(&x, y)| (x as f64 - y as f64).abs())
            })
            .sum::<f64>()
            / (64.0 * 48.0 * 3.0);
        assert!(
            err < 4.0,
            "mean abs error {err} after JPEG q{MJPEG_QUALITY}"
        );
    }
}

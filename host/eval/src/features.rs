//! Hand-made image features for the k-NN baseline: joint colour histograms.

use image::RgbImage;

use crate::error::{Result, invalid};

/// Joint RGB histogram with `bins` levels per channel (`bins³` values, red-major),
/// L1-normalised so the values sum to 1.
pub fn rgb_histogram(img: &RgbImage, bins: usize) -> Result<Vec<f32>> {
    check(img, bins)?;
    let q = |v: u8| usize::from(v) * bins / 256;
    let mut h = vec![0f32; bins * bins * bins];
    for p in img.pixels() {
        let [r, g, b] = p.0;
        h[(q(r) * bins + q(g)) * bins + q(b)] += 1.0;
    }
    Ok(normalise(h))
}

/// Joint HSV histogram with `[h, s, v]` bins (`h·s·v` values, hue-major), L1-normalised.
/// Hue is binned over the full circle; grey pixels (saturation 0) get hue 0.
pub fn hsv_histogram(img: &RgbImage, bins: [usize; 3]) -> Result<Vec<f32>> {
    check(img, bins.iter().copied().min().unwrap_or(0))?;
    let [hb, sb, vb] = bins;
    let mut h = vec![0f32; hb * sb * vb];
    let idx = |x: f32, n: usize| ((x * n as f32) as usize).min(n - 1);
    for p in img.pixels() {
        let (hue, sat, val) = rgb_to_hsv(p.0);
        h[(idx(hue, hb) * sb + idx(sat, sb)) * vb + idx(val, vb)] += 1.0;
    }
    Ok(normalise(h))
}

/// RGB (0–255) to HSV, each component in `[0, 1]` (hue as a fraction of a full turn).
pub fn rgb_to_hsv([r, g, b]: [u8; 3]) -> (f32, f32, f32) {
    let (r, g, b) = (
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
    );
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let s = if max > 0.0 { d / max } else { 0.0 };
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        ((g - b) / d).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / d + 2.0) / 6.0
    } else {
        ((r - g) / d + 4.0) / 6.0
    };
    (h, s, max)
}

fn check(img: &RgbImage, bins: usize) -> Result<()> {
    if img.width() == 0 || img.height() == 0 {
        return Err(invalid!("cannot take the histogram of an empty image"));
    }
    if !(1..=64).contains(&bins) {
        return Err(invalid!(
            "histogram bins per channel must be in 1..=64, got {bins}"
        ));
    }
    Ok(())
}

fn normalise(mut h: Vec<f32>) -> Vec<f32> {
    let total: f32 = h.iter().sum();
    h.iter_mut().for_each(|v| *v /= total);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn rgb_histogram_counts_pixels() {
        // 3 red pixels, 1 blue one.
        let mut img = RgbImage::from_pixel(2, 2, Rgb([255, 0, 0]));
        img.put_pixel(1, 1, Rgb([0, 0, 200]));
        let h = rgb_histogram(&img, 8).unwrap();
        assert_eq!(h.len(), 512);
        assert!((h.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(h[7 * 64], 0.75); // r bin 7, g 0, b 0
        assert_eq!(h[6], 0.25); // r 0, g 0, b bin 6 (200 * 8 / 256 = 6)
    }

    #[test]
    fn hsv_histogram_and_conversion() {
        assert_eq!(rgb_to_hsv([255, 0, 0]), (0.0, 1.0, 1.0));
        let (h, s, v) = rgb_to_hsv([0, 255, 0]);
        assert!((h - 1.0 / 3.0).abs() < 1e-6 && s == 1.0 && v == 1.0);
        let (h, _, _) = rgb_to_hsv([0, 0, 255]);
        assert!((h - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(rgb_to_hsv([128, 128, 128]).1, 0.0);
        let img = RgbImage::from_pixel(3, 1, Rgb([0, 0, 255]));
        let hist = hsv_histogram(&img, [6, 2, 2]).unwrap();
        // hue bin 4 (2/3 · 6), saturation bin 1, value bin 1.
        assert_eq!(hist[(4 * 2 + 1) * 2 + 1], 1.0);
    }

    #[test]
    fn empty_image_or_bad_bins_error() {
        assert!(rgb_histogram(&RgbImage::new(0, 0), 8).is_err());
        assert!(rgb_histogram(&RgbImage::new(1, 1), 0).is_err());
        assert!(hsv_histogram(&RgbImage::new(1, 1), [8, 0, 8]).is_err());
    }
}

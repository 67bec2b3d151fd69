//! The finder's Gaussian blur: exactly imageproc's `gaussian_blur_f32` on an RGB image
//! (the same kernel, the same f32 sums in the same order, the same truncation to 8 bits
//! after each pass, borders replicated), written row-wise so the compiler vectorises it.
//! imageproc's generic version works pixel by pixel through a per-pixel accumulator and
//! took about a tenth of an analysed frame; the edge map, and so every outline the finder
//! proposes, is unchanged (tested bit for bit).

use image::RgbImage;

/// imageproc's Gaussian kernel for `sigma`: radius ⌈2σ⌉, normalised to sum 1.
fn kernel(sigma: f32) -> Vec<f32> {
    let radius = (2.0 * sigma).ceil() as usize;
    let pdf = |x: f32| {
        (sigma * (2.0 * core::f32::consts::PI).sqrt()).recip()
            * (-x.powi(2) / (2.0 * sigma.powi(2))).exp()
    };
    let mut k = vec![0.0f32; 2 * radius + 1];
    for i in 0..=radius {
        let v = pdf(i as f32);
        k[radius + i] = v;
        k[radius - i] = v;
    }
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// imageproc's float-to-8-bit clamp: truncation inside (0, 255), saturation outside (also
/// the warp's, which rounds the same way).
pub(super) fn to_u8(v: f32) -> u8 {
    if v < 255.0 {
        if v > 0.0 { v as u8 } else { 0 }
    } else {
        255
    }
}

/// `img` blurred with a Gaussian of standard deviation `sigma` (> 0; otherwise a copy).
pub fn gaussian_blur(img: &RgbImage, sigma: f32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 || sigma.is_nan() || sigma <= 0.0 {
        return img.clone();
    }
    let k = kernel(sigma);
    let r = (k.len() / 2) as isize;
    let src = img.as_raw();
    let row_len = 3 * w;
    let mut across = vec![0u8; src.len()];
    let mut acc = vec![0.0f32; row_len];
    // Horizontal pass, one row at a time: term by term over the kernel, so each output
    // value is summed in imageproc's order; the interior of a row is one contiguous
    // multiply-add per term, the clamped borders are done per pixel.
    for (src_row, out_row) in src
        .chunks_exact(row_len)
        .zip(across.chunks_exact_mut(row_len))
    {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let inner = (r as usize).min(w)..w.saturating_sub(r as usize).max(r as usize).min(w);
        for (i, &kv) in k.iter().enumerate() {
            let shift = i as isize - r;
            for x in (0..inner.start).chain(inner.end..w) {
                let sx = (x as isize + shift).clamp(0, w as isize - 1) as usize;
                for c in 0..3 {
                    acc[3 * x + c] += f32::from(src_row[3 * sx + c]) * kv;
                }
            }
            if inner.start < inner.end {
                let from = (3 * inner.start as isize + 3 * shift) as usize;
                let n = 3 * (inner.end - inner.start);
                let (a, s) = (
                    &mut acc[3 * inner.start..3 * inner.end],
                    &src_row[from..from + n],
                );
                for (a, &s) in a.iter_mut().zip(s) {
                    *a += f32::from(s) * kv;
                }
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = to_u8(a);
        }
    }
    // Vertical pass: every output row is the kernel-weighted sum of rows above and below
    // (clamped at the top and bottom), again term by term.
    let mut out = vec![0u8; src.len()];
    for (y, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (i, &kv) in k.iter().enumerate() {
            let sy = (y as isize + i as isize - r).clamp(0, h as isize - 1) as usize;
            let s = &across[sy * row_len..(sy + 1) * row_len];
            for (a, &s) in acc.iter_mut().zip(s) {
                *a += f32::from(s) * kv;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = to_u8(a);
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).unwrap_or_else(|| img.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use imageproc::filter::gaussian_blur_f32;

    fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        RgbImage::from_fn(w, h, |x, y| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            // noise on top of a few hard steps, so both smooth and saturated sums occur
            let base = if (x / 7 + y / 5) % 2 == 0 { 10 } else { 240 };
            Rgb([
                base ^ (s & 15) as u8,
                (s >> 8) as u8,
                ((x * 11 + y * 3) % 256) as u8,
            ])
        })
    }

    #[test]
    fn equals_imageprocs_blur_bit_for_bit() {
        for (i, &(w, h)) in [(320, 180), (33, 17), (5, 40), (1, 1), (2, 9), (9, 2)]
            .iter()
            .enumerate()
        {
            let img = noise(w, h, i as u32 + 1);
            for sigma in [0.3, 1.0, 1.4, 1.72, 2.5, 6.0] {
                let ours = gaussian_blur(&img, sigma);
                let theirs = gaussian_blur_f32(&img, sigma);
                assert!(
                    ours == theirs,
                    "{w}x{h} at sigma {sigma} differs from imageproc"
                );
            }
        }
    }

    #[test]
    fn no_blur_for_a_non_positive_sigma() {
        let img = noise(12, 8, 3);
        assert_eq!(gaussian_blur(&img, 0.0), img);
        assert_eq!(gaussian_blur(&img, -1.0), img);
        assert_eq!(gaussian_blur(&img, f32::NAN), img);
    }
}

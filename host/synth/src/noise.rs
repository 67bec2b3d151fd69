//! Smooth random fields (value noise) for "photos", textures and uneven light.

use rand::Rng;

/// A `w × h` field of values in `[0, 1]`, row-major.
#[derive(Clone, Debug)]
pub struct Field {
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
    /// Values.
    pub v: Vec<f32>,
}

impl Field {
    /// Value at `(x, y)` (no bounds check beyond the slice's).
    #[inline]
    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.v[(y * self.w + x) as usize]
    }
}

/// Fractal value noise: `octaves` layers, the first with `cells_x × cells_y` random lattice
/// cells across the image, each next one twice as fine and `gain` times as strong.
/// Normalised to `[0, 1]`.
pub fn value_noise(
    rng: &mut impl Rng,
    w: u32,
    h: u32,
    cells: (u32, u32),
    octaves: u32,
    gain: f32,
) -> Field {
    let mut v = vec![0.0f32; (w * h) as usize];
    let mut amp = 1.0;
    let (mut cx, mut cy) = (cells.0.max(1), cells.1.max(1));
    for _ in 0..octaves.max(1) {
        let gw = cx + 2;
        let lattice: Vec<f32> = (0..gw * (cy + 2)).map(|_| rng.random::<f32>()).collect();
        let sx = cx as f32 / w as f32;
        let sy = cy as f32 / h as f32;
        for y in 0..h {
            let fy = y as f32 * sy;
            let iy = fy as u32;
            let ty = smooth(fy - iy as f32);
            let row0 = (iy * gw) as usize;
            let row1 = ((iy + 1) * gw) as usize;
            for x in 0..w {
                let fx = x as f32 * sx;
                let ix = fx as usize;
                let tx = smooth(fx - ix as f32);
                let a = lattice[row0 + ix] + (lattice[row0 + ix + 1] - lattice[row0 + ix]) * tx;
                let b = lattice[row1 + ix] + (lattice[row1 + ix + 1] - lattice[row1 + ix]) * tx;
                v[(y * w + x) as usize] += amp * (a + (b - a) * ty);
            }
        }
        amp *= gain;
        cx *= 2;
        cy *= 2;
    }
    normalise(&mut v);
    Field { w, h, v }
}

#[inline]
fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Rescales values to `[0, 1]` (constant input becomes all 0.5).
pub fn normalise(v: &mut [f32]) {
    let (lo, hi) = v
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let span = hi - lo;
    for x in v.iter_mut() {
        *x = if span > 1e-6 { (*x - lo) / span } else { 0.5 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::rng_from;

    #[test]
    fn noise_is_normalised_and_smooth() {
        let f = value_noise(&mut rng_from(1), 64, 48, (4, 3), 3, 0.5);
        assert_eq!(f.v.len(), 64 * 48);
        assert!(f.v.iter().all(|x| (0.0..=1.0).contains(x)));
        let max_step = (0..63)
            .map(|x| (f.at(x + 1, 10) - f.at(x, 10)).abs())
            .fold(0.0, f32::max);
        assert!(max_step < 0.3, "neighbouring values jump by {max_step}");
    }
}

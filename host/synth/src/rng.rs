//! Seeding and sampling helpers: one ChaCha stream per item, so output is the same for a
//! seed no matter how many threads generate it or in which order.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator every synth module uses.
pub type SynthRng = ChaCha8Rng;

/// SplitMix64 finaliser: a cheap, well-mixing bijection on `u64`.
pub use sleeve_shared::rng::mix64;

/// The seed of item `index` of stream `stream` under the run seed `seed`.
pub fn item_seed(seed: u64, stream: u64, index: u64) -> u64 {
    mix64(mix64(seed ^ mix64(stream)) ^ index)
}

/// A generator for one item: independent of every other item's generator.
pub fn item_rng(seed: u64, stream: u64, index: u64) -> SynthRng {
    SynthRng::seed_from_u64(item_seed(seed, stream, index))
}

/// A generator from a plain seed.
pub fn rng_from(seed: u64) -> SynthRng {
    SynthRng::seed_from_u64(mix64(seed))
}

/// Uniform `f32` in `[lo, hi)` (returns `lo` for an empty range).
pub fn uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if hi <= lo {
        lo
    } else {
        lo + (hi - lo) * rng.random::<f32>()
    }
}

/// Log-uniform `f32` in `[lo, hi)`: every scale equally likely. Both bounds must be > 0.
pub fn log_uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    uniform(rng, lo.ln(), hi.ln()).exp()
}

/// Standard normal sample (Box–Muller).
pub fn gauss(rng: &mut impl Rng) -> f32 {
    let u1 = rng.random::<f32>().max(1e-7);
    let u2 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (core::f32::consts::TAU * u2).cos()
}

/// Normal sample with standard deviation `sigma`, clamped to `±limit`.
pub fn clamped_normal(rng: &mut impl Rng, sigma: f32, limit: f32) -> f32 {
    (gauss(rng) * sigma).clamp(-limit, limit)
}

/// Index drawn with probability proportional to `weights` (all ≥ 0, not all 0; else 0).
pub fn weighted_index(rng: &mut impl Rng, weights: &[f32]) -> usize {
    let total: f32 = weights.iter().map(|w| w.max(0.0)).sum();
    if total <= 0.0 {
        return 0;
    }
    let mut t = rng.random::<f32>() * total;
    for (i, w) in weights.iter().enumerate() {
        let w = w.max(0.0);
        if t < w {
            return i;
        }
        t -= w;
    }
    weights.len() - 1
}

/// True with probability `p` (clamped to `[0, 1]`).
pub fn chance(rng: &mut impl Rng, p: f32) -> bool {
    rng.random::<f32>() < p.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_rngs_are_independent_and_reproducible() {
        let a: u64 = item_rng(7, 1, 3).random();
        let b: u64 = item_rng(7, 1, 3).random();
        let c: u64 = item_rng(7, 1, 4).random();
        let d: u64 = item_rng(7, 2, 3).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn weighted_index_respects_zero_weights() {
        let mut r = rng_from(1);
        for _ in 0..200 {
            assert_eq!(weighted_index(&mut r, &[0.0, 1.0, 0.0]), 1);
        }
    }
}

//! Frozen-backbone outputs (embeddings or the activations entering the last blocks) for a
//! list of images, computed once and cached on disk.
//!
//! A cache file holds one view of one layer of one backbone: its name is the SHA-256 of
//! `(backbone id, layer, preprocessing, augmentation, seed, view)`, its entries are keyed by
//! image SHA-256. View 0 is the plain image; views ≥ 1 are augmented
//! ([`crate::augment`]), reproducibly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;
use serde::Serialize;
use sleeve_shared::fsutil::{sha256_hex, write_atomic};
use sleeve_shared::preprocess::PreprocessConfig;

use crate::augment::{AugmentConfig, augment, view_rng};
use crate::data::Sample;
use crate::images::{batch_tensor, load_rgb, tensor_values, to_input};

const MAGIC: &[u8; 8] = b"SLVFEAT1";

/// What identifies a cache file (everything that changes the values).
#[derive(Clone, Debug, Serialize)]
pub struct CacheKey {
    /// Backbone identity (weights SHA-256, width, padding).
    pub backbone: String,
    /// Which output (`embed`, `block13`, …).
    pub layer: String,
    /// Preprocessing.
    pub preprocess: PreprocessConfig,
    /// Augmentation ranges (ignored for view 0).
    pub augment: Option<AugmentConfig>,
    /// Augmentation seed.
    pub seed: u64,
    /// View index (0 = plain).
    pub view: u32,
}

impl CacheKey {
    /// The cache file name for this key.
    pub fn file_name(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!(
            "{}-v{}-{}.bin",
            self.layer,
            self.view,
            &sha256_hex(&json)[..16]
        )
    }
}

/// One cache file in memory.
struct CacheFile {
    path: Option<PathBuf>,
    dim: usize,
    entries: HashMap<String, Vec<f32>>,
    dirty: bool,
}

impl CacheFile {
    fn open(path: Option<PathBuf>) -> Result<Self> {
        let mut c = Self {
            path,
            dim: 0,
            entries: HashMap::new(),
            dirty: false,
        };
        let Some(p) = c.path.clone().filter(|p| p.is_file()) else {
            return Ok(c);
        };
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            bail!(
                "{} is not a feature cache (delete it to rebuild)",
                p.display()
            );
        }
        let dim = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let rec = 32 + 4 * dim;
        let body = &bytes[12..];
        if dim == 0 || body.len() % rec != 0 {
            bail!("{} is truncated (delete it to rebuild)", p.display());
        }
        for r in body.chunks(rec) {
            let key: String = r[..32].iter().map(|b| format!("{b:02x}")).collect();
            let v = r[32..]
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            c.entries.insert(key, v);
        }
        c.dim = dim;
        Ok(c)
    }

    fn save(&mut self) -> Result<()> {
        let Some(p) = &self.path else { return Ok(()) };
        if !self.dirty || self.entries.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(12 + self.entries.len() * (32 + 4 * self.dim));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        let mut keys: Vec<&String> = self.entries.keys().collect();
        keys.sort();
        for k in keys {
            let raw = hex_to_32(k).with_context(|| format!("bad cache key {k}"))?;
            out.extend_from_slice(&raw);
            for x in &self.entries[k] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        write_atomic(p, &out).with_context(|| format!("cannot write {}", p.display()))?;
        self.dirty = false;
        Ok(())
    }
}

fn hex_to_32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Loads and preprocesses one image, augmented unless `view == 0`.
pub fn load_view(
    sample: &Sample,
    preprocess: &PreprocessConfig,
    aug: &AugmentConfig,
    seed: u64,
    view: u32,
) -> Result<Vec<f32>> {
    let img = load_rgb(&sample.path)?;
    if view == 0 {
        return to_input(&img, preprocess);
    }
    let mut rng = view_rng(seed, &sample.sha256, view);
    let side = (preprocess.input_size as f32 / preprocess.crop_fraction).round() as u32;
    let a = augment(&img, aug, side, &mut rng);
    to_input(&a, preprocess)
}

/// Computes (or reads from `cache_dir`) `f(images)` for every sample in `view`: one flat
/// vector per sample. `f` maps a `[B, 3, S, S]` batch to `[B, …]`.
pub fn extract<const D: usize>(
    samples: &[Sample],
    key: &CacheKey,
    aug: &AugmentConfig,
    cache_dir: Option<&Path>,
    batch: usize,
    device: &Device,
    f: impl Fn(Tensor<4>) -> Tensor<D>,
) -> Result<Vec<Vec<f32>>> {
    let path = cache_dir.map(|d| d.join(key.file_name()));
    let mut cache = CacheFile::open(path)?;
    let missing: Vec<usize> = (0..samples.len())
        .filter(|&i| !cache.entries.contains_key(&samples[i].sha256))
        .collect();
    if !missing.is_empty() {
        tracing::info!(
            "{} view {}: computing {} of {} ({} cached)",
            key.layer,
            key.view,
            missing.len(),
            samples.len(),
            samples.len() - missing.len()
        );
        let pb = sleeve_shared::progress::bar(
            missing.len() as u64,
            format!("{} view {}", key.layer, key.view),
        );
        let size = key.preprocess.input_size as usize;
        for (k, chunk) in missing.chunks(batch.max(1)).enumerate() {
            let inputs: Vec<Vec<f32>> = chunk
                .par_iter()
                .map(|&i| load_view(&samples[i], &key.preprocess, aug, key.seed, key.view))
                .collect::<Result<_>>()?;
            let out = f(batch_tensor(&inputs, size, device));
            let flat = tensor_values(out)?;
            let per = flat.len() / chunk.len();
            if cache.dim != 0 && cache.dim != per {
                bail!(
                    "cached features have {} values, the backbone gives {per}",
                    cache.dim
                );
            }
            cache.dim = per;
            for (j, &i) in chunk.iter().enumerate() {
                cache.entries.insert(
                    samples[i].sha256.clone(),
                    flat[j * per..(j + 1) * per].to_vec(),
                );
            }
            cache.dirty = true;
            pb.inc(chunk.len() as u64);
            if k % 32 == 31 {
                cache.save()?;
            }
        }
        pb.finish_and_clear();
        cache.save()?;
    }
    Ok(samples
        .iter()
        .map(|s| cache.entries[&s.sha256].clone())
        .collect())
}

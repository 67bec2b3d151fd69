//! Training/evaluation samples from a dataset directory (`sleeve dataset`) or any
//! folder-per-genre tree, with a deterministic stratified split when none is recorded.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use sleeve_data::split::{SplitConfig, split_records};
use sleeve_data::{Record, Split, load_any};
use sleeve_shared::fsutil::sha256_file;
use sleeve_shared::labels::{COVERS5, LabelSet};

/// One labelled image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Absolute image path.
    pub path: PathBuf,
    /// SHA-256 of the file (the cache key).
    pub sha256: String,
    /// Class index into the [`LabelSet`].
    pub label: usize,
}

/// Train/val/test samples and their label set.
#[derive(Clone, Debug)]
pub struct DataSplits {
    /// Class names in model-output order.
    pub labels: LabelSet,
    /// Training samples.
    pub train: Vec<Sample>,
    /// Validation samples (early stopping, model selection).
    pub val: Vec<Sample>,
    /// Held-out test samples.
    pub test: Vec<Sample>,
}

impl DataSplits {
    /// The samples of one split.
    pub fn get(&self, split: Split) -> &[Sample] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

/// Parses `train|val|test`.
pub fn parse_split(s: &str) -> Result<Split> {
    match s.to_ascii_lowercase().as_str() {
        "train" => Ok(Split::Train),
        "val" | "valid" | "validation" => Ok(Split::Val),
        "test" => Ok(Split::Test),
        other => bail!("unknown split '{other}' (train, val or test)"),
    }
}

/// The label set for these genres: the covers5 order when they are exactly covers5, else
/// sorted.
pub fn label_set_for(genres: &[String]) -> Result<LabelSet> {
    let mut sorted: Vec<&str> = genres.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut c5 = COVERS5.to_vec();
    c5.sort_unstable();
    let names: Vec<&str> = if sorted == c5 {
        COVERS5.to_vec()
    } else {
        sorted
    };
    LabelSet::new(&names).map_err(|e| anyhow::anyhow!("bad genre names: {e}"))
}

/// Loads `dir` (dataset directory or image folder). Records without a split get a
/// stratified 80/10/10 split with `seed` (identical files always land together). When
/// `labels` is given (e.g. a trained model's), samples of other genres are skipped.
pub fn load_splits(dir: &Path, seed: u64, labels: Option<&LabelSet>) -> Result<DataSplits> {
    let mut records: Vec<Record> =
        load_any(dir).with_context(|| format!("cannot load data from {}", dir.display()))?;
    // hash plain-folder images so caches and the split can key on content
    let hashes: Vec<Result<String>> = records
        .par_iter()
        .map(|r| match &r.sha256 {
            Some(h) if !h.is_empty() => Ok(h.clone()),
            _ => sha256_file(&r.path).with_context(|| format!("cannot read {}", r.path.display())),
        })
        .collect();
    for (r, h) in records.iter_mut().zip(hashes) {
        r.sha256 = Some(h?);
    }
    if records.iter().any(|r| r.split.is_none()) {
        tracing::info!(
            "{}: no recorded split, making a stratified 80/10/10 split (seed {seed})",
            dir.display()
        );
        split_records(
            &mut records,
            &SplitConfig {
                val: 0.1,
                test: 0.1,
                seed,
            },
        )
        .context("cannot split the data")?;
    }
    let labels = match labels {
        Some(l) => l.clone(),
        None => label_set_for(&sleeve_data::genres_of(&records))?,
    };
    let mut out = DataSplits {
        labels: labels.clone(),
        train: Vec::new(),
        val: Vec::new(),
        test: Vec::new(),
    };
    let mut skipped = 0usize;
    for r in records {
        let Some(label) = labels.index_of(&r.genre) else {
            skipped += 1;
            continue;
        };
        let s = Sample {
            path: r.path,
            sha256: r.sha256.unwrap_or_default(),
            label,
        };
        match r.split {
            Some(Split::Train) => out.train.push(s),
            Some(Split::Val) => out.val.push(s),
            Some(Split::Test) => out.test.push(s),
            None => {}
        }
    }
    if skipped > 0 {
        tracing::warn!("skipped {skipped} images whose genre is not in the label set");
    }
    tracing::info!(
        "{}: {} classes, {} train / {} val / {} test images",
        dir.display(),
        labels.len(),
        out.train.len(),
        out.val.len(),
        out.test.len()
    );
    Ok(out)
}

/// Images per class.
pub fn class_counts(samples: &[Sample], num_classes: usize) -> Vec<usize> {
    let mut c = vec![0; num_classes];
    for s in samples {
        if s.label < num_classes {
            c[s.label] += 1;
        }
    }
    c
}

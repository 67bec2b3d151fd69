//! The classifier's own held-out data: the seeded validation and test splits of a dataset
//! (the split the classifier was trained with) as model input tensors, for export's accuracy
//! measurement and calibration.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use sleeve_shared::preprocess::PreprocessConfig;

use crate::images::load_tensor;
use crate::runtime::F32Tensor;

/// Labelled tensors of one split: `(image tensors, labels)`, at most `count` (0: all),
/// spread evenly over the split.
pub(crate) type LabelledSplit = (Vec<F32Tensor>, Vec<usize>);

/// The classifier's seeded split of `data` (the split it was trained with): the test and
/// validation images as tensors (at most `count` each, 0: all) and the set of test paths.
pub(crate) fn held_out_splits(
    data: &Path,
    seed: u64,
    labels: &sleeve_shared::LabelSet,
    preprocess: &PreprocessConfig,
    count: usize,
) -> Result<(LabelledSplit, LabelledSplit, HashSet<PathBuf>)> {
    let splits = sleeve_nn::data::load_splits(data, seed, None)
        .with_context(|| format!("splitting {}", data.display()))?;
    ensure!(
        &splits.labels == labels,
        "{} has labels {:?}, the classifier {:?}",
        data.display(),
        splits.labels.names(),
        labels.names()
    );
    let exclude: HashSet<PathBuf> = splits.test.iter().map(|s| s.path.clone()).collect();
    ensure!(
        !splits.test.is_empty(),
        "{} has no test images",
        data.display()
    );
    let load = |samples: &[sleeve_nn::data::Sample], what: &str| -> Result<LabelledSplit> {
        let n = if count == 0 {
            samples.len()
        } else {
            count.min(samples.len())
        };
        let bar = crate::progress(n as u64, &format!("loading {what} images"));
        let mut xs = Vec::with_capacity(n);
        let mut ys = Vec::with_capacity(n);
        for i in 0..n {
            let s = &samples[i * samples.len() / n];
            xs.push(load_tensor(&s.path, preprocess)?);
            ys.push(s.label);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok((xs, ys))
    };
    let test = load(&splits.test, "test")?;
    let val = load(&splits.val, "validation")?;
    Ok((test, val, exclude))
}

//! A `sleeve train detector` output, opened once: which checkpoint to use, its metadata
//! and where training stands.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use sleeve_nn::learner::{FitState, checkpoint_dir};

use crate::checkpoint::{DetectorMeta, META_FILE, WEIGHTS_FILE, read_meta};
use crate::train::BEST_DIR;

/// A detector checkpoint on disk, as export and evaluation take it.
#[derive(Clone, Debug)]
pub struct DetectorRun {
    /// Folder (or `.bpk`/`.json` file) of the checkpoint to use: the one given, or the
    /// run's best epoch (`best/`) when given the run folder.
    pub checkpoint: PathBuf,
    /// Its metadata.
    pub meta: DetectorMeta,
    /// Where the training loop stands, when the run folder carries its checkpoint.
    pub training: Option<FitState>,
}

impl DetectorRun {
    /// Opens `path`: a training output folder (its best epoch, `best/`), a checkpoint folder
    /// (holding `detector.json`) or its `.bpk`/`.json`.
    pub fn open(path: &Path) -> Result<Self> {
        let checkpoint = if path.join(BEST_DIR).join(META_FILE).is_file() {
            path.join(BEST_DIR)
        } else if path.is_file() || path.join(META_FILE).is_file() {
            path.to_path_buf()
        } else {
            bail!(
                "no detector checkpoint at {}: expected {META_FILE} and {WEIGHTS_FILE} there or \
                 in {BEST_DIR}/ (the output of `sleeve train detector`)",
                path.display()
            );
        };
        let meta = read_meta(&checkpoint)?;
        let run_dir = if checkpoint.ends_with(BEST_DIR) {
            checkpoint.parent().map(Path::to_path_buf)
        } else {
            Some(checkpoint.clone())
        };
        let training = match run_dir {
            Some(d) if d.is_dir() => FitState::open(&checkpoint_dir(&d))?,
            _ => None,
        };
        Ok(Self {
            checkpoint,
            meta,
            training,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_a_checkpoint_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", DetectorRun::open(dir.path()).unwrap_err());
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("sleeve train detector"), "{err}");
    }
}

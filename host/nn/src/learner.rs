//! The one training loop of Sleeve: mini-batches over a [`Task`], an optimizer step per
//! batch on the learning rate of a [`Schedule`], validation after every epoch, the best
//! model by validation score kept, early stopping, a time budget, Ctrl-C, a progress bar,
//! and an atomic checkpoint (model, best model, optimizer, [`FitState`]) after every epoch
//! and when stopped, from which `resume` continues mid-epoch exactly where it left off.
//!
//! The classifier recipes reach it through [`crate::fit::fit`] (cross-entropy on
//! classes); the detector recipes implement [`Task`] with the SSD loss and AP@0.5.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sleeve_shared::fsutil::write_atomic;

use crate::checkpoint::{load_module_bytes, module_bytes};
use crate::images::tensor_values;
pub use crate::schedule::Schedule;

/// Which items one optimizer step trains on.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Training items (indices below [`Task::train_len`]), shuffled per epoch.
    pub idx: &'a [usize],
    /// 0-based epoch.
    pub epoch: usize,
    /// Optimizer steps before this one.
    pub step: usize,
}

/// The loss of one batch.
pub struct BatchLoss {
    /// Scalar loss on the autodiff device (mean over the batch).
    pub loss: Tensor<1>,
    /// Correctly classified items, where the task has a notion of it.
    pub correct: Option<usize>,
}

/// What validation measured after an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validation {
    /// Validation loss.
    pub loss: f64,
    /// Validation score (higher is better): it picks the best epoch and stops early.
    pub score: f64,
}

/// A supervised problem the loop can train.
pub trait Task {
    /// The trained module.
    type Model: Module;
    /// Number of training items in one epoch.
    fn train_len(&self) -> usize;
    /// The loss of `batch` (the model is in training mode on an autodiff device).
    fn batch_loss(&self, model: &Self::Model, batch: Batch<'_>) -> Result<BatchLoss>;
    /// Validation of the model in inference mode.
    fn validate(&self, model: &Self::Model) -> Result<Validation>;
    /// Name of [`Validation::score`] in logs.
    fn score_name(&self) -> &'static str {
        "accuracy"
    }
    /// Called after every checkpoint the loop writes (`new_best`: the epoch just finished
    /// is the best so far), e.g. to write the task's own run artifact next to it.
    fn checkpoint_saved(&self, _saved: Saved<'_, Self::Model>) -> Result<()> {
        Ok(())
    }
}

/// What was just checkpointed ([`Task::checkpoint_saved`]).
pub struct Saved<'a, M> {
    /// The model being trained (inference mode).
    pub model: &'a M,
    /// The best model so far (inference mode).
    pub best: &'a M,
    /// Where the run stands.
    pub state: &'a FitState,
    /// Whether the epoch just finished set a new best score.
    pub new_best: bool,
}

/// The optimizer of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// AdamW with this decoupled weight decay.
    AdamW {
        /// Decoupled weight decay.
        weight_decay: f32,
    },
    /// Adam with this L2 weight decay.
    Adam {
        /// L2 penalty added to the gradients.
        weight_decay: f32,
    },
}

impl Optimizer {
    fn init(self) -> ModuleOptimizer {
        match self {
            Self::AdamW { weight_decay } => {
                AdamWConfig::new().with_weight_decay(weight_decay).init()
            }
            Self::Adam { weight_decay } => AdamConfig::new()
                .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(
                    weight_decay,
                )))
                .init(),
        }
    }
}

/// Settings of [`learn`].
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Maximum epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Stop after this many epochs without a better validation score (0: never).
    pub patience: usize,
    /// Stop (after saving) when this much wall time has passed in this process.
    pub time_budget: Option<Duration>,
    /// Shuffling seed.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
    /// Validate, keep and return an exponential moving average of the weights with this
    /// decay per step ([`crate::ema`]) instead of the raw weights; `None`: off.
    pub ema_decay: Option<f32>,
}

/// One epoch's numbers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (on augmented inputs, dropout on), where the task measures it.
    pub train_acc: Option<f64>,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation score (accuracy for classifiers, AP@0.5 for the detector).
    #[serde(alias = "val_acc")]
    pub val_score: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Wall seconds of the epoch (training and validation).
    pub seconds: f64,
    /// Training items per second.
    pub items_per_sec: f64,
}

/// Where a run stands: written with every checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FitState {
    /// Epochs completed.
    pub epoch: usize,
    /// Batches of the current (incomplete) epoch already done.
    pub batch_in_epoch: usize,
    /// Optimizer steps so far.
    pub step: usize,
    /// Best validation score so far (-1 before the first epoch: JSON has no -inf).
    #[serde(alias = "best_val_acc")]
    pub best_val_score: f64,
    /// Epoch (1-based) of the best validation score.
    pub best_epoch: usize,
    /// Per-epoch history.
    pub history: Vec<EpochLog>,
    /// Whether training has finished (early stop, epochs or budget).
    pub finished: bool,
    /// Why it finished.
    pub stop_reason: String,
    /// Running (loss sum, correct, seen) of the incomplete epoch.
    #[serde(default)]
    pub partial: (f64, usize, usize),
}

impl FitState {
    fn new() -> Self {
        Self {
            epoch: 0,
            batch_in_epoch: 0,
            step: 0,
            best_val_score: -1.0,
            best_epoch: 0,
            history: Vec::new(),
            finished: false,
            stop_reason: String::new(),
            partial: (0.0, 0, 0),
        }
    }

    /// Reads the state of the checkpoint in `dir` (`None` when there is none).
    pub fn open(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(STATE_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read checkpoint file {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("malformed {}", path.display()))
    }

    /// Wall seconds of all completed epochs.
    pub fn seconds(&self) -> f64 {
        self.history.iter().map(|h| h.seconds).sum()
    }
}

/// What [`learn`] returns.
pub struct Outcome<M> {
    /// The best model by validation score (inference mode).
    pub best: M,
    /// Final state and history.
    pub state: FitState,
    /// Whether the run was interrupted (Ctrl-C) before finishing.
    pub interrupted: bool,
}

const STATE_FILE: &str = "state.json";
/// [`FitState::stop_reason`] of a run the time budget stopped (resumable).
pub const TIME_BUDGET: &str = "time budget";
/// How [`FitState::stop_reason`] of an early-stopped run begins (not resumed).
const NO_IMPROVEMENT: &str = "no validation improvement";
const MODEL_FILE: &str = "model.bpk";
const BEST_FILE: &str = "best.bpk";
const OPTIM_FILE: &str = "optim.bpk";
const EMA_FILE: &str = "ema.bpk";

/// The process-wide Ctrl-C flag ([`sleeve_shared::stop::ctrl_c`]): training finishes its
/// step, saves and returns.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    sleeve_shared::stop::ctrl_c("Ctrl-C: finishing the current step, saving a checkpoint …")
}

/// The checkpoint directory of a training output directory.
pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Trains `model` on `task`. With `checkpoint_dir`, saves model, best model, optimizer and
/// [`FitState`] atomically after every epoch (and when interrupted); with `resume`,
/// continues from the checkpoint found there. `interrupt` is polled after every step.
pub fn learn<T: Task>(
    task: &T,
    model: T::Model,
    cfg: &LoopConfig,
    checkpoint_dir: Option<&Path>,
    resume: bool,
    interrupt: &AtomicBool,
) -> Result<Outcome<T::Model>> {
    let n = task.train_len();
    anyhow::ensure!(n > 0, "no training items");
    let batch = cfg.batch_size.max(1);
    let batches_per_epoch = n.div_ceil(batch);
    let mut optim = cfg.optimizer.init();
    let mut model = model.train();
    let mut best = model.valid();
    let mut state = FitState::new();
    let mut ema = cfg.ema_decay.map(|_| model.valid());
    if resume && let Some(dir) = checkpoint_dir.filter(|d| d.join(STATE_FILE).is_file()) {
        let (m, b, o, s) = load_checkpoint(dir, model, best, optim)?;
        (model, best, optim, state) = (m, b, o, s);
        ema = match ema {
            Some(e) if dir.join(EMA_FILE).is_file() => Some(load_module_bytes(
                e,
                std::fs::read(dir.join(EMA_FILE))
                    .with_context(|| format!("cannot read {}", dir.join(EMA_FILE).display()))?,
            )?),
            // a run started without an average: it starts from the resumed weights
            Some(_) => Some(model.valid()),
            None => None,
        };
        let early_stopped = state.stop_reason.starts_with(NO_IMPROVEMENT);
        if state.finished && !early_stopped && state.epoch < cfg.epochs {
            // a time budget is per sitting, and more epochs may have been asked for
            tracing::info!("continuing a run that stopped for: {}", state.stop_reason);
            state.finished = false;
            state.stop_reason.clear();
        }
        tracing::info!(
            "resumed from {}: epoch {}, batch {}, step {}",
            dir.display(),
            state.epoch,
            state.batch_in_epoch,
            state.step
        );
    }
    let started = Instant::now();
    let over_budget = || cfg.time_budget.is_some_and(|b| started.elapsed() >= b);
    let mut interrupted = false;
    while !state.finished && state.epoch < cfg.epochs {
        let epoch = state.epoch;
        let t0 = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed ^ ((epoch as u64 + 1) * 0x9E37),
        ));
        let pb = sleeve_shared::progress::bar_if(
            cfg.progress,
            batches_per_epoch as u64,
            format!("epoch {}/{}", epoch + 1, cfg.epochs),
        );
        pb.set_position(state.batch_in_epoch as u64);
        let (mut loss_sum, mut correct, mut seen) = state.partial;
        let mut measures_accuracy = false;
        for (bi, idx) in order.chunks(batch).enumerate().skip(state.batch_in_epoch) {
            let lr = cfg.schedule.lr(state.step, batches_per_epoch, cfg.epochs);
            let out = task.batch_loss(
                &model,
                Batch {
                    idx,
                    epoch,
                    step: state.step,
                },
            )?;
            let loss_value = tensor_values(out.loss.clone().detach())?[0] as f64;
            anyhow::ensure!(
                loss_value.is_finite(),
                "training diverged (loss {loss_value}) at epoch {}, batch {bi}",
                epoch + 1
            );
            if let Some(c) = out.correct {
                correct += c;
                measures_accuracy = true;
            }
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optim.step(lr, model, grads);
            if let (Some(e), Some(decay)) = (ema.take(), cfg.ema_decay) {
                ema = Some(crate::ema::update(e, &model, decay));
            }
            loss_sum += loss_value * idx.len() as f64;
            seen += idx.len();
            state.step += 1;
            state.batch_in_epoch = bi + 1;
            state.partial = (loss_sum, correct, seen);
            pb.inc(1);
            pb.set_message(progress_message(
                loss_sum / seen as f64,
                measures_accuracy.then(|| correct as f64 / seen as f64),
                lr,
            ));
            let stop_now = interrupt.load(Ordering::SeqCst);
            if stop_now || (over_budget() && bi + 1 < batches_per_epoch) {
                interrupted = stop_now;
                if !stop_now {
                    state.finished = true;
                    state.stop_reason = TIME_BUDGET.into();
                }
                break;
            }
        }
        pb.finish_and_clear();
        let mut new_best = false;
        // what is validated, kept as the best and saved as the run's model
        let current = || ema.clone().unwrap_or_else(|| model.valid());
        if state.batch_in_epoch >= batches_per_epoch {
            let val = task.validate(&current())?;
            let seconds = t0.elapsed().as_secs_f64();
            let log = EpochLog {
                epoch: epoch + 1,
                train_loss: loss_sum / seen.max(1) as f64,
                train_acc: measures_accuracy.then(|| correct as f64 / seen.max(1) as f64),
                val_loss: val.loss,
                val_score: val.score,
                lr: cfg
                    .schedule
                    .lr(state.step.saturating_sub(1), batches_per_epoch, cfg.epochs),
                seconds,
                items_per_sec: seen as f64 / seconds.max(1e-9),
            };
            tracing::info!(
                "epoch {}/{}: train loss {:.4}{} | val loss {:.4} {} {:.4} | {:.1}s, {:.1} items/s",
                log.epoch,
                cfg.epochs,
                log.train_loss,
                log.train_acc
                    .map_or(String::new(), |a| format!(" accuracy {a:.3}")),
                log.val_loss,
                task.score_name(),
                log.val_score,
                log.seconds,
                log.items_per_sec
            );
            state.history.push(log);
            state.epoch += 1;
            state.batch_in_epoch = 0;
            state.partial = (0.0, 0, 0);
            if val.score > state.best_val_score {
                state.best_val_score = val.score;
                state.best_epoch = state.epoch;
                best = current();
                new_best = true;
            } else if cfg.patience > 0 && state.epoch - state.best_epoch >= cfg.patience {
                state.finished = true;
                state.stop_reason = format!("{NO_IMPROVEMENT} for {} epochs", cfg.patience);
            }
            if !state.finished && over_budget() {
                state.finished = true;
                state.stop_reason = TIME_BUDGET.into();
            }
        }
        if state.epoch >= cfg.epochs && !state.finished {
            state.finished = true;
            state.stop_reason = format!("{} epochs", cfg.epochs);
        }
        if let Some(dir) = checkpoint_dir {
            if let Some(e) = &ema {
                let p = dir.join(EMA_FILE);
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                write_atomic(&p, &module_bytes(e)?)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
            save_checkpoint(dir, &model, &best, &optim, &state)?;
        }
        task.checkpoint_saved(Saved {
            model: &current(),
            best: &best,
            state: &state,
            new_best,
        })?;
        if interrupted {
            tracing::warn!("interrupted: checkpoint saved; continue with --resume");
            break;
        }
    }
    if state.history.is_empty() && !interrupted {
        best = ema.unwrap_or_else(|| model.valid());
    }
    Ok(Outcome {
        best,
        state,
        interrupted,
    })
}

fn progress_message(loss: f64, accuracy: Option<f64>, lr: f64) -> String {
    match accuracy {
        Some(a) => format!("loss {loss:.3} acc {a:.3} lr {lr:.2e}"),
        None => format!("loss {loss:.3} lr {lr:.2e}"),
    }
}

fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    best: &M,
    optim: &ModuleOptimizer,
    state: &FitState,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = dir.join(name);
        write_atomic(&p, bytes).with_context(|| format!("cannot write {}", p.display()))
    };
    write(MODEL_FILE, &module_bytes(model)?)?;
    write(BEST_FILE, &module_bytes(best)?)?;
    let ob = optim
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the optimizer: {e:?}"))?;
    write(OPTIM_FILE, &ob)?;
    // the state goes last: it is what marks the checkpoint complete
    write(STATE_FILE, &serde_json::to_vec_pretty(state)?)
}

fn load_checkpoint<M: Module>(
    dir: &Path,
    model: M,
    best: M,
    optim: ModuleOptimizer,
) -> Result<(M, M, ModuleOptimizer, FitState)> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        std::fs::read(&p).with_context(|| format!("cannot read checkpoint file {}", p.display()))
    };
    let state =
        FitState::open(dir)?.with_context(|| format!("{} holds no {STATE_FILE}", dir.display()))?;
    let model = load_module_bytes(model, read(MODEL_FILE)?)?.train();
    let best = load_module_bytes(best, read(BEST_FILE)?)?.valid();
    let optim = optim
        .from_bytes(Bytes::from_bytes_vec(read(OPTIM_FILE)?))
        .map_err(|e| anyhow::anyhow!("cannot load the optimizer state: {e:?}"))?;
    Ok((model, best, optim, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_state_files_still_read() {
        let old = r#"{"epoch":1,"batch_in_epoch":0,"step":3,"best_val_acc":0.5,"best_epoch":1,
            "history":[{"epoch":1,"train_loss":1.0,"train_acc":0.4,"val_loss":1.1,"val_acc":0.5,
            "lr":0.01,"seconds":2.0,"items_per_sec":10.0}],"finished":false,"stop_reason":""}"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), old).unwrap();
        let s = FitState::open(dir.path()).unwrap().unwrap();
        assert_eq!(s.best_val_score, 0.5);
        assert_eq!(s.history[0].val_score, 0.5);
        assert_eq!(s.history[0].train_acc, Some(0.4));
        assert_eq!(s.seconds(), 2.0);
        assert!(FitState::open(&dir.path().join("none")).unwrap().is_none());
        std::fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        let err = format!("{:#}", FitState::open(dir.path()).unwrap_err());
        assert!(
            err.contains("malformed") && err.contains(STATE_FILE),
            "{err}"
        );
    }
}

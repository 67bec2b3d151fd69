//! The generic training loop: AdamW, one-cycle LR, label-smoothed class-weighted
//! cross-entropy, early stopping on validation accuracy, an atomic checkpoint after every
//! epoch (and on Ctrl-C), `--resume`, a time budget and a progress bar.
//!
//! What is trained and on which inputs is a [`Task`]: cached embeddings → a linear head,
//! cached activations → the last blocks, or images → a whole network.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Int, Tensor, TensorData};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Beta;
use serde::{Deserialize, Serialize};
use sleeve_shared::fsutil::write_atomic;

use crate::checkpoint::{load_module_bytes, module_bytes};
use crate::images::tensor_values;
use crate::loss::{balanced_class_weights, cross_entropy};
use crate::schedule::OneCycle;

/// A supervised problem the loop can train.
pub trait Task {
    /// The trained module.
    type Model: Module;
    /// Number of training items (one epoch).
    fn train_len(&self) -> usize;
    /// Class of training item `i`.
    fn train_label(&self, i: usize) -> usize;
    /// Logits `[B, C]` of training items `idx` in `epoch` (the model is in training mode on
    /// an autodiff device), with the batch's inputs mixed by `mix` when given
    /// ([`Mix::apply`] on whatever enters the trained layers).
    fn train_logits(
        &self,
        model: &Self::Model,
        idx: &[usize],
        epoch: usize,
        mix: Option<&Mix>,
    ) -> Result<Tensor<2>>;
    /// Class probabilities (row-major `[N, C]`) and labels of the validation items, with
    /// the model in inference mode.
    fn val_probs(&self, model: &Self::Model) -> Result<(Vec<f32>, Vec<usize>)>;
}

/// Hyper-parameters of [`fit`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitConfig {
    /// Maximum epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Peak learning rate of the one-cycle schedule.
    pub lr: f64,
    /// Fraction of steps spent warming up.
    pub warmup_frac: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
    /// Label smoothing ε.
    pub label_smoothing: f32,
    /// Mixup: each batch's inputs are blended with a shuffled copy of themselves by
    /// λ ~ Beta(α, α), the loss likewise; 0 turns it off.
    #[serde(default)]
    pub mixup_alpha: f32,
    /// Weight the loss by inverse class frequency.
    pub balanced: bool,
    /// Stop after this many epochs without a better validation accuracy (0: never).
    pub patience: usize,
    /// Stop (after saving) when this much wall time has passed.
    pub time_budget: Option<Duration>,
    /// Shuffling seed.
    pub seed: u64,
    /// Classes of the output.
    pub num_classes: usize,
}

/// One epoch's numbers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (on augmented inputs, dropout on).
    pub train_acc: f64,
    /// Validation loss (plain cross-entropy).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_acc: f64,
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
    /// Best validation accuracy so far (-1 before the first epoch: JSON has no -inf).
    pub best_val_acc: f64,
    /// Epoch (1-based) of the best validation accuracy.
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

/// What [`fit`] returns.
pub struct FitOutcome<M> {
    /// The best model by validation accuracy (inference mode).
    pub best: M,
    /// Final state and history.
    pub state: FitState,
    /// Whether the run was interrupted (Ctrl-C) before finishing.
    pub interrupted: bool,
}

/// Mixup of one training batch: inputs become `λ·x + (1−λ)·x[perm]` and the loss
/// `λ·CE(y) + (1−λ)·CE(y[perm])`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    /// Weight of each item itself.
    pub lambda: f32,
    /// Partner of each item in the batch.
    pub perm: Vec<usize>,
}

impl Mix {
    /// The mix of optimizer step `step` (reproducible from `seed`, so a resumed run draws
    /// the same), or `None` when `alpha` is 0 or the batch has one item.
    pub fn draw(alpha: f32, batch: usize, seed: u64, step: usize) -> Result<Option<Self>> {
        if alpha <= 0.0 || batch < 2 {
            return Ok(None);
        }
        let beta = Beta::new(alpha, alpha)
            .map_err(|e| anyhow::anyhow!("mixup alpha {alpha} is not usable: {e}"))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6D69_7875_7000 ^ (step as u64));
        let lambda: f32 = rng.sample(beta);
        let mut perm: Vec<usize> = (0..batch).collect();
        perm.shuffle(&mut rng);
        Ok(Some(Self { lambda, perm }))
    }

    /// `λ·x + (1−λ)·x[perm]` along the batch dimension.
    pub fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        let perm: Vec<i64> = self.perm.iter().map(|&j| j as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(perm, [self.perm.len()]), &device);
        x.clone().mul_scalar(self.lambda) + x.select(0, idx).mul_scalar(1.0 - self.lambda)
    }
}

/// `x` mixed by `mix` when given.
pub fn mixed<const D: usize>(x: Tensor<D>, mix: Option<&Mix>) -> Tensor<D> {
    match mix {
        Some(m) => m.apply(x),
        None => x,
    }
}

const STATE_FILE: &str = "state.json";
const MODEL_FILE: &str = "model.bpk";
const BEST_FILE: &str = "best.bpk";
const OPTIM_FILE: &str = "optim.bpk";

/// The process-wide Ctrl-C flag ([`sleeve_shared::stop::ctrl_c`]): training finishes its
/// step, saves and returns.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    sleeve_shared::stop::ctrl_c("Ctrl-C: finishing the current step, saving a checkpoint …")
}

/// Trains `model` on `task`. With `checkpoint_dir`, saves model, optimizer and [`FitState`]
/// atomically after every epoch (and when interrupted); with `resume`, continues from the
/// state found there. `interrupt` is polled after every step.
pub fn fit<T: Task>(
    task: &T,
    model: T::Model,
    cfg: &FitConfig,
    checkpoint_dir: Option<&Path>,
    resume: bool,
    interrupt: &AtomicBool,
) -> Result<FitOutcome<T::Model>> {
    let n = task.train_len();
    anyhow::ensure!(n > 0, "no training items");
    let batch = cfg.batch_size.max(1);
    let batches_per_epoch = n.div_ceil(batch);
    let schedule = OneCycle::new(cfg.lr, cfg.epochs * batches_per_epoch, cfg.warmup_frac);
    let labels: Vec<usize> = (0..n).map(|i| task.train_label(i)).collect();
    let class_weights = if cfg.balanced {
        balanced_class_weights(&labels, cfg.num_classes)
    } else {
        Vec::new()
    };
    let mut optim: ModuleOptimizer = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay)
        .init();
    let mut model = model.train();
    let mut best = model.valid();
    let mut state = FitState {
        epoch: 0,
        batch_in_epoch: 0,
        step: 0,
        best_val_acc: -1.0,
        best_epoch: 0,
        history: Vec::new(),
        finished: false,
        stop_reason: String::new(),
        partial: (0.0, 0, 0),
    };
    if resume && let Some(dir) = checkpoint_dir.filter(|d| d.join(STATE_FILE).is_file()) {
        let (m, b, o, s) = load_checkpoint(dir, model, best, optim)?;
        (model, best, optim, state) = (m, b, o, s);
        tracing::info!(
            "resumed from {}: epoch {}, batch {}, step {}",
            dir.display(),
            state.epoch,
            state.batch_in_epoch,
            state.step
        );
    }
    let started = Instant::now();
    let mut interrupted = false;
    while !state.finished && state.epoch < cfg.epochs {
        let epoch = state.epoch;
        let t0 = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed ^ ((epoch as u64 + 1) * 0x9E37),
        ));
        let pb = progress_bar(batches_per_epoch as u64, epoch + 1, cfg.epochs);
        pb.set_position(state.batch_in_epoch as u64);
        let (mut loss_sum, mut correct, mut seen) = state.partial;
        let first_batch = state.batch_in_epoch;
        for (bi, idx) in order.chunks(batch).enumerate().skip(first_batch) {
            let lr = schedule.lr(state.step);
            let mix = Mix::draw(cfg.mixup_alpha, idx.len(), cfg.seed, state.step)?;
            let logits = task.train_logits(&model, idx, epoch, mix.as_ref())?;
            let targets: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
            let preds = argmax_rows(&tensor_values(logits.clone().detach())?, cfg.num_classes);
            correct += preds.iter().zip(&targets).filter(|(p, t)| p == t).count();
            let loss = match &mix {
                None => cross_entropy(logits, &targets, cfg.label_smoothing, &class_weights),
                Some(m) => {
                    let partners: Vec<usize> = m.perm.iter().map(|&j| targets[j]).collect();
                    let ce = |y: &[usize]| {
                        cross_entropy(logits.clone(), y, cfg.label_smoothing, &class_weights)
                    };
                    ce(&targets).mul_scalar(m.lambda) + ce(&partners).mul_scalar(1.0 - m.lambda)
                }
            };
            let loss_value = tensor_values(loss.clone().detach())?[0] as f64;
            anyhow::ensure!(
                loss_value.is_finite(),
                "training diverged (loss {loss_value}) at epoch {}, batch {bi}",
                epoch + 1
            );
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            loss_sum += loss_value * idx.len() as f64;
            seen += idx.len();
            state.step += 1;
            state.batch_in_epoch = bi + 1;
            state.partial = (loss_sum, correct, seen);
            pb.inc(1);
            pb.set_message(format!(
                "loss {:.3} acc {:.3} lr {lr:.2e}",
                loss_sum / seen as f64,
                correct as f64 / seen as f64
            ));
            let over_budget = cfg.time_budget.is_some_and(|b| started.elapsed() >= b);
            if interrupt.load(Ordering::SeqCst) || (over_budget && bi + 1 < batches_per_epoch) {
                interrupted = interrupt.load(Ordering::SeqCst);
                if over_budget && !interrupted {
                    state.finished = true;
                    state.stop_reason = "time budget".into();
                }
                break;
            }
        }
        pb.finish_and_clear();
        let epoch_done = state.batch_in_epoch >= batches_per_epoch;
        if epoch_done {
            let (probs, val_labels) = task.val_probs(&model.valid())?;
            let (val_loss, val_acc) = loss_and_accuracy(&probs, &val_labels, cfg.num_classes);
            let seconds = t0.elapsed().as_secs_f64();
            let log = EpochLog {
                epoch: epoch + 1,
                train_loss: loss_sum / seen.max(1) as f64,
                train_acc: correct as f64 / seen.max(1) as f64,
                val_loss,
                val_acc,
                lr: schedule.lr(state.step.saturating_sub(1)),
                seconds,
                items_per_sec: seen as f64 / seconds.max(1e-9),
            };
            tracing::info!(
                "epoch {}/{}: train loss {:.4} acc {:.3} | val loss {:.4} acc {:.3} | {:.1}s, {:.1} items/s",
                log.epoch,
                cfg.epochs,
                log.train_loss,
                log.train_acc,
                log.val_loss,
                log.val_acc,
                log.seconds,
                log.items_per_sec
            );
            state.history.push(log);
            state.epoch += 1;
            state.batch_in_epoch = 0;
            state.partial = (0.0, 0, 0);
            if val_acc > state.best_val_acc {
                state.best_val_acc = val_acc;
                state.best_epoch = state.epoch;
                best = model.valid();
            } else if cfg.patience > 0 && state.epoch - state.best_epoch >= cfg.patience {
                state.finished = true;
                state.stop_reason =
                    format!("no validation improvement for {} epochs", cfg.patience);
            }
            if !state.finished && cfg.time_budget.is_some_and(|b| started.elapsed() >= b) {
                state.finished = true;
                state.stop_reason = "time budget".into();
            }
        }
        if state.epoch >= cfg.epochs && !state.finished {
            state.finished = true;
            state.stop_reason = format!("{} epochs", cfg.epochs);
        }
        if let Some(dir) = checkpoint_dir {
            save_checkpoint(dir, &model, &best, &optim, &state)?;
        }
        if interrupted {
            tracing::warn!("interrupted: checkpoint saved; continue with --resume");
            break;
        }
    }
    if state.history.is_empty() && !interrupted {
        best = model.valid();
    }
    Ok(FitOutcome {
        best,
        state,
        interrupted,
    })
}

fn progress_bar(len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    sleeve_shared::progress::bar(len, format!("epoch {epoch}/{epochs}"))
}

/// Index of the largest value of each row of a row-major `[N, c]` matrix.
pub fn argmax_rows(values: &[f32], c: usize) -> Vec<usize> {
    values
        .chunks(c.max(1))
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0
        })
        .collect()
}

/// Mean cross-entropy and accuracy of probabilities `[N, c]` against labels.
pub fn loss_and_accuracy(probs: &[f32], labels: &[usize], c: usize) -> (f64, f64) {
    if labels.is_empty() {
        return (f64::NAN, 0.0);
    }
    let preds = argmax_rows(probs, c);
    let mut loss = 0.0;
    for (row, &y) in probs.chunks(c).zip(labels) {
        loss -= (row[y].max(1e-12) as f64).ln();
    }
    let acc = preds.iter().zip(labels).filter(|(p, y)| p == y).count() as f64 / labels.len() as f64;
    (loss / labels.len() as f64, acc)
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
    let state: FitState = serde_json::from_slice(&read(STATE_FILE)?)
        .with_context(|| format!("malformed {}", dir.join(STATE_FILE).display()))?;
    let model = load_module_bytes(model, read(MODEL_FILE)?)?.train();
    let best = load_module_bytes(best, read(BEST_FILE)?)?.valid();
    let optim = optim
        .from_bytes(Bytes::from_bytes_vec(read(OPTIM_FILE)?))
        .map_err(|e| anyhow::anyhow!("cannot load the optimizer state: {e:?}"))?;
    Ok((model, best, optim, state))
}

/// The checkpoint directory of a training output directory.
pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Head, HeadTask, Rows};
    use burn::tensor::Device;

    fn toy_rows(n: usize, seed: u64) -> Rows {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let y = i % 3;
            let v: Vec<f32> = (0..8)
                .map(|d| if d == y { 2.0 } else { 0.0 } + rng.random_range(-1.0..1.0))
                .collect();
            rows.push(v);
            labels.push(y);
        }
        Rows::new(rows, labels)
    }

    fn cfg(epochs: usize) -> FitConfig {
        FitConfig {
            epochs,
            batch_size: 8,
            lr: 0.05,
            warmup_frac: 0.1,
            weight_decay: 1e-4,
            label_smoothing: 0.1,
            mixup_alpha: 0.0,
            balanced: true,
            patience: 0,
            time_budget: None,
            seed: 3,
            num_classes: 3,
        }
    }

    fn task() -> HeadTask {
        HeadTask {
            train: toy_rows(48, 1),
            val: toy_rows(24, 2),
            device: Device::flex(),
        }
    }

    fn weights_of(h: &Head) -> Vec<f32> {
        tensor_values(h.linear.weight.val()).unwrap()
    }

    #[test]
    fn a_few_epochs_reduce_the_loss() {
        let device = Device::flex();
        let t = task();
        let out = fit(
            &t,
            Head::new(8, 3, 0.0, &device),
            &cfg(6),
            None,
            false,
            &AtomicBool::new(false),
        )
        .unwrap();
        let h = &out.state.history;
        assert_eq!(h.len(), 6);
        assert!(h[5].train_loss < h[0].train_loss, "{h:?}");
        assert!(out.state.best_val_acc > 0.6, "{}", out.state.best_val_acc);
        assert!(out.state.finished);
    }

    #[test]
    fn mixup_draws_are_reproducible_and_blend_rows() {
        assert_eq!(Mix::draw(0.0, 8, 1, 3).unwrap(), None);
        assert_eq!(Mix::draw(0.4, 1, 1, 3).unwrap(), None);
        let a = Mix::draw(0.4, 8, 1, 3).unwrap().unwrap();
        assert_eq!(Some(a.clone()), Mix::draw(0.4, 8, 1, 3).unwrap());
        assert_ne!(Some(a.clone()), Mix::draw(0.4, 8, 1, 4).unwrap());
        assert!((0.0..=1.0).contains(&a.lambda));
        let mut sorted = a.perm.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        let m = Mix {
            lambda: 0.25,
            perm: vec![1, 0],
        };
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 5.0, 6.0], [2, 2]),
            &Device::flex(),
        );
        let y = tensor_values(m.apply(x)).unwrap();
        assert_eq!(y, vec![4.0, 5.0, 2.0, 3.0]);
        assert!(Mix::draw(f32::NAN, 8, 1, 3).is_err());
    }

    /// Sets `flag` during training call number `stop_at` (simulating Ctrl-C there).
    struct StopAt<'a> {
        inner: HeadTask,
        flag: &'a AtomicBool,
        calls: std::sync::atomic::AtomicUsize,
        stop_at: usize,
    }

    impl Task for StopAt<'_> {
        type Model = Head;
        fn train_len(&self) -> usize {
            self.inner.train_len()
        }
        fn train_label(&self, i: usize) -> usize {
            self.inner.train_label(i)
        }
        fn train_logits(
            &self,
            m: &Head,
            idx: &[usize],
            epoch: usize,
            mix: Option<&Mix>,
        ) -> Result<Tensor<2>> {
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_at {
                self.flag.store(true, Ordering::SeqCst);
            }
            self.inner.train_logits(m, idx, epoch, mix)
        }
        fn val_probs(&self, m: &Head) -> Result<(Vec<f32>, Vec<usize>)> {
            self.inner.val_probs(m)
        }
    }

    #[test]
    fn resume_reproduces_an_uninterrupted_run() {
        let device = Device::flex();
        let init = Head::new(8, 3, 0.0, &device);
        let no = AtomicBool::new(false);
        let dir = tempfile::tempdir().unwrap();
        let full = fit(&task(), init.clone(), &cfg(3), None, false, &no).unwrap();
        // the same run interrupted in the middle of epoch 2 (6 batches per epoch), resumed
        let ck = dir.path().join("ck");
        let flag = AtomicBool::new(false);
        let stopping = StopAt {
            inner: task(),
            flag: &flag,
            calls: Default::default(),
            stop_at: 8,
        };
        let first = fit(&stopping, init.clone(), &cfg(3), Some(&ck), false, &flag).unwrap();
        assert!(first.interrupted);
        assert_eq!((first.state.epoch, first.state.batch_in_epoch), (1, 2));
        let resumed = fit(&task(), init, &cfg(3), Some(&ck), true, &no).unwrap();
        assert!(!resumed.interrupted);
        assert_eq!(resumed.state.epoch, 3);
        assert_eq!(resumed.state.step, full.state.step);
        let (a, b) = (weights_of(&full.best), weights_of(&resumed.best));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        for (la, lb) in full.state.history.iter().zip(&resumed.state.history) {
            assert!(
                (la.train_loss - lb.train_loss).abs() < 1e-5,
                "{la:?} vs {lb:?}"
            );
            assert!((la.val_loss - lb.val_loss).abs() < 1e-5, "{la:?} vs {lb:?}");
            assert_eq!(la.val_acc, lb.val_acc);
        }
    }

    #[test]
    fn interrupt_saves_and_stops() {
        let device = Device::flex();
        let t = task();
        let dir = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(true);
        let out = fit(
            &t,
            Head::new(8, 3, 0.0, &device),
            &cfg(3),
            Some(dir.path()),
            false,
            &stop,
        )
        .unwrap();
        assert!(out.interrupted);
        let state: FitState =
            serde_json::from_slice(&std::fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!((state.epoch, state.batch_in_epoch, state.step), (0, 1, 1));
        assert!(!state.finished);
    }
}

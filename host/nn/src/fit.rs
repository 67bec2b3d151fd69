//! Classification on the one training loop ([`crate::learner`]): label-smoothed,
//! class-weighted cross-entropy, mixup, accuracy as the validation score, AdamW and the
//! one-cycle schedule.
//!
//! What is trained and on which inputs is a [`ClassifierTask`]: cached embeddings → a
//! linear head, cached activations → the last blocks, or images → a whole network.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Beta;
use serde::{Deserialize, Serialize};

use crate::images::tensor_values;
use crate::learner::{
    self, Batch, BatchLoss, LoopConfig, Optimizer, Outcome, Schedule, Validation,
};
use crate::loss::{balanced_class_weights, cross_entropy};

/// A classification problem the loop can train.
pub trait ClassifierTask {
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
    /// Exponential moving average of the weights (decay per step); `None`: off.
    #[serde(default)]
    pub ema_decay: Option<f32>,
}

impl FitConfig {
    /// The loop settings of this classifier recipe.
    pub fn loop_config(&self) -> LoopConfig {
        LoopConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            schedule: Schedule::OneCycle {
                peak: self.lr,
                warmup_frac: self.warmup_frac,
            },
            optimizer: Optimizer::AdamW {
                weight_decay: self.weight_decay,
            },
            patience: self.patience,
            time_budget: self.time_budget,
            seed: self.seed,
            progress: true,
            ema_decay: self.ema_decay,
        }
    }
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

/// A [`ClassifierTask`] as a [`learner::Task`]: the loss and score of classification.
struct Classification<'a, T> {
    task: &'a T,
    cfg: &'a FitConfig,
    labels: Vec<usize>,
    class_weights: Vec<f32>,
}

impl<T: ClassifierTask> learner::Task for Classification<'_, T> {
    type Model = T::Model;

    fn train_len(&self) -> usize {
        self.labels.len()
    }

    fn batch_loss(&self, model: &T::Model, batch: Batch<'_>) -> Result<BatchLoss> {
        let cfg = self.cfg;
        let mix = Mix::draw(cfg.mixup_alpha, batch.idx.len(), cfg.seed, batch.step)?;
        let logits = self
            .task
            .train_logits(model, batch.idx, batch.epoch, mix.as_ref())?;
        let targets: Vec<usize> = batch.idx.iter().map(|&i| self.labels[i]).collect();
        let preds = argmax_rows(&tensor_values(logits.clone().detach())?, cfg.num_classes);
        let correct = preds.iter().zip(&targets).filter(|(p, t)| p == t).count();
        let ce = |y: &[usize]| {
            cross_entropy(logits.clone(), y, cfg.label_smoothing, &self.class_weights)
        };
        let loss = match &mix {
            None => ce(&targets),
            Some(m) => {
                let partners: Vec<usize> = m.perm.iter().map(|&j| targets[j]).collect();
                ce(&targets).mul_scalar(m.lambda) + ce(&partners).mul_scalar(1.0 - m.lambda)
            }
        };
        Ok(BatchLoss {
            loss,
            correct: Some(correct),
        })
    }

    fn validate(&self, model: &T::Model) -> Result<Validation> {
        let (probs, labels) = self.task.val_probs(model)?;
        let (loss, score) = loss_and_accuracy(&probs, &labels, self.cfg.num_classes);
        Ok(Validation { loss, score })
    }
}

/// Trains a classifier on `task` with the one loop ([`learner::learn`]): checkpoints in
/// `checkpoint_dir` after every epoch, continues from it with `resume`, polls `interrupt`
/// after every step.
pub fn fit<T: ClassifierTask>(
    task: &T,
    model: T::Model,
    cfg: &FitConfig,
    checkpoint_dir: Option<&Path>,
    resume: bool,
    interrupt: &AtomicBool,
) -> Result<Outcome<T::Model>> {
    let n = task.train_len();
    let labels: Vec<usize> = (0..n).map(|i| task.train_label(i)).collect();
    let class_weights = if cfg.balanced {
        balanced_class_weights(&labels, cfg.num_classes)
    } else {
        Vec::new()
    };
    let classification = Classification {
        task,
        cfg,
        labels,
        class_weights,
    };
    learner::learn(
        &classification,
        model,
        &cfg.loop_config(),
        checkpoint_dir,
        resume,
        interrupt,
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Head, HeadTask, Rows};
    use burn::tensor::Device;
    use std::sync::atomic::Ordering;

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
            ema_decay: None,
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
        assert!(
            out.state.best_val_score > 0.6,
            "{}",
            out.state.best_val_score
        );
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

    impl<'a> StopAt<'a> {
        /// The toy task, raising `flag` during training call `stop_at`.
        fn new(flag: &'a AtomicBool, stop_at: usize) -> Self {
            Self {
                inner: task(),
                flag,
                calls: Default::default(),
                stop_at,
            }
        }
    }

    impl ClassifierTask for StopAt<'_> {
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
        let stopping = StopAt::new(&flag, 8);
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
            assert_eq!(la.val_score, lb.val_score);
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
        let state = crate::learner::FitState::open(dir.path()).unwrap().unwrap();
        assert_eq!((state.epoch, state.batch_in_epoch, state.step), (0, 1, 1));
        assert!(!state.finished);
    }

    #[test]
    fn a_run_stopped_by_its_time_budget_resumes_to_the_end() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let no = AtomicBool::new(false);
        let budget = FitConfig {
            time_budget: Some(Duration::ZERO),
            ..cfg(3)
        };
        let head = Head::new(8, 3, 0.0, &device);
        let first = fit(&task(), head.clone(), &budget, Some(dir.path()), false, &no).unwrap();
        assert!(!first.interrupted);
        assert_eq!(first.state.stop_reason, crate::learner::TIME_BUDGET);
        assert_eq!((first.state.epoch, first.state.step), (0, 1));
        let rest = fit(&task(), head.clone(), &cfg(3), Some(dir.path()), true, &no).unwrap();
        assert!(rest.state.finished);
        assert_eq!(rest.state.epoch, 3);
        assert_eq!(rest.state.step, 18);
        // an early-stopped run is not reopened by --resume
        let mut done = rest.state.clone();
        done.epoch = 1;
        done.stop_reason = "no validation improvement for 1 epochs".into();
        let state_file = dir.path().join("state.json");
        std::fs::write(&state_file, serde_json::to_vec(&done).unwrap()).unwrap();
        let again = fit(&task(), head, &cfg(3), Some(dir.path()), true, &no).unwrap();
        assert_eq!(again.state.epoch, 1);
        assert_eq!(again.state.step, done.step);
    }

    #[test]
    fn an_ema_run_keeps_the_average_and_resumes_to_the_same_weights() {
        let device = Device::flex();
        let init = Head::new(8, 3, 0.0, &device);
        let no = AtomicBool::new(false);
        let ema = FitConfig {
            ema_decay: Some(0.9),
            ..cfg(3)
        };
        let plain = fit(&task(), init.clone(), &cfg(3), None, false, &no).unwrap();
        let full = fit(&task(), init.clone(), &ema, None, false, &no).unwrap();
        // The averaged weights learn (the random init decides how far in 3 epochs: 0.46–0.7
        // on these 24 rows), above chance for 3 classes.
        let first = full.state.history[0].val_score;
        assert!(
            full.state.best_val_score > 1.0 / 3.0 && full.state.best_val_score > first,
            "{:?}",
            full.state
        );
        assert_ne!(weights_of(&full.best), weights_of(&plain.best));
        // interrupted in epoch 2, resumed: the average is restored, not restarted
        let dir = tempfile::tempdir().unwrap();
        let flag = AtomicBool::new(false);
        let stopping = StopAt::new(&flag, 8);
        let first = fit(
            &stopping,
            init.clone(),
            &ema,
            Some(dir.path()),
            false,
            &flag,
        )
        .unwrap();
        assert!(first.interrupted);
        let resumed = fit(&task(), init, &ema, Some(dir.path()), true, &no).unwrap();
        for (x, y) in weights_of(&full.best)
            .iter()
            .zip(&weights_of(&resumed.best))
        {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}

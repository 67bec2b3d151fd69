//! Learning-rate schedules of the training loop ([`crate::learner`]): the one-cycle
//! schedule (linear warm-up from `max_lr / div_start` to `max_lr`, then cosine annealing
//! down to `max_lr / div_final`, per step) and a per-epoch cosine decay.

use serde::{Deserialize, Serialize};

/// The one-cycle schedule over `total_steps` optimizer steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneCycle {
    /// Peak learning rate, reached at the end of the warm-up.
    pub max_lr: f64,
    /// Number of steps in the whole schedule (≥ 1).
    pub total_steps: usize,
    /// Warm-up steps (linear ramp), `< total_steps`.
    pub warmup_steps: usize,
    /// Learning rate at step 0 is `max_lr / div_start`.
    pub div_start: f64,
    /// Learning rate at the last step is `max_lr / div_final`.
    pub div_final: f64,
}

impl OneCycle {
    /// A schedule warming up over `warmup_frac` of the steps, starting at `max_lr / 25` and
    /// ending at `max_lr / 1e4` (the common defaults).
    pub fn new(max_lr: f64, total_steps: usize, warmup_frac: f64) -> Self {
        let total_steps = total_steps.max(1);
        let warmup = ((total_steps as f64) * warmup_frac.clamp(0.0, 1.0)).round() as usize;
        Self {
            max_lr,
            total_steps,
            warmup_steps: warmup.min(total_steps - 1),
            div_start: 25.0,
            div_final: 1e4,
        }
    }

    /// Learning rate for step `step` (0-based); steps past the end keep the final rate.
    pub fn lr(&self, step: usize) -> f64 {
        let start = self.max_lr / self.div_start;
        let end = self.max_lr / self.div_final;
        if step < self.warmup_steps {
            let t = step as f64 / self.warmup_steps as f64;
            return start + (self.max_lr - start) * t;
        }
        let decay_steps = (self.total_steps - self.warmup_steps)
            .saturating_sub(1)
            .max(1);
        let t = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        end + (self.max_lr - end) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// Cosine decay from `lr` at epoch 0 to `0.05·lr` at epoch `total`, constant within an
/// epoch.
pub fn cosine_per_epoch(lr: f64, epoch: usize, total: usize) -> f64 {
    let t = epoch as f64 / total.max(1) as f64;
    lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// How the loop sets the learning rate.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// [`OneCycle`] over all steps of the run: peak rate and warm-up fraction.
    OneCycle {
        /// Peak learning rate.
        peak: f64,
        /// Fraction of the steps spent warming up.
        warmup_frac: f64,
    },
    /// [`cosine_per_epoch`] from this peak.
    CosinePerEpoch {
        /// Learning rate of the first epoch.
        peak: f64,
    },
}

impl Schedule {
    /// Learning rate of optimizer step `step` in a run of `epochs` epochs of
    /// `steps_per_epoch` steps.
    pub fn lr(&self, step: usize, steps_per_epoch: usize, epochs: usize) -> f64 {
        match *self {
            Self::OneCycle { peak, warmup_frac } => {
                OneCycle::new(peak, epochs * steps_per_epoch, warmup_frac).lr(step)
            }
            Self::CosinePerEpoch { peak } => {
                cosine_per_epoch(peak, step / steps_per_epoch.max(1), epochs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_ends_low() {
        assert!((cosine_per_epoch(1.0, 0, 10) - 1.0).abs() < 1e-9);
        assert!(cosine_per_epoch(1.0, 9, 10) < 0.1);
        assert!(cosine_per_epoch(1.0, 5, 10) < cosine_per_epoch(1.0, 4, 10));
        let s = Schedule::CosinePerEpoch { peak: 1.0 };
        assert_eq!(s.lr(7, 4, 10), cosine_per_epoch(1.0, 1, 10));
        let o = Schedule::OneCycle {
            peak: 1e-2,
            warmup_frac: 0.1,
        };
        assert_eq!(o.lr(10, 101, 1), OneCycle::new(1e-2, 101, 0.1).lr(10));
    }

    #[test]
    fn warmup_peak_and_end_values() {
        let s = OneCycle::new(1e-2, 101, 0.1);
        assert_eq!(s.warmup_steps, 10);
        assert!((s.lr(0) - 4e-4).abs() < 1e-12);
        assert!((s.lr(5) - (4e-4 + (1e-2 - 4e-4) * 0.5)).abs() < 1e-12);
        assert!((s.lr(10) - 1e-2).abs() < 1e-12);
        // half-way through the cosine: mean of peak and floor
        assert!((s.lr(55) - (1e-2 + 1e-6) / 2.0).abs() < 1e-9);
        assert!((s.lr(100) - 1e-6).abs() < 1e-12);
        assert!((s.lr(1000) - 1e-6).abs() < 1e-12);
    }

    #[test]
    fn monotone_up_then_down() {
        let s = OneCycle::new(3e-3, 50, 0.2);
        for i in 1..s.warmup_steps {
            assert!(s.lr(i) > s.lr(i - 1));
        }
        for i in s.warmup_steps + 1..50 {
            assert!(s.lr(i) < s.lr(i - 1));
        }
    }

    #[test]
    fn degenerate_lengths_do_not_panic() {
        let s = OneCycle::new(1.0, 0, 0.5);
        assert!(s.lr(0).is_finite());
        let s = OneCycle::new(1.0, 1, 1.0);
        assert!((s.lr(0) - 1.0).abs() < 1e-12);
    }
}

//! From noisy per-frame results to a stable kiosk decision.
//!
//! Probabilities and the Parental Advisory score are smoothed with an exponential moving
//! average while the sleeve stays in view. The candidate answer is the best genre, or
//! "uncertain" when its smoothed, calibrated probability is below the abstain threshold;
//! together with the PA state (itself with an on/off hysteresis band) it must hold for
//! `hold_frames` consecutive frames before it is shown, and the shown answer clears once the
//! sleeve has been gone for `clear_frames` frames.

use serde::Serialize;
use sleeve_shared::{Classification, LabelSet};

/// Tuning of the [`Stabilizer`].
#[derive(Clone, Debug, PartialEq)]
pub struct StabilizerConfig {
    /// Weight of the newest frame in the moving average, `(0, 1]`.
    pub alpha: f32,
    /// Frames a new answer must hold before it is shown (≥ 1).
    pub hold_frames: u32,
    /// Frames without a sleeve before the shown answer clears (≥ 1).
    pub clear_frames: u32,
    /// Smoothed top probability below which the answer is "uncertain / not a cover".
    pub abstain_threshold: f32,
    /// Smoothed PA score at which the badge turns on.
    pub pa_on: f32,
    /// Smoothed PA score below which it turns off again (≤ `pa_on`).
    pub pa_off: f32,
}

impl Default for StabilizerConfig {
    fn default() -> Self {
        Self {
            alpha: 0.5,
            hold_frames: 3,
            clear_frames: 3,
            abstain_threshold: 0.5,
            pa_on: 0.5,
            pa_off: 0.35,
        }
    }
}

/// The genre part of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "index")]
pub enum Verdict {
    /// A genre, by label index.
    Genre(usize),
    /// Not confident enough: "uncertain / not a cover".
    Uncertain,
}

/// A shown, stable answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StableDecision {
    /// Genre or abstain.
    pub verdict: Verdict,
    /// Genre name, `None` when uncertain.
    pub genre: Option<String>,
    /// Smoothed probability of the best genre.
    pub confidence: f32,
    /// Best three genres (smoothed): name and probability.
    pub top3: Vec<(String, f32)>,
    /// Whether a Parental Advisory label is shown.
    pub pa: bool,
    /// Smoothed PA score.
    pub pa_score: f32,
}

/// A change of the shown answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// A (new) answer is shown.
    Decision(StableDecision),
    /// The sleeve left; nothing is shown.
    Cleared,
}

/// One frame's evidence.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// Calibrated (fused) genre probabilities.
    pub probs: &'a [f32],
    /// Best PA score of the frame (0 if none).
    pub pa_score: f32,
}

/// The EMA + hysteresis state machine.
#[derive(Clone, Debug)]
pub struct Stabilizer {
    cfg: StabilizerConfig,
    labels: LabelSet,
    ema: Option<Vec<f32>>,
    pa_ema: f32,
    pa_on: bool,
    pending: Option<((Verdict, bool), u32)>,
    absent: u32,
    shown: Option<StableDecision>,
}

impl Stabilizer {
    /// A stabilizer for a bundle's labels.
    pub fn new(cfg: StabilizerConfig, labels: LabelSet) -> Self {
        Self {
            cfg,
            labels,
            ema: None,
            pa_ema: 0.0,
            pa_on: false,
            pending: None,
            absent: 0,
            shown: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StabilizerConfig {
        &self.cfg
    }

    /// The answer on screen, if any (its confidence follows the latest frames).
    pub fn current(&self) -> Option<&StableDecision> {
        self.shown.as_ref()
    }

    /// Feeds one frame: `None` when no sleeve was found. Returns an event when the shown
    /// answer changes.
    pub fn update(&mut self, obs: Option<Observation<'_>>) -> Option<Event> {
        let Some(obs) = obs else {
            return self.sleeve_absent();
        };
        self.absent = 0;
        let a = self.cfg.alpha.clamp(1e-3, 1.0);
        let ema = match self.ema.take() {
            Some(prev) if prev.len() == obs.probs.len() => prev
                .iter()
                .zip(obs.probs)
                .map(|(e, p)| a * p + (1.0 - a) * e)
                .collect(),
            _ => {
                self.pa_ema = obs.pa_score;
                obs.probs.to_vec()
            }
        };
        self.pa_ema = a * obs.pa_score + (1.0 - a) * self.pa_ema;
        if self.pa_on && self.pa_ema < self.cfg.pa_off {
            self.pa_on = false;
        } else if !self.pa_on && self.pa_ema >= self.cfg.pa_on {
            self.pa_on = true;
        }
        let decision = self.decision_of(&ema);
        self.ema = Some(ema);
        let key = (decision.verdict, decision.pa);
        let count = match self.pending {
            Some((k, n)) if k == key => n + 1,
            _ => 1,
        };
        self.pending = Some((key, count));
        let shown_key = self.shown.as_ref().map(|s| (s.verdict, s.pa));
        if shown_key == Some(key) {
            // Same answer: keep it current without an event.
            self.shown = Some(decision);
            None
        } else if count >= self.cfg.hold_frames.max(1) {
            self.shown = Some(decision.clone());
            Some(Event::Decision(decision))
        } else {
            None
        }
    }

    fn sleeve_absent(&mut self) -> Option<Event> {
        self.pending = None;
        self.absent += 1;
        if self.absent < self.cfg.clear_frames.max(1) {
            return None;
        }
        self.ema = None;
        self.pa_ema = 0.0;
        self.pa_on = false;
        self.shown.take().map(|_| Event::Cleared)
    }

    fn decision_of(&self, ema: &[f32]) -> StableDecision {
        let top = Classification::top_k(ema, 3);
        let best = top.best();
        let confidence = best.map(|g| g.score).unwrap_or(0.0);
        let verdict = match best {
            Some(g) if confidence >= self.cfg.abstain_threshold => Verdict::Genre(g.index as usize),
            _ => Verdict::Uncertain,
        };
        let name = |i: usize| self.labels.name(i).unwrap_or("?").to_string();
        StableDecision {
            verdict,
            genre: match verdict {
                Verdict::Genre(i) => Some(name(i)),
                Verdict::Uncertain => None,
            },
            confidence,
            top3: top
                .top
                .iter()
                .map(|g| (name(g.index as usize), g.score))
                .collect(),
            pa: self.pa_on,
            pa_score: self.pa_ema,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stab() -> Stabilizer {
        Stabilizer::new(
            StabilizerConfig::default(),
            LabelSet::new(&["a", "b", "c"]).unwrap(),
        )
    }

    fn obs(probs: &[f32], pa: f32) -> Option<Observation<'_>> {
        Some(Observation {
            probs,
            pa_score: pa,
        })
    }

    #[test]
    fn answer_appears_after_hold_frames_and_clears_after_absence() {
        let mut s = stab();
        let p = [0.1, 0.8, 0.1];
        assert_eq!(s.update(obs(&p, 0.0)), None);
        assert_eq!(s.update(obs(&p, 0.0)), None);
        let Some(Event::Decision(d)) = s.update(obs(&p, 0.0)) else {
            panic!("no decision after 3 frames")
        };
        assert_eq!(d.verdict, Verdict::Genre(1));
        assert_eq!(d.genre.as_deref(), Some("b"));
        assert!(!d.pa);
        assert_eq!(s.update(obs(&p, 0.0)), None, "no repeated event");
        assert_eq!(s.update(None), None);
        assert_eq!(s.update(None), None);
        assert_eq!(s.update(None), Some(Event::Cleared));
        assert!(s.current().is_none());
        assert_eq!(s.update(None), None, "cleared only once");
    }

    #[test]
    fn a_single_flicker_does_not_change_the_answer() {
        let mut s = stab();
        let b = [0.1, 0.8, 0.1];
        let c = [0.05, 0.05, 0.9];
        for _ in 0..3 {
            s.update(obs(&b, 0.0));
        }
        assert_eq!(s.update(obs(&c, 0.0)), None);
        assert_eq!(s.current().unwrap().verdict, Verdict::Genre(1));
        // A short absence does not clear either.
        assert_eq!(s.update(None), None);
        assert_eq!(s.current().unwrap().verdict, Verdict::Genre(1));
        // A sustained change does, after the EMA crosses over and holds.
        let mut changed = None;
        for _ in 0..6 {
            if let Some(e) = s.update(obs(&c, 0.0)) {
                changed = Some(e);
                break;
            }
        }
        let Some(Event::Decision(d)) = changed else {
            panic!("answer never changed")
        };
        assert_eq!(d.verdict, Verdict::Genre(2));
    }

    #[test]
    fn low_confidence_abstains() {
        let mut s = stab();
        let flat = [0.4, 0.35, 0.25];
        let mut ev = None;
        for _ in 0..3 {
            ev = s.update(obs(&flat, 0.0)).or(ev);
        }
        let Some(Event::Decision(d)) = ev else {
            panic!("no decision")
        };
        assert_eq!(d.verdict, Verdict::Uncertain);
        assert_eq!(d.genre, None);
        assert!((d.confidence - 0.4).abs() < 1e-6);
        assert_eq!(d.top3[0].0, "a");
    }

    #[test]
    fn pa_badge_has_hysteresis() {
        let mut s = stab();
        let p = [0.9, 0.05, 0.05];
        for _ in 0..3 {
            s.update(obs(&p, 0.9));
        }
        assert!(s.current().unwrap().pa);
        // Score dips to 0.45 (below on, above off): the badge stays.
        for _ in 0..4 {
            s.update(obs(&p, 0.45));
        }
        assert!(
            s.current().unwrap().pa,
            "inside the hysteresis band the badge stays on"
        );
        // Drops well below: the (genre, no PA) answer takes over after holding.
        let mut off = false;
        for _ in 0..8 {
            if let Some(Event::Decision(d)) = s.update(obs(&p, 0.0)) {
                off = !d.pa;
            }
        }
        assert!(off && !s.current().unwrap().pa);
    }
}

//! How the classifier's logits become the kiosk's answer: a softmax temperature and the
//! calibrated confidence below which the kiosk abstains. Fitted on validation data by
//! `sleeve export` and carried in the bundle manifest.

use serde::{Deserialize, Serialize};

/// Accepted range of [`ClassifierCalibration::temperature`].
pub const TEMPERATURE_RANGE: core::ops::RangeInclusive<f32> = 0.05..=20.0;

/// Calibration of the genre classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierCalibration {
    /// Probabilities are `softmax(logits / temperature)`.
    pub temperature: f32,
    /// The kiosk says "uncertain" when the (smoothed) calibrated top-1 probability is below
    /// this.
    pub abstain_threshold: f32,
}

impl Default for ClassifierCalibration {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            abstain_threshold: 0.5,
        }
    }
}

impl ClassifierCalibration {
    /// Checks both numbers are in range.
    pub fn validate(&self) -> Result<(), alloc::string::String> {
        if !TEMPERATURE_RANGE.contains(&self.temperature) {
            return Err(alloc::format!(
                "calibration temperature {} is outside [{}, {}]",
                self.temperature,
                TEMPERATURE_RANGE.start(),
                TEMPERATURE_RANGE.end()
            ));
        }
        if !(0.0..=1.0).contains(&self.abstain_threshold) {
            return Err(alloc::format!(
                "calibration abstain_threshold {} is outside [0, 1]",
                self.abstain_threshold
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert!(ClassifierCalibration::default().validate().is_ok());
        for (t, a) in [
            (0.0, 0.5),
            (f32::NAN, 0.5),
            (25.0, 0.5),
            (1.0, 1.5),
            (1.0, -0.1),
        ] {
            let c = ClassifierCalibration {
                temperature: t,
                abstain_threshold: a,
            };
            assert!(c.validate().is_err(), "{t} {a}");
        }
    }
}

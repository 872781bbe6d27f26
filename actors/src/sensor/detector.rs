//! A sensor's decisions: a model score and the sensor's novelty in, a calibrated verdict out.
//!
//! Purpose: the one place where a window's evidence becomes a decision, shared by the live
//! sensor actor and `edgegw eval`, so an evaluation judges exactly what `run` would do. Two
//! calibrated scores meet here: the pooled model's, calibrated against the sensor's own
//! score history ([`super::likelihood`]), and the sensor's novelty, the distance of its
//! recent course to everything it did before, calibrated the same way
//! ([`super::novelty`]). The decision's score is the higher of the two; the threshold
//! (`sensors.threshold`, or a feedback override) applies to it, and the alert gate
//! ([`super::storm`]) turns anomalous decisions into alerts or counted suppressions.
//!
//! Design constraints: pure and O(1) per decision; spacing runs on the sensor's own clock
//! (samples, see [`super::tracker::Tracker::clock`]), passed in with the event time; decisions must be fed in window order.

use super::likelihood::{Calibrated, Likelihood, LikelihoodConfig};
use super::storm::{AlertGate, At, Verdict};
use super::SensorsConfig;

/// One decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The calibrated score (0–1) the threshold applies to: the higher of `model` and
    /// `novelty`.
    pub score: f32,
    /// The model's score, calibrated (0–1).
    pub model: f32,
    /// The sensor's novelty, calibrated (0–1).
    pub novelty: f32,
    /// The likelihood that the window is unusual for this sensor (0–1).
    pub confidence: f32,
    /// The threshold applied.
    pub threshold: f32,
    /// What the alert gate made of it.
    pub verdict: Verdict,
}

impl Decision {
    /// Whether the decision was anomalous (raised or suppressed).
    pub fn anomalous(&self) -> bool {
        self.verdict != Verdict::Normal
    }
}

/// One sensor's calibration and alert gate.
#[derive(Debug, Clone)]
pub struct Detector {
    likelihood: Likelihood,
    gate: AlertGate,
}

impl Detector {
    /// A detector with nothing learned, for `cfg`.
    pub fn new(cfg: &SensorsConfig) -> Self {
        Self {
            likelihood: Likelihood::new(cfg.likelihood_config()),
            gate: AlertGate::new(cfg.gate_config()),
        }
    }

    /// Decides on the window ending at `at` with model score `raw` (`model_threshold` is
    /// the model's own, which scales the calibration floor) and calibrated `novelty`.
    /// `threshold` maps the calibrated score to the threshold in force (it may record the
    /// score); `cap` is the global alert cap, asked only when an alert would be raised.
    pub fn decide(
        &mut self,
        at: At,
        raw: f32,
        model_threshold: f32,
        novelty: Calibrated,
        threshold: impl FnOnce(f32) -> f32,
        cap: impl FnOnce() -> bool,
    ) -> Decision {
        let c = self.likelihood.update(raw, model_threshold);
        let score = c.score.max(novelty.score);
        let t = threshold(score);
        let verdict = self.gate.decide(at, score > t, cap);
        Decision {
            score,
            model: c.score,
            novelty: novelty.score,
            confidence: c.likelihood.max(novelty.likelihood) as f32,
            threshold: t,
            verdict,
        }
    }

    /// The alert gate (period accounting).
    pub fn gate_mut(&mut self) -> &mut AlertGate {
        &mut self.gate
    }

    /// The alert gate.
    pub fn gate(&self) -> &AlertGate {
        &self.gate
    }
}

/// The likelihood settings of `[sensors]`.
pub(crate) fn likelihood_config(learn: u32) -> LikelihoodConfig {
    LikelihoodConfig {
        learn,
        ..LikelihoodConfig::default()
    }
}

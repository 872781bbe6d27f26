//! `[sensors]` and `[alerts]`: per-sensor windows, baselines and decisions, and the limit on
//! alerts across all sensors.

use super::{check, ConfigError};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};

/// `[sensors]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorsConfig {
    /// Samples per window (the ring buffer's fixed capacity).
    pub window: usize,
    /// A feature vector is computed every `hop` samples once the window is full.
    pub hop: usize,
    /// FFT band magnitudes per window (the model's feature count depends on it).
    pub bands: usize,
    /// Samples older than the newest by more than this are rejected as late.
    pub allowed_lateness: Dur,
    /// Samples a new sensor spends learning its baseline before decisions start.
    pub warmup_samples: usize,
    /// Rate per window at which the baseline follows the sensor (bounded steps; 0 = frozen).
    pub baseline_adapt_rate: f64,
    /// Decisions a new sensor spends learning its own score distribution before any can be
    /// anomalous (see [`crate::sensor::likelihood`]).
    pub learn_decisions: u32,
    /// Calibrated score (0–1, [`crate::sensor::likelihood`]) above which a decision is anomalous; 0.5 means
    /// the recent model scores sit where this sensor's history puts one chance in 10⁵, or its
    /// novelty where its history puts one in ~30 ([`crate::sensor::novelty`]).
    pub threshold: f32,
    /// Judge each window also by the sensor's novelty, the distance of its recent course to
    /// its own history ([`crate::sensor::novelty`]); `false` leaves the model score alone.
    pub novelty: bool,
    /// Most sensors with a live actor; samples of further sensors are rejected.
    pub max_sensors: usize,
    /// A sensor without samples for this long is stopped (its baseline is kept).
    pub idle_timeout: Dur,
    /// Minimum spacing of two alerts of one sensor, across episodes, in the sensor's own
    /// samples (a silence counts the samples it stood for); alerts within it are suppressed
    /// and counted (see [`crate::sensor::storm`]).
    pub alert_cooldown: u32,
    /// While an episode lasts, a reminder alert every this many of the sensor's samples;
    /// 0 = never.
    pub alert_repeat: u32,
    /// Consecutive normal decisions that end an episode (hysteresis).
    pub episode_end: u32,
    /// An episode also ends when the sensor made no decision for this many of its own
    /// sample intervals (a silence, measured against its typical interval).
    pub episode_gap: u32,
    /// Send a raw troubleshooting window (the window before the alert and `raw_after`
    /// samples after it) with every alert.
    pub raw_on_alert: bool,
    /// Samples collected after an alert for its raw window.
    pub raw_after: usize,
}

impl Default for SensorsConfig {
    fn default() -> Self {
        Self {
            window: 64,
            hop: 16,
            bands: 4,
            allowed_lateness: Dur::secs(2),
            warmup_samples: 128,
            baseline_adapt_rate: 0.02,
            learn_decisions: 16,
            threshold: 0.5,
            novelty: true,
            max_sensors: 10_000,
            idle_timeout: Dur::secs(600),
            alert_cooldown: 256,
            alert_repeat: 0,
            episode_end: 3,
            episode_gap: 256,
            raw_on_alert: true,
            raw_after: 64,
        }
    }
}

impl SensorsConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            (8..=4096).contains(&self.window),
            "sensors.window",
            "must be between 8 and 4096 samples",
        )?;
        check(
            self.hop >= 1 && self.hop <= self.window,
            "sensors.hop",
            "must be between 1 and sensors.window",
        )?;
        check(
            self.bands >= 1 && self.bands <= self.window / 2,
            "sensors.bands",
            "must be between 1 and sensors.window / 2",
        )?;
        check(
            self.warmup_samples >= self.window && self.warmup_samples <= 1_000_000,
            "sensors.warmup_samples",
            "must be at least sensors.window and at most 1000000",
        )?;
        check(
            (0.0..1.0).contains(&self.baseline_adapt_rate),
            "sensors.baseline_adapt_rate",
            "must be in [0, 1)",
        )?;
        check(
            self.max_sensors > 0,
            "sensors.max_sensors",
            "must be greater than 0",
        )?;
        check(
            self.raw_after <= 100_000,
            "sensors.raw_after",
            "must be at most 100000",
        )?;
        check(
            self.idle_timeout.get().as_secs() >= 1,
            "sensors.idle_timeout",
            "must be at least 1s",
        )?;
        check(
            self.threshold.is_finite() && self.threshold >= 0.0,
            "sensors.threshold",
            "must be a finite number >= 0 (calibrated scores are 0-1)",
        )?;
        check(
            self.learn_decisions <= 1_000_000,
            "sensors.learn_decisions",
            "must be at most 1000000",
        )?;
        check(
            self.alert_repeat == 0 || self.alert_repeat >= self.alert_cooldown,
            "sensors.alert_repeat",
            "must be 0 (no reminders) or at least sensors.alert_cooldown",
        )?;
        check(
            (1..=10_000).contains(&self.episode_end),
            "sensors.episode_end",
            "must be between 1 and 10000 decisions",
        )?;
        check(
            self.episode_gap >= 1,
            "sensors.episode_gap",
            "must be at least 1 sample interval",
        )
    }
}

/// `[alerts]`: limits across all sensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Most sensor alerts per minute across all sensors (wall clock), burst the same; beyond,
    /// alerts are suppressed and counted (`cap`). The gateway's own alerts are exempt.
    pub max_per_minute: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { max_per_minute: 60 }
    }
}

impl AlertsConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            (1..=1_000_000).contains(&self.max_per_minute),
            "alerts.max_per_minute",
            "must be between 1 and 1000000",
        )
    }
}

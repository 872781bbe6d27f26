//! Per-sensor window actors and their supervisor.
//!
//! Design constraints: one actor per sensor owns that sensor's fixed-size window (constant
//! work per sample, see [`window`]), its learned baseline ([`baseline`]) and its period summary
//! ([`summary`]), and the alert gate that turns its anomalous decisions into alerts or counted
//! suppressions ([`storm`]). The supervisor routes samples, spawns actors on first sample up to
//! `max_sensors`, stops idle ones, and restarts crashed ones by policy: a crash loses at most
//! the window, since the baseline lives in [`crate::ctx::Ctx::baselines`], and the alert gate's
//! open episode with its not yet reported suppressions.

pub mod actor;
pub mod admission;
pub mod baseline;
pub mod detector;
pub mod features;
pub mod likelihood;
pub mod moments;
pub mod monotonic;
pub mod novelty;
pub mod offline;
pub mod order;
pub mod percentile;
pub mod raw;
mod report;
pub mod ring;
pub mod spectrum;
pub mod storm;
#[cfg(test)]
mod storm_tests;
pub mod summary;
pub mod supervisor;
pub mod tracker;
pub mod window;

pub use actor::{SensorActor, SensorMsg};
pub use supervisor::{SensorSupMsg, SensorSupervisor};

use crate::port::Slot;
use std::sync::Arc;

pub use crate::config::SensorsConfig;
use std::time::Instant;
use window::Sample;

/// What the sensor stage is given at spawn besides the shared services ([`crate::ctx::Ctx`]):
/// the stages it sends to, and the state it shares with feedback and across sensors.
pub struct SensorPorts {
    /// The inference pool: feature vectors to score.
    pub inference: Arc<Slot<crate::inference::PoolMsg>>,
    /// The uplink: alerts, summaries and raw windows to commit and send.
    pub uplink: Arc<Slot<crate::uplink::UplinkMsg>>,
    /// Threshold overrides set by feedback, and the decisions its calibration learns from.
    pub feedback: Arc<crate::feedback::FeedbackShared>,
    /// The global cap on sensor alerts (`alerts.max_per_minute`), shared by every sensor.
    pub alert_cap: Arc<storm::AlertCap>,
}

impl SensorPorts {
    /// Ports to no stage (every send fails and is counted), with fresh feedback state and
    /// alert cap: for a sensor stage run alone, as the memory benchmark does.
    pub fn unconnected(cfg: &crate::config::GatewayConfig) -> Arc<Self> {
        Arc::new(SensorPorts {
            inference: Arc::default(),
            uplink: Arc::default(),
            feedback: Arc::new(crate::feedback::FeedbackShared::new(cfg)),
            alert_cap: Arc::new(storm::AlertCap::new(&cfg.alerts)),
        })
    }
}

/// Samples for one sensor from one ingest message.
#[derive(Debug)]
pub struct SampleBatch {
    /// The samples, in payload order.
    pub samples: Vec<Sample>,
    /// When ingest received the message (start of the decision-latency clock).
    pub received: Instant,
    /// The message's share of the ingest budget, released when the batch is processed or
    /// dropped.
    pub permit: crate::flow::Permit,
}

/// What each sensor actor derives from `[sensors]`.
impl SensorsConfig {
    /// The alert gate's settings for each sensor actor, in the sensor's own samples.
    pub fn gate_config(&self) -> storm::GateConfig {
        storm::GateConfig {
            cooldown: i64::from(self.alert_cooldown),
            repeat: i64::from(self.alert_repeat),
            episode_end: self.episode_end,
            gap: i64::from(self.episode_gap),
        }
    }

    /// The score calibration's settings for each sensor actor.
    pub fn likelihood_config(&self) -> likelihood::LikelihoodConfig {
        detector::likelihood_config(self.learn_decisions)
    }

    /// The window configuration for each sensor actor.
    pub fn window_config(&self) -> window::WindowConfig {
        window::WindowConfig {
            len: self.window,
            hop: self.hop,
            bands: self.bands,
            allowed_lateness_ms: self.allowed_lateness.get().as_millis() as i64,
        }
    }

    /// The baseline configuration for each sensor actor.
    pub fn baseline_config(&self) -> baseline::BaselineConfig {
        baseline::BaselineConfig {
            warmup_samples: self.warmup_samples,
            adapt_rate: self.baseline_adapt_rate,
            clamp: 20.0,
        }
    }
}

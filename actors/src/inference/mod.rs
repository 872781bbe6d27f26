//! The pooled inference stage: a dispatcher that micro-batches feature vectors and N
//! supervised workers that run the model on blocking threads.
//!
//! Design constraints: the queue is bounded (`queue_capacity`); on overload the oldest
//! request is shed and counted, because a fresh decision is worth more than a stale one. A
//! batch leaves when it reaches `max_batch` or its oldest request has waited `max_wait`,
//! whichever comes first, and only to an idle worker, so at most `workers` batches run at
//! once and latency stays bounded. A worker that panics is restarted by policy; one that hangs
//! longer than `hang_timeout` is replaced and its batch scored by the fallback rule. Repeated
//! model errors switch the pool to the fallback rule (mode degraded) for a cool-down.

pub mod pool;
pub mod worker;

pub use pool::{InferencePool, PoolMsg};

use crate::config::{check, ConfigError};
use crate::duration::Dur;
use crate::sensor::window::WindowStats;
use crate::sensor::SensorMsg;
use ractor::ActorRef;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use crate::telemetry::Stamps;

/// `[inference]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Model package directory; empty = the package built into the binary.
    pub model: PathBuf,
    /// Worker actors, each running one batch at a time on a blocking thread.
    pub workers: usize,
    /// Most feature vectors per batch.
    pub max_batch: usize,
    /// Longest a request waits for its batch to fill.
    pub max_wait: Dur,
    /// Requests queued before the oldest are shed.
    pub queue_capacity: usize,
    /// A batch running longer than this marks its worker hung: it is replaced.
    pub hang_timeout: Dur,
    /// Consecutive failed batches before switching to the fallback rule.
    pub fallback_after: u32,
    /// How long the fallback rule stays in use before the model is tried again.
    pub fallback_cooldown: Dur,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::new(),
            workers: 2,
            max_batch: 64,
            max_wait: Dur::ms(10),
            queue_capacity: 8192,
            hang_timeout: Dur::secs(5),
            fallback_after: 3,
            fallback_cooldown: Dur::secs(60),
        }
    }
}

impl InferenceConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            (1..=64).contains(&self.workers),
            "inference.workers",
            "must be between 1 and 64",
        )?;
        check(
            (1..=4096).contains(&self.max_batch),
            "inference.max_batch",
            "must be between 1 and 4096",
        )?;
        check(
            self.queue_capacity >= self.max_batch,
            "inference.queue_capacity",
            "must be at least inference.max_batch",
        )?;
        check(
            self.hang_timeout.get() > self.max_wait.get(),
            "inference.hang_timeout",
            "must be longer than inference.max_wait",
        )?;
        check(
            self.fallback_after > 0,
            "inference.fallback_after",
            "must be greater than 0",
        )
    }
}

/// One feature vector to score, with what the decision needs when it comes back.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    /// Sensor id.
    pub sensor: Arc<str>,
    /// Normalised features, in the model's feature order.
    pub features: Vec<f32>,
    /// The window the features describe.
    pub stats: WindowStats,
    /// When ingest received the sample that completed the window, when its sensor began on
    /// it, and when the features were ready (for the decision latency and its trace).
    pub stamps: Stamps,
    /// Where the decision goes.
    pub reply: ActorRef<SensorMsg>,
}

/// A scored request, sent back to its sensor.
#[derive(Debug)]
pub struct Scored {
    /// The request.
    pub req: ScoreRequest,
    /// Anomaly score (higher = more anomalous).
    pub score: f32,
    /// The scorer's calibrated threshold.
    pub threshold: f32,
    /// Scorer name.
    pub model_name: String,
    /// Scorer version.
    pub model_version: String,
    /// True when the fallback rule produced the score.
    pub fallback: bool,
    /// Size of the batch it ran in.
    pub batch: usize,
    /// When that batch started and finished running through the scorer.
    pub ran: (Instant, Instant),
}

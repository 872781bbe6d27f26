//! `[inference]`: the pooled inference stage and its model.

use super::{check, ConfigError};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Largest `inference.max_wait` accepted: a decision held longer than this to fill a batch
/// is no longer a real-time decision.
const MAX_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Extra time a batch may wait to fill while a worker is idle; `0ms` = none (a request
    /// goes out as soon as a worker is free).
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
            max_wait: Dur::ms(0),
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
            self.max_wait.get() <= MAX_WAIT_LIMIT,
            "inference.max_wait",
            "must be at most 1s",
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

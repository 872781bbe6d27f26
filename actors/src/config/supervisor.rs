//! `[supervisor]`: the restart policy every supervisor applies to its children.

use super::{check, ConfigError};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};

/// Which children a supervisor restarts when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Restart only the failed child (children are independent; the default).
    #[default]
    OneForOne,
    /// Restart every child of the supervisor when one fails.
    OneForAll,
}

/// `[supervisor]`: the restart policy every supervisor applies to its children.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartPolicy {
    /// Which children restart together.
    pub strategy: Strategy,
    /// Failures tolerated inside `period` before escalating.
    pub max_restarts: u32,
    /// Sliding period over which failures are counted.
    pub period: Dur,
    /// Delay before the first restart after a failure.
    pub backoff_initial: Dur,
    /// Longest delay between restarts; also the retry interval once escalated.
    pub backoff_max: Dur,
    /// Relative spread applied to every delay, 0..1.
    pub jitter: f64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            strategy: Strategy::OneForOne,
            max_restarts: 5,
            period: Dur::secs(60),
            backoff_initial: Dur::ms(100),
            backoff_max: Dur::secs(30),
            jitter: 0.2,
        }
    }
}

impl RestartPolicy {
    /// Checks the policy, naming keys under `section`.
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        check(
            self.max_restarts > 0,
            &format!("{section}.max_restarts"),
            "must be greater than 0",
        )?;
        check(
            !self.period.get().is_zero(),
            &format!("{section}.period"),
            "must be greater than 0",
        )?;
        check(
            !self.backoff_initial.get().is_zero(),
            &format!("{section}.backoff_initial"),
            "must be greater than 0",
        )?;
        check(
            self.backoff_max >= self.backoff_initial,
            &format!("{section}.backoff_max"),
            "must be at least backoff_initial",
        )?;
        check(
            (0.0..1.0).contains(&self.jitter),
            &format!("{section}.jitter"),
            "must be in [0, 1)",
        )
    }
}

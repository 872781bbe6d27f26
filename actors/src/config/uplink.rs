//! `[uplink]`: the upstream broker, its topics and the replay pacing.

use super::{check, ConfigError};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[uplink]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkConfig {
    /// The upstream broker.
    pub url: String,
    /// First topic level of everything published.
    pub prefix: String,
    /// Records awaiting a PUBACK at once.
    pub inflight: usize,
    /// Backlog messages replayed per second after an outage (live traffic is not paced).
    pub replay_rate: u32,
    /// Burst allowance of the replay pacing.
    pub replay_burst: u32,
    /// A connected session with records in flight and no PUBACK for this long is rebuilt.
    pub ack_timeout: Dur,
    /// First reconnect delay (doubles per failure, with jitter).
    pub reconnect_initial: Dur,
    /// Longest reconnect delay.
    pub reconnect_max: Dur,
    /// MQTT keep-alive of the uplink session.
    pub keep_alive: Dur,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            prefix: "edgegw".into(),
            inflight: 100,
            replay_rate: 500,
            replay_burst: 100,
            ack_timeout: Dur::secs(30),
            reconnect_initial: Dur::ms(200),
            reconnect_max: Dur::secs(15),
            keep_alive: Dur::secs(30),
        }
    }
}

impl UplinkConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        super::url::parse_url(&self.url).map_err(|r| ConfigError::new("uplink.url", r))?;
        check(
            !self.prefix.is_empty() && !self.prefix.contains(['+', '#']),
            "uplink.prefix",
            "must be non-empty and free of '+' and '#'",
        )?;
        check(
            (1..=65_000).contains(&self.inflight),
            "uplink.inflight",
            "must be between 1 and 65000",
        )?;
        check(
            self.replay_rate > 0,
            "uplink.replay_rate",
            "must be greater than 0",
        )?;
        check(
            self.replay_burst > 0,
            "uplink.replay_burst",
            "must be greater than 0",
        )?;
        check(
            self.ack_timeout.get() >= Duration::from_secs(1),
            "uplink.ack_timeout",
            "must be at least 1s",
        )?;
        check(
            !self.reconnect_initial.get().is_zero(),
            "uplink.reconnect_initial",
            "must be greater than 0",
        )?;
        check(
            self.reconnect_max >= self.reconnect_initial,
            "uplink.reconnect_max",
            "must be at least uplink.reconnect_initial",
        )?;
        check(
            self.keep_alive.get() >= Duration::from_secs(1),
            "uplink.keep_alive",
            "must be at least 1s",
        )
    }
}

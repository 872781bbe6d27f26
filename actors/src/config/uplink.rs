//! `[uplink]`: the upstream broker, its topics and the replay pacing.

use super::tls::ClientKeys;
use super::{check, ConfigError};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[uplink]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkConfig {
    /// The upstream broker.
    pub url: String,
    /// PEM bundle the broker's certificate must chain to (`mqtts://` only); empty: the
    /// system's root certificates.
    pub ca_file: PathBuf,
    /// Client certificate chain (PEM) for mutual TLS.
    pub cert_file: PathBuf,
    /// The client certificate's private key (PEM).
    pub key_file: PathBuf,
    /// Login name; empty: no login.
    pub username: String,
    /// A file holding the password, read once at start; never logged or shown.
    pub password_file: PathBuf,
    /// ALPN protocols offered in the TLS handshake, e.g. `["x-amzn-mqtt-ca"]` for AWS IoT
    /// Core on port 443.
    pub alpn: Vec<String>,
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
            ca_file: PathBuf::new(),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            username: String::new(),
            password_file: PathBuf::new(),
            alpn: Vec::new(),
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
    /// The TLS and credential keys of this link.
    pub fn link(&self) -> ClientKeys<'_> {
        ClientKeys {
            section: "uplink",
            url: &self.url,
            ca_file: &self.ca_file,
            cert_file: &self.cert_file,
            key_file: &self.key_file,
            username: &self.username,
            password_file: &self.password_file,
            alpn: &self.alpn,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.link().load()?;
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

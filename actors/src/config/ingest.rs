//! `[ingest]`: the local broker sensors publish to, and how payloads are accepted.

use super::tls::ClientKeys;
use super::{check, ConfigError};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[ingest]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// The local broker sensors publish to.
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
    /// Subscribed filters; each has exactly one `+` level, the sensor id.
    pub topics: Vec<String>,
    /// QoS of the ingest subscriptions (0 or 1).
    pub qos: u8,
    /// Largest payload accepted, bytes.
    pub max_payload_bytes: usize,
    /// Most samples in one batch payload.
    pub max_batch_samples: usize,
    /// How far ahead of the gateway's clock a sample timestamp may be.
    pub max_clock_skew: Dur,
    /// MQTT keep-alive of the ingest connection.
    pub keep_alive: Dur,
    /// Payload bytes read but not yet processed by their sensor; beyond this the connection
    /// stops reading and the broker sees back-pressure (see `flow`).
    pub max_inflight_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            ca_file: PathBuf::new(),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            username: String::new(),
            password_file: PathBuf::new(),
            alpn: Vec::new(),
            topics: vec!["sensors/+/data".into()],
            qos: 1,
            max_payload_bytes: 256 * 1024,
            max_batch_samples: 10_000,
            max_clock_skew: Dur::secs(300),
            keep_alive: Dur::secs(30),
            max_inflight_bytes: 16 << 20,
        }
    }
}

impl IngestConfig {
    /// The TLS and credential keys of this link.
    pub fn link(&self) -> ClientKeys<'_> {
        ClientKeys {
            section: "ingest",
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
            !self.topics.is_empty(),
            "ingest.topics",
            "needs at least one filter",
        )?;
        for t in &self.topics {
            TopicFilter::new(t).map_err(|r| ConfigError::new("ingest.topics", r))?;
        }
        check(self.qos <= 1, "ingest.qos", "must be 0 or 1")?;
        check(
            (64..=16 << 20).contains(&self.max_payload_bytes),
            "ingest.max_payload_bytes",
            "must be between 64 and 16777216",
        )?;
        check(
            self.max_batch_samples > 0,
            "ingest.max_batch_samples",
            "must be greater than 0",
        )?;
        check(
            self.max_inflight_bytes >= self.max_payload_bytes,
            "ingest.max_inflight_bytes",
            "must be at least ingest.max_payload_bytes",
        )?;
        check(
            self.keep_alive.get() >= Duration::from_secs(1),
            "ingest.keep_alive",
            "must be at least 1s",
        )
    }
}

/// A subscription filter with the index of its sensor level (`+`).
#[derive(Debug, Clone)]
pub struct TopicFilter {
    levels: Vec<String>,
    sensor_level: usize,
}

impl TopicFilter {
    /// Parses `filter`; it must contain exactly one `+` (the sensor id) and may end in `#`.
    pub fn new(filter: &str) -> Result<Self, String> {
        let levels: Vec<String> = filter.split('/').map(str::to_string).collect();
        let plus: Vec<usize> = levels
            .iter()
            .enumerate()
            .filter(|(_, l)| *l == "+")
            .map(|(i, _)| i)
            .collect();
        if plus.len() != 1 {
            return Err(format!(
                "{filter:?} must contain exactly one '+' level (the sensor id)"
            ));
        }
        if levels.iter().enumerate().any(|(i, l)| {
            (l == "#" && i + 1 != levels.len()) || (l.contains(['+', '#']) && l.len() > 1)
        }) {
            return Err(format!("{filter:?} is not a valid MQTT topic filter"));
        }
        Ok(Self {
            levels,
            sensor_level: plus[0],
        })
    }

    /// The sensor id if `topic` matches this filter.
    pub fn sensor<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let mut sensor = None;
        let mut parts = topic.split('/');
        for (i, l) in self.levels.iter().enumerate() {
            if l == "#" {
                return sensor;
            }
            let p = parts.next()?;
            if i == self.sensor_level {
                sensor = Some(p);
            } else if l != p {
                return None;
            }
        }
        if parts.next().is_some() {
            return None;
        }
        sensor
    }
}

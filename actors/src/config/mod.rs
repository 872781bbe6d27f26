//! The gateway's whole configuration: one section per stage, each in its own file here, so
//! stages import their settings and the config imports no stage.
//!
//! Design constraints: every struct denies unknown fields and has defaults from `const fn`s or
//! small functions, so the embedded `config/gateway.toml` and an empty file mean the same thing.
//! `validate()` runs at load time and rejects, naming the key, every value a library would
//! otherwise `assert!` on or that would make the gateway misbehave (window 0, hop > window,
//! zero workers …). The keys of `SPEC.md` keep their names and meanings.

mod broker;
mod feedback;
mod http;
mod inference;
mod ingest;
mod sensors;
mod store;
mod supervisor;
pub mod tls;
mod uplink;
pub mod url;

pub use broker::BrokerConfig;
pub use feedback::{hex, public_key, FeedbackConfig, Kind, KindLimit, KindLimits};
pub use http::HttpConfig;
pub use inference::InferenceConfig;
pub use ingest::{IngestConfig, TopicFilter};
pub use sensors::{AlertsConfig, SensorsConfig};
pub use store::StoreConfig;
pub use supervisor::{RestartPolicy, Strategy};
pub use tls::{ClientKeys, ClientLink, Login};
pub use uplink::UplinkConfig;
pub use url::{parse_url, BrokerUrl};

use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A config value that cannot be used, with the dotted key that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `sensors.hop`.
    pub key: String,
    /// Why the value is rejected, in words an operator can act on.
    pub reason: String,
}

impl ConfigError {
    /// An error for `key` with `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Rejects `value` unless `ok`, naming `key`.
pub(crate) fn check(ok: bool, key: &str, reason: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(key, reason))
    }
}

/// The whole configuration (`config/gateway.toml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Who this gateway is upstream.
    pub gateway: GatewaySection,
    /// The embedded MQTT broker.
    pub broker: BrokerConfig,
    /// The local broker sensors publish to, and how payloads are accepted.
    pub ingest: IngestConfig,
    /// The upstream broker and its topics.
    pub uplink: UplinkConfig,
    /// The durable store: outbox, dead letters.
    pub store: StoreConfig,
    /// Per-sensor summaries.
    pub summary: SummaryConfig,
    /// Feedback from the cloud.
    pub feedback: FeedbackConfig,
    /// Local HTTP operations endpoint.
    pub http: HttpConfig,
    /// Tracing and logs.
    pub telemetry: TelemetryConfig,
    /// Per-sensor windows, baselines and decisions.
    pub sensors: SensorsConfig,
    /// Limits on alerts across all sensors.
    pub alerts: AlertsConfig,
    /// The pooled inference stage and its model.
    pub inference: InferenceConfig,
    /// Restart policy shared by every supervisor.
    pub supervisor: RestartPolicy,
}

impl GatewayConfig {
    /// Checks every section; the first problem found is returned with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.gateway.validate()?;
        self.broker.validate()?;
        self.ingest.validate()?;
        check(
            !(self.broker.embedded
                && self.broker.requires_login()
                && self.ingest.username.is_empty()),
            "ingest.username",
            "the embedded broker requires a login (broker.password_file): set ingest.username \
             and ingest.password_file to one of its accounts",
        )?;
        self.uplink.validate()?;
        self.store.validate()?;
        self.summary.validate()?;
        self.feedback.validate()?;
        self.telemetry.validate()?;
        self.http.validate()?;
        self.sensors.validate()?;
        self.alerts.validate()?;
        self.inference.validate()?;
        self.supervisor.validate("supervisor")?;
        Ok(())
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Names this gateway in every uplink topic and message id; MQTT-topic safe.
    pub id: String,
}

impl Default for GatewaySection {
    fn default() -> Self {
        Self { id: "gw-01".into() }
    }
}

impl GatewaySection {
    fn validate(&self) -> Result<(), ConfigError> {
        check(!self.id.is_empty(), "gateway.id", "must not be empty")?;
        check(
            self.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "gateway.id",
            "only ASCII letters, digits, '-', '_' and '.' are allowed (it is a topic level)",
        )
    }
}

/// `[summary]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummaryConfig {
    /// Each sensor's summary covers this period, aligned to multiples of it since the epoch.
    pub period: Dur,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        Self {
            period: Dur::secs(60),
        }
    }
}

impl SummaryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.period.get().as_millis() >= 100,
            "summary.period",
            "must be at least 100ms",
        )
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP gRPC endpoint; empty disables export.
    pub otlp_endpoint: String,
    /// Fraction of non-alert decisions traced.
    pub sample_ratio: f64,
    /// How often every instrument is exported to `otlp_endpoint` (the OTLP twin of a
    /// Prometheus scrape of `/metrics`).
    pub metrics_interval: Dur,
    /// Log line format.
    pub log_format: LogFormat,
    /// Default log filter (`RUST_LOG` syntax); `RUST_LOG` wins when set.
    pub log_level: String,
    /// Lines one log statement may write per `log_window`; beyond, its lines are suppressed
    /// and counted (one summary line when the window has passed), so no peer can flood the log.
    pub log_burst: u32,
    /// The window of `log_burst`.
    pub log_window: Dur,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            sample_ratio: 0.01,
            metrics_interval: Dur::secs(10),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            log_burst: 5,
            log_window: Dur::secs(10),
        }
    }
}

impl TelemetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check(
            (0.0..=1.0).contains(&self.sample_ratio),
            "telemetry.sample_ratio",
            "must be between 0 and 1",
        )?;
        check(
            self.metrics_interval.get() >= Duration::from_secs(1),
            "telemetry.metrics_interval",
            "must be at least 1s",
        )?;
        check(
            (1..=10_000).contains(&self.log_burst),
            "telemetry.log_burst",
            "must be between 1 and 10000",
        )?;
        check(
            self.log_window.get() >= Duration::from_secs(1),
            "telemetry.log_window",
            "must be at least 1s",
        )?;
        let e = &self.otlp_endpoint;
        let host = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .map(|rest| rest.split(['/', ':']).next().unwrap_or(""));
        check(
            e.is_empty()
                || (host.is_some_and(|h| !h.is_empty()) && !e.contains(char::is_whitespace)),
            "telemetry.otlp_endpoint",
            "must be empty or an http:// or https:// URL with a host (the collector's OTLP/gRPC port)",
        )
    }
}

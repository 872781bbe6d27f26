//! The JSON of every uplink message, as types: the fields every message but `status` carries
//! ([`Envelope`]), the body of each kind ([`Body`]: a decision's [`Alert`], a
//! [`GatewayAlert`], a period [`Summary`], a [`RawWindow`]), one message as it goes on the
//! wire ([`Message`]), and the retained [`StatusMessage`]. SPEC.md fixes the fields;
//! docs/wire.md lists them.
//!
//! Design constraints:
//! - **The wire form is the contract.** Names, value types and values are the ones SPEC.md
//!   gives and the gateway has always written: numbers are f64 where they were (rounded by
//!   the sender, `sensor/report.rs`), a summary's statistics are `null`, not absent, for a
//!   period without samples, and `fallback` and `request_id` appear only when set. The tests
//!   pin each type's JSON. Keys are in SPEC's order, envelope first (readers must not rely on
//!   key order).
//! - **Readers accept fields they do not know.** SPEC promises *at least* these fields, so a
//!   later gateway may add some: the uplink message types do not deny unknown fields, and
//!   tooling built on them keeps reading messages of newer gateways. The gateway never parses
//!   a stored record back (it resends the bytes it committed), so records an older build
//!   committed go out exactly as they were written. ([`StatusMessage`] keeps its strict
//!   reading.)
//! - **A leaf**: imports no stage; each stage builds its bodies from its own types.

use super::Class;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fields every uplink message but `status` carries, stamped by the uplink at commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `{gateway}:{epoch}:{seq}`: unique, stable across retries and restarts; receivers
    /// deduplicate by it.
    pub id: String,
    /// Per gateway, consecutive in commit order, never reused: a gap upstream is a loss
    /// unless reported as an eviction.
    pub seq: u64,
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// W3C trace id of the decision, 32 hex digits (a fresh random one when not traced).
    pub trace_id: String,
    /// The sensor it is about; `_gateway` for a gateway alert.
    pub sensor: String,
}

/// One uplink message as it goes on the wire: envelope and body in one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message<B> {
    /// The common fields.
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The fields of its kind ([`Body`], or one kind's type to read only that kind).
    #[serde(flatten)]
    pub body: B,
}

impl<B: Serialize> Message<B> {
    /// The message's JSON, as committed to the store and published. Every value is a
    /// string, number, boolean, sequence or string-keyed map, so it does not fail in
    /// practice; the caller still commits nothing when it does.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// The body of an uplink message, by kind (topic `alerts/…`, `summaries/…` or `raw/…`).
/// Untagged on the wire: the kinds have disjoint required fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Body {
    /// One anomaly decision of a sensor.
    Alert(Alert),
    /// A condition of the gateway itself, on sensor `_gateway`.
    GatewayAlert(GatewayAlert),
    /// A sensor's period summary.
    Summary(Summary),
    /// A raw troubleshooting window.
    Raw(RawWindow),
}

impl Body {
    /// Its class: topic, QoS and eviction order.
    pub fn class(&self) -> Class {
        match self {
            Body::Alert(_) | Body::GatewayAlert(_) => Class::Alert,
            Body::Summary(_) => Class::Summary,
            Body::Raw(_) => Class::Raw,
        }
    }
}

/// An alert: one anomalous decision the alert gate let through (`alerts/{sensor}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The scored window.
    pub window: Window,
    /// The calibrated score (0–1) the threshold applies to: the higher of the model's and the
    /// novelty's.
    pub score: f64,
    /// The threshold applied.
    pub threshold: f64,
    /// The likelihood that the window is unusual for this sensor (0–1).
    pub confidence: f64,
    /// The scorer that scored it.
    pub model: AlertModel,
    /// The window's features, by name.
    pub features: BTreeMap<String, f64>,
    /// The model's own score, before calibration.
    pub model_score: f64,
    /// The sensor's novelty, calibrated (0–1).
    pub novelty: f64,
    /// Suppressions since the sensor's previous alert or summary, reported once.
    pub alerts_suppressed: u64,
    /// The episode the alert belongs to.
    pub episode: Episode,
    /// True when the fallback rule scored; absent otherwise.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fallback: bool,
}

/// The window of samples a message is about: `{start, end, n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Its first (smallest) timestamp, ms; for a raw-request answer, the requested `from`.
    pub start: i64,
    /// Its last (largest) timestamp, ms; for a raw-request answer, the requested `to`.
    pub end: i64,
    /// Samples in it.
    pub n: u64,
}

/// The scorer named in an [`Alert`]: `{name, version, sha256}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertModel {
    /// Package name, or `"fallback"`.
    pub name: String,
    /// Package version, or the rule's.
    pub version: String,
    /// SHA-256 of the package's weights (hex), empty for the fallback rule.
    pub sha256: String,
}

/// An alert's episode: `{start, decisions}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// Event time (ms) of the episode's first anomalous decision.
    pub start: i64,
    /// Anomalous decisions in the episode so far, this one included.
    pub decisions: u64,
}

/// A gateway alert (`alerts/_gateway`): a condition of the gateway an operator upstream
/// must learn of, such as a replaced store or a refused model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayAlert {
    /// The condition's key, e.g. `store_recovered`, `model_refused`.
    pub kind: String,
    /// What happened, in words.
    pub reason: String,
}

/// A sensor's summary of one `summary.period` (`summaries/{sensor}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The period `[start, end)`.
    pub period: Period,
    /// Samples accepted in it.
    pub count: u64,
    /// Mean value; `null` when no sample arrived (a summary sent only to report decisions).
    pub mean: Option<f64>,
    /// Population standard deviation; `null` without samples.
    pub std: Option<f64>,
    /// Smallest value; `null` without samples.
    pub min: Option<f64>,
    /// Largest value; `null` without samples.
    pub max: Option<f64>,
    /// Median (exact up to 256 samples, estimated beyond); `null` without samples.
    pub p50: Option<f64>,
    /// 95th percentile (as `p50`); `null` without samples.
    pub p95: Option<f64>,
    /// Alerts raised in the period.
    pub alerts: u64,
    /// Suppressions not yet reported by an alert, reported once.
    pub alerts_suppressed: u64,
    /// Anomalous decisions, raised or suppressed, since the sensor's previous summary.
    pub anomalous: u64,
    /// The scorer in use.
    pub model: SummaryModel,
}

/// A summary's period: `{start, end}`, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Start, included.
    pub start: i64,
    /// End, excluded.
    pub end: i64,
}

/// The scorer named in a [`Summary`]: `{name, version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryModel {
    /// Package name, or `"fallback"`.
    pub name: String,
    /// Package version.
    pub version: String,
}

/// A raw troubleshooting window (`raw/{sensor}`), told apart by `reason`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RawWindow {
    /// `"reason": "alert"`: the samples around an alert.
    Alert(RawAroundAlert),
    /// `"reason": "request"`: the answer to a `raw-request`.
    Request(RawAnswer),
}

/// The samples around an alert: the alerting window and the next `sensors.raw_after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawAroundAlert {
    /// The alert's `window.end`, linking the two.
    pub alert_window_end: i64,
    /// The span of the samples.
    pub window: Window,
    /// `[ts, value]` pairs, oldest first.
    pub samples: Vec<(i64, f64)>,
}

/// The samples of a requested span, from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawAnswer {
    /// The request's `id`; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Whether the store held any sample of the span.
    pub found: bool,
    /// The requested span (`from`, `to`) and the samples found.
    pub window: Window,
    /// `[ts, value]` pairs, oldest first.
    pub samples: Vec<(i64, f64)>,
}

impl RawAnswer {
    /// The answer to the request `request_id` for `[from, to]`: the `samples` the store
    /// held.
    pub fn new(request_id: Option<&str>, from: i64, to: i64, samples: Vec<(i64, f64)>) -> Self {
        RawAnswer {
            request_id: request_id.map(str::to_string),
            found: !samples.is_empty(),
            window: Window {
                start: from,
                end: to,
                n: samples.len() as u64,
            },
            samples,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The retained `status` message (`{prefix}/{gateway}/status`, docs/wire.md). Fields are in
/// the order they are written (alphabetical, as the untyped form wrote them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusMessage {
    /// Records evicted per class since the store was created.
    pub evicted: Evicted,
    /// The scorer in use.
    pub model: StatusModel,
    /// The conditions behind the mode, `"code: detail"`.
    pub reasons: Vec<String>,
    /// When the mode began, ms since the epoch.
    pub since: i64,
    /// `online`, `degraded` or `offline`.
    pub state: String,
    /// The gateway's version.
    pub version: String,
}

/// The scorer named in [`StatusMessage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusModel {
    /// True while the fallback rule scores.
    pub fallback: bool,
    /// Package name, or `"fallback"`.
    pub name: String,
    /// Package version.
    pub version: String,
}

/// Evictions per class, as [`StatusMessage`] reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evicted {
    /// Alerts evicted.
    pub alert: u64,
    /// Raw windows evicted.
    pub raw: u64,
    /// Summaries evicted.
    pub summary: u64,
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;

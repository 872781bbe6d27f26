//! What goes upstream: the class of an outbound record (topic, QoS and eviction order) and the
//! record a stage hands to the uplink to commit and send.

use crate::telemetry::TraceLink;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Outbound message class: topic, QoS and eviction order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// One anomaly decision.
    Alert = 0,
    /// A per-sensor period summary.
    Summary = 1,
    /// A raw troubleshooting window.
    Raw = 2,
}

impl Class {
    /// Metric label and topic segment stem.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Alert => "alert",
            Class::Summary => "summary",
            Class::Raw => "raw",
        }
    }
    pub(crate) fn topic(self) -> &'static str {
        match self {
            Class::Alert => "alerts",
            Class::Summary => "summaries",
            Class::Raw => "raw",
        }
    }
}

/// A message to commit and send upstream; the uplink adds `id`, `seq`, `ts`, `trace_id` and
/// `sensor` to `body`.
#[derive(Debug)]
pub struct Outbound {
    /// Class.
    pub class: Class,
    /// Sensor id.
    pub sensor: Arc<str>,
    /// Event time, ms.
    pub ts: i64,
    /// Class-specific fields.
    pub body: Map<String, Value>,
    /// For raw windows: the samples, also kept in the store for `raw-request`s.
    pub raw: Option<Vec<(i64, f64)>>,
    /// The decision's trace, when it was sampled: its id becomes `trace_id`.
    pub trace: Option<TraceLink>,
}

//! What goes upstream: the class of an outbound record (topic, QoS and eviction order), the
//! record a stage hands to the uplink to commit and send, and the typed JSON of every uplink
//! message ([`wire`]).

use crate::telemetry::TraceLink;
use std::sync::Arc;

pub mod wire;

pub use wire::{Body, Evicted, StatusMessage, StatusModel};

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

/// A message to commit and send upstream; the uplink stamps `body` with the fields every
/// message carries ([`wire::Envelope`]: `id`, `seq`, `ts`, `trace_id`, `sensor`).
#[derive(Debug)]
pub struct Outbound {
    /// Sensor id.
    pub sensor: Arc<str>,
    /// Event time, ms.
    pub ts: i64,
    /// The message's own fields; its kind decides its class.
    pub body: Body,
    /// For raw windows: the samples, also kept in the store for `raw-request`s.
    pub raw: Option<Vec<(i64, f64)>>,
    /// The decision's trace, when it was sampled: its id becomes `trace_id`.
    pub trace: Option<TraceLink>,
}

impl Outbound {
    /// Its class (topic, QoS, eviction order), from its body.
    pub fn class(&self) -> Class {
        self.body.class()
    }
}

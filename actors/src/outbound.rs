//! What goes upstream: the class of an outbound record (topic, QoS and eviction order) and the
//! record a stage hands to the uplink to commit and send.

use crate::telemetry::TraceLink;
use serde::{Deserialize, Serialize};
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
mod tests {
    use super::*;

    #[test]
    fn status_message_round_trips_and_keeps_its_wire_form() {
        let m = StatusMessage {
            evicted: Evicted {
                alert: 1,
                raw: 3,
                summary: 2,
            },
            model: StatusModel {
                fallback: false,
                name: "edgegw-ae".into(),
                version: "1.0.0".into(),
            },
            reasons: vec!["uplink_down: refused".into()],
            since: 1_700_000_000_000,
            state: "offline".into(),
            version: "0.1.0".into(),
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        // What the untyped form wrote for the same values.
        let untyped = serde_json::json!({
            "state": "offline",
            "since": 1_700_000_000_000i64,
            "reasons": ["uplink_down: refused"],
            "version": "0.1.0",
            "model": {"name": "edgegw-ae", "version": "1.0.0", "fallback": false},
            "evicted": {"alert": 1, "summary": 2, "raw": 3},
        });
        assert_eq!(bytes, untyped.to_string().into_bytes());
        assert_eq!(serde_json::from_slice::<StatusMessage>(&bytes).unwrap(), m);
        let extra = br#"{"evicted":{"alert":0,"raw":0,"summary":0},"model":{"fallback":true,"name":"f","version":"1"},"reasons":[],"since":0,"state":"online","version":"1","x":1}"#;
        assert!(serde_json::from_slice::<StatusMessage>(extra).is_err());
    }
}

//! Each uplink message pinned to its wire form (the JSON the untyped form wrote for the same
//! values) and read back.

use super::*;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::fmt::Debug;

fn envelope(sensor: &str) -> Envelope {
    Envelope {
        id: "gw-01:1731000000000:42".into(),
        seq: 42,
        ts: 1_731_000_000_630,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        sensor: sensor.into(),
    }
}

/// `body` with `envelope(sensor)` serializes to `expected` and reads back equal, as its own
/// type and as a [`Body`] (`wrap`).
fn pins<B>(sensor: &str, body: B, wrap: fn(B) -> Body, expected: Value)
where
    B: Serialize + DeserializeOwned + PartialEq + Debug + Clone,
{
    let m = Message {
        envelope: envelope(sensor),
        body,
    };
    let bytes = m.to_json().unwrap();
    let written: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(written, expected);
    assert_eq!(serde_json::from_slice::<Message<B>>(&bytes).unwrap(), m);
    let any = Message {
        envelope: m.envelope.clone(),
        body: wrap(m.body.clone()),
    };
    assert_eq!(any.to_json().unwrap(), bytes);
    assert_eq!(
        serde_json::from_slice::<Message<Body>>(&bytes).unwrap(),
        any
    );
}

fn alert(fallback: bool) -> Alert {
    Alert {
        window: Window {
            start: 1_731_000_000_000,
            end: 1_731_000_000_630,
            n: 64,
        },
        score: 0.912346,
        threshold: 0.8,
        confidence: 1.0,
        model: AlertModel {
            name: "edgegw-ae".into(),
            version: "1.0.0".into(),
            sha256: "ab12".into(),
        },
        features: [
            ("mean_z", 1.5),
            ("std_log_ratio", -0.123457),
            ("max_z", 0.0),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into(),
        model_score: 1.234568,
        novelty: 0.333333,
        alerts_suppressed: 2,
        episode: Episode {
            start: 1_730_999_990_000,
            decisions: 3,
        },
        fallback,
    }
}

#[test]
fn alert_keeps_its_wire_form() {
    let expected = json!({
        "id": "gw-01:1731000000000:42", "seq": 42, "ts": 1_731_000_000_630i64,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "sensor": "s1",
        "window": {"start": 1_731_000_000_000i64, "end": 1_731_000_000_630i64, "n": 64},
        "score": 0.912346, "threshold": 0.8, "confidence": 1.0,
        "model": {"name": "edgegw-ae", "version": "1.0.0", "sha256": "ab12"},
        "features": {"mean_z": 1.5, "std_log_ratio": -0.123457, "max_z": 0.0},
        "model_score": 1.234568, "novelty": 0.333333,
        "alerts_suppressed": 2,
        "episode": {"start": 1_730_999_990_000i64, "decisions": 3},
    });
    pins("s1", alert(false), Body::Alert, expected.clone());
    let mut with_fallback = expected;
    with_fallback["fallback"] = json!(true);
    pins("s1", alert(true), Body::Alert, with_fallback);
}

#[test]
fn gateway_alert_keeps_its_wire_form() {
    let body = GatewayAlert {
        kind: "store_recovered".into(),
        reason: "unreadable record".into(),
    };
    let expected = json!({
        "id": "gw-01:1731000000000:42", "seq": 42, "ts": 1_731_000_000_630i64,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "sensor": "_gateway",
        "kind": "store_recovered", "reason": "unreadable record",
    });
    pins("_gateway", body, Body::GatewayAlert, expected);
}

#[test]
fn summary_keeps_its_wire_form() {
    let body = Summary {
        period: Period {
            start: 1_731_000_000_000,
            end: 1_731_000_060_000,
        },
        count: 600,
        mean: Some(21.5),
        std: Some(0.125),
        min: Some(20.0),
        max: Some(23.0),
        p50: Some(21.4),
        p95: Some(22.75),
        alerts: 1,
        alerts_suppressed: 3,
        anomalous: 4,
        model: SummaryModel {
            name: "edgegw-ae".into(),
            version: "1.0.0".into(),
        },
    };
    let expected = json!({
        "id": "gw-01:1731000000000:42", "seq": 42, "ts": 1_731_000_000_630i64,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "sensor": "s1",
        "period": {"start": 1_731_000_000_000i64, "end": 1_731_000_060_000i64},
        "count": 600,
        "mean": 21.5, "std": 0.125, "min": 20.0, "max": 23.0, "p50": 21.4, "p95": 22.75,
        "alerts": 1, "alerts_suppressed": 3, "anomalous": 4,
        "model": {"name": "edgegw-ae", "version": "1.0.0"},
    });
    pins("s1", body.clone(), Body::Summary, expected);
    // A period without samples: count 0 and null statistics, present, not absent.
    let empty = Summary {
        count: 0,
        mean: None,
        std: None,
        min: None,
        max: None,
        p50: None,
        p95: None,
        ..body
    };
    let expected = json!({
        "id": "gw-01:1731000000000:42", "seq": 42, "ts": 1_731_000_000_630i64,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "sensor": "s1",
        "period": {"start": 1_731_000_000_000i64, "end": 1_731_000_060_000i64},
        "count": 0,
        "mean": null, "std": null, "min": null, "max": null, "p50": null, "p95": null,
        "alerts": 1, "alerts_suppressed": 3, "anomalous": 4,
        "model": {"name": "edgegw-ae", "version": "1.0.0"},
    });
    pins("s1", empty, Body::Summary, expected);
}

#[test]
fn a_non_finite_statistic_is_written_as_null() {
    // As the untyped form wrote it (`json!(f64::NAN)` is null); it reads back as absent.
    let s = Summary {
        period: Period { start: 0, end: 1 },
        count: 1,
        mean: Some(f64::NAN),
        std: Some(f64::INFINITY),
        min: Some(1.0),
        max: Some(1.0),
        p50: Some(1.0),
        p95: Some(1.0),
        alerts: 0,
        alerts_suppressed: 0,
        anomalous: 0,
        model: SummaryModel {
            name: "fallback".into(),
            version: "1".into(),
        },
    };
    let written: Value = serde_json::from_slice(
        &Message {
            envelope: envelope("s1"),
            body: &s,
        }
        .to_json()
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&written["mean"], &written["std"]),
        (&Value::Null, &Value::Null)
    );
    let read: Message<Summary> = serde_json::from_value(written).unwrap();
    assert_eq!(
        (read.body.mean, read.body.std, read.body.min),
        (None, None, Some(1.0))
    );
}

#[test]
fn raw_window_around_an_alert_keeps_its_wire_form() {
    let body = RawWindow::Alert(RawAroundAlert {
        alert_window_end: 1_010,
        window: Window {
            start: 1_000,
            end: 1_020,
            n: 3,
        },
        samples: vec![(1_000, 21.0), (1_010, 21.25), (1_020, -3.5)],
    });
    let expected = json!({
        "id": "gw-01:1731000000000:42", "seq": 42, "ts": 1_731_000_000_630i64,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "sensor": "s1",
        "reason": "alert",
        "alert_window_end": 1_010,
        "window": {"start": 1_000, "end": 1_020, "n": 3},
        "samples": [[1_000, 21.0], [1_010, 21.25], [1_020, -3.5]],
    });
    pins("s1", body, Body::Raw, expected);
}

#[test]
fn raw_window_answering_a_request_keeps_its_wire_form() {
    let body = RawWindow::Request(RawAnswer::new(
        Some("r1"),
        900,
        1_100,
        vec![(1_000, 21.0), (1_010, 21.25)],
    ));
    let expected = json!({
        "id": "gw-01:1731000000000:42", "seq": 42, "ts": 1_731_000_000_630i64,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "sensor": "s1",
        "reason": "request", "request_id": "r1", "found": true,
        "window": {"start": 900, "end": 1_100, "n": 2},
        "samples": [[1_000, 21.0], [1_010, 21.25]],
    });
    pins("s1", body, Body::Raw, expected);
    // No id in the request: no `request_id`; nothing in the store: `found` false.
    let body = RawWindow::Request(RawAnswer::new(None, 900, 1_100, Vec::new()));
    let expected = json!({
        "id": "gw-01:1731000000000:42", "seq": 42, "ts": 1_731_000_000_630i64,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "sensor": "s1",
        "reason": "request", "found": false,
        "window": {"start": 900, "end": 1_100, "n": 0},
        "samples": [],
    });
    pins("s1", body, Body::Raw, expected);
}

#[test]
fn bodies_know_their_class() {
    assert_eq!(Body::Alert(alert(false)).class(), Class::Alert);
    let gw = GatewayAlert {
        kind: "model_refused".into(),
        reason: "x".into(),
    };
    assert_eq!(Body::GatewayAlert(gw).class(), Class::Alert);
    let raw = RawWindow::Request(RawAnswer::new(None, 0, 1, Vec::new()));
    assert_eq!(Body::Raw(raw).class(), Class::Raw);
}

#[test]
fn readers_accept_fields_they_do_not_know() {
    let mut m = serde_json::to_value(Message {
        envelope: envelope("s1"),
        body: alert(false),
    })
    .unwrap();
    m["added_later"] = json!({"x": 1});
    let read: Message<Body> = serde_json::from_value(m).unwrap();
    assert_eq!(read.body, Body::Alert(alert(false)));
}

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

//! Committing an outbound message: the one place ids, seqs and trace ids are stamped, and the
//! place a committed alert is logged.
//!
//! Design constraints:
//! - Decisions are traced after the fact ([`crate::telemetry`]): no span is active while the
//!   uplink handles one, so the trace id is a field of the log lines themselves. `Alert raised.`
//!   carries exactly the `trace_id` and `id` of the uplink message (when the decision was
//!   sampled, the trace the collector received), and every other line the uplink writes while
//!   handling that message (store closed, commit failed) carries the same `trace_id`: an
//!   operator goes from a cloud alert to its log lines and its trace with one id.
//! - One line per alert committed (alerts are rare: episodes, cooldowns and the global cap),
//!   never one per sample or per normal decision; like every line, it is under the global log
//!   rate limit.

use super::{topic, Class};
use crate::ctx::Ctx;
use crate::store::{Store, StoreError};
use rand::Rng;
use serde_json::{json, Map, Value};
use tracing::info;

/// Stamps `body` with the fields every uplink message carries (`id`, `seq`, `ts`,
/// `trace_id`, `sensor`) and commits it to the store under its class topic. The one place
/// ids and seqs are made: the uplink's messages and the gateway's own alerts go through it.
pub fn commit_message(
    ctx: &Ctx,
    store: &Store,
    class: Class,
    sensor: &str,
    ts: i64,
    body: Map<String, Value>,
) -> Result<(u64, Vec<(Class, u64)>), StoreError> {
    commit_traced(ctx, store, class, sensor, ts, body, &new_trace_id())
}

/// [`commit_message`] with the given `trace_id` (32 hex digits) instead of a random one. A
/// committed alert is logged (`Alert raised.`) with that `trace_id` and its message `id`.
pub fn commit_traced(
    ctx: &Ctx,
    store: &Store,
    class: Class,
    sensor: &str,
    ts: i64,
    mut body: Map<String, Value>,
    trace_id: &str,
) -> Result<(u64, Vec<(Class, u64)>), StoreError> {
    let t = topic(ctx, &format!("{}/{}", class.topic(), sensor));
    let (gw, epoch) = (&ctx.cfg.gateway.id, store.epoch());
    let alert = (class == Class::Alert).then(|| AlertLine::of(&body));
    let r = store.commit(class, &t, |seq| {
        body.insert("id".into(), json!(format!("{gw}:{epoch}:{seq}")));
        body.insert("seq".into(), json!(seq));
        body.insert("ts".into(), json!(ts));
        body.insert("trace_id".into(), json!(trace_id));
        body.insert("sensor".into(), json!(sensor));
        Value::Object(body).to_string().into_bytes()
    });
    if let (Ok((seq, _)), Some(a)) = (&r, alert) {
        a.log(sensor, &format!("{gw}:{epoch}:{seq}"), trace_id);
    }
    r
}

/// A fresh W3C trace id (32 hex digits, never all zero).
pub(super) fn new_trace_id() -> String {
    let v: u128 = rand::rng().random::<u128>() | 1;
    format!("{v:032x}")
}

/// What an alert's log line says besides its ids, read from its body before the commit:
/// a decision's score, threshold and model, or a gateway alert's kind and reason.
struct AlertLine {
    score: Option<f64>,
    threshold: Option<f64>,
    model: Option<String>,
    model_version: Option<String>,
    kind: Option<String>,
    reason: Option<String>,
}

impl AlertLine {
    fn of(body: &Map<String, Value>) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let model = body.get("model");
        AlertLine {
            score: body.get("score").and_then(Value::as_f64),
            threshold: body.get("threshold").and_then(Value::as_f64),
            model: text(model.and_then(|m| m.get("name"))),
            model_version: text(model.and_then(|m| m.get("version"))),
            kind: text(body.get("kind")),
            reason: text(body.get("reason")),
        }
    }

    fn log(&self, sensor: &str, id: &str, trace_id: &str) {
        info!(
            message = "Alert raised.",
            sensor,
            score = self.score,
            threshold = self.threshold,
            model = self.model.as_deref(),
            model_version = self.model_version.as_deref(),
            kind = self.kind.as_deref(),
            reason = self.reason.as_deref(),
            id,
            trace_id
        );
    }
}

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
//! - **Group commit.** The uplink commits what waited in its mailbox together
//!   ([`commit_group`]): one sled batch and one high-water write for the group, seqs
//!   consecutive in the order the messages arrived. A single message is a group of one.

use super::{recovery, topic, Class, UplinkMsg, UplinkState};
use crate::ctx::Ctx;
use crate::metrics::ClassLabel;
use crate::outbound::wire::{Envelope, GatewayAlert, Message};
use crate::outbound::Body;
use crate::status::Condition;
use crate::store::{Store, StoreError};
use ractor::ActorRef;
use rand::Rng;
use std::time::Instant;
use tracing::{error, info, warn};

/// Most messages committed as one group: beyond a few hundred records a sled batch gets
/// slower per record (measured in `benches/store.rs`), and the group holds the store's lock.
pub(super) const MAX_GROUP: usize = 256;

/// Commits the uplink's received messages (`st.pending`) as one group; every line logged
/// about a message carries its `trace_id`. On failure none of them is committed: all are
/// counted as dropped and the store is closed for its reopen.
pub(super) fn commit_pending(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) {
    if st.pending.is_empty() {
        return;
    }
    let outs = std::mem::take(&mut st.pending);
    let trace_ids: Vec<String> = outs
        .iter()
        .map(|o| {
            o.trace
                .as_ref()
                .map_or_else(new_trace_id, |l| l.trace_id_hex())
        })
        .collect();
    let Some(store) = st.ctx.store.get() else {
        recovery::count_dropped(st, outs.len() as u64);
        for (o, t) in outs.iter().zip(&trace_ids) {
            dropped(st, o.class(), t);
        }
        return;
    };
    let since = Instant::now();
    let stamps = outs.iter().zip(&trace_ids).map(|(o, t)| Stamp {
        sensor: &o.sensor,
        ts: o.ts,
        body: &o.body,
        trace_id: t,
    });
    match commit_group(&st.ctx, &store, stamps) {
        Ok(Committed { seqs, evicted }) => {
            let ctx = st.ctx.clone();
            for (o, seq) in outs.into_iter().zip(seqs) {
                let class = o.class();
                st.inserted = seq;
                if let Some(link) = o.trace {
                    st.traced.inserted(seq, link, since);
                }
                if let Some(samples) = o.raw {
                    if let Err(e) = store.raw.keep(&o.sensor, &samples) {
                        ctx.status
                            .condition(Condition::StoreError, Some(format!("raw window: {e}")));
                    }
                }
                ctx.metrics
                    .uplink_messages
                    .get_or_create(&ClassLabel {
                        class: class.as_str(),
                    })
                    .inc();
            }
            super::count_evictions(&ctx, &evicted);
        }
        Err(e) => {
            recovery::count_dropped(st, outs.len() as u64);
            // The store-failure line carries the first message's trace id, a dropped line
            // each of the others'.
            let first = trace_ids.first().map_or("", String::as_str);
            recovery::commit_failed(myself, st, &e, first);
            for (o, t) in outs.iter().zip(&trace_ids).skip(1) {
                dropped(st, o.class(), t);
            }
        }
    }
}

/// Says (rate-limited) that the message with `trace_id` was dropped because the store is
/// closed.
fn dropped(st: &mut UplinkState, class: Class, trace_id: &str) {
    if let Some(suppressed) = st.droplog.allow("store_closed", Instant::now()) {
        warn!(
            message = "Store closed; outbound message dropped.",
            class = class.as_str(),
            trace_id,
            suppressed
        );
    }
}

/// One message to stamp and commit (see [`commit_group`]).
pub struct Stamp<'a> {
    /// The sensor it is about.
    pub sensor: &'a str,
    /// Event time, ms.
    pub ts: i64,
    /// Its own fields (they decide its class: topic, eviction order); the common ones are
    /// added.
    pub body: &'a Body,
    /// Its `trace_id` (32 hex digits).
    pub trace_id: &'a str,
}

/// Stamps `body` with the fields every uplink message carries ([`Envelope`]: `id`, `seq`,
/// `ts`, `trace_id`, `sensor`) and commits it to the store under its class topic. The one
/// place ids and seqs are made: the uplink's messages and the gateway's own alerts go
/// through it.
pub fn commit_message(
    ctx: &Ctx,
    store: &Store,
    sensor: &str,
    ts: i64,
    body: &Body,
) -> Result<(u64, Vec<(Class, u64)>), StoreError> {
    commit_traced(ctx, store, sensor, ts, body, &new_trace_id())
}

/// [`commit_message`] with the given `trace_id` (32 hex digits) instead of a random one. A
/// committed alert is logged (`Alert raised.`) with that `trace_id` and its message `id`.
pub fn commit_traced(
    ctx: &Ctx,
    store: &Store,
    sensor: &str,
    ts: i64,
    body: &Body,
    trace_id: &str,
) -> Result<(u64, Vec<(Class, u64)>), StoreError> {
    let one = Stamp {
        sensor,
        ts,
        body,
        trace_id,
    };
    let c = commit_group(ctx, store, [one])?;
    Ok((c.seqs.first().copied().unwrap_or_default(), c.evicted))
}

/// What [`commit_group`] committed.
pub struct Committed {
    /// The seqs, in the order the messages were given.
    pub seqs: Vec<u64>,
    /// Records evicted to keep the budget: (class, seq).
    pub evicted: Vec<(Class, u64)>,
}

/// Stamps every message as [`commit_message`] does and commits them together, in the order
/// given, as one group ([`Store::group`]: consecutive seqs, one atomic batch, one high-water
/// write). Each committed alert is logged (`Alert raised.`) once the group is in the store.
/// On error (the store failed, or a message could not be encoded) nothing was committed.
pub fn commit_group<'a>(
    ctx: &Ctx,
    store: &Store,
    msgs: impl IntoIterator<Item = Stamp<'a>>,
) -> Result<Committed, StoreError> {
    let (gw, epoch) = (&ctx.cfg.gateway.id, store.epoch());
    let mut group = store.group();
    let mut seqs = Vec::new();
    let mut alerts = Vec::new();
    let mut unencodable = None;
    for m in msgs {
        let Stamp {
            sensor,
            ts,
            body,
            trace_id,
        } = m;
        let class = body.class();
        let t = topic(ctx, &format!("{}/{}", class.topic(), sensor));
        let seq = group.add(class, &t, |seq| {
            let envelope = Envelope {
                id: format!("{gw}:{epoch}:{seq}"),
                seq,
                ts,
                trace_id: trace_id.to_string(),
                sensor: sensor.to_string(),
            };
            Message { envelope, body }.to_json().unwrap_or_else(|e| {
                unencodable.get_or_insert(StoreError::Encode(format!("message {seq}: {e}")));
                Vec::new()
            })
        });
        seqs.push(seq);
        if let Some(a) = AlertLine::of(body) {
            alerts.push((a, sensor, seq, trace_id));
        }
    }
    if let Some(e) = unencodable {
        // The group is dropped uncommitted: nothing written, no seq given out.
        return Err(e);
    }
    let evicted = group.commit()?;
    for (a, sensor, seq, trace_id) in alerts {
        a.log(sensor, &format!("{gw}:{epoch}:{seq}"), trace_id);
    }
    Ok(Committed { seqs, evicted })
}

/// A fresh W3C trace id (32 hex digits, never all zero).
pub(super) fn new_trace_id() -> String {
    let v: u128 = rand::rng().random::<u128>() | 1;
    format!("{v:032x}")
}

/// What an alert's log line says besides its ids, read from its body: a decision's score,
/// threshold and model, or a gateway alert's kind and reason.
#[derive(Default)]
struct AlertLine<'a> {
    score: Option<f64>,
    threshold: Option<f64>,
    model: Option<&'a str>,
    model_version: Option<&'a str>,
    kind: Option<&'a str>,
    reason: Option<&'a str>,
}

impl<'a> AlertLine<'a> {
    /// The line of an alert's body; None for other classes.
    fn of(body: &'a Body) -> Option<Self> {
        match body {
            Body::Alert(a) => Some(AlertLine {
                score: Some(a.score),
                threshold: Some(a.threshold),
                model: Some(&a.model.name),
                model_version: Some(&a.model.version),
                ..AlertLine::default()
            }),
            Body::GatewayAlert(g) => Some(AlertLine {
                kind: Some(&g.kind),
                reason: Some(&g.reason),
                ..AlertLine::default()
            }),
            Body::Summary(_) | Body::Raw(_) => None,
        }
    }

    fn log(&self, sensor: &str, id: &str, trace_id: &str) {
        info!(
            message = "Alert raised.",
            sensor,
            score = self.score,
            threshold = self.threshold,
            model = self.model,
            model_version = self.model_version,
            kind = self.kind,
            reason = self.reason,
            id,
            trace_id
        );
    }
}

/// Commits a gateway-level alert (sensor `_gateway`) so an operator upstream learns of a
/// condition like a replaced store; it goes out with the first uplink session. Exempt from
/// the sensors' alert gate and the global cap (`alerts.max_per_minute`): rare, and never to be
/// withheld.
fn raise_gateway_alert(ctx: &Ctx, kind: &str, reason: &str) {
    let Some(store) = ctx.store.get() else {
        error!(message = "Could not commit the gateway alert: store closed.", %kind, %reason);
        return;
    };
    let body = Body::GatewayAlert(GatewayAlert {
        kind: kind.to_string(),
        reason: reason.to_string(),
    });
    let ts = crate::status::now_ms();
    let r = commit_message(ctx, &store, "_gateway", ts, &body);
    if let Err(e) = r.and_then(|_| store.flush()) {
        error!(message = "Could not commit the gateway alert.", error = %e);
    }
}

/// The store was unreadable and replaced by a fresh one (`why`): degraded until restart, and
/// said upstream.
pub(crate) fn store_replaced(ctx: &Ctx, why: &str) {
    ctx.status
        .condition(Condition::StoreRecovered, Some(why.to_string()));
    raise_gateway_alert(ctx, "store_recovered", why);
}

//! The feedback channel: what the cloud sends on `{prefix}/{gateway}/feedback/{kind}` —
//! `label`, `threshold`, `raw-request` and `model` — classified and rate-limited on intake,
//! validated, made idempotent by `id`, then applied by the `feedback` stage.
//!
//! Design constraints:
//! - **Feedback never delays ingest or decisions.** The uplink's event path only classifies
//!   the topic and asks the limiters ([`intake`]): a few atomic operations and, for the kinds
//!   that name a sensor, a shallow parse of the `sensor` field. Everything else (schema,
//!   signature, the store, model loading) happens in [`FeedbackActor`], whose mailbox only
//!   receives admitted messages, so it is bounded by the limiter.
//! - **Limits** (governor): per sensor (kinds that name one), per kind, then global, the
//!   narrowest first, so a message refused by a narrow limit never spends the global budget.
//!   The keyed per-sensor state is cleaned (`retain_recent`, `shrink_to_fit`) on the actor's
//!   timer, so idle keys cost nothing.
//! - **Idempotent by `id`.** Seen ids are persisted (sled tree, newest `feedback.seen_ids`
//!   kept), so a redelivery after a restart is still recognised and acknowledged, not applied.
//! - Malformed, unauthorised and over-limit feedback is counted in
//!   `edgegw_feedback_dropped_total{kind}`; malformed and unauthorised is also kept as a dead
//!   letter and logged (rate-limited).

mod actor;
pub mod limits;
pub mod sign;
pub mod state;
pub mod validate;

pub use crate::config::FeedbackConfig;
pub use actor::{FeedbackActor, FeedbackMsg};
pub use limits::Limits;
pub use state::FeedbackShared;

use crate::ctx::Ctx;
use crate::port::Slot;
use crate::uplink::UplinkMsg;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;

pub use crate::config::Kind;

/// A valid sensor id: non-empty, at most 128 bytes, free of `/`, `+` and `#`.
pub fn valid_sensor_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && !s.contains(['/', '+', '#'])
}

/// A feedback message the limiters admitted, on its way to [`FeedbackActor`].
#[derive(Debug)]
pub struct Admitted {
    /// Its kind.
    pub kind: Kind,
    /// The full topic it came on (for dead letters).
    pub topic: String,
    /// The payload as received.
    pub payload: Bytes,
}

/// What the feedback stage is given at spawn besides the shared services
/// ([`crate::ctx::Ctx`]); [`intake`], which runs on the uplink, uses the same.
pub struct FeedbackPorts {
    /// The uplink: answers (raw windows, model verdicts) to commit and send.
    pub uplink: Arc<Slot<UplinkMsg>>,
    /// The feedback stage itself, where [`intake`] hands admitted messages.
    pub feedback: Arc<Slot<FeedbackMsg>>,
    /// Limits, threshold overrides and calibration history (the sensors read the overrides).
    pub shared: Arc<FeedbackShared>,
}

/// Why [`intake`] did not hand a message on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a feedback topic of this gateway (not counted).
    NotFeedback,
    /// An unknown kind (counted nowhere: the label set is fixed; logged by the caller).
    UnknownKind,
    /// Over a limit (counted in `edgegw_feedback_dropped_total{kind}`).
    Limited(Kind),
    /// The feedback stage is restarting (counted the same way).
    StageDown(Kind),
}

/// The uplink's whole share of feedback handling, for a message received on `topic`: classify,
/// apply the inbound limits, hand admitted messages to the feedback stage. Never blocks.
pub fn intake(
    ctx: &Ctx,
    ports: &FeedbackPorts,
    topic: &str,
    payload: Bytes,
) -> Result<Kind, Refused> {
    let rest = topic
        .strip_prefix(ctx.cfg.uplink.prefix.as_str())
        .and_then(|t| t.strip_prefix('/'))
        .and_then(|t| t.strip_prefix(ctx.cfg.gateway.id.as_str()))
        .and_then(|t| t.strip_prefix("/feedback/"));
    let Some(rest) = rest else {
        return Err(Refused::NotFeedback);
    };
    let kind = Kind::parse(rest).ok_or(Refused::UnknownKind)?;
    let sensor = kind.names_sensor().then(|| sensor_of(&payload)).flatten();
    if !ports.shared.limits.admit(kind, sensor.as_deref()) {
        ctx.metrics
            .feedback_dropped
            .get_or_create(&kind.label())
            .inc();
        return Err(Refused::Limited(kind));
    }
    let msg = FeedbackMsg::Admitted(Admitted {
        kind,
        topic: topic.to_string(),
        payload,
    });
    if !ports.feedback.cast(msg) {
        ctx.metrics
            .feedback_dropped
            .get_or_create(&kind.label())
            .inc();
        return Err(Refused::StageDown(kind));
    }
    Ok(kind)
}

/// The `sensor` field of a payload, if it is a valid sensor id (shallow: other fields are
/// skipped, not checked). Invalid ids get no per-sensor key; the stage rejects them later.
fn sensor_of(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        sensor: Option<std::borrow::Cow<'a, str>>,
    }
    let p: Probe = serde_json::from_slice(payload).ok()?;
    p.sensor
        .filter(|s| valid_sensor_id(s))
        .map(|s| s.into_owned())
}

/// Every label kept in `store` for retraining, oldest first (`edgegw store export --labels`).
pub fn export_labels(
    store: &crate::store::Store,
) -> Result<Vec<serde_json::Value>, crate::store::StoreError> {
    store
        .feedback_labels()?
        .iter()
        .map(|kv| kv.map(|(_, v)| serde_json::from_slice(&v).unwrap_or_default()))
        .collect::<sled::Result<_>>()
        .map_err(Into::into)
}

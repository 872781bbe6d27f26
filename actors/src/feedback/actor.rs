//! The `feedback` stage: validates admitted feedback, makes it idempotent and applies it.
//!
//! Design constraints: the mailbox only receives what the limiters admitted (see
//! [`super::intake`]). Model packages load on a blocking thread and come back as a message;
//! the running model is swapped only after the manifest matches the announcement and the
//! running feature names. A restarted stage reloads the threshold overrides from the store.

use super::validate::{self, Checks, Feedback, ModelAnnouncement, Rejection};
use super::Admitted;
use super::FeedbackPorts;
use crate::ctx::Ctx;
use crate::model::{LoadedModel, Scorer};
use crate::outbound::wire::{GatewayAlert, RawAnswer, RawWindow};
use crate::outbound::{Body, Outbound};
use crate::status::now_ms;
use crate::status::Condition;
use crate::store::feedback::Trees;
use crate::uplink::UplinkMsg;
use ed25519_dalek::VerifyingKey;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How often idle limiter keys and sensor histories are cleaned up.
const CLEANUP_EVERY: Duration = Duration::from_secs(10);
/// A sensor without a decision for this long loses its calibration history.
const HISTORY_IDLE: Duration = Duration::from_secs(600);
/// Seen ids also kept in memory (covers a closed store).
const SEEN_IN_MEMORY: usize = 10_000;

/// Messages of the feedback stage.
#[derive(Debug)]
pub enum FeedbackMsg {
    /// A message the limiters admitted.
    Admitted(Admitted),
    /// Periodic cleanup.
    Tick,
    /// A model package finished loading (or failed to).
    ModelLoaded(Box<ModelAnnouncement>, Result<Box<LoadedModel>, String>),
}

/// The feedback stage.
pub struct FeedbackActor;

/// State built in `pre_start`.
pub struct FeedbackState {
    ctx: Arc<Ctx>,
    ports: Arc<FeedbackPorts>,
    key: Option<VerifyingKey>,
    /// Counts of the bounded trees, with the opening of the store they belong to.
    counts: Option<((usize, i64), (u64, u64))>,
    recent: VecDeque<String>,
    recent_set: HashSet<String>,
    log: crate::ratelog::RateLog,
}

impl Actor for FeedbackActor {
    type Msg = FeedbackMsg;
    type State = FeedbackState;
    type Arguments = (Arc<Ctx>, Arc<FeedbackPorts>);

    async fn pre_start(
        &self,
        myself: ActorRef<FeedbackMsg>,
        (ctx, ports): (Arc<Ctx>, Arc<FeedbackPorts>),
    ) -> Result<FeedbackState, ActorProcessingErr> {
        if ctx.faults.start_fails("feedback") {
            return Err("injected fault: feedback cannot start".into());
        }
        let key = match ctx.cfg.feedback.public_key.as_str() {
            "" => None,
            k => Some(validate::public_key(k)?),
        };
        let mut st = FeedbackState {
            ctx,
            ports,
            key,
            counts: None,
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
            log: crate::ratelog::RateLog::new(Duration::from_secs(10)),
        };
        if let Some(saved) = with_trees(&mut st, |t| t.thresholds()) {
            for (sensor, t) in saved? {
                let s: Arc<str> = sensor.as_str().into();
                let target = (sensor != "*").then_some(&s);
                st.ports.shared.set_threshold(target, Some(t));
            }
        }
        myself.send_interval(CLEANUP_EVERY, || FeedbackMsg::Tick);
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<FeedbackMsg>,
        msg: FeedbackMsg,
        st: &mut FeedbackState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            FeedbackMsg::Admitted(a) => {
                st.ctx.faults.check("feedback").await;
                admitted(&myself, st, a);
            }
            FeedbackMsg::Tick => st.ports.shared.cleanup(HISTORY_IDLE),
            FeedbackMsg::ModelLoaded(ann, loaded) => model_loaded(st, &ann, loaded),
        }
        Ok(())
    }
}

/// Runs `f` on the store's trees (`None` while the store is closed). The trees are opened per
/// use and never kept: a kept handle would hold a closed store open and stop its recovery from
/// reopening it. Their counts are kept, per opening of the store.
fn with_trees<R>(
    st: &mut FeedbackState,
    f: impl FnOnce(&mut Trees) -> sled::Result<R>,
) -> Option<sled::Result<R>> {
    let store = st.ctx.store.get()?;
    let id = (Arc::as_ptr(&store) as usize, store.epoch());
    let counts = st.counts.filter(|(at, _)| *at == id).map(|(_, c)| c);
    let mut t = match store.feedback_trees(counts) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let r = f(&mut t);
    st.counts = Some((id, t.counts()));
    Some(r)
}

fn store_error(st: &FeedbackState, what: &str, e: &sled::Error) {
    st.ctx.status.condition(
        crate::status::Condition::StoreError,
        Some(format!("feedback {what}: {e}")),
    );
}

fn admitted(myself: &ActorRef<FeedbackMsg>, st: &mut FeedbackState, a: Admitted) {
    let id = match validate::id_of(&a.payload) {
        Ok(id) => id,
        Err(r) => return reject(st, &a, r),
    };
    if let Some(id) = &id {
        if is_seen(st, id) {
            st.ports.shared.duplicate();
            debug!(message = "Duplicate feedback ignored.", kind = a.kind.as_str(), id = %id);
            return;
        }
    }
    let ctx = st.ctx.clone();
    let shared = st.ports.shared.clone();
    let known = |s: &str| ctx.baselines.lock().contains_key(s) || shared.deciding(s);
    let checks = Checks {
        max_span_ms: ctx.cfg.feedback.max_span.get().as_millis() as i64,
        max_threshold: ctx.cfg.feedback.max_threshold,
        key: st.key.as_ref(),
        now_ms: now_ms(),
        max_age_ms: ctx.cfg.feedback.max_command_age.get().as_millis() as i64,
        known: &known,
    };
    let fb = match validate::parse(a.kind, &a.payload, &checks) {
        Ok(fb) => fb,
        Err(r) => return reject(st, &a, r),
    };
    if !apply(myself, st, fb, id.as_deref()) {
        // Not applied (store closed, uplink restarting): counted, not remembered.
        ctx.metrics
            .feedback_dropped
            .get_or_create(&a.kind.label())
            .inc();
        return;
    }
    ctx.metrics.feedback.get_or_create(&a.kind.label()).inc();
    if let Some(id) = id {
        remember(st, id);
    }
}

fn is_seen(st: &mut FeedbackState, id: &str) -> bool {
    if st.recent_set.contains(id) {
        return true;
    }
    match with_trees(st, |t| t.seen(id)) {
        Some(Ok(seen)) => seen,
        Some(Err(e)) => {
            store_error(st, "seen ids", &e);
            false
        }
        None => false,
    }
}

fn remember(st: &mut FeedbackState, id: String) {
    let max = st.ctx.cfg.feedback.seen_ids;
    if let Some(Err(e)) = with_trees(st, |t| t.remember(&id, max)) {
        store_error(st, "seen ids", &e);
    }
    if st.recent.len() >= SEEN_IN_MEMORY.min(max as usize) {
        if let Some(old) = st.recent.pop_front() {
            st.recent_set.remove(&old);
        }
    }
    st.recent_set.insert(id.clone());
    st.recent.push_back(id);
}

fn reject(st: &mut FeedbackState, a: &Admitted, r: Rejection) {
    let ctx = &st.ctx;
    ctx.metrics
        .feedback_dropped
        .get_or_create(&a.kind.label())
        .inc();
    ctx.dead_letter(&a.topic, r.reason, r.detail.clone(), &a.payload);
    if let Some(suppressed) = st.log.allow(r.reason, Instant::now()) {
        warn!(message = "Feedback rejected.", kind = a.kind.as_str(), reason = r.reason, detail = %r.detail, suppressed);
    }
}

/// Applies `fb`; false if it could not be (counted as dropped by the caller).
fn apply(
    myself: &ActorRef<FeedbackMsg>,
    st: &mut FeedbackState,
    fb: Feedback,
    id: Option<&str>,
) -> bool {
    match fb {
        Feedback::Threshold { sensor, threshold } => {
            st.ports
                .shared
                .set_threshold(sensor.as_ref(), Some(threshold));
            let name = sensor.as_deref().unwrap_or("*").to_string();
            if let Some(Err(e)) = with_trees(st, |t| t.set_threshold(&name, threshold)) {
                store_error(st, "threshold", &e);
            }
            info!(message = "Decision threshold set by feedback.", sensor = %name, threshold);
            true
        }
        Feedback::Label(l) => {
            let record = json!({
                "sensor": &*l.sensor, "from": l.from, "to": l.to,
                "label": if l.anomaly { "anomaly" } else { "normal" },
                "id": id, "received_ms": now_ms(),
            });
            let max = st.ctx.cfg.feedback.labels_max;
            match with_trees(st, |t| t.keep_label(&record, max)) {
                Some(Ok(n)) => st.ports.shared.labels_evicted(n),
                Some(Err(e)) => store_error(st, "label", &e),
                None => {}
            }
            if let Some(c) = st.ports.shared.calibrate(&l) {
                if let Some(Err(e)) = with_trees(st, |t| t.set_threshold(&l.sensor, c.to)) {
                    store_error(st, "threshold", &e);
                }
                info!(message = "Threshold calibrated by a label.", sensor = %l.sensor, anomaly = l.anomaly, from = c.from, to = c.to, decisions = c.decisions);
            }
            true
        }
        Feedback::RawRequest { sensor, from, to } => raw_request(st, sensor, from, to, id),
        Feedback::Model(m) => {
            announce(st, &m, "received", None);
            if let Some(path) = m.path.clone() {
                let me = myself.clone();
                tokio::task::spawn_blocking(move || {
                    let loaded = crate::model::load_package(std::path::Path::new(&path))
                        .map(Box::new)
                        .map_err(|e| format!("{path}: {e}"));
                    let _ = me.cast(FeedbackMsg::ModelLoaded(Box::new(m), loaded));
                });
            }
            true
        }
    }
}

/// The raw samples of the span, from the store, committed as a `raw` message.
fn raw_request(st: &FeedbackState, sensor: Arc<str>, from: i64, to: i64, id: Option<&str>) -> bool {
    let Some(store) = st.ctx.store.get() else {
        return false;
    };
    let samples = match store.raw.between(&sensor, from, to) {
        Ok(s) => s,
        Err(e) => {
            st.ctx.status.condition(
                crate::status::Condition::StoreError,
                Some(format!("raw read: {e}")),
            );
            return false;
        }
    };
    let body = RawWindow::Request(RawAnswer::new(id, from, to, samples));
    let out = Outbound {
        sensor,
        ts: to,
        body: Body::Raw(body),
        raw: None,
        trace: None,
    };
    st.ports.uplink.cast(UplinkMsg::Publish(Box::new(out)))
}

/// Records an announcement and its outcome (`/status`, store, log).
fn announce(st: &mut FeedbackState, m: &ModelAnnouncement, outcome: &str, why: Option<&str>) {
    let v = json!({
        "name": m.name, "version": m.version, "sha256": m.sha256, "path": m.path,
        "outcome": outcome, "reason": why, "ts": now_ms(),
    });
    st.ports.shared.model_announced(v.clone());
    if let Some(Err(e)) = with_trees(st, |t| t.keep_model(&v)) {
        store_error(st, "model announcement", &e);
    }
    info!(message = "Model announcement recorded.", name = %m.name, version = %m.version, outcome);
}

fn model_loaded(
    st: &mut FeedbackState,
    m: &ModelAnnouncement,
    loaded: Result<Box<LoadedModel>, String>,
) {
    let running = st.ctx.scorer();
    let verdict = loaded.and_then(|l| {
        if !l.manifest.weights_sha256.eq_ignore_ascii_case(&m.sha256) {
            return Err(format!(
                "weights_sha256 {} differs from the announced sha256 {}",
                l.manifest.weights_sha256, m.sha256
            ));
        }
        if l.manifest.features != running.feature_names() {
            return Err("feature names differ from the running model's".into());
        }
        Ok(l)
    });
    match verdict {
        Ok(l) => {
            *st.ctx.scorer.write() = Arc::new(Scorer::Model(Arc::from(l)));
            st.ctx.status.condition(Condition::ModelRefused, None);
            info!(message = "Model installed from an announcement.", name = %m.name, version = %m.version, replaced = %running.version());
            announce(st, m, "installed", None);
        }
        Err(why) => {
            warn!(message = "Announced model refused; the running model stays.", name = %m.name, version = %m.version, reason = %why);
            let detail = format!("announced {} {}: {why}", m.name, m.version);
            st.ctx
                .status
                .condition(Condition::ModelRefused, Some(detail.clone()));
            gateway_alert(st, &detail);
            announce(st, m, "refused", Some(&why));
        }
    }
}

/// Sends a gateway-level alert (sensor `_gateway`, kind `model_refused`) upstream.
fn gateway_alert(st: &FeedbackState, reason: &str) {
    let body = Body::GatewayAlert(GatewayAlert {
        kind: Condition::ModelRefused.key().to_string(),
        reason: reason.to_string(),
    });
    let out = Outbound {
        sensor: "_gateway".into(),
        ts: now_ms(),
        body,
        raw: None,
        trace: None,
    };
    if !st.ports.uplink.cast(UplinkMsg::Publish(Box::new(out))) {
        warn!(message = "Could not send the model_refused alert: uplink restarting.");
    }
}

//! What every stage shares: config, instruments, status, fault hook, the current address of
//! each stage, dead letters and the scorer.
//!
//! Design constraints: stages find each other through [`Slot`]s, never through captured
//! `ActorRef`s, because a restarted stage has a new address. A send to an empty slot (the
//! stage is restarting) fails visibly and the caller counts it.

use crate::config::GatewayConfig;
use crate::deadletter::DeadLetters;
use crate::fault::Faults;
use crate::metrics::Metrics;
use crate::model::Scorer;
use crate::sensor::baseline::BaselineSnapshot;
use crate::status::StatusBoard;
use crate::store::StoreSlot;
use parking_lot::{Mutex, RwLock};
use ractor::{ActorRef, Message};
use std::collections::HashMap;
use std::sync::Arc;

/// The current address of a stage, empty while it restarts.
pub struct Slot<M: Message>(RwLock<Option<ActorRef<M>>>);

impl<M: Message> Default for Slot<M> {
    fn default() -> Self {
        Slot(RwLock::new(None))
    }
}

impl<M: Message> Slot<M> {
    /// Publishes (or clears) the stage's address.
    pub fn set(&self, r: Option<ActorRef<M>>) {
        *self.0.write() = r;
    }
    /// The stage's address, if it is up.
    pub fn get(&self) -> Option<ActorRef<M>> {
        self.0.read().clone()
    }
    /// Sends `msg` to the stage; false if it is down (the message is dropped).
    pub fn cast(&self, msg: M) -> bool {
        match self.0.read().as_ref() {
            Some(r) => r.cast(msg).is_ok(),
            None => false,
        }
    }
}

/// Addresses of the stages that others send to.
#[derive(Default)]
pub struct Stages {
    /// The sensor supervisor (routes samples to per-sensor actors).
    pub sensors: Slot<crate::sensor::SensorSupMsg>,
    /// The inference pool.
    pub inference: Slot<crate::inference::PoolMsg>,
    /// The uplink.
    pub uplink: Slot<crate::uplink::UplinkMsg>,
    /// The feedback stage.
    pub feedback: Slot<crate::feedback::FeedbackMsg>,
}

/// Shared by every stage of one gateway.
pub struct Ctx {
    /// The validated configuration.
    pub cfg: Arc<GatewayConfig>,
    /// Instruments.
    pub metrics: Arc<Metrics>,
    /// Stage states and mode.
    pub status: Arc<StatusBoard>,
    /// Test-only fault hook.
    pub faults: Arc<Faults>,
    /// Where each stage is now.
    pub stages: Stages,
    /// Recently rejected input, in memory for `/status` (all of it is also in the store).
    pub dead_letters: DeadLetters,
    /// The durable store: outbox and dead letters (closed for a while after a disk failure).
    pub store: StoreSlot,
    /// The scorer in use (the model, or the fallback rule); swapped as a whole.
    pub scorer: RwLock<Arc<Scorer>>,
    /// Learned per-sensor baselines, kept outside the sensor actors so a restarted actor
    /// resumes without a new warm-up.
    pub baselines: Mutex<HashMap<Arc<str>, BaselineSnapshot>>,
    /// In-flight budget of ingest payloads (see [`crate::flow`]).
    pub ingest_gate: Arc<crate::flow::Gate>,
    /// Decision traces, when OTLP export runs (`None`: no spans, no sampling).
    pub traces: Option<crate::telemetry::Traces>,
    /// The last minute of readings behind the operator figures of `/status`.
    pub rates: crate::metrics::rates::Rates,
    /// The global cap on sensor alerts (`alerts.max_per_minute`), shared by every sensor.
    pub alert_cap: crate::sensor::storm::AlertCap,
    /// Feedback limits, threshold overrides and calibration history.
    pub feedback: crate::feedback::FeedbackShared,
}

impl Ctx {
    /// A context for `cfg` using `scorer` and `store`.
    pub fn new(cfg: GatewayConfig, scorer: Scorer, store: StoreSlot) -> Arc<Self> {
        Self::traced(cfg, scorer, store, None)
    }

    /// Like [`Ctx::new`], emitting decision traces through `traces`.
    pub fn traced(
        cfg: GatewayConfig,
        scorer: Scorer,
        store: StoreSlot,
        traces: Option<crate::telemetry::Traces>,
    ) -> Arc<Self> {
        let ingest_gate = crate::flow::Gate::new(cfg.ingest.max_inflight_bytes);
        let alert_cap = crate::sensor::storm::AlertCap::new(&cfg.alerts);
        let spans = traces
            .as_ref()
            .map(|t| t.counters().clone())
            .unwrap_or_default();
        let feedback = crate::feedback::FeedbackShared::new(&cfg);
        Arc::new(Ctx {
            cfg: Arc::new(cfg),
            metrics: Arc::new(Metrics::with_spans(spans)),
            status: Arc::new(StatusBoard::default()),
            faults: Arc::new(Faults::default()),
            stages: Stages::default(),
            dead_letters: DeadLetters::new(100),
            store,
            scorer: RwLock::new(Arc::new(scorer)),
            baselines: Mutex::new(HashMap::new()),
            ingest_gate,
            traces,
            rates: Default::default(),
            alert_cap,
            feedback,
        })
    }

    /// Keeps a rejected message: counted by the caller, kept in memory for `/status` and in
    /// the store (bounded) for `store inspect`.
    pub fn dead_letter(&self, topic: &str, reason: &'static str, detail: String, payload: &[u8]) {
        let letter = self.dead_letters.push(topic, reason, detail, payload);
        // While the store is closed the letter is kept in memory only.
        if let Some(Err(e)) = self.store.get().map(|s| s.dead.push(&letter)) {
            self.status.condition(
                crate::status::Condition::StoreError,
                Some(format!("dead letter: {e}")),
            );
        }
    }

    /// The scorer in use now.
    pub fn scorer(&self) -> Arc<Scorer> {
        self.scorer.read().clone()
    }
}

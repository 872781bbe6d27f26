//! The services every stage uses: config, instruments, status, the fault hook, dead letters,
//! the store, the scorer, the learned baselines, the ingest budget, traces and rates.
//!
//! Design constraints: only leaf and infrastructure types (nothing of a stage), so every stage
//! may import it and it imports none. What a stage sends to, and state only some stages
//! share, are not here: each stage gets those as ports when it is spawned
//! ([`crate::supervisor`]).

use crate::config::GatewayConfig;
use crate::deadletter::DeadLetters;
use crate::fault::Faults;
use crate::learned::BaselineSnapshot;
use crate::metrics::Metrics;
use crate::model::Scorer;
use crate::status::StatusBoard;
use crate::store::StoreSlot;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;

#[cfg(all(test, feature = "fault-injection"))]
pub(crate) mod testing;

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
        let spans = traces
            .as_ref()
            .map(|t| t.counters().clone())
            .unwrap_or_default();
        Arc::new(Ctx {
            cfg: Arc::new(cfg),
            metrics: Arc::new(Metrics::with_spans(spans)),
            status: Arc::new(StatusBoard::default()),
            faults: Arc::new(Faults::default()),
            dead_letters: DeadLetters::new(100),
            store,
            scorer: RwLock::new(Arc::new(scorer)),
            baselines: Mutex::new(HashMap::new()),
            ingest_gate,
            traces,
            rates: Default::default(),
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

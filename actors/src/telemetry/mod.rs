//! Decision traces exported over OTLP/gRPC: one trace per sampled decision, emitted after the
//! fact from timestamps the data path records anyway.
//!
//! Design constraints:
//! - **Nothing on the hot path.** No span exists while a sample travels: the request carries a
//!   few `Instant`s ([`Stamps`]), and only when a decision is sampled are its spans built,
//!   with explicit start and end times and explicit parents ([`Traces::decision`]). An
//!   unsampled decision costs one random number; with no endpoint configured, nothing is
//!   installed and the cost is a `None` check.
//! - **Tail sampling at decision time.** Whether a decision raised an alert is known only
//!   after inference, so sampling is decided then: alerts always, other decisions with
//!   probability `telemetry.sample_ratio`. A sampled alert's trace id is the `trace_id` of its
//!   uplink message.
//! - **Telemetry is never on the data path.** Ended spans go through a bounded queue
//!   (`try_send`; full → dropped and counted) to one dedicated OS thread that owns its own
//!   current-thread runtime, the tonic exporter, and every export, each bounded by
//!   [`EXPORT_TIMEOUT`] (failure → the batch is dropped and counted). A dead or blackholed
//!   collector costs dropped spans, never a blocked actor or unbounded memory.
//! - **Shutdown is bounded and off the runtime.** [`Telemetry::shutdown`] signals the export
//!   thread and waits on a channel with a timeout; it is called from the main thread after
//!   the async runtime has finished, never from one of its workers, and gives up (logged)
//!   when the exporter does not finish in time.
//!
//! Every instrument of `/metrics` also leaves through the export thread, as cumulative OTLP
//! metrics every `telemetry.metrics_interval` (see [`metrics`]).
//!
//! The trace of one decision is a chain, each span the child of the one before:
//! `ingest` → `features` → `inference` → `decision` → `store.commit` → `uplink.publish`.
//! The spans follow one another in time rather than nest; the chain is the causal order a
//! waterfall view shows directly. The last two are emitted by the uplink for alerts only
//! (other decisions send nothing upstream), from a bounded in-memory map ([`InFlight`]), so a
//! record still unacknowledged at a restart gets no `uplink.publish` span.

mod export;
pub mod metrics;
mod spans;

pub use spans::{DecisionTrace, InFlight, Outcome, Stamps, TraceLink};

use crate::config::TelemetryConfig;
pub use crate::metrics::SpanCounters;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Longest one export may take before its batch is dropped (and counted).
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);
/// Ended spans waiting for the export thread; beyond this they are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 4096;
/// Most spans in one export.
pub const MAX_BATCH: usize = 512;
/// A partial batch leaves after this long.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long [`Telemetry::shutdown`] waits for the last export by default.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The export thread could not be spawned.
    #[error("cannot start the span export thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The thread's runtime or the OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// What the actors need to emit spans: the tracer, the sampling ratio and the counters.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Traces {
    tracer: SdkTracer,
    ratio: f64,
    counters: SpanCounters,
}

impl Traces {
    /// Whether to trace a decision: always for an alert, else with probability `ratio`.
    pub fn sample(&self, alert: bool) -> bool {
        alert || (self.ratio > 0.0 && rand::random::<f64>() < self.ratio)
    }

    /// The export counters (to register them on `/metrics`).
    pub fn counters(&self) -> &SpanCounters {
        &self.counters
    }
}

/// The installed exporter: started by [`Telemetry::start`], stopped by
/// [`Telemetry::shutdown`].
pub struct Telemetry {
    provider: SdkTracerProvider,
    traces: Traces,
    /// The registry the export thread reads, once [`Telemetry::export_metrics`] gave it.
    metrics: metrics::Source,
}

impl Telemetry {
    /// Starts the export thread for `cfg.otlp_endpoint`, naming this gateway `instance`
    /// (`gateway.id`) in every export; `Ok(None)` when the endpoint is empty (export off,
    /// nothing installed). Needs no async runtime.
    pub fn start(
        cfg: &TelemetryConfig,
        instance: &str,
    ) -> Result<Option<Telemetry>, TelemetryError> {
        if cfg.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        let counters = SpanCounters::default();
        let attrs = [
            ("service.name", "edgegw".to_string()),
            ("service.version", env!("CARGO_PKG_VERSION").to_string()),
            ("service.instance.id", instance.to_string()),
        ];
        let source = metrics::Source::default();
        let processor = export::start(
            &cfg.otlp_endpoint,
            counters.clone(),
            export::MetricsPlan {
                interval: cfg.metrics_interval.get(),
                source: source.clone(),
                attrs: attrs.clone(),
            },
        )?;
        let resource = Resource::builder_empty()
            .with_attributes(
                attrs
                    .iter()
                    .map(|(k, v)| opentelemetry::KeyValue::new(*k, v.clone())),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOn)
            .with_resource(resource)
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("edgegw");
        info!(message = "Trace export started.", endpoint = %cfg.otlp_endpoint, sample_ratio = cfg.sample_ratio);
        Ok(Some(Telemetry {
            traces: Traces {
                tracer,
                ratio: cfg.sample_ratio,
                counters,
            },
            provider,
            metrics: source,
        }))
    }

    /// Starts exporting every instrument of `m` every `telemetry.metrics_interval` (the first
    /// registry given wins).
    pub fn export_metrics(&self, m: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(m);
    }

    /// The handle the gateway's actors emit spans through.
    pub fn traces(&self) -> Traces {
        self.traces.clone()
    }

    /// Exports what is queued and stops the export thread, waiting at most `timeout`.
    /// Blocks the calling thread: call it outside the async runtime (after `block_on`
    /// returns), never on one of its workers. Gives up, logged, when the collector is slow or
    /// unreachable; the spans still queued are lost.
    pub fn shutdown(self, timeout: Duration) {
        let started = std::time::Instant::now();
        match self.provider.shutdown_with_timeout(timeout) {
            Ok(()) => info!(
                message = "Trace export stopped.",
                took_ms = started.elapsed().as_millis() as u64,
                exported = self.traces.counters.exported.get()
            ),
            Err(e) => warn!(
                message = "Trace export did not stop in time; queued spans dropped.",
                error = %e,
                timeout_ms = timeout.as_millis() as u64
            ),
        }
    }
}

#[cfg(test)]
mod tests;

//! The span processor and its export thread (which also exports the metrics, see
//! [`super::metrics`]).
//!
//! Design constraints: `on_end` never blocks (a `try_send` into a bounded channel); one OS
//! thread owns a current-thread tokio runtime, the tonic exporter built inside it, and every
//! export, each awaited under [`EXPORT_TIMEOUT`]; the exporter's own retries are off, so a
//! failing collector costs one bounded attempt per batch. Shutdown sets a flag the thread polls
//! every [`POLL`] and waits for its goodbye on a channel with a timeout.

use super::metrics::MetricExport;
use super::{
    SpanCounters, TelemetryError, BATCH_INTERVAL, EXPORT_TIMEOUT, MAX_BATCH, QUEUE_CAPACITY,
};
use crate::ratelog::RateLog;
use opentelemetry::Context;
use opentelemetry_otlp::{RetryPolicy, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as _, SpanProcessor};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// How often the export thread looks at the stop flag while idle.
const POLL: Duration = Duration::from_millis(100);

/// Hands ended spans to the export thread.
#[derive(Debug)]
pub(super) struct QueueProcessor {
    tx: SyncSender<SpanData>,
    stop: Arc<AtomicBool>,
    /// The export thread's goodbye; taken by the first shutdown.
    done: Mutex<Option<Receiver<()>>>,
    counters: SpanCounters,
    /// Given to the exporter before the first export.
    resource: Arc<Mutex<Option<Resource>>>,
}

/// What the export thread needs to export metrics too.
pub(super) struct MetricsPlan {
    /// `telemetry.metrics_interval`.
    pub interval: Duration,
    /// Where the registry will be.
    pub source: super::metrics::Source,
    /// Resource attributes.
    pub attrs: [(&'static str, String); 3],
}

/// Spawns the export thread for `endpoint` and returns the processor feeding it, once the
/// exporters are built (or the reason they could not be).
pub(super) fn start(
    endpoint: &str,
    counters: SpanCounters,
    metrics: MetricsPlan,
) -> Result<QueueProcessor, TelemetryError> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
    let (done_tx, done) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let resource = Arc::new(Mutex::new(None));
    let thread = Thread {
        endpoint: endpoint.to_string(),
        rx,
        stop: stop.clone(),
        counters: counters.clone(),
        resource: resource.clone(),
        metrics,
    };
    std::thread::Builder::new()
        .name("edgegw-otlp".into())
        .spawn(move || {
            thread.run(ready_tx);
            let _ = done_tx.send(());
        })?;
    match ready.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(TelemetryError::Exporter(e)),
        Err(_) => {
            return Err(TelemetryError::Exporter(
                "export thread did not start".into(),
            ))
        }
    }
    Ok(QueueProcessor {
        tx,
        stop,
        done: Mutex::new(Some(done)),
        counters,
        resource,
    })
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _: &mut Span, _: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.tx.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.drop_spans("queue_full", 1)
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Batches leave on their own within BATCH_INTERVAL; nothing waits for them.
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop.store(true, Ordering::Release);
        let Some(done) = self.done.lock().take() else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        match done.recv_timeout(timeout) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self.resource.lock() = Some(resource.clone());
    }
}

/// What the export thread owns.
struct Thread {
    endpoint: String,
    rx: Receiver<SpanData>,
    stop: Arc<AtomicBool>,
    counters: SpanCounters,
    resource: Arc<Mutex<Option<Resource>>>,
    metrics: MetricsPlan,
}

impl Thread {
    fn run(self, ready: mpsc::Sender<Result<(), String>>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        // tonic's lazy channel needs a runtime context to be built.
        let built = rt.block_on(async {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(self.endpoint.clone())
                .with_timeout(EXPORT_TIMEOUT)
                .with_retry_policy(RetryPolicy::disabled())
                .build()
        });
        let mut exporter = match built {
            Ok(x) => x,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let plan = &self.metrics;
        let built = rt.block_on(async {
            MetricExport::new(
                &self.endpoint,
                plan.interval,
                plan.source.clone(),
                &plan.attrs,
            )
        });
        let mut metrics = match built {
            Ok(m) => m,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let mut log = RateLog::new(Duration::from_secs(30));
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut due = Instant::now() + BATCH_INTERVAL;
        // Whether the last export succeeded.
        let mut healthy = true;
        loop {
            if self.stop.load(Ordering::Acquire) {
                self.finish(&rt, &mut exporter, batch, healthy, &mut log);
                return;
            }
            if Instant::now() >= metrics.due {
                self.export_metrics(&rt, &mut metrics, &mut log);
            }
            let wait = due
                .min(metrics.due)
                .saturating_duration_since(Instant::now())
                .min(POLL);
            match self.rx.recv_timeout(wait) {
                Ok(s) => {
                    batch.push(s);
                    if batch.len() >= MAX_BATCH {
                        healthy = self.export(&rt, &mut exporter, &mut batch, &mut log);
                        due = Instant::now() + BATCH_INTERVAL;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= due {
                        if !batch.is_empty() {
                            healthy = self.export(&rt, &mut exporter, &mut batch, &mut log);
                        }
                        due = Instant::now() + BATCH_INTERVAL;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish(&rt, &mut exporter, batch, healthy, &mut log);
                    return;
                }
            }
        }
    }

    /// One reading of every instrument to the collector; the outcome counted.
    fn export_metrics(
        &self,
        rt: &tokio::runtime::Runtime,
        metrics: &mut MetricExport,
        log: &mut RateLog,
    ) {
        match metrics.export(rt) {
            Ok(false) => {}
            Ok(true) => {
                self.counters.metric_exports.inc();
            }
            Err(error) => {
                self.counters.metric_exports_failed.inc();
                if let Some(suppressed) = log.allow("metric_export_failed", Instant::now()) {
                    warn!(message = "Metric export failed; the next one carries the totals.", endpoint = %self.endpoint, %error, suppressed);
                }
            }
        }
    }

    /// The last exports, at shutdown: what is queued, batch by batch, while the collector
    /// answers; once an export has failed the rest is counted as dropped without trying, so a
    /// dead collector costs shutdown at most the export already running.
    fn finish(
        &self,
        rt: &tokio::runtime::Runtime,
        exporter: &mut opentelemetry_otlp::SpanExporter,
        mut rest: Vec<SpanData>,
        mut healthy: bool,
        log: &mut RateLog,
    ) {
        rest.extend(self.rx.try_iter().take(QUEUE_CAPACITY));
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MAX_BATCH));
            let mut batch = std::mem::replace(&mut rest, tail);
            if healthy {
                healthy = self.export(rt, exporter, &mut batch, log);
            } else {
                self.counters
                    .drop_spans("export_failed", batch.len() as u64);
            }
        }
    }

    /// Exports `batch` (emptied) under the timeout; counts the outcome; true if it succeeded.
    fn export(
        &self,
        rt: &tokio::runtime::Runtime,
        exporter: &mut opentelemetry_otlp::SpanExporter,
        batch: &mut Vec<SpanData>,
        log: &mut RateLog,
    ) -> bool {
        if batch.is_empty() {
            return true;
        }
        if let Some(r) = self.resource.lock().take() {
            exporter.set_resource(&r);
        }
        let n = batch.len() as u64;
        let spans = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
        // The timer must be made inside the runtime: build the future there.
        let outcome = rt
            .block_on(async { tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await });
        let error = match outcome {
            Ok(Ok(())) => {
                self.counters.exported.inc_by(n);
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {EXPORT_TIMEOUT:?}"),
        };
        self.counters.drop_spans("export_failed", n);
        if let Some(suppressed) = log.allow("export_failed", Instant::now()) {
            warn!(message = "Span export failed; batch dropped.", endpoint = %self.endpoint, spans = n, %error, suppressed);
        }
        false
    }
}

//! The gateway's instruments, named as `SPEC.md` fixes them: rendered as Prometheus text for
//! `/metrics`, and read as data ([`Metrics::read`]) for the OTLP export and `/status`.
//!
//! Design constraints: every instrument is a cheap atomic or an uncontended lock updated on
//! the data path; label values come from small fixed sets of `&'static str` (never a sensor
//! id), so cardinality is bounded. Latency histograms resolve 10 µs to ~10 s. Each instrument
//! is registered once, for both readers, so the scrape and the reading cannot disagree on
//! what exists.

pub mod instrument;
mod labels;
pub mod rates;
pub mod read;
mod spans;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

pub use instrument::{Hist, Labelled};
pub use labels::{
    ClassLabel, KindLabel, ReasonLabel, StageLabel, Suppressed, CLASSES, RESTART_STAGES,
};
use read::{Family, Read};

pub use spans::SpanCounters;

/// An instrument as [`Metrics::read`] finds it.
struct Entry {
    name: &'static str,
    help: &'static str,
    instrument: Box<dyn Read>,
}

/// All instruments; one instance per gateway, shared behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    /// The same instruments as `registry`, in registration order, to be read.
    catalog: Vec<Entry>,
    /// Samples accepted into a sensor window.
    pub samples_ingested: Counter,
    /// Messages or samples rejected, by reason.
    pub ingest_rejected: Labelled<ReasonLabel, Counter>,
    /// Payload bytes received on ingest topics.
    pub ingest_bytes: Counter,
    /// MQTT messages received on ingest topics, accepted or rejected.
    pub ingest_messages: Counter,
    /// Ingest payload bytes read but not yet processed (the flow-control budget in use).
    pub ingest_inflight_bytes: Gauge,
    /// Samples accepted by ingest but not processed (sensor restarting, overload), by reason.
    pub samples_dropped: Labelled<ReasonLabel, Counter>,
    /// Feature vectors scored.
    pub inferences: Counter,
    /// Feature vectors per inference batch.
    pub inference_batch_size: Hist,
    /// Wall time of one batch through the model.
    pub inference_seconds: Hist,
    /// Requests shed from the inference queue under overload (oldest first).
    pub inference_shed: Counter,
    /// Batches scored by the fallback rule instead of the model.
    pub inference_fallback_batches: Counter,
    /// From the sample that completed a window being received to its decision.
    pub decision_latency_seconds: Hist,
    /// Decisions made (alert or not).
    pub decisions: Counter,
    /// Alerts raised and sent upstream.
    pub alerts: Counter,
    /// Anomalous decisions withheld (episode duplicate, cooldown or global cap).
    pub alerts_suppressed: Counter,
    /// The same, by reason: `duplicate`, `cooldown`, `cap`.
    pub alerts_suppressed_by_reason: Labelled<ReasonLabel, Counter>,
    /// Messages handed to the uplink, by class.
    pub uplink_messages: Labelled<ClassLabel, Counter>,
    /// Payload bytes handed to the uplink.
    pub uplink_bytes: Labelled<ClassLabel, Counter>,
    /// Uplink messages dropped before the broker acknowledged them, by reason.
    pub uplink_dropped: Labelled<ReasonLabel, Counter>,
    /// 1 while the uplink MQTT session is up.
    pub uplink_connected: Gauge,
    /// Outbound records waiting for the broker's acknowledgement, by class.
    pub store_backlog: Labelled<ClassLabel, Gauge>,
    /// Bytes held by the store on disk.
    pub store_bytes: Gauge,
    /// Backlog messages replayed per second (the measured drain rate after an outage).
    pub store_drain_per_second: Gauge,
    /// Records evicted from the store to keep its budget, by class.
    pub store_evicted: Labelled<ClassLabel, Counter>,
    /// Restarts of supervised actors, by stage.
    pub actor_restarts: Labelled<StageLabel, Counter>,
    /// Feedback messages applied, by kind.
    pub feedback: Labelled<KindLabel, Counter>,
    /// Feedback messages dropped (rate limit or malformed), by kind.
    pub feedback_dropped: Labelled<KindLabel, Counter>,
    /// Sensors with a live window actor.
    pub sensors_active: Gauge,
    /// Trace spans exported and dropped (shared with the export thread).
    pub spans: SpanCounters,
}

/// Bucket bounds of the latency histograms (`edgegw_decision_latency_seconds`,
/// `edgegw_inference_seconds`): 10 µs to 10 s, six per decade in a 1-1.5-2-3-5-7.5 series.
/// Neighbouring bounds are 1.33-1.67× apart (1.47× on average, against 2× for powers of two),
/// so p99 and p99.9 read to within a third; 1, 2 and 5 ms are exact bounds, so the share of
/// decisions within the 2 ms target is read off a bucket, not interpolated.
pub fn latency_buckets() -> Vec<f64> {
    /// The series within a decade, in units of a tenth of the decade's first bound.
    const STEPS: [f64; 6] = [10.0, 15.0, 20.0, 30.0, 50.0, 75.0];
    let mut out = Vec::with_capacity(37);
    for decade in 0..6 {
        // Dividing exact integers rounds once: each bound is the double nearest its decimal.
        let div = 10f64.powi(6 - decade);
        out.extend(STEPS.iter().map(|m| m / div));
    }
    out.push(10.0);
    out
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every instrument.
    pub fn new() -> Self {
        Self::with_spans(SpanCounters::default())
    }

    /// Like [`Metrics::new`], registering the span counters of a running trace export.
    pub fn with_spans(spans: SpanCounters) -> Self {
        let mut r = Registry::default();
        let mut catalog = Vec::new();
        macro_rules! reg {
            ($name:literal, $help:literal, $m:expr) => {{
                let m = $m;
                // prometheus_client ends every help text with a period of its own.
                let help: &'static str = $help;
                r.register($name, help.strip_suffix('.').unwrap_or(help), m.clone());
                catalog.push(Entry {
                    name: $name,
                    help,
                    instrument: Box::new(m.clone()),
                });
                m
            }};
        }
        let m = Metrics {
            samples_ingested: reg!(
                "edgegw_samples_ingested",
                "Samples accepted into a sensor window.",
                Counter::default()
            ),
            ingest_rejected: reg!(
                "edgegw_ingest_rejected",
                "Ingest messages or samples rejected, by reason.",
                Labelled::default()
            ),
            ingest_bytes: reg!(
                "edgegw_ingest_bytes",
                "Payload bytes received on ingest topics.",
                Counter::default()
            ),
            ingest_messages: reg!(
                "edgegw_ingest_messages",
                "MQTT messages received on ingest topics, accepted or rejected.",
                Counter::default()
            ),
            ingest_inflight_bytes: reg!(
                "edgegw_ingest_inflight_bytes",
                "Ingest payload bytes read but not yet processed.",
                Gauge::default()
            ),
            samples_dropped: reg!(
                "edgegw_samples_dropped",
                "Accepted samples not processed, by reason.",
                Labelled::default()
            ),
            inferences: reg!(
                "edgegw_inferences",
                "Feature vectors scored.",
                Counter::default()
            ),
            inference_batch_size: reg!(
                "edgegw_inference_batch_size",
                "Feature vectors per inference batch.",
                Hist::new(exponential_buckets(1.0, 2.0, 11))
            ),
            inference_seconds: reg!(
                "edgegw_inference_seconds",
                "Wall time of one inference batch.",
                Hist::new(latency_buckets().into_iter())
            ),
            inference_shed: reg!(
                "edgegw_inference_shed",
                "Inference requests shed under overload, oldest first.",
                Counter::default()
            ),
            inference_fallback_batches: reg!(
                "edgegw_inference_fallback_batches",
                "Batches scored by the fallback rule.",
                Counter::default()
            ),
            decision_latency_seconds: reg!(
                "edgegw_decision_latency_seconds",
                "Sample received to decision made.",
                Hist::new(latency_buckets().into_iter())
            ),
            decisions: reg!("edgegw_decisions", "Decisions made.", Counter::default()),
            alerts: reg!("edgegw_alerts", "Alerts raised.", Counter::default()),
            alerts_suppressed: reg!(
                "edgegw_alerts_suppressed",
                "Anomalous decisions withheld: episode duplicate, cooldown or global cap.",
                Counter::default()
            ),
            alerts_suppressed_by_reason: reg!(
                "edgegw_alerts_suppressed_by_reason",
                "Anomalous decisions withheld, by reason.",
                Labelled::default()
            ),
            uplink_messages: reg!(
                "edgegw_uplink_messages",
                "Messages handed to the uplink, by class.",
                Labelled::default()
            ),
            uplink_bytes: reg!(
                "edgegw_uplink_bytes",
                "Payload bytes handed to the uplink.",
                Labelled::default()
            ),
            uplink_dropped: reg!(
                "edgegw_uplink_dropped",
                "Uplink messages dropped before acknowledgement, by reason.",
                Labelled::default()
            ),
            uplink_connected: reg!(
                "edgegw_uplink_connected",
                "1 while the uplink session is up.",
                Gauge::default()
            ),
            store_backlog: reg!(
                "edgegw_store_backlog",
                "Outbound records awaiting acknowledgement, by class.",
                Labelled::default()
            ),
            store_bytes: reg!(
                "edgegw_store_bytes",
                "Bytes held by the store.",
                Gauge::default()
            ),
            store_drain_per_second: reg!(
                "edgegw_store_drain_per_second",
                "Backlog messages replayed per second.",
                Gauge::default()
            ),
            store_evicted: reg!(
                "edgegw_store_evicted",
                "Records evicted to keep the store budget, by class.",
                Labelled::default()
            ),
            actor_restarts: reg!(
                "edgegw_actor_restarts",
                "Restarts of supervised actors, by stage.",
                Labelled::default()
            ),
            feedback: reg!(
                "edgegw_feedback",
                "Feedback messages applied, by kind.",
                Labelled::default()
            ),
            feedback_dropped: reg!(
                "edgegw_feedback_dropped",
                "Feedback messages dropped, by kind.",
                Labelled::default()
            ),
            sensors_active: reg!(
                "edgegw_sensors_active",
                "Sensors with a live window actor.",
                Gauge::default()
            ),
            spans: SpanCounters {
                exported: reg!(
                    "edgegw_telemetry_spans_exported",
                    "Trace spans accepted by the OTLP collector.",
                    spans.exported
                ),
                dropped: reg!(
                    "edgegw_telemetry_spans_dropped",
                    "Trace spans dropped, by reason: queue_full, export_failed, untracked.",
                    spans.dropped
                ),
                metric_exports: reg!(
                    "edgegw_telemetry_metric_exports",
                    "Readings of every instrument accepted by the OTLP collector.",
                    spans.metric_exports
                ),
                metric_exports_failed: reg!(
                    "edgegw_telemetry_metric_exports_failed",
                    "OTLP metric exports that failed or timed out.",
                    spans.metric_exports_failed
                ),
            },
            registry: Registry::default(),
            catalog: Vec::new(),
        };
        let m = Metrics {
            registry: r,
            catalog,
            ..m
        };
        m.zero_known_series();
        m
    }

    /// Creates every series whose label values are known in advance at 0, so a scrape or an
    /// OTLP export shows each of them from the start (a `rate()` over a series that appears
    /// only at its first increment misses that increment, and a dashboard shows "no data"
    /// where the answer is 0).
    fn zero_known_series(&self) {
        for class in CLASSES {
            let c = ClassLabel { class };
            let _ = self.uplink_messages.get_or_create(&c);
            let _ = self.uplink_bytes.get_or_create(&c);
            if class != "status" {
                let _ = self.store_backlog.get_or_create(&c);
                let _ = self.store_evicted.get_or_create(&c);
            }
        }
        for stage in RESTART_STAGES {
            let _ = self.actor_restarts.get_or_create(&StageLabel { stage });
        }
        for s in Suppressed::ALL {
            let _ = self
                .alerts_suppressed_by_reason
                .get_or_create(&ReasonLabel { reason: s.reason() });
        }
        for kind in crate::config::Kind::ALL {
            let _ = self.feedback.get_or_create(&kind.label());
            let _ = self.feedback_dropped.get_or_create(&kind.label());
        }
    }

    /// Counts one rejection with `reason`.
    pub fn reject(&self, reason: &'static str) {
        self.ingest_rejected
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts one restart of `stage`.
    pub fn restart(&self, stage: &'static str) {
        self.actor_restarts
            .get_or_create(&StageLabel { stage })
            .inc();
    }

    /// Value of a rejection counter (for status and tests).
    pub fn rejected(&self, reason: &'static str) -> u64 {
        self.ingest_rejected
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// Value of a restart counter.
    pub fn restarts(&self, stage: &'static str) -> u64 {
        self.actor_restarts
            .get_or_create(&StageLabel { stage })
            .get()
    }

    /// Every instrument's family, read now, in registration order (the order of `/metrics`).
    pub fn read(&self) -> Vec<Family> {
        self.catalog
            .iter()
            .map(|e| Family {
                name: e.name,
                help: e.help,
                kind: e.instrument.kind(),
                series: e.instrument.read(),
            })
            .collect()
    }

    /// Prometheus text exposition of every instrument.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_spec_names() {
        let m = Metrics::new();
        m.samples_ingested.inc();
        m.reject("malformed_json");
        m.restart("inference");
        m.decision_latency_seconds.observe(0.00002);
        let text = m.render();
        for name in [
            "edgegw_samples_ingested_total 1",
            "edgegw_ingest_rejected_total{reason=\"malformed_json\"} 1",
            "edgegw_actor_restarts_total{stage=\"inference\"} 1",
            "edgegw_decision_latency_seconds_bucket",
            "edgegw_sensors_active",
            "edgegw_telemetry_spans_exported_total 0",
            "# HELP edgegw_decisions Decisions made.\n",
            "edgegw_actor_restarts_total{stage=\"http\"} 0",
            "edgegw_store_evicted_total{class=\"alert\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn latency_buckets_are_a_fine_series_from_10_us_to_10_s() {
        let b = latency_buckets();
        assert_eq!(b.first(), Some(&10e-6));
        assert_eq!(b.last(), Some(&10.0));
        assert!(b.windows(2).all(|w| w[1] / w[0] > 1.3 && w[1] / w[0] < 1.7));
        for exact in [1e-3, 2e-3, 5e-3, 1e-4, 1.5e-5, 7.5e-2] {
            assert!(b.contains(&exact), "{exact} not a bound: {b:?}");
        }
        // Bounds render as short decimals in the exposition.
        let m = Metrics::new();
        m.decision_latency_seconds.observe(0.0019);
        let text = m.render();
        assert!(
            text.contains("edgegw_decision_latency_seconds_bucket{le=\"0.002\"} 1"),
            "{text}"
        );
        assert!(text.contains("edgegw_decision_latency_seconds_bucket{le=\"0.0015\"} 0"));
    }
}

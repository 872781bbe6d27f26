//! Span export counters of the OTLP exporter, shown on `/metrics`.

use super::Labelled;
use super::ReasonLabel;
use prometheus_client::metrics::counter::Counter;

/// Span export counters, shown on `/metrics` (registered by [`super::Metrics`]).
#[derive(Clone, Debug, Default)]
pub struct SpanCounters {
    /// `edgegw_telemetry_spans_exported_total`: spans the collector accepted.
    pub exported: Counter,
    /// `edgegw_telemetry_spans_dropped_total{reason}`: `queue_full` (the export queue was
    /// full), `export_failed` (the batch's export failed or timed out), `untracked` (the
    /// uplink's in-flight map was full: the record's last spans are not emitted).
    pub dropped: Labelled<ReasonLabel, Counter>,
    /// `edgegw_telemetry_metric_exports_total`: readings of every instrument the collector
    /// accepted.
    pub metric_exports: Counter,
    /// `edgegw_telemetry_metric_exports_failed_total`: readings that failed or timed out (the
    /// next one carries the cumulative values, so only resolution is lost).
    pub metric_exports_failed: Counter,
}

impl SpanCounters {
    /// Counts `n` spans dropped for `reason`.
    pub fn drop_spans(&self, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&ReasonLabel { reason })
            .inc_by(n);
    }

    /// Spans dropped for `reason` so far.
    pub fn dropped(&self, reason: &'static str) -> u64 {
        self.dropped.get_or_create(&ReasonLabel { reason }).get()
    }
}

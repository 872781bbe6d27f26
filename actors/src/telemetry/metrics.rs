//! Every instrument over OTLP: the instruments that `/metrics` serves, read directly
//! ([`Metrics::read`]) and sent to the collector as cumulative OTLP metrics every
//! `telemetry.metrics_interval`, by the export thread.
//!
//! Design constraints:
//! - **One set of instruments.** Nothing is recorded twice: the OTLP export is a periodic
//!   reading of the same instruments, so a collector and a scrape see the same numbers
//!   under the same names (counters without `_total`, as OTLP names them; a collector's
//!   Prometheus exporter adds it back).
//! - **Cumulative temporality** with the process start as every point's start time: a lost
//!   export loses resolution, never counts.
//! - **Off the data path and bounded.** It runs on the export thread, reads the instruments once
//!   per interval, and each request is bounded by [`super::EXPORT_TIMEOUT`]; a failure is
//!   counted (`edgegw_telemetry_metric_exports_failed_total`) and the next interval tries
//!   again with fresh values.

use crate::metrics::read::{Buckets, Family, Kind, Value};
use crate::metrics::Metrics;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// Where the export thread finds the instruments: set once the gateway has built them.
pub type Source = Arc<OnceLock<Arc<Metrics>>>;

/// The export thread's metric exporter.
pub(super) struct MetricExport {
    client: MetricsServiceClient<Channel>,
    source: Source,
    resource: Resource,
    /// Every point's start time: the process start, ns since the epoch.
    start_ns: u64,
    interval: Duration,
    /// When the next export is due.
    pub(super) due: Instant,
}

impl MetricExport {
    /// A lazily connecting client for `endpoint` (call inside the thread's runtime).
    pub(super) fn new(
        endpoint: &str,
        interval: Duration,
        source: Source,
        attrs: &[(&str, String)],
    ) -> Result<Self, String> {
        let mut ep = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("metrics endpoint {endpoint}: {e}"))?
            .connect_timeout(super::EXPORT_TIMEOUT)
            .timeout(super::EXPORT_TIMEOUT);
        if endpoint.starts_with("https://") {
            ep = ep
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| format!("metrics endpoint TLS: {e}"))?;
        }
        Ok(MetricExport {
            client: MetricsServiceClient::new(ep.connect_lazy()),
            source,
            resource: Resource {
                attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            },
            start_ns: unix_ns(SystemTime::now()),
            interval,
            due: Instant::now() + interval,
        })
    }

    /// Sends one reading of the instruments, if they exist yet, under the export timeout.
    /// `Ok(false)` when there was nothing to send.
    pub(super) fn export(&mut self, rt: &tokio::runtime::Runtime) -> Result<bool, String> {
        self.due = Instant::now() + self.interval;
        let Some(metrics) = self.source.get() else {
            return Ok(false);
        };
        let families = metrics.read();
        let req = request(
            &families,
            self.resource.clone(),
            self.start_ns,
            unix_ns(SystemTime::now()),
        );
        let client = &mut self.client;
        let outcome = rt.block_on(async {
            tokio::time::timeout(super::EXPORT_TIMEOUT, client.export(req)).await
        });
        match outcome {
            Ok(Ok(resp)) => match resp.into_inner().partial_success {
                Some(p) if p.rejected_data_points > 0 => Err(format!(
                    "collector rejected {} data points: {}",
                    p.rejected_data_points, p.error_message
                )),
                _ => Ok(true),
            },
            Ok(Err(status)) => Err(status.to_string()),
            Err(_) => Err(format!("no answer within {:?}", super::EXPORT_TIMEOUT)),
        }
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

/// The OTLP request for one reading of the instruments.
pub fn request(
    families: &[Family],
    resource: Resource,
    start_ns: u64,
    now_ns: u64,
) -> ExportMetricsServiceRequest {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let metrics = families
        .iter()
        .filter(|f| !f.series.is_empty())
        .map(|f| {
            let attrs = |labels: &[(&str, &str)]| -> Vec<KeyValue> {
                labels.iter().map(|(k, v)| kv(k, v)).collect()
            };
            let numbers = || -> Vec<NumberDataPoint> {
                f.series
                    .iter()
                    .filter_map(|(labels, v)| match v {
                        Value::Number(x) => Some(NumberDataPoint {
                            attributes: attrs(labels),
                            start_time_unix_nano: start_ns,
                            time_unix_nano: now_ns,
                            value: Some(number(*x)),
                            ..Default::default()
                        }),
                        Value::Histogram(_) => None,
                    })
                    .collect()
            };
            let data = match f.kind {
                Kind::Counter => metric::Data::Sum(Sum {
                    data_points: numbers(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
                Kind::Gauge => metric::Data::Gauge(Gauge {
                    data_points: numbers(),
                }),
                Kind::Histogram => metric::Data::Histogram(Histogram {
                    data_points: f
                        .series
                        .iter()
                        .filter_map(|(labels, v)| match v {
                            Value::Histogram(b) => {
                                Some(histogram_point(b, attrs(labels), start_ns, now_ns))
                            }
                            Value::Number(_) => None,
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                }),
            };
            Metric {
                name: f.name.to_string(),
                description: f.help.to_string(),
                unit: unit(f.name).to_string(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "edgegw".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Integral values (every counter and gauge) as integers, others as doubles.
fn number(x: f64) -> number_data_point::Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        number_data_point::Value::AsInt(x as i64)
    } else {
        number_data_point::Value::AsDouble(x)
    }
}

/// OTLP buckets are per bucket, Prometheus' cumulative: the last (`+Inf`) bound is implicit.
fn histogram_point(
    b: &Buckets,
    attributes: Vec<KeyValue>,
    start_ns: u64,
    now_ns: u64,
) -> HistogramDataPoint {
    let mut prev = 0;
    let bucket_counts = b
        .cumulative
        .iter()
        .map(|&(_, c)| {
            let n = c.saturating_sub(prev);
            prev = c;
            n
        })
        .collect();
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: start_ns,
        time_unix_nano: now_ns,
        count: b.count,
        sum: Some(b.sum),
        bucket_counts,
        explicit_bounds: b
            .cumulative
            .iter()
            .map(|&(le, _)| le)
            .filter(|le| le.is_finite())
            .collect(),
        ..Default::default()
    }
}

/// UCUM units from the Prometheus naming conventions.
fn unit(name: &str) -> &'static str {
    if name.ends_with("_seconds") {
        "s"
    } else if name.ends_with("_bytes") {
        "By"
    } else {
        "1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instrument_becomes_an_otlp_metric() {
        let m = Metrics::new();
        m.samples_ingested.inc_by(5);
        m.reject("malformed_json");
        m.sensors_active.set(2);
        for v in [0.000_015, 0.003, 20.0] {
            m.decision_latency_seconds.observe(v);
        }
        let fams = m.read();
        let req = request(&fams, Resource::default(), 1, 2);
        let rm = &req.resource_metrics[0].scope_metrics[0].metrics;
        let get = |n: &str| rm.iter().find(|x| x.name == n).unwrap();

        let Some(metric::Data::Sum(s)) = &get("edgegw_samples_ingested").data else {
            panic!("not a sum");
        };
        assert!(s.is_monotonic);
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert_eq!(
            s.data_points[0].value,
            Some(number_data_point::Value::AsInt(5))
        );
        assert_eq!(
            (
                s.data_points[0].start_time_unix_nano,
                s.data_points[0].time_unix_nano
            ),
            (1, 2)
        );

        let Some(metric::Data::Sum(r)) = &get("edgegw_ingest_rejected").data else {
            panic!("not a sum");
        };
        assert_eq!(
            r.data_points[0].attributes,
            vec![kv("reason", "malformed_json")]
        );

        assert!(matches!(
            get("edgegw_sensors_active").data,
            Some(metric::Data::Gauge(_))
        ));

        let lat = get("edgegw_decision_latency_seconds");
        assert_eq!(lat.unit, "s");
        let Some(metric::Data::Histogram(h)) = &lat.data else {
            panic!("not a histogram");
        };
        let p = &h.data_points[0];
        assert_eq!(p.count, 3);
        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), 3);
        // 20 s is beyond the last finite bound: it lands in the implicit +Inf bucket.
        assert_eq!(p.bucket_counts.last(), Some(&1));
        assert_eq!(p.explicit_bounds[0], 10e-6);
        // A family with no series yet (no reason seen) is not sent; known label sets are, at 0.
        assert!(rm.iter().all(|x| x.name != "edgegw_samples_dropped"));
        let Some(metric::Data::Sum(f)) = &get("edgegw_feedback_dropped").data else {
            panic!("not a sum");
        };
        assert_eq!(f.data_points.len(), 4);
    }
}

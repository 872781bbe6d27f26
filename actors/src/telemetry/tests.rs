#![allow(clippy::unwrap_used)]

use super::*;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Keeps every ended span.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Collect {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn collecting(ratio: f64) -> (Traces, Collect) {
    let c = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_span_processor(c.clone())
        .build();
    let traces = Traces {
        tracer: provider.tracer("test"),
        ratio,
        counters: SpanCounters::default(),
    };
    (traces, c)
}

fn decision(traces: &Traces, outcome: Outcome) -> TraceLink {
    let t0 = Instant::now();
    traces.decision(&DecisionTrace {
        sensor: "s1",
        stamps: Stamps::at(t0),
        window: (64, 1_000),
        batch: (t0, Instant::now(), 3),
        model: ("ae", "1.0.0", false),
        score: (2.5, 1.0),
        outcome,
        decided_from: Instant::now(),
    })
}

fn attr(s: &SpanData, key: &str) -> Option<opentelemetry::Value> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

#[test]
fn a_decision_and_its_uplink_record_form_one_chain() {
    let (traces, c) = collecting(0.0);
    let link = decision(&traces, Outcome::Alert);
    let mut inflight = InFlight::new(Some(traces.clone()), 8);
    inflight.inserted(7, link, Instant::now());
    inflight.published(7); // not committed yet: ignored
    inflight.durable(6);
    inflight.durable(7);
    inflight.published(7);
    inflight.acked(7);
    assert!(inflight.is_empty());

    let spans = c.0.lock().unwrap().clone();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "ingest",
            "features",
            "inference",
            "decision",
            "store.commit",
            "uplink.publish"
        ]
    );
    assert_eq!(spans[0].parent_span_id, SpanId::INVALID);
    for w in spans.windows(2) {
        assert_eq!(w[1].span_context.trace_id(), link.trace_id);
        assert_eq!(w[1].parent_span_id, w[0].span_context.span_id());
        assert!(!w[1].parent_span_is_remote);
        assert!(w[0].start_time <= w[0].end_time);
    }
    assert_eq!(spans[3].span_context.span_id(), link.span_id);
    assert_eq!(link.trace_id_hex().len(), 32);
    assert_eq!(attr(&spans[3], "alert"), Some(true.into()));
    assert_eq!(attr(&spans[3], "sensor"), Some("s1".to_string().into()));
    assert_eq!(attr(&spans[2], "inference.batch_size"), Some(3i64.into()));
    assert_eq!(attr(&spans[5], "uplink.seq"), Some(7i64.into()));
}

#[test]
fn alerts_always_sampled_others_by_ratio() {
    let (never, _) = collecting(0.0);
    let (always, _) = collecting(1.0);
    assert!(never.sample(true));
    assert!((0..1000).all(|_| !never.sample(false)));
    assert!((0..1000).all(|_| always.sample(false)));
    let (some, _) = collecting(0.5);
    let n = (0..10_000).filter(|_| some.sample(false)).count();
    assert!((3_000..7_000).contains(&n), "{n} of 10000 sampled at 0.5");
}

#[test]
fn the_in_flight_map_is_bounded_and_counts_what_it_forgets() {
    let (traces, c) = collecting(0.0);
    let link = decision(&traces, Outcome::Alert);
    let mut inflight = InFlight::new(Some(traces.clone()), 2);
    for seq in 1..=5 {
        inflight.inserted(seq, link, Instant::now());
    }
    assert_eq!(inflight.len(), 2);
    // Three records forgotten before their commit: two spans each.
    assert_eq!(traces.counters().dropped("untracked"), 6);
    inflight.acked(5); // never published: no span, forgotten
    inflight.durable(u64::MAX);
    let commits =
        c.0.lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == "store.commit")
            .count();
    assert_eq!(commits, 1);
}

#[test]
fn without_traces_the_in_flight_map_holds_nothing() {
    let (traces, _) = collecting(0.0);
    let link = decision(&traces, Outcome::Normal);
    let mut inflight = InFlight::new(None, 8);
    inflight.inserted(1, link, Instant::now());
    assert!(inflight.is_empty());
}

#[test]
fn a_dead_collector_costs_counted_drops_and_a_bounded_shutdown() {
    // A port that refuses connections: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = crate::config::TelemetryConfig {
        otlp_endpoint: format!("http://127.0.0.1:{port}"),
        sample_ratio: 1.0,
        ..Default::default()
    };
    let t = Telemetry::start(&cfg, "gw-test").unwrap().unwrap();
    let traces = t.traces();
    for _ in 0..10 {
        decision(&traces, Outcome::Normal);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while traces.counters().dropped("export_failed") < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(traces.counters().dropped("export_failed"), 40);
    assert_eq!(traces.counters().exported.get(), 0);
    t.shutdown(Duration::from_secs(10));
}

#[test]
fn no_endpoint_installs_nothing() {
    let cfg = crate::config::TelemetryConfig::default();
    assert!(Telemetry::start(&cfg, "gw-test").unwrap().is_none());
}

#[test]
fn a_blackholed_collector_fills_the_queue_and_drops_are_counted() {
    // Accepts connections and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming().flatten() {
            held.push(s);
        }
    });
    let cfg = crate::config::TelemetryConfig {
        otlp_endpoint: format!("http://127.0.0.1:{port}"),
        sample_ratio: 1.0,
        ..Default::default()
    };
    let t = Telemetry::start(&cfg, "gw-test").unwrap().unwrap();
    let traces = t.traces();
    // Four spans per decision: well past the queue while the first export hangs.
    for _ in 0..2 * QUEUE_CAPACITY / 4 + MAX_BATCH {
        decision(&traces, Outcome::Normal);
    }
    assert!(traces.counters().dropped("queue_full") > 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while traces.counters().dropped("export_failed") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(traces.counters().dropped("export_failed") >= MAX_BATCH as u64);
    // Shutdown gives up or finishes, bounded either way; the queued rest is counted.
    t.shutdown(SHUTDOWN_TIMEOUT);
}

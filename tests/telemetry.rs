//! Decision traces against a real OTLP collector (rotel) and the real `edgegw` binary: the
//! spans arrive linked and the alert's `trace_id` names its trace, and the alert's JSON log
//! line carries that same `trace_id`; a collector that dies or never answers costs counted
//! span drops, never decisions, and never a hung shutdown.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use edgegw_chaos::harness::rotel::{Rotel, SpanRec};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHAIN: [&str; 6] = [
    "ingest",
    "features",
    "inference",
    "decision",
    "store.commit",
    "uplink.publish",
];

fn config(mq: &Mosquitto, endpoint: &str, ratio: f64) -> String {
    let url = mq.url();
    format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [sensors]\nalert_cooldown = 0\n\
         [telemetry]\notlp_endpoint = \"{endpoint}\"\nsample_ratio = {ratio}\n"
    )
}

/// Publishes `secs` of a 3-sensor fleet whose sensor 1 shifts level after 150 s.
fn publish_level_shift(port: u16) -> String {
    let start = edgegw_actors::status::now_ms() - 600_000;
    let mut fleet = quiet_fleet(3, 11, start);
    shift_level(&mut fleet, 1, start + 150_000, 1_000_000);
    let mut out = Vec::new();
    fleet.tick(start + 200_000, &mut out);
    publish_fleet(port, &fleet, &out, 20);
    fleet.id(1).to_string()
}

#[test]
fn sampled_decisions_arrive_as_linked_traces_and_alerts_carry_their_trace_id() {
    let mq = Mosquitto::start();
    let collector = Rotel::start();
    let gw = Gw::start(&config(&mq, &collector.endpoint(), 1.0));
    let sub = Sub::start(mq.port, "edgegw/gw-01/alerts/#");
    let shifted = publish_level_shift(mq.port);

    wait_until(Duration::from_secs(120), "an alert upstream", || {
        !sub.json(&format!("/alerts/{shifted}")).is_empty()
    });
    let alerts = sub.json(&format!("/alerts/{shifted}"));
    let ids: Vec<String> = alerts
        .iter()
        .map(|(_, a)| a["trace_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids
        .iter()
        .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())));

    // One alert's whole chain reaches the collector (its publish span after the PUBACK).
    let mut found = None;
    wait_until(
        Duration::from_secs(30),
        "an alert's six spans at the collector",
        || {
            let spans = collector.spans();
            found = ids.iter().find_map(|id| {
                let trace: Vec<SpanRec> = spans
                    .iter()
                    .filter(|s| &s.trace_id == id)
                    .cloned()
                    .collect();
                CHAIN
                    .iter()
                    .all(|n| trace.iter().any(|s| s.name == *n))
                    .then_some(trace)
            });
            found.is_some()
        },
    );
    let trace = found.unwrap();
    let by_name: HashMap<&str, &SpanRec> = trace.iter().map(|s| (s.name.as_str(), s)).collect();
    assert!(
        by_name["ingest"].parent_id.is_empty(),
        "ingest is the root: {trace:?}"
    );
    for w in CHAIN.windows(2) {
        assert_eq!(
            by_name[w[1]].parent_id, by_name[w[0]].span_id,
            "{} is not the child of {}: {trace:?}",
            w[1], w[0]
        );
    }
    let sensor = format!("Str({shifted})");
    for n in ["ingest", "features", "inference", "decision"] {
        assert_eq!(
            by_name[n].attrs.get("sensor"),
            Some(&sensor),
            "{n}: {trace:?}"
        );
    }
    let d = &by_name["decision"].attrs;
    assert_eq!(d.get("alert").map(String::as_str), Some("Bool(true)"));
    assert!(d.get("score").is_some_and(|v| v.starts_with("Double(")));
    assert!(d.get("threshold").is_some_and(|v| v.starts_with("Double(")));
    let inf = &by_name["inference"].attrs;
    assert!(inf
        .get("inference.batch_size")
        .is_some_and(|v| v.starts_with("Int(")));
    assert!(inf.contains_key("model.name") && inf.contains_key("model.version"));

    // At ratio 1.0 normal decisions are traced too (no uplink spans: nothing goes upstream).
    let spans = collector.spans();
    let normal = spans
        .iter()
        .filter(|s| {
            s.name == "decision" && s.attrs.get("alert").map(String::as_str) == Some("Bool(false)")
        })
        .count();
    assert!(normal > 0, "no normal decision traced at sample_ratio 1.0");
    wait_until(Duration::from_secs(10), "spans counted as exported", || {
        gw.metric("edgegw_telemetry_spans_exported_total") > 0.0
    });
    println!(
        "{} spans received, {} alert traces, {} normal decisions traced",
        spans.len(),
        ids.len(),
        normal
    );
    assert_eq!(gw.stop(), Some(0));
}

#[test]
fn the_alert_log_line_carries_the_trace_id_of_its_uplink_message() {
    let mq = Mosquitto::start();
    let collector = Rotel::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gw::start_with_args_in(
        dir.path(),
        &config(&mq, &collector.endpoint(), 0.0),
        &["--log-format", "json"],
    );
    let sub = Sub::start(mq.port, "edgegw/gw-01/alerts/#");
    let shifted = publish_level_shift(mq.port);

    let mut logged: Vec<Value> = Vec::new();
    wait_until(
        Duration::from_secs(120),
        "an `Alert raised.` log line of the shifted sensor",
        || {
            logged = gw
                .log_json()
                .into_iter()
                .filter(|l| l["message"] == "Alert raised.")
                .collect();
            logged.iter().any(|l| l["sensor"] == shifted.as_str())
        },
    );
    // The line is written at commit, before the publish: wait for each logged message upstream.
    let mut upstream: HashMap<String, Value> = HashMap::new();
    wait_until(
        Duration::from_secs(30),
        "the logged alerts upstream",
        || {
            upstream = sub
                .json("/alerts/")
                .into_iter()
                .map(|(_, a)| (a["id"].as_str().unwrap().to_string(), a))
                .collect();
            logged
                .iter()
                .all(|l| upstream.contains_key(l["id"].as_str().unwrap()))
        },
    );
    // A quiet sensor may raise a false alert of its own: what matters here is that every
    // logged alert is the message upstream.
    for line in &logged {
        let msg = &upstream[line["id"].as_str().unwrap()];
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["trace_id"], msg["trace_id"], "{line} vs {msg}");
        assert_eq!(line["sensor"], msg["sensor"], "{line} vs {msg}");
        assert_eq!(line["score"], msg["score"], "{line} vs {msg}");
        assert_eq!(line["threshold"], msg["threshold"], "{line} vs {msg}");
        assert_eq!(line["model"], msg["model"]["name"], "{line} vs {msg}");
    }
    // Alerts are always traced: the logged trace id is the trace the collector received.
    wait_until(
        Duration::from_secs(30),
        "a logged alert's decision span at the collector",
        || {
            let spans = collector.spans();
            logged.iter().any(|l| {
                spans
                    .iter()
                    .any(|s| s.name == "decision" && l["trace_id"] == s.trace_id.as_str())
            })
        },
    );
    // Every alert committed is either logged or counted as suppressed: the counts still
    // pending are written at exit.
    let mut last = -1.0;
    wait_until(
        Duration::from_secs(60),
        "decisions to settle, every alert upstream",
        || {
            let decisions = gw.metric("edgegw_decisions_total");
            let alerts = gw.metric("edgegw_alerts_total");
            let up: HashSet<String> = sub
                .json("/alerts/")
                .into_iter()
                .map(|(_, a)| a["id"].to_string())
                .collect();
            let done = decisions == last && up.len() as f64 == alerts;
            last = decisions;
            std::thread::sleep(Duration::from_millis(500));
            done
        },
    );
    let alerts = gw.metric("edgegw_alerts_total");
    assert_eq!(gw.stop(), Some(0));
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap();
    let lines = json_lines(&log);
    let written = lines
        .iter()
        .filter(|l| l["message"] == "Alert raised.")
        .count();
    let suppressed: u64 = lines
        .iter()
        .filter(|l| l["message"] == "Similar log lines suppressed." && l["of"] == "Alert raised.")
        .map(|l| l["suppressed"].as_u64().unwrap())
        .sum();
    println!("{alerts} alerts: {written} logged, {suppressed} suppressed and counted");
    assert_eq!(written as f64 + suppressed as f64, alerts);
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .collect();
    assert!(bad.is_empty(), "non-JSON log lines: {bad:?}");
}

#[test]
fn every_spec_instrument_reaches_the_collector_with_the_values_of_the_scrape() {
    let mq = Mosquitto::start();
    let collector = Rotel::start();
    let toml = config(&mq, &collector.endpoint(), 0.0) + "metrics_interval = \"1s\"\n";
    let gw = Gw::start(&toml);
    publish_level_shift(mq.port);
    publish_once(mq.port, "sensors/s-bad/data", "not json");
    // Once ingest has settled, an export carries exactly the scrape's totals.
    let mut last = -1.0;
    wait_until(Duration::from_secs(60), "ingest settled", || {
        let now = gw.metric("edgegw_samples_ingested_total");
        let settled = now > 0.0 && now == last;
        last = now;
        std::thread::sleep(Duration::from_millis(500));
        settled
    });
    let scraped = gw.metric("edgegw_samples_ingested_total");
    let mut received = BTreeMap::new();
    wait_until(
        Duration::from_secs(20),
        "the scrape's totals at the collector",
        || {
            received = collector.metrics();
            received.get("edgegw_samples_ingested") == Some(&scraped)
        },
    );
    println!(
        "collector received {} instruments; samples {scraped}",
        received.len()
    );
    for name in SPEC_FAMILIES {
        assert!(
            received.contains_key(name),
            "{name} never reached the collector: {received:?}"
        );
    }
    assert_eq!(received.get("edgegw_ingest_rejected"), Some(&1.0));
    assert!(received["edgegw_decision_latency_seconds"] > 0.0);
    assert!(gw.metric("edgegw_telemetry_metric_exports_total") > 0.0);
    assert_eq!(
        gw.metric("edgegw_telemetry_metric_exports_failed_total"),
        0.0
    );
    assert_eq!(gw.stop(), Some(0));
}

/// Feeds 4 sensors until `stop`; returns the feeder and its stop flag.
fn feed(mq: &Mosquitto) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let h = feeder(mq.port, 4, stop.clone());
    (stop, h)
}

/// Decisions go on while the collector is gone, span losses are counted, and SIGTERM still
/// exits 0 (the time it took is printed, bounded generously).
fn decisions_go_on_and_shutdown_is_bounded(gw: Gw, what: &str) {
    let before = gw.metric("edgegw_decisions_total");
    let samples = gw.metric("edgegw_samples_ingested_total");
    wait_until(
        Duration::from_secs(60),
        "span export failures counted",
        || gw.metric("edgegw_telemetry_spans_dropped_total{reason=\"export_failed\"}") > 0.0,
    );
    wait_until(Duration::from_secs(30), "decisions to go on", || {
        gw.metric("edgegw_decisions_total") > before + 100.0
            && gw.metric("edgegw_samples_ingested_total") > samples + 1000.0
    });
    let failed = gw.metric("edgegw_telemetry_spans_dropped_total{reason=\"export_failed\"}") + 0.0;
    let full = gw.metric("edgegw_telemetry_spans_dropped_total{reason=\"queue_full\"}") + 0.0;
    let exported = gw.metric("edgegw_telemetry_spans_exported_total");
    let t = Instant::now();
    let code = gw.stop();
    let took = t.elapsed();
    println!(
        "{what}: spans exported {exported}, dropped export_failed {failed}, queue_full {full}; \
         SIGTERM to exit took {took:?}"
    );
    assert_eq!(code, Some(0), "{what}: unclean exit");
    assert!(
        took < Duration::from_secs(20),
        "{what}: shutdown took {took:?}"
    );
}

#[test]
fn a_collector_killed_mid_run_costs_counted_spans_only() {
    let mq = Mosquitto::start();
    let mut collector = Rotel::start();
    let gw = Gw::start(&config(&mq, &collector.endpoint(), 1.0));
    let (stop, h) = feed(&mq);
    wait_until(Duration::from_secs(60), "spans exported", || {
        gw.metric("edgegw_telemetry_spans_exported_total") > 0.0
    });
    collector.kill();
    decisions_go_on_and_shutdown_is_bounded(gw, "collector killed");
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn a_blackholed_collector_costs_counted_spans_only() {
    // Accepts connections and never answers a byte.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h2 = held.clone();
    std::thread::spawn(move || {
        for s in hole.incoming().flatten() {
            h2.lock().unwrap().push(s);
        }
    });
    let mq = Mosquitto::start();
    let gw = Gw::start(&config(&mq, &format!("http://127.0.0.1:{port}"), 1.0));
    let (stop, h) = feed(&mq);
    decisions_go_on_and_shutdown_is_bounded(gw, "blackholed collector");
    assert!(
        !held.lock().unwrap().is_empty(),
        "the exporter never connected"
    );
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

//! The single-purpose modes: one fixed load measured under two or three settings, each on a
//! fresh gateway, and a comparison table.

use crate::common::{arg, free_port};
use crate::fleet::{connect, Fleet};
use crate::gateway::{Delta, Gateway};
use edgegw_chaos::harness::rotel::Rotel;
use rumqttc::QoS;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one fixed-load run gives.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    samples_s: f64,
    decisions_s: f64,
    /// Gateway CPU (user + system) over the measured window, % of one core.
    cpu_pct: f64,
    p50: f64,
    p99: f64,
    peak_rss: f64,
    spans_exported: f64,
    spans_dropped: f64,
    /// Feedback messages sent by the storm, and applied / dropped by the gateway.
    storm: (u64, f64, f64),
}

/// The same load three times on fresh gateways: tracing off, at `sample_ratio` 0.01 and at
/// 1.0, exporting to a real collector (rotel), then a comparison table.
pub fn tracing_overhead() {
    let collector = Rotel::counting_on(free_port());
    let mut rows = Vec::new();
    for ratio in [None, Some(0.01), Some(1.0)] {
        let tel = ratio.map(|r| (collector.endpoint(), r));
        rows.push((ratio, fixed(tel, false)));
    }
    let base = rows[0].1;
    println!("\ntracing overhead (same load, same run; CPU is the gateway process, % of one core)");
    println!("| tracing | samples/s | decisions/s | gateway CPU | CPU per 1k samples/s | latency p50 / p99 | RSS peak | spans exported | spans dropped |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (ratio, f) in &rows {
        let per_k = f.cpu_pct / (f.samples_s / 1000.0).max(1e-9);
        let base_per_k = base.cpu_pct / (base.samples_s / 1000.0).max(1e-9);
        println!(
            "| {} | {:.0} ({:+.1}%) | {:.0} | {:.1}% | {:.3}% ({:+.1}%) | ≤ {:.2} / ≤ {:.2} ms | {:.0} MiB | {:.0} | {:.0} |",
            ratio.map_or("off".to_string(), |r| format!("sample_ratio {r}")),
            f.samples_s,
            (f.samples_s / base.samples_s - 1.0) * 100.0,
            f.decisions_s,
            f.cpu_pct,
            per_k,
            (per_k / base_per_k - 1.0) * 100.0,
            f.p50 * 1e3,
            f.p99 * 1e3,
            f.peak_rss,
            f.spans_exported,
            f.spans_dropped
        );
    }
    println!("collector received {} spans in all", collector.received());
}

/// The same load without and with a feedback storm, then a comparison table.
pub fn feedback_storm() {
    let rows: Vec<(bool, Figures)> = [false, true].map(|s| (s, fixed(None, s))).into();
    println!("\nfeedback storm (same load, same run; latency from the gateway's histogram, bucket bounds)");
    println!("| feedback | samples/s | decisions/s | latency p50 / p99 | gateway CPU | feedback sent / applied / dropped |");
    println!("|---|---|---|---|---|---|");
    for (storm, f) in &rows {
        println!(
            "| {} | {:.0} | {:.0} | ≤ {:.2} / ≤ {:.2} ms | {:.1}% | {} / {:.0} / {:.0} |",
            if *storm { "storm" } else { "none" },
            f.samples_s,
            f.decisions_s,
            f.p50 * 1e3,
            f.p99 * 1e3,
            f.cpu_pct,
            f.storm.0,
            f.storm.1,
            f.storm.2
        );
    }
}

/// One run of the fixed load (`--rate`, default as fast as accepted) against a fresh
/// gateway, traced to `telemetry` (endpoint, ratio) if given, with a feedback storm if
/// `storm`. With `--outage 1` the uplink points at a dead port and the store's backlog is
/// printed every 10 s.
pub fn fixed(telemetry: Option<(String, f64)>, storm: bool) -> Figures {
    let seconds = arg("--seconds", 30);
    let outage = arg("--outage", 0) == 1;
    let mut opts = crate::gateway_opts(arg("--sensors", 1000) as usize);
    opts.uplink_port = outage.then(free_port);
    opts.extra = telemetry.as_ref().map_or(String::new(), |(e, r)| {
        format!("[telemetry]\notlp_endpoint = \"{e}\"\nsample_ratio = {r}\n")
    });
    let gw = Gateway::start(&opts);
    let idle_rss = gw.rss();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = Instant::now() + Duration::from_secs(seconds);
    let fo = crate::fleet_opts("sensors", arg("--rate", 0) as f64);
    rt.block_on(async {
        let fl = Fleet::start(gw.broker, &fo);
        let stormed = Arc::new(AtomicU64::new(0));
        let storm_task = storm.then(|| {
            let (client, _poller) = connect(gw.broker, "load-feedback-storm", || {});
            let sent = stormed.clone();
            tokio::spawn(async move {
                let mut i = 0u64;
                loop {
                    let p = format!(
                        "{{\"sensor\":\"s{}\",\"from\":1,\"to\":2,\"label\":\"normal\"}}",
                        i % 1000
                    );
                    if client
                        .publish("edgegw/gw-01/feedback/label", QoS::AtLeastOnce, false, p)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        });
        // Skip warm-up from the measurement: start counting once decisions flow.
        let warm = Instant::now();
        while gw.snapshot().get("edgegw_decisions_total") < 1.0 && Instant::now() < stop {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let s0 = gw.snapshot();
        let mut last_report = Instant::now();
        while Instant::now() < stop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if outage && last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                let st = gw.status();
                println!(
                    "  t={:>4.0}s RSS {:.1} MiB, store backlog {} messages, {:.1} MiB on disk, mode {}",
                    (Instant::now() - s0.at).as_secs_f64(),
                    gw.rss(),
                    ["alert", "summary", "raw"].iter().map(|c| st["store"]["backlog"][c].as_u64().unwrap_or(0)).sum::<u64>(),
                    st["store"]["bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
                    st["mode"]["state"]
                );
            }
        }
        let s1 = gw.snapshot();
        fl.stop();
        if let Some(t) = storm_task {
            t.abort();
        }
        let d = Delta { from: &s0, to: &s1 };
        let lat = "edgegw_decision_latency_seconds";
        let f = Figures {
            samples_s: d.rate("edgegw_samples_ingested_total"),
            decisions_s: d.rate("edgegw_decisions_total"),
            cpu_pct: d.cpu_pct(),
            p50: d.quantile(lat, 0.5),
            p99: d.quantile(lat, 0.99),
            peak_rss: gw.peak_rss(),
            spans_exported: d.diff("edgegw_telemetry_spans_exported_total"),
            spans_dropped: d.diff("edgegw_telemetry_spans_dropped_total{reason=\"queue_full\"}")
                + d.diff("edgegw_telemetry_spans_dropped_total{reason=\"export_failed\"}"),
            storm: (
                stormed.load(Ordering::Relaxed),
                s1.get("edgegw_feedback_total{kind=\"label\"}"),
                s1.get("edgegw_feedback_dropped_total{kind=\"label\"}"),
            ),
        };
        println!(
            "sensors {}, rate {} Hz/sensor, {} × {}, connections {}, measured {:.1} s (warm-up {:.1} s excluded)",
            fo.sensors,
            if fo.rate > 0.0 { fo.rate.to_string() } else { "max".into() },
            fo.format.name(),
            fo.format.per_message(fo.batch),
            fo.conns,
            d.secs(),
            (s0.at - warm).as_secs_f64()
        );
        println!(
            "  samples/s {:.0}, decisions/s {:.0}, latency p50 ≤ {:.3} ms, p99 ≤ {:.3} ms, CPU {:.1}% of a core, RSS idle {idle_rss:.1} MiB, peak {:.1} MiB",
            f.samples_s, f.decisions_s, f.p50 * 1e3, f.p99 * 1e3, f.cpu_pct, f.peak_rss
        );
        if let Some((_, r)) = &telemetry {
            println!(
                "  traced at {r}: spans exported {}, dropped {}",
                f.spans_exported, f.spans_dropped
            );
        }
        f
    })
}

//! The load benchmark: the release `edgegw` binary with its embedded broker, fed by N
//! simulated sensors over real MQTT connections as fast as the broker accepts (QoS 1
//! back-pressure), for a fixed time. Reports sustained samples/s and decisions/s end to end,
//! decision latency p50/p99 (from the gateway's own histogram), and the gateway's RSS.
//!
//! `cargo bench --bench load -- [--sensors 1000] [--seconds 30] [--batch 10] [--conns 4] [--rate HZ]`
//! (`--rate` samples per second per sensor; 0 = as fast as the gateway accepts). At a fixed
//! rate each sensor publishes at its own phase of the period, as unsynchronised devices do;
//! `--burst 1` publishes all sensors' batches at the start of each period instead (a
//! synchronised fleet: the gateway then sees 1 000 messages at once every period).
//! Latency and batch figures cover the measured window (warm-up excluded).
//! `--outage 1 --summary-ms 1000`: the uplink points at a dead port for the whole run, so every
//! message goes to the store; RSS is sampled every 10 s to show memory stays flat while the
//! backlog grows on disk.
//! `--tracing 1`: the same load three times on fresh gateways — tracing off, then exporting
//! to a real collector (rotel) at `sample_ratio` 0.01 and 1.0 — and a table of throughput and
//! gateway CPU against off (the cost of leaving tracing on in production).
//! `--feedback-storm 1`: the same load twice on fresh gateways — without, then with a storm of
//! `feedback/label` messages published as fast as one extra connection can — and a table of
//! throughput and decision latency p50/p99 for both (feedback must not delay decisions).
//! Figures go to docs/benchmarks.md. Not a test: nothing here passes or fails on speed.

#![allow(clippy::unwrap_used)] // tests and benches may unwrap: a failure here should stop the run loudly.

mod common;

use common::{arg, free_port, get, rss_mib};
use edgegw_chaos::harness::rotel::Rotel;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(k, _)| *k == series)
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// Cumulative bucket counts `(le, count)` of histogram `name` in an exposition, by bound.
fn hist_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{le=\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let v = l.rsplit_once(' ')?.1.parse::<f64>().ok()?;
            Some((
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                },
                v,
            ))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// Quantile of what histogram `name` observed between the expositions `before` and `after`
/// (the measured window, warm-up excluded): the upper bound of the bucket that reaches q.
fn hist_quantile(after: &str, before: &str, name: &str, q: f64) -> f64 {
    let earlier = hist_buckets(before, name);
    let buckets: Vec<(f64, f64)> = hist_buckets(after, name)
        .into_iter()
        .map(|(le, c)| {
            let c0 = earlier.iter().find(|(l, _)| *l == le).map_or(0.0, |b| b.1);
            (le, c - c0)
        })
        .collect();
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|b| b.0)
        .unwrap_or(f64::NAN)
}

/// What one measured run gives.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
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

fn main() {
    if arg("--tracing", 0) == 1 {
        return tracing_overhead();
    }
    if arg("--feedback-storm", 0) == 1 {
        return feedback_storm();
    }
    measure(None, false);
}

/// The same load three times on fresh gateways: tracing off, at `sample_ratio` 0.01 and at
/// 1.0, exporting to a real collector (rotel), then a comparison table.
fn tracing_overhead() {
    let collector = Rotel::counting_on(free_port());
    let mut rows = Vec::new();
    for ratio in [None, Some(0.01), Some(1.0)] {
        let tel = ratio.map(|r| (collector.endpoint(), r));
        rows.push((ratio, measure(tel, false)));
    }
    let base = rows[0].1;
    println!("\ntracing overhead (same load, same run; CPU is the gateway process, % of one core)");
    println!("| tracing | samples/s | decisions/s | gateway CPU | CPU per 1k samples/s | latency p50 / p99 | RSS peak | spans exported | spans dropped |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (ratio, f) in &rows {
        let per_k = f.cpu_pct / (f.samples_s / 1000.0).max(1e-9);
        let base_per_k = base.cpu_pct / (base.samples_s / 1000.0).max(1e-9);
        println!(
            "| {} | {:.0} ({:+.1}%) | {:.0} | {:.1}% | {:.3}% ({:+.1}%) | ≤ {} / ≤ {} ms | {:.0} MiB | {:.0} | {:.0} |",
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
fn feedback_storm() {
    let rows: Vec<(bool, Figures)> = [false, true].map(|s| (s, measure(None, s))).into();
    println!("\nfeedback storm (same load, same run; latency from the gateway's histogram, bucket bounds)");
    println!("| feedback | samples/s | decisions/s | latency p50 / p99 | gateway CPU | feedback sent / applied / dropped |");
    println!("|---|---|---|---|---|---|");
    for (storm, f) in &rows {
        println!(
            "| {} | {:.0} | {:.0} | ≤ {} / ≤ {} ms | {:.1}% | {} / {:.0} / {:.0} |",
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

/// CPU seconds (user + system) process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    // USER_HZ is 100 on every Linux architecture this runs on.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// One run of the load against a fresh gateway, traced to `telemetry` (endpoint, ratio) if
/// given.
fn measure(telemetry: Option<(String, f64)>, storm: bool) -> Figures {
    let sensors = arg("--sensors", 1000) as usize;
    let seconds = arg("--seconds", 30);
    let batch = arg("--batch", 10) as usize;
    let conns = arg("--conns", 4) as usize;
    let rate = arg("--rate", 0) as f64;
    let burst = arg("--burst", 0) == 1;
    let outage = arg("--outage", 0) == 1;
    let summary_ms = arg("--summary-ms", 60_000);
    let uplink = if outage { free_port() } else { 0 };
    let (broker, http) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("edgegw-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("load.toml");
    std::fs::write(
        &cfg,
        format!(
            "[broker]\nbind = \"127.0.0.1:{broker}\"\n[ingest]\nurl = \"mqtt://127.0.0.1:{broker}\"\nqos = 0\n\
             [uplink]\nurl = \"mqtt://127.0.0.1:{}\"\n[http]\nbind = \"127.0.0.1:{http}\"\n\
             [store]\npath = \"{}\"\n[sensors]\nwarmup_samples = 200\nmax_sensors = {}\n[summary]\nperiod = \"{summary_ms}ms\"\n{}",
            if outage { uplink } else { broker },
            dir.join("data").display(),
            sensors.max(10_000),
            telemetry.as_ref().map_or(String::new(), |(e, r)| format!(
                "[telemetry]\notlp_endpoint = \"{e}\"\nsample_ratio = {r}\n"
            ))
        ),
    )
    .unwrap();
    let mut gw = Command::new(env!("CARGO_BIN_EXE_edgegw"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("edgegw binary");
    let pid = gw.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get(http, "/readyz").starts_with("ready") {
        assert!(Instant::now() < deadline, "gateway not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let idle_rss = rss_mib(pid);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = Instant::now() + Duration::from_secs(seconds);
    let figures = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..conns {
            let mut o = MqttOptions::new(format!("load-{c}"), "127.0.0.1", broker);
            o.set_inflight(200);
            o.set_max_packet_size(1 << 20, 1 << 20);
            let (client, mut el) = AsyncClient::new(o, 1000);
            tokio::spawn(async move {
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::Disconnect)) | Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        _ => {}
                    }
                }
            });
            tasks.push(tokio::spawn(async move {
                let mut ts = 1_700_000_000_000i64;
                let mut k = 0u64;
                let period = Duration::from_secs_f64(batch as f64 / rate.max(1e-9));
                let mut tick = (rate > 0.0).then(|| tokio::time::interval(period));
                let mine = (c..sensors).step_by(conns).count().max(1) as u32;
                while Instant::now() < stop {
                    let round = match tick.as_mut() {
                        Some(t) => Some(t.tick().await),
                        None => None,
                    };
                    for (i, s) in (c..sensors).step_by(conns).enumerate() {
                        // Sensors are not synchronised: each publishes at its own phase of the
                        // period (unless `--burst 1`, all at the start of it).
                        if let Some(r) = round.filter(|_| !burst) {
                            tokio::time::sleep_until(r + period * i as u32 / mine).await;
                        }
                        let body: Vec<String> = (0..batch)
                            .map(|j| {
                                let x = (k + j as u64) as f64;
                                format!("[{},{:.4}]", ts + j as i64 * 100, 100.0 + s as f64 + (x * 0.3).sin() + 0.2 * ((x * 7.1 + s as f64).sin()))
                            })
                            .collect();
                        let p = format!("{{\"samples\":[{}]}}", body.join(","));
                        if client.publish(format!("sensors/s{s}/data"), QoS::AtLeastOnce, false, p).await.is_err() {
                            return;
                        }
                    }
                    ts += batch as i64 * 100;
                    k += batch as u64;
                }
            }));
        }
        let stormed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        if storm {
            let mut o = MqttOptions::new("load-feedback-storm", "127.0.0.1", broker);
            o.set_inflight(200);
            let (client, mut el) = AsyncClient::new(o, 1000);
            tokio::spawn(async move { while el.poll().await.is_ok() {} });
            let sent = stormed.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < stop {
                    let p = format!("{{\"sensor\":\"s{}\",\"from\":1,\"to\":2,\"label\":\"normal\"}}", i % 1000);
                    if client.publish("edgegw/gw-01/feedback/label", QoS::AtLeastOnce, false, p).await.is_err() {
                        return;
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    i += 1;
                }
            }));
        }
        // Skip warm-up from the measurement: start counting once decisions flow.
        let warm = Instant::now();
        while metric(&get(http, "/metrics"), "edgegw_decisions_total") < 1.0 && Instant::now() < stop {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let t0 = Instant::now();
        let m0 = get(http, "/metrics");
        let cpu0 = cpu_secs(pid);
        let mut peak_rss = 0f64;
        let mut last_report = Instant::now();
        while Instant::now() < stop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak_rss = peak_rss.max(rss_mib(pid));
            if outage && last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                let st: serde_json::Value = serde_json::from_str(&get(http, "/status")).unwrap_or_default();
                println!(
                    "  t={:>4.0}s RSS {:.1} MiB, store backlog {} messages, {:.1} MiB on disk, mode {}",
                    t0.elapsed().as_secs_f64(),
                    rss_mib(pid),
                    ["alert", "summary", "raw"].iter().map(|c| st["store"]["backlog"][c].as_u64().unwrap_or(0)).sum::<u64>(),
                    st["store"]["bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
                    st["mode"]["state"]
                );
            }
        }
        let m1 = get(http, "/metrics");
        let cpu = cpu_secs(pid) - cpu0;
        let dt = t0.elapsed().as_secs_f64();
        let d = |n: &str| metric(&m1, n) - metric(&m0, n);
        println!("sensors {sensors}, rate {} Hz/sensor, batch {batch}, connections {conns}, measured {dt:.1} s (warm-up {:.1} s excluded)", if rate > 0.0 { rate.to_string() } else { "max".into() }, (t0 - warm).as_secs_f64());
        println!("  samples/s        {:.0}", d("edgegw_samples_ingested_total") / dt);
        println!("  decisions/s      {:.0}", d("edgegw_decisions_total") / dt);
        let lat = |q| hist_quantile(&m1, &m0, "edgegw_decision_latency_seconds", q);
        println!("  decision latency p50 <= {:.6} s, p99 <= {:.6} s, p99.9 <= {:.6} s (histogram bucket bounds, measured window)",
            lat(0.5), lat(0.99), lat(0.999));
        let inf = |q| hist_quantile(&m1, &m0, "edgegw_inference_seconds", q);
        println!("  inference batch  p50 <= {:.6} s, p99 <= {:.6} s (histogram bucket bounds, measured window)", inf(0.5), inf(0.99));
        println!("  inference batch mean {:.1}", d("edgegw_inference_batch_size_sum") / d("edgegw_inference_batch_size_count").max(1.0));
        println!("  shed {} rejected(sensor_limit) {}", metric(&m1, "edgegw_inference_shed_total"), metric(&m1, "edgegw_ingest_rejected_total{reason=\"sensor_limit\"}"));
        println!("  sensors active   {}", metric(&m1, "edgegw_sensors_active"));
        println!("  RSS idle {idle_rss:.1} MiB, peak under load {peak_rss:.1} MiB");
        println!("  gateway CPU      {:.1}% of one core", cpu / dt * 100.0);
        if let Some((_, r)) = &telemetry {
            println!(
                "  traced at {r}: spans exported {}, dropped {}",
                d("edgegw_telemetry_spans_exported_total"),
                d("edgegw_telemetry_spans_dropped_total{reason=\"queue_full\"}")
                    + d("edgegw_telemetry_spans_dropped_total{reason=\"export_failed\"}")
            );
        }
        for t in tasks {
            t.abort();
        }
        Figures {
            samples_s: d("edgegw_samples_ingested_total") / dt,
            decisions_s: d("edgegw_decisions_total") / dt,
            cpu_pct: cpu / dt * 100.0,
            p50: hist_quantile(&m1, &m0, "edgegw_decision_latency_seconds", 0.5),
            p99: hist_quantile(&m1, &m0, "edgegw_decision_latency_seconds", 0.99),
            peak_rss,
            spans_exported: d("edgegw_telemetry_spans_exported_total"),
            spans_dropped: d("edgegw_telemetry_spans_dropped_total{reason=\"queue_full\"}")
                + d("edgegw_telemetry_spans_dropped_total{reason=\"export_failed\"}"),
            storm: (
                stormed.load(std::sync::atomic::Ordering::Relaxed),
                metric(&m1, "edgegw_feedback_total{kind=\"label\"}"),
                metric(&m1, "edgegw_feedback_dropped_total{kind=\"label\"}"),
            ),
        }
    });
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = gw.wait();
    let _ = std::fs::remove_dir_all(&dir);
    figures
}

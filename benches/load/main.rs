//! The load benchmark: the release `edgegw` binary with its embedded broker, driven over real
//! MQTT by N simulated sensors, and measured from the outside (`/metrics`, `/proc`).
//!
//! `cargo bench --bench load` runs the full report, in one run:
//! 1. **bare subscriber**: the fleet publishes as fast as the broker accepts to topics the
//!    gateway does not ingest, and a plain rumqttc subscriber that only counts receives them
//!    — the broker's own delivery rate on this machine, the ceiling for any consumer;
//! 2. **pipeline at max**: the same fleet on the ingested topics, as fast as accepted —
//!    sustained messages/s and samples/s, decisions/s, the ratio to the bare subscriber,
//!    gateway CPU and peak RSS;
//! 3. **pipeline at half** that sustained rate: decision latency p50/p99/p99.9 (sample
//!    received by ingest → decision made, the gateway's histogram over this phase only);
//! 4. **memory**: a fresh gateway per fleet size (1k, 10k, 100k sensors by default), each
//!    sensor sending one batch: RSS idle and with every sensor live;
//! 5. **store**: durable commits/s with group commit, and the backlog replay rate;
//! 6. **inference**: the shipped model scoring one vector at a time, in process.
//!
//! Options: `--sensors 1000 --seconds 20 --format binary|batch|json --batch 10 --conns 4
//! --sub-qos 1 --memory 1000,10000,100000 --json FILE` (`--memory 0` skips phase 4;
//! `--only memory` runs phase 4 alone, `--only pipeline` phases 1–3). At a fixed rate
//! (phase 3, and the modes' `--rate`) each sensor publishes at its own phase of the period,
//! as unsynchronised devices do; `--burst 1` publishes every sensor's message at the start of
//! the period instead. Every phase records the machine's busy and stolen CPU (`/proc/stat`):
//! a phase with steal measured a shared host. Output: a table, and the same figures as JSON
//! (stdout, and `--json FILE`).
//!
//! Single-purpose modes, each comparing one thing under a fixed load:
//! `--tracing 1` (tracing off / 0.01 / 1.0 to a real collector), `--feedback-storm 1`,
//! `--outage 1 --summary-ms 1000` (uplink dead for the whole run: RSS while the backlog grows);
//! they take `--rate HZ` (per sensor; 0 = as fast as accepted).
//! Figures go to docs/benchmarks.md. Not a test: nothing here passes or fails on speed.

#![allow(clippy::unwrap_used)] // tests and benches may unwrap: a failure here should stop the run loudly.

#[path = "../common/mod.rs"]
mod common;
mod fleet;
mod gateway;
mod modes;
mod report;

use common::{arg, arg_str};
use fleet::{BareSubscriber, Fleet, FleetOpts, Format};
use gateway::{Delta, Gateway, GatewayOpts, MachineCpu};
use report::{Memory, Report};
use std::time::{Duration, Instant};

fn main() {
    // As the gateway's own `main` does, before any thread exists (phase 6 scores in process).
    edgegw_actors::model::pin_kernel_threads();
    if arg("--tracing", 0) == 1 {
        return modes::tracing_overhead();
    }
    if arg("--feedback-storm", 0) == 1 {
        return modes::feedback_storm();
    }
    if arg("--outage", 0) == 1 {
        modes::fixed(None, false);
        return;
    }
    let report = match arg_str("--only").as_deref() {
        Some("memory") => memory_report(),
        Some("pipeline") => full_report(false),
        Some(other) => panic!("--only {other}: memory or pipeline"),
        None => full_report(true),
    };
    report.print_table();
    let json = serde_json::to_string_pretty(&report).unwrap();
    println!("{json}");
    if let Some(path) = arg_str("--json") {
        std::fs::write(&path, json + "\n").unwrap();
        println!("written to {path}");
    }
}

/// The load's shape from the command line.
fn fleet_opts(prefix: &'static str, rate: f64) -> FleetOpts {
    FleetOpts {
        sensors: arg("--sensors", 1000) as usize,
        first: 0,
        conns: arg("--conns", 4) as usize,
        format: Format::parse(&arg_str("--format").unwrap_or_else(|| "binary".into()))
            .expect("--format json|batch|binary"),
        batch: arg("--batch", 10) as usize,
        rate,
        prefix,
        messages_per_sensor: 0,
        burst: arg("--burst", 0) == 1,
    }
}

fn gateway_opts(max_sensors: usize) -> GatewayOpts {
    GatewayOpts {
        ingest_qos: arg("--sub-qos", 1) as u8,
        max_sensors,
        summary_ms: arg("--summary-ms", 60_000),
        uplink_port: None,
        extra: String::new(),
    }
}

/// Waits until `done` or `limit` passes; whether it happened.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done()
}

/// Phases 1–3, and with `all` phases 4–6 too.
fn full_report(all: bool) -> Report {
    let seconds = arg("--seconds", 20);
    let window = Duration::from_secs(seconds);
    let sensors = arg("--sensors", 1000) as usize;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut r = Report::new(
        &fleet_opts("sensors", 0.0),
        arg("--sub-qos", 1) as u8,
        seconds,
    );
    let gw = Gateway::start(&gateway_opts(sensors));
    r.baseline_rss_mib = gw.rss();
    rt.block_on(async {
        // 1. The broker alone: what a subscriber that does nothing can receive.
        let bare = BareSubscriber::start(gw.broker, "bare/+/data", arg("--sub-qos", 1) as u8);
        let fl = Fleet::start(gw.broker, &fleet_opts("bare", 0.0));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (n0, t0, m0) = (bare.count(), Instant::now(), MachineCpu::now());
        tokio::time::sleep(window).await;
        r.bare_msgs_s = (bare.count() - n0) as f64 / t0.elapsed().as_secs_f64();
        (r.bare_machine_busy_pct, r.bare_steal_pct) = m0.until(&MachineCpu::now());
        fl.stop();
        bare.stop();
        println!("bare subscriber: {:.0} messages/s", r.bare_msgs_s);
        tokio::time::sleep(Duration::from_secs(2)).await;

        // 2. The pipeline as fast as it sustains, once decisions flow.
        let fl = Fleet::start(gw.broker, &fleet_opts("sensors", 0.0));
        wait_for(Duration::from_secs(120), || {
            gw.snapshot().get("edgegw_decisions_total") > 0.0
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s0 = gw.snapshot();
        tokio::time::sleep(window).await;
        let s1 = gw.snapshot();
        fl.stop();
        let d = Delta { from: &s0, to: &s1 };
        r.set_max(&d, gw.peak_rss());
        println!(
            "pipeline at max: {:.0} messages/s, {:.0} samples/s ({:.2} of bare)",
            r.max.msgs_s, r.max.samples_s, r.ratio
        );

        // Let the queues drain before the fixed-rate phase: nothing read and unprocessed, and
        // no decision made between two readings 200 ms apart (the inference queue is empty).
        let last = std::cell::Cell::new(-1.0);
        wait_for(Duration::from_secs(60), || {
            let s = gw.snapshot();
            let decisions = s.get("edgegw_decisions_total");
            let idle = s.get("edgegw_ingest_inflight_bytes") == 0.0 && decisions == last.get();
            last.set(decisions);
            idle
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        // 3. Half that rate: the latency a gateway with headroom gives.
        let per_sensor = r.max.samples_s / 2.0 / sensors as f64;
        let fl = Fleet::start(gw.broker, &fleet_opts("sensors", per_sensor));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let s0 = gw.snapshot();
        tokio::time::sleep(window).await;
        let s1 = gw.snapshot();
        fl.stop();
        r.set_half(&Delta { from: &s0, to: &s1 }, per_sensor);
        println!(
            "pipeline at half: {:.0} samples/s, latency p50 {:.3} / p99 {:.3} / p99.9 {:.3} ms",
            r.half.samples_s, r.half.p50_ms, r.half.p99_ms, r.half.p999_ms
        );
    });
    drop(gw);

    if all {
        // 4. Memory by fleet size.
        r.memory = memory_sizes(&rt);
        // 5. The store, in process and replayed through the gateway; 6. inference, in process.
        r.store = Some(report::store_figures());
        r.inference_batch1 = report::inference_batch1();
    }
    r
}

/// Phase 4 alone (`--only memory`).
fn memory_report() -> Report {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut r = Report::new(&fleet_opts("sensors", 0.0), arg("--sub-qos", 1) as u8, 0);
    r.memory = memory_sizes(&rt);
    r
}

/// Phase 4: RSS at each fleet size of `--memory` (default 1k, 10k, 100k).
fn memory_sizes(rt: &tokio::runtime::Runtime) -> Vec<Memory> {
    let sizes = arg_str("--memory").unwrap_or_else(|| "1000,10000,100000".into());
    let mut out = Vec::new();
    for n in sizes
        .split(',')
        .filter_map(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        let m = memory(rt, n);
        println!(
            "memory at {n} sensors: idle {:.1} MiB, live {:.1} MiB ({} active), {:.1} MB per 1k",
            m.idle_rss_mib,
            m.live_rss_mib,
            m.active,
            m.per_1k_mb()
        );
        out.push(m);
    }
    out
}

/// RSS of a fresh gateway idle, then with `n` live sensors (one 128-sample binary batch each).
fn memory(rt: &tokio::runtime::Runtime, n: usize) -> Memory {
    let gw = Gateway::start(&gateway_opts(n));
    std::thread::sleep(Duration::from_secs(2));
    let idle = gw.rss();
    let per = 128;
    // In waves of at most 5 000 sensors, each published once the previous one is live: the
    // embedded broker keeps a bounded log per subscription and drops what a subscriber has
    // not read once it wraps, and 100 000 batches at once would outrun the gateway's reading.
    let wave = 5000;
    let t = Instant::now();
    let (active, ok) = rt.block_on(async {
        let mut ok = true;
        for first in (0..n).step_by(wave) {
            let opts = FleetOpts {
                sensors: wave.min(n - first),
                first,
                conns: 4,
                format: Format::Binary,
                batch: per,
                rate: 0.0,
                prefix: "sensors",
                messages_per_sensor: 1,
                burst: false,
            };
            let live = first + opts.sensors;
            let fl = Fleet::start(gw.broker, &opts);
            ok = wait_for(Duration::from_secs(120), || {
                let s = gw.snapshot();
                s.get("edgegw_sensors_active") >= live as f64
                    && s.get("edgegw_samples_ingested_total") >= (live * per) as f64
            })
            .await;
            fl.stop();
            if !ok {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        (gw.snapshot().get("edgegw_sensors_active"), ok)
    });
    if !ok {
        println!("  warning: a wave of sensors did not go live within 120 s");
    }
    Memory {
        sensors: n,
        active: active as usize,
        idle_rss_mib: idle,
        live_rss_mib: gw.rss(),
        peak_rss_mib: gw.peak_rss(),
        fill_s: t.elapsed().as_secs_f64(),
    }
}

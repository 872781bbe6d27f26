//! `edgegw demo`: the embedded broker, a simulated sensor fleet publishing over real MQTT, the
//! gateway, a simulated cloud subscriber, a simulated uplink outage, and a live terminal view.
//!
//! Design constraints: everything a user sees here goes through the real paths — samples are
//! MQTT publishes to the embedded broker, decisions reach the "cloud" subscriber through the
//! uplink, and the outage is a real cut TCP link ([`proxy::Link`]) between the uplink and the
//! broker. Ports are picked free, so the demo runs next to anything.

mod proxy;

use crate::config;
use edgegw_actors::sim::{Fleet, FleetConfig};
use edgegw_actors::status::now_ms;
use edgegw_actors::telemetry::{self, Telemetry};
use edgegw_actors::Gateway;
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::{HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `edgegw demo` options.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulated sensors.
    #[arg(long, default_value_t = 50)]
    sensors: usize,
    /// How long to run, seconds.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Samples per second per sensor.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seed of the fleet (profiles, noise, anomalies).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// When the simulated uplink outage starts, seconds (default: at half time).
    #[arg(long)]
    outage_at: Option<u64>,
    /// How long the outage lasts, seconds (0 = none).
    #[arg(long, default_value_t = 15)]
    outage_for: u64,
}

/// What the simulated cloud has received.
#[derive(Default)]
struct Cloud {
    alerts: u64,
    summaries: u64,
    ids: HashSet<String>,
    duplicates: u64,
    recent: VecDeque<String>,
    status: String,
    /// Every alert received: (sensor, window end ms), for the closing report.
    marks: Vec<(String, i64)>,
}

fn free_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

pub async fn run(args: DemoArgs) -> ExitCode {
    match demo(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let mut cfg = config::load(None, std::env::vars())?;
    let broker = free_addr()?;
    let http = free_addr()?;
    let link = proxy::Link::start(broker).await?;
    cfg.broker.bind = broker;
    cfg.ingest.url = format!("mqtt://{broker}");
    cfg.uplink.url = format!("mqtt://{}", link.addr());
    cfg.http.bind = http;
    let store_dir = std::env::temp_dir().join(format!("edgegw-demo-{}", std::process::id()));
    cfg.store.path = store_dir.clone();
    cfg.summary.period = edgegw_actors::duration::Dur::secs(10);
    cfg.uplink.reconnect_max = edgegw_actors::duration::Dur::secs(2);
    let gw_id = cfg.gateway.id.clone();
    // Traces and metrics when EDGEGW_TELEMETRY__OTLP_ENDPOINT is set; started off the async workers.
    let tcfg = cfg.telemetry.clone();
    let id = gw_id.clone();
    let tel = tokio::task::spawn_blocking(move || Telemetry::start(&tcfg, &id)).await??;
    let gw = Gateway::start_traced(cfg, tel.as_ref().map(Telemetry::traces)).await?;
    let ctx = gw.ctx.clone();
    if let Some(t) = &tel {
        t.export_metrics(ctx.metrics.clone());
    }

    let cloud = Arc::new(Mutex::new(Cloud::default()));
    let _cloud_task = subscribe_cloud(broker, &gw_id, cloud.clone()).await?;
    let fleet_cfg = FleetConfig {
        sensors: args.sensors.max(1),
        rate_hz: args.rate,
        seed: args.seed,
        anomaly_every_s: Some((400.0 / args.sensors.max(1) as f64).clamp(3.0, 30.0)),
        jitter_frac: 0.1,
    };
    let mut fleet = Fleet::new(fleet_cfg, now_ms());
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new("edgegw-demo-fleet", broker.ip().to_string(), broker.port()),
        10_000,
    );
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    let start = Instant::now();
    let duration = Duration::from_secs(args.duration);
    let outage_at = Duration::from_secs(args.outage_at.unwrap_or(args.duration / 2));
    let outage_end = outage_at + Duration::from_secs(args.outage_for);
    let tty = std::io::stdout().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut out = Vec::new();
    let mut last_view = Instant::now() - Duration::from_secs(10);
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    eprintln!(
        "edgegw demo: {} sensors at {} Hz for {} s; broker {broker}, http http://{http}/status",
        args.sensors, args.rate, args.duration
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let el = start.elapsed();
        if el >= duration {
            break;
        }
        if args.outage_for > 0 {
            if el >= outage_at && el < outage_end && !link.is_cut() {
                link.cut();
            } else if el >= outage_end && link.is_cut() {
                link.restore();
            }
        }
        out.clear();
        fleet.tick(now_ms(), &mut out);
        publish(&client, &fleet, &out);
        if last_view.elapsed() >= Duration::from_secs(if tty { 1 } else { 5 }) {
            last_view = Instant::now();
            view(tty, &ctx, &cloud.lock(), &fleet, el, link.is_cut());
        }
    }
    link.restore();
    eprintln!("\nStopping: draining decisions and the uplink backlog…");
    gw.shutdown(Duration::from_secs(15)).await;
    if let Some(t) = tel {
        // Bounded, and on a blocking thread: a hung exporter never holds a runtime worker.
        let _ = tokio::task::spawn_blocking(move || t.shutdown(telemetry::SHUTDOWN_TIMEOUT)).await;
    }
    let c = cloud.lock();
    let m = &ctx.metrics;
    println!(
        "\nedgegw demo finished after {:.0} s",
        start.elapsed().as_secs_f64()
    );
    println!("  samples ingested   {}", m.samples_ingested.get());
    println!("  decisions          {}", m.decisions.get());
    println!(
        "  alerts raised      {} (suppressed by cooldown {})",
        m.alerts.get(),
        m.alerts_suppressed.get()
    );
    let window_ms = (ctx.cfg.sensors.window as f64 * 1000.0 / args.rate.max(0.001)) as i64;
    let r = score_injected(&fleet, &c.marks, window_ms);
    println!("  anomalies injected {}", fleet.injected().len());
    println!(
        "  detected           {} of {} ended before the stop{}",
        r.detected,
        r.scored,
        r.median_delay_ms.map_or(String::new(), |d| format!(
            ", median delay {:.1} s after onset",
            d as f64 / 1000.0
        ))
    );
    println!(
        "  false alerts       {} of {} (no injected anomaly on that sensor within a window)",
        r.false_alerts,
        c.marks.len()
    );
    println!(
        "  cloud received     {} alerts, {} summaries, {} duplicates (deduplicated by id)",
        c.alerts, c.summaries, c.duplicates
    );
    println!("  restarts           {}", restarts(&ctx));
    let _ = std::fs::remove_dir_all(&store_dir);
    Ok(())
}

/// How the alerts received matched the anomalies the fleet injected.
struct InjectedReport {
    /// Injected anomalies whose span (plus a window) ended before the last alert could come.
    scored: usize,
    /// Of those, the ones with an alert of their sensor inside the span plus one window.
    detected: usize,
    /// Median of (first such alert's window end − anomaly start).
    median_delay_ms: Option<i64>,
    /// Alerts matching no injected anomaly of their sensor.
    false_alerts: usize,
}

/// An alert detects an anomaly of its sensor when its window ends between the anomaly's start
/// and one window (`window_ms`) after its end: a window overlapping the span.
fn score_injected(fleet: &Fleet, marks: &[(String, i64)], window_ms: i64) -> InjectedReport {
    let last = marks.iter().map(|(_, t)| *t).max().unwrap_or(i64::MIN);
    let hits = |i: usize, a: &edgegw_actors::sim::Anomaly, t: i64, s: &str| {
        s == fleet.id(i) && t >= a.start_ms && t <= a.start_ms + a.duration_ms + window_ms
    };
    let mut delays = Vec::new();
    let mut scored = 0;
    for (i, a) in fleet.injected() {
        if a.start_ms + a.duration_ms + window_ms > last {
            continue;
        }
        scored += 1;
        if let Some(first) = marks
            .iter()
            .filter(|(s, t)| hits(*i, a, *t, s))
            .map(|(_, t)| *t)
            .min()
        {
            delays.push(first - a.start_ms);
        }
    }
    delays.sort_unstable();
    let false_alerts = marks
        .iter()
        .filter(|(s, t)| !fleet.injected().iter().any(|(i, a)| hits(*i, a, *t, s)))
        .count();
    InjectedReport {
        scored,
        detected: delays.len(),
        median_delay_ms: delays.get(delays.len() / 2).copied(),
        false_alerts,
    }
}

fn publish(client: &AsyncClient, fleet: &Fleet, out: &[(usize, i64, f64)]) {
    let mut by_sensor: std::collections::BTreeMap<usize, Vec<(i64, f64)>> = Default::default();
    for (i, ts, v) in out {
        by_sensor.entry(*i).or_default().push((*ts, *v));
    }
    for (i, samples) in by_sensor {
        let payload = if let [(ts, v)] = samples.as_slice() {
            format!("{{\"ts\":{ts},\"v\":{v}}}")
        } else {
            let body: Vec<String> = samples.iter().map(|(t, v)| format!("[{t},{v}]")).collect();
            format!("{{\"samples\":[{}]}}", body.join(","))
        };
        // QoS 0 like most field sensors; a full local queue drops the sample, as a sensor would.
        let _ = client.try_publish(
            format!("sensors/{}/data", fleet.id(i)),
            QoS::AtMostOnce,
            false,
            payload,
        );
    }
}

async fn subscribe_cloud(
    broker: SocketAddr,
    gw: &str,
    cloud: Arc<Mutex<Cloud>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new("edgegw-demo-cloud", broker.ip().to_string(), broker.port()),
        100,
    );
    client
        .subscribe(format!("edgegw/{gw}/#"), QoS::AtLeastOnce)
        .await?;
    Ok(tokio::spawn(async move {
        let _client = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let mut c = cloud.lock();
                    if p.topic.ends_with("/status") {
                        c.status = String::from_utf8_lossy(&p.payload).into_owned();
                        continue;
                    }
                    let v: serde_json::Value =
                        serde_json::from_slice(&p.payload).unwrap_or_default();
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    if !c.ids.insert(id) {
                        c.duplicates += 1;
                        continue;
                    }
                    if p.topic.contains("/alerts/") {
                        c.alerts += 1;
                        if let (Some(sensor), Some(end)) =
                            (v["sensor"].as_str(), v["window"]["end"].as_i64())
                        {
                            c.marks.push((sensor.to_string(), end));
                        }
                        let line = format!(
                            "{} score {:.3} > {:.3} (seq {})",
                            v["sensor"].as_str().unwrap_or("?"),
                            v["score"].as_f64().unwrap_or(0.0),
                            v["threshold"].as_f64().unwrap_or(0.0),
                            v["seq"]
                        );
                        c.recent.push_back(line);
                        if c.recent.len() > 6 {
                            c.recent.pop_front();
                        }
                    } else if p.topic.contains("/summaries/") {
                        c.summaries += 1;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }))
}

fn restarts(ctx: &edgegw_actors::ctx::Ctx) -> u64 {
    edgegw_actors::metrics::RESTART_STAGES
        .iter()
        .map(|s| ctx.metrics.restarts(s))
        .sum()
}

fn view(
    tty: bool,
    ctx: &edgegw_actors::ctx::Ctx,
    cloud: &Cloud,
    fleet: &Fleet,
    el: Duration,
    cut: bool,
) {
    let m = &ctx.metrics;
    // The same figures /status shows.
    let f = ctx.rates.figures();
    let p99 = f
        .decision_latency_p99_ms
        .map_or_else(|| "-".to_string(), |ms| format!("{ms:.2} ms"));
    let (mode, _, reasons) = ctx.status.mode();
    let backlog: i64 = ["alert", "summary", "raw"]
        .iter()
        .map(|c| {
            m.store_backlog
                .get_or_create(&edgegw_actors::metrics::ClassLabel { class: c })
                .get()
        })
        .sum();
    let uplink = if m.uplink_connected.get() == 1 {
        "connected"
    } else {
        "DOWN"
    };
    if !tty {
        println!(
            "t={:>4.0}s samples/s={:>7.0} decisions/s={:>6.0} p99={p99} alerts={} uplink={uplink} backlog={backlog} cloud_alerts={} restarts={} mode={}",
            el.as_secs_f64(), f.samples_per_sec, f.decisions_per_sec, m.alerts.get(), cloud.alerts, restarts(ctx), mode.as_str()
        );
        return;
    }
    let mut s = String::from("\x1b[2J\x1b[H");
    s += &format!(
        "edgegw demo — {:>4.0} s    mode: {}  {}\n\n",
        el.as_secs_f64(),
        mode.as_str().to_uppercase(),
        reasons.join("; ")
    );
    s += &format!(
        "  samples/s        {:>10.0}      sensors active  {}\n",
        f.samples_per_sec,
        m.sensors_active.get()
    );
    s += &format!(
        "  decisions/s      {:>10.0}      decisions       {}\n",
        f.decisions_per_sec,
        m.decisions.get()
    );
    s += &format!(
        "  p99 decision     {:>10}      alerts/min      {:.1}\n",
        p99, f.alerts_per_min
    );
    s += &format!(
        "  alerts raised    {:>10}      suppressed      {}\n",
        m.alerts.get(),
        m.alerts_suppressed.get()
    );
    s += &format!(
        "  uplink           {:>10}      backlog         {}{}\n",
        uplink,
        backlog,
        if cut {
            "   (simulated outage: link cut)"
        } else {
            ""
        }
    );
    s += &format!(
        "  cloud received   {:>10} alerts, {} summaries, {} duplicates\n",
        cloud.alerts, cloud.summaries, cloud.duplicates
    );
    s += &format!(
        "  restarts         {:>10}      rejected        {}\n",
        restarts(ctx),
        m.ingest_rejected
            .get_or_create(&edgegw_actors::metrics::ReasonLabel {
                reason: "malformed_json"
            })
            .get()
    );
    s += &format!(
        "  anomalies injected {:>8}\n\n  latest alerts upstream:\n",
        fleet.injected().len()
    );
    for a in &cloud.recent {
        s += &format!("    {a}\n");
    }
    s += "\n  (Ctrl-C to stop)\n";
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

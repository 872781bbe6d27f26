//! The load benchmark's figures, the targets they are read against, and their output as a
//! table and as JSON.

use crate::fleet::FleetOpts;
use crate::gateway::Delta;
use edgegw_actors::model::{self, Scorer};
use serde::Serialize;
use std::time::Instant;

/// The targets (goals, not tests).
pub const RATIO_TARGET: f64 = 0.8;
pub const P99_TARGET_MS: f64 = 2.0;
pub const PER_1K_TARGET_MB: f64 = 20.0;
pub const BASELINE_TARGET_MB: f64 = 30.0;
pub const INFERENCE_TARGET_US: f64 = 50.0;
pub const COMMITS_TARGET: f64 = 50_000.0;
pub const REPLAY_TARGET_FACTOR: f64 = 5.0;

const MIB_PER_MB: f64 = 1e6 / 1048576.0;

/// A figure against its target, for the table.
fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

/// One measured phase of the pipeline.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Phase {
    pub msgs_s: f64,
    pub samples_s: f64,
    pub decisions_s: f64,
    pub cpu_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub inference_batch_mean: f64,
    pub shed: f64,
    /// Uplink messages (alerts, summaries, raw windows) handed out per second.
    pub uplink_msgs_s: f64,
    /// The whole machine (gateway, broker, load generator): busy % of all cores' time, and
    /// % stolen by the hypervisor — a phase with steal measured a shared host, not the code.
    pub machine_busy_pct: f64,
    pub steal_pct: f64,
}

/// RSS at one fleet size.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub sensors: usize,
    pub active: usize,
    pub idle_rss_mib: f64,
    pub live_rss_mib: f64,
    pub peak_rss_mib: f64,
    pub fill_s: f64,
}

impl Memory {
    /// MB (10^6 bytes) per 1 000 live sensors above the idle gateway. Divided by the sensors
    /// that went live, not the fleet size: when not all of them did (a wave waits 120 s at
    /// most), dividing by the fleet would understate the cost per sensor.
    pub fn per_1k_mb(&self) -> f64 {
        let live = self.active.max(1) as f64;
        (self.live_rss_mib - self.idle_rss_mib) / MIB_PER_MB / (live / 1000.0)
    }
}

/// Store figures (`common::store_rate`, the same functions the store benchmark runs).
#[derive(Debug, Clone, Serialize)]
pub struct Store {
    /// Durable commits/s as the uplink commits: groups of `group` records, one sled batch
    /// each, while a flush at a time runs beside them; the clock stops when the last record
    /// is durable.
    pub commits_s: f64,
    pub group: u64,
    /// Durable commits/s with one commit (one sled batch) per record, flushed every `group`.
    pub commits_per_record_s: f64,
    /// Backlog messages replayed per second with pacing lifted, end to end: the gateway
    /// publishing its store to a broker, each record deleted on its PUBACK.
    pub replay_msgs_s: f64,
    pub replay_messages: u64,
    /// The store's read path alone (`next_in` + `ack` per record, in process).
    pub store_read_s: f64,
}

/// Inference in process, the shipped f32 model, one vector per call.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Inference {
    pub model: String,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Everything one run of the full report measures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: String,
    pub sensors: usize,
    pub format: &'static str,
    pub batch: usize,
    pub conns: usize,
    pub sub_qos: u8,
    pub seconds: u64,
    pub baseline_rss_mib: f64,
    pub bare_msgs_s: f64,
    /// The machine during the bare-subscriber phase: busy %, steal % (see [`Phase`]).
    pub bare_machine_busy_pct: f64,
    pub bare_steal_pct: f64,
    pub max: Phase,
    pub ratio: f64,
    pub max_peak_rss_mib: f64,
    pub half_rate_per_sensor_hz: f64,
    pub half: Phase,
    pub memory: Vec<Memory>,
    pub store: Option<Store>,
    pub inference_batch1: Inference,
}

fn phase(d: &Delta) -> Phase {
    let lat = "edgegw_decision_latency_seconds";
    let (machine_busy_pct, steal_pct) = d.machine_pct();
    Phase {
        machine_busy_pct,
        steal_pct,
        msgs_s: d.rate("edgegw_ingest_messages_total"),
        samples_s: d.rate("edgegw_samples_ingested_total"),
        decisions_s: d.rate("edgegw_decisions_total"),
        cpu_pct: d.cpu_pct(),
        p50_ms: d.quantile(lat, 0.5) * 1e3,
        p99_ms: d.quantile(lat, 0.99) * 1e3,
        p999_ms: d.quantile(lat, 0.999) * 1e3,
        inference_batch_mean: d.diff("edgegw_inference_batch_size_sum")
            / d.diff("edgegw_inference_batch_size_count").max(1.0),
        shed: d.diff("edgegw_inference_shed_total"),
        uplink_msgs_s: ["alert", "summary", "raw"]
            .iter()
            .map(|c| d.rate(&format!("edgegw_uplink_messages_total{{class=\"{c}\"}}")))
            .sum(),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}, {}", std::env::consts::ARCH)
}

impl Report {
    pub fn new(f: &FleetOpts, sub_qos: u8, seconds: u64) -> Self {
        Report {
            machine: machine(),
            sensors: f.sensors,
            format: f.format.name(),
            batch: f.format.per_message(f.batch),
            conns: f.conns,
            sub_qos,
            seconds,
            baseline_rss_mib: 0.0,
            bare_msgs_s: 0.0,
            bare_machine_busy_pct: 0.0,
            bare_steal_pct: 0.0,
            max: Phase::default(),
            ratio: 0.0,
            max_peak_rss_mib: 0.0,
            half_rate_per_sensor_hz: 0.0,
            half: Phase::default(),
            memory: Vec::new(),
            store: None,
            inference_batch1: Inference::default(),
        }
    }

    pub fn set_max(&mut self, d: &Delta, peak_rss: f64) {
        self.max = phase(d);
        self.ratio = self.max.msgs_s / self.bare_msgs_s.max(1e-9);
        self.max_peak_rss_mib = peak_rss;
    }

    pub fn set_half(&mut self, d: &Delta, per_sensor_hz: f64) {
        self.half = phase(d);
        self.half_rate_per_sensor_hz = per_sensor_hz;
    }

    /// The report as a Markdown table, each figure beside its target.
    pub fn print_table(&self) {
        println!(
            "\nload report — {} sensors, {} payloads of {} samples, {} connections, subscriber QoS {}, {} s per phase; {}",
            self.sensors, self.format, self.batch, self.conns, self.sub_qos, self.seconds, self.machine
        );
        println!("| figure | measured | target | |\n|---|---|---|---|");
        // `--only memory` measures no pipeline phase.
        if self.seconds > 0 {
            self.print_pipeline();
        }
        for mem in &self.memory {
            let base_mb = mem.idle_rss_mib / MIB_PER_MB;
            println!(
                "| RSS, {} sensors ({} live) | {:.0} MiB ({:.1} MB idle + {:.1} MB per 1k) | ≤ {BASELINE_TARGET_MB} MB + ≤ {PER_1K_TARGET_MB} MB per 1k | {} |",
                mem.sensors,
                mem.active,
                mem.live_rss_mib,
                base_mb,
                mem.per_1k_mb(),
                verdict(base_mb <= BASELINE_TARGET_MB && mem.per_1k_mb() <= PER_1K_TARGET_MB)
            );
        }
        if let Some(s) = &self.store {
            println!(
                "| durable commits, groups of {} as the uplink commits (one batch per record) | {:.0} /s ({:.0} /s) | ≥ {COMMITS_TARGET} /s | {} |",
                s.group,
                s.commits_s,
                s.commits_per_record_s,
                verdict(s.commits_s >= COMMITS_TARGET)
            );
            let ingest = self.max.msgs_s;
            println!(
                "| store replay of {} messages through the gateway, pacing lifted (store read path alone) | {:.0} msg/s ({:.0} /s) = {:.1} × the pipeline's ingest at max ({:.0} msg/s) | ≥ {REPLAY_TARGET_FACTOR} × | {} |",
                s.replay_messages,
                s.replay_msgs_s,
                s.store_read_s,
                s.replay_msgs_s / ingest.max(1e-9),
                ingest,
                verdict(s.replay_msgs_s >= REPLAY_TARGET_FACTOR * ingest)
            );
        }
        let i = &self.inference_batch1;
        if !i.model.is_empty() {
            println!(
                "| inference, batch 1 ({}) p50 / p99 | {:.1} / {:.1} µs | p50 ≤ {INFERENCE_TARGET_US} µs | {} |",
                i.model,
                i.p50_us,
                i.p99_us,
                verdict(i.p50_us <= INFERENCE_TARGET_US)
            );
        }
    }

    /// The table rows of phases 1–3.
    fn print_pipeline(&self) {
        println!(
            "| bare subscriber, same broker | {:.0} msg/s ({:.0} samples/s) | | |",
            self.bare_msgs_s,
            self.bare_msgs_s * self.batch as f64
        );
        println!(
            "| machine busy / stolen: bare, max, half | {:.0} / {:.1} %, {:.0} / {:.1} %, {:.0} / {:.1} % | steal ≈ 0 | {} |",
            self.bare_machine_busy_pct,
            self.bare_steal_pct,
            self.max.machine_busy_pct,
            self.max.steal_pct,
            self.half.machine_busy_pct,
            self.half.steal_pct,
            if self.bare_steal_pct.max(self.max.steal_pct).max(self.half.steal_pct) < 2.0 {
                "quiet host"
            } else {
                "shared host: rerun"
            }
        );
        let m = &self.max;
        println!(
            "| pipeline at max | {:.0} msg/s, {:.0} samples/s, {:.0} decisions/s | | |",
            m.msgs_s, m.samples_s, m.decisions_s
        );
        println!(
            "| pipeline / bare subscriber | {:.2} | ≥ {RATIO_TARGET} | {} |",
            self.ratio,
            verdict(self.ratio >= RATIO_TARGET)
        );
        println!(
            "| at max: gateway CPU, peak RSS, latency p50 / p99 | {:.0} % of a core, {:.0} MiB, ≤ {:.2} / ≤ {:.2} ms | | |",
            m.cpu_pct, self.max_peak_rss_mib, m.p50_ms, m.p99_ms
        );
        let h = &self.half;
        println!(
            "| at half ({:.0} samples/s): latency p50 / p99 / p99.9 | ≤ {:.3} / ≤ {:.3} / ≤ {:.3} ms | p99 ≤ {P99_TARGET_MS} ms | {} |",
            h.samples_s,
            h.p50_ms,
            h.p99_ms,
            h.p999_ms,
            verdict(h.p99_ms <= P99_TARGET_MS)
        );
        println!(
            "| at half: gateway CPU, inference batch mean | {:.0} % of a core, {:.1} | | |",
            h.cpu_pct, h.inference_batch_mean
        );
    }
}

/// The shipped model scoring one vector per call, 5 000 calls after 500 of warm-up.
pub fn inference_batch1() -> Inference {
    let Ok(m) = model::load_builtin() else {
        return Inference::default();
    };
    let n = m.manifest.features.len();
    let scorer = Scorer::Model(std::sync::Arc::new(m));
    let mut times: Vec<f64> = (0..5500)
        .map(|i| {
            let x = vec![(0..n)
                .map(|j| ((i * n + j) as f32 * 0.37).sin())
                .collect::<Vec<f32>>()];
            let t = Instant::now();
            let _ = std::hint::black_box(scorer.score_batch(&x));
            t.elapsed().as_secs_f64() * 1e6
        })
        .skip(500)
        .collect();
    times.sort_by(f64::total_cmp);
    Inference {
        model: scorer.name().to_string(),
        p50_us: times[times.len() / 2],
        p99_us: times[times.len() * 99 / 100],
    }
}

/// Durable commit rate and replay rate of the store.
pub fn store_figures() -> Store {
    use crate::common::store_rate::{self, Commit};
    let dir = std::env::temp_dir().join(format!("edgegw-load-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (group, records, replay) = (256, 100_000, 100_000);
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_edgegw"));
    let r = store_rate::replay_per_second(bin, &dir, replay);
    let s = Store {
        commits_s: store_rate::durable_commits_per_second(&dir, records, group, Commit::Pipelined),
        group,
        commits_per_record_s: store_rate::durable_commits_per_second(
            &dir,
            records,
            group,
            Commit::PerRecord,
        ),
        replay_msgs_s: r.per_second(),
        replay_messages: r.messages,
        store_read_s: store_rate::store_replay_per_second(&dir, replay),
    };
    let _ = std::fs::remove_dir_all(&dir);
    s
}

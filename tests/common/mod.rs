//! The black-box harness of the root package's tests: the chaos crate's harness
//! (`edgegw_chaos::harness`), aimed at this package's own `edgegw` binary.
//!
//! Design constraints: the root tests must never start a nested cargo build, so every way to
//! start a gateway here first points the harness at `CARGO_BIN_EXE_edgegw` (which cargo built
//! for this very test run, with this run's features).

#![allow(dead_code, unused_imports)] // each test binary uses a different part of the harness

pub use edgegw_chaos::harness::{
    feeder, feeder_counted, free_port, json_lines, poll_until, publish_once, wait_until, write,
    Mosquitto, Pub, Sub,
};
use std::path::{Path, PathBuf};

/// This package's `edgegw` binary (and the harness's, from now on).
pub fn bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_edgegw"));
    edgegw_chaos::harness::set_gateway_bin(&p);
    p
}

/// A command running [`bin`] without the harness's own `EDGEGW_*` variables (the gateway
/// would read them as config overrides).
pub fn bin_command() -> std::process::Command {
    edgegw_chaos::harness::gateway_command(&bin())
}

/// The harness's gateway, started from [`bin`].
pub struct Gw(edgegw_chaos::harness::Gw);

impl Gw {
    /// See `edgegw_chaos::harness::Gw::start`.
    pub fn start(toml: &str) -> Self {
        bin();
        Gw(edgegw_chaos::harness::Gw::start(toml))
    }

    /// See `edgegw_chaos::harness::Gw::start_with_args_in`.
    pub fn start_with_args_in(dir: &Path, toml: &str, args: &[&str]) -> Self {
        bin();
        Gw(edgegw_chaos::harness::Gw::start_with_args_in(
            dir, toml, args,
        ))
    }

    /// See `edgegw_chaos::harness::Gw::start_with_http_in`.
    pub fn start_with_http_in(dir: &Path, toml: &str, http_keys: &str) -> Self {
        bin();
        Gw(edgegw_chaos::harness::Gw::start_with_http_in(
            dir, toml, http_keys,
        ))
    }

    /// See `edgegw_chaos::harness::Gw::start_in`.
    pub fn start_in(dir: &Path, toml: &str) -> Self {
        bin();
        Gw(edgegw_chaos::harness::Gw::start_in(dir, toml))
    }

    /// SIGKILL.
    pub fn kill9(self) {
        self.0.kill9();
    }

    /// SIGTERM and wait; the exit code.
    pub fn stop(self) -> Option<i32> {
        self.0.stop()
    }
}

impl std::ops::Deref for Gw {
    type Target = edgegw_chaos::harness::Gw;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The metric families `SPEC.md` names, as OpenMetrics and OTLP name them (counters without
/// `_total`).
pub const SPEC_FAMILIES: [&str; 18] = [
    "edgegw_samples_ingested",
    "edgegw_ingest_rejected",
    "edgegw_ingest_bytes",
    "edgegw_inferences",
    "edgegw_inference_batch_size",
    "edgegw_inference_seconds",
    "edgegw_decision_latency_seconds",
    "edgegw_alerts",
    "edgegw_alerts_suppressed",
    "edgegw_uplink_messages",
    "edgegw_uplink_bytes",
    "edgegw_store_backlog",
    "edgegw_store_bytes",
    "edgegw_store_evicted",
    "edgegw_actor_restarts",
    "edgegw_feedback",
    "edgegw_feedback_dropped",
    "edgegw_sensors_active",
];

/// Publishes every sample of `out` (`(sensor index, ts, value)`, as a simulated fleet's `tick`
/// produces them) as JSON batches of `batch` samples, one `mosquitto_pub -l` per sensor, and
/// waits until each has sent everything.
pub fn publish_fleet(
    port: u16,
    fleet: &edgegw_actors::sim::Fleet,
    out: &[(usize, i64, f64)],
    batch: usize,
) {
    let mut by: std::collections::BTreeMap<usize, Vec<(i64, f64)>> = Default::default();
    for (i, t, v) in out {
        by.entry(*i).or_default().push((*t, *v));
    }
    let pubs: Vec<_> = by
        .into_iter()
        .map(|(i, s)| {
            let mut p = Pub::start(port, &format!("sensors/{}/data", fleet.id(i)), 1);
            for chunk in s.chunks(batch) {
                let body: Vec<String> = chunk.iter().map(|(t, v)| format!("[{t},{v}]")).collect();
                p.send(&format!("{{\"samples\":[{}]}}", body.join(",")));
            }
            p
        })
        .collect();
    for p in pubs {
        assert!(p.finish(), "mosquitto_pub failed");
    }
}

/// Waits until `samples` are ingested and decisions have stopped changing.
pub fn settle(gw: &Gw, samples: f64) {
    wait_until(
        std::time::Duration::from_secs(120),
        "all samples ingested",
        || gw.metric("edgegw_samples_ingested_total") >= samples,
    );
    let mut last = -1.0;
    wait_until(
        std::time::Duration::from_secs(60),
        "decisions to settle",
        || {
            let d = gw.metric("edgegw_decisions_total");
            let done = d == last;
            last = d;
            std::thread::sleep(std::time::Duration::from_millis(500));
            done
        },
    );
}

/// A simulated fleet of `sensors` at 10 Hz (10 % timing jitter, no anomalies of its own) whose
/// clock starts at `start` (ms).
pub fn quiet_fleet(sensors: usize, seed: u64, start: i64) -> edgegw_actors::sim::Fleet {
    edgegw_actors::sim::Fleet::new(
        edgegw_actors::sim::FleetConfig {
            sensors,
            rate_hz: 10.0,
            seed,
            anomaly_every_s: None,
            jitter_frac: 0.1,
        },
        start,
    )
}

/// Shifts sensor `i` of `fleet` by 10 σ from `at` (ms) for `for_ms`.
pub fn shift_level(fleet: &mut edgegw_actors::sim::Fleet, i: usize, at: i64, for_ms: i64) {
    use edgegw_actors::sim::{Anomaly, AnomalyKind};
    fleet.inject(
        i,
        Anomaly {
            kind: AnomalyKind::LevelShift { sigma: 10.0 },
            start_ms: at,
            duration_ms: for_ms,
        },
    );
}

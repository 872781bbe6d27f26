//! The shared flow of a chaos scenario: build the rig (a local mosquitto the sensors publish
//! to, an upstream mosquitto behind a [`FaultProxy`], the real gateway, a recording subscriber
//! and a sensor feeder), let the scenario run its fault phase, then check the properties and
//! publish a [`Report`].
//!
//! Design constraints:
//! - One seed per scenario (`EDGEGW_CHAOS_SEED`, else random, always printed) drives every
//!   random choice, the proxy's jitter included. `EDGEGW_CHAOS_SOAK=1` selects the long
//!   figures each scenario states (durations and fault counts, roughly ×10).
//! - The upstream record is taken by a `mosquitto_sub` connected straight to the upstream
//!   broker (never through the proxy), so a network fault on the uplink never hides a delivery.
//! - After the faults stop, [`Rig::finish`] checks, and reports every violation rather than
//!   stopping at the first:
//!   1. fresh decisions: `edgegw_decisions_total` grows and a message with a seq above the
//!      fault-end high-water arrives upstream;
//!   2. the delivery promise, by the oracle's [`judge`]: every committed seq upstream (less
//!      reported evictions), nothing foreign, no seq reused, duplicates within the in-flight
//!      window per uplink session (`uplink.inflight` × connections the proxy accepted);
//!   3. every stage running at the end, none escalated (scenarios that expect escalation
//!      check it themselves during the fault phase);
//!   4. peak RSS (`VmHWM`, max over gateway runs) below the stated bound;
//!   5. a clean SIGTERM exit (code 0) within the stated bound.
//! - Timings are recorded (recovery times), never judged here.

use crate::harness::{feeder_with, poll_until, Gw, Mosquitto, Sub};
use crate::oracle::{judge, Received, Verdict};
use crate::proxy::FaultProxy;
use crate::report::Report;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod finish;

/// The gateway id every scenario uses.
pub const GATEWAY: &str = "gw-01";
/// Peak RSS bound, MiB, unless a scenario states another: the gateway with a handful of
/// sensors, the built-in model and a 16 MiB sled cache sits far below it.
pub const RSS_BOUND_MIB: f64 = 400.0;
/// SIGTERM-to-exit bound unless a scenario states another: the gateway gives its stages 10 s
/// and its trace exporter 3 s, then exits.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(15);
/// Every supervised stage name that can appear in `edgegw_actor_restarts_total`.
pub use edgegw_actors::metrics::RESTART_STAGES;

/// How a scenario's rig is configured.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Simulated sensors.
    pub sensors: usize,
    /// Feeder period (one 10-sample batch per sensor each period).
    pub every: Duration,
    /// `uplink.inflight` (also the duplicate bound per session).
    pub inflight: usize,
    /// Extra `[uplink]` keys (TOML lines).
    pub uplink: String,
    /// Extra `[store]` keys (TOML lines).
    pub store: String,
    /// Extra sections (not broker, ingest, uplink, summary, http or store).
    pub extra: String,
    /// The peak RSS bound asserted, MiB.
    pub rss_bound_mib: f64,
    /// How long the final SIGTERM may take, asserted.
    pub shutdown_bound: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sensors: 6,
            every: Duration::from_millis(50),
            inflight: 100,
            uplink: String::new(),
            store: String::new(),
            extra: String::new(),
            rss_bound_mib: RSS_BOUND_MIB,
            shutdown_bound: SHUTDOWN_BOUND,
        }
    }
}

/// The seed: `EDGEGW_CHAOS_SEED`, else random.
pub fn seed() -> u64 {
    std::env::var("EDGEGW_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

/// Whether soak mode (`EDGEGW_CHAOS_SOAK=1`) is on.
pub fn soak() -> bool {
    std::env::var("EDGEGW_CHAOS_SOAK").is_ok_and(|v| v == "1" || v == "true")
}

/// What the gateway had done when the faults stopped.
#[derive(Debug, Clone, Copy)]
struct FaultEnd {
    at: Instant,
    hw: u64,
    decisions: f64,
}

/// A running scenario: brokers, proxy, gateway, recorder, feeder, and its report so far.
pub struct Rig {
    /// Seeded RNG for every random choice of the scenario.
    pub rng: StdRng,
    /// Soak mode.
    pub soak: bool,
    /// The broker sensors publish to (the gateway's ingest).
    pub local: Mosquitto,
    /// The upstream broker (behind `proxy`).
    pub up: Mosquitto,
    /// The fault proxy between the gateway's uplink and `up`.
    pub proxy: FaultProxy,
    /// Upstream recorders; the record is the union of their lines (a scenario that restarts
    /// the upstream broker adds a new one).
    pub subs: Vec<Sub>,
    /// The report being filled.
    pub report: Report,
    /// The settings the rig was built with.
    pub settings: Settings,
    gw: Option<Gw>,
    dir: tempfile::TempDir,
    toml: String,
    feed: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    earlier_restarts: BTreeMap<String, f64>,
    fault_end: Option<FaultEnd>,
    started: Instant,
    // Declared last: the proxy's tasks run on it until the very end.
    _rt: tokio::runtime::Runtime,
}

impl Rig {
    /// Builds the rig for scenario `name`, starts the gateway and the feeder and waits for the
    /// first decisions and the first messages upstream.
    pub fn start(name: &str, settings: Settings) -> Self {
        let seed = seed();
        let soak = soak();
        println!("scenario {name}: seed {seed} (EDGEGW_CHAOS_SEED={seed} replays it), soak {soak}");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let local = Mosquitto::start();
        let up = Mosquitto::start();
        let proxy = rt
            .block_on(FaultProxy::start_seeded(
                ([127, 0, 0, 1], up.port).into(),
                seed,
            ))
            .expect("fault proxy");
        let toml = format!(
            "[gateway]\nid = \"{GATEWAY}\"\n[broker]\nembedded = false\n[ingest]\nurl = \"{}\"\n\
             [uplink]\nurl = \"mqtt://{}\"\ninflight = {}\nreconnect_max = \"1s\"\n{}\n\
             [summary]\nperiod = \"1s\"\n{}\n",
            local.url(),
            proxy.addr(),
            settings.inflight,
            settings.uplink,
            settings.extra
        );
        let sub = Sub::start_ready(up.port, &format!("edgegw/{GATEWAY}/#"));
        let dir = tempfile::tempdir().expect("tempdir");
        let gw = Gw::start_with_store(dir.path(), &toml, &settings.store);
        let stop = Arc::new(AtomicBool::new(false));
        let feed = feeder_with(local.port, settings.sensors, settings.every, stop.clone());
        let rig = Rig {
            rng: StdRng::seed_from_u64(seed),
            soak,
            local,
            up,
            proxy,
            subs: vec![sub],
            report: Report {
                scenario: name.to_string(),
                seed,
                soak,
                rss_bound_mib: settings.rss_bound_mib,
                max_duplicates: settings.inflight,
                ..Report::default()
            },
            settings,
            gw: Some(gw),
            dir,
            toml,
            feed: Some((stop, feed)),
            earlier_restarts: BTreeMap::new(),
            fault_end: None,
            started: Instant::now(),
            _rt: rt,
        };
        let ok = poll_until(Duration::from_secs(60), || {
            rig.gw().metric("edgegw_decisions_total") > 0.0 && rig.upstream().len() >= 5
        });
        assert!(
            ok,
            "{name}: no decisions or nothing upstream before any fault"
        );
        rig
    }

    /// The running gateway.
    pub fn gw(&self) -> &Gw {
        self.gw.as_ref().expect("gateway running")
    }

    /// `short` normally, `long` in soak mode.
    pub fn pick<T>(&self, short: T, long: T) -> T {
        if self.soak {
            long
        } else {
            short
        }
    }

    /// A uniformly random duration in `lo..hi` from the scenario's RNG.
    pub fn random_duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let ms = self
            .rng
            .random_range(lo.as_millis() as u64..hi.as_millis() as u64);
        Duration::from_millis(ms)
    }

    /// Watches decisions for `phase`: new ones must appear within every 5 s slice (a
    /// liveness check, not a rate). Returns the number of slices without one.
    pub fn decision_stalls_over(&self, phase: Duration) -> u32 {
        let end = Instant::now() + phase;
        let mut stalls = 0;
        while Instant::now() < end {
            let before = self.gw().metric("edgegw_decisions_total");
            let flowing = poll_until(Duration::from_secs(5), || {
                self.gw().metric("edgegw_decisions_total") > before
            });
            stalls += u32::from(!flowing);
        }
        stalls
    }

    /// Records what was injected (in order, for the report).
    pub fn inject(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("{}: inject {what}", self.report.scenario);
        self.report.injected.push(what);
    }

    /// Records a violated property unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let w = what();
            println!("{}: FAILED {w}", self.report.scenario);
            self.report.failures.push(w);
        }
    }

    /// Records a scenario-specific figure.
    pub fn figure(&mut self, name: &str, value: f64) {
        self.report.figures.insert(name.to_string(), value);
    }

    /// Writes `text` to `name` in the rig's own directory (removed with the rig); its path.
    pub fn local_dir_file(&self, name: &str, text: &str) -> std::path::PathBuf {
        crate::harness::write(self.dir.path(), name, text)
    }

    /// Committed messages so far (`store.next_seq - 1` of `/status`), 0 if unreadable.
    pub fn committed(&self) -> u64 {
        self.gw().status()["store"]["next_seq"]
            .as_u64()
            .map_or(0, |n| n.saturating_sub(1))
    }

    /// Messages in the store not yet acknowledged upstream.
    pub fn backlog(&self) -> Option<u64> {
        let s = self.gw().status();
        let b = &s["store"]["backlog"];
        ["alert", "summary", "raw"]
            .iter()
            .map(|c| b[c].as_u64())
            .sum()
    }

    /// The upstream record (gateway topics only, status included), with arrival instants.
    pub fn upstream(&self) -> Vec<(String, String, Instant)> {
        let prefix = format!("edgegw/{GATEWAY}/");
        self.subs
            .iter()
            .flat_map(Sub::snapshot)
            .filter(|(t, _, _)| t.starts_with(&prefix))
            .collect()
    }

    /// SIGKILLs the gateway and starts it again on the same store; returns whether the store
    /// opened without being recreated (a kill -9 must never corrupt it).
    pub fn kill9_and_restart(&mut self) -> bool {
        self.retire_gateway(true);
        let gw = Gw::start_with_store(self.dir.path(), &self.toml, &self.settings.store);
        let recovered = gw.status()["mode"]["reasons"]
            .to_string()
            .contains("store_recovered");
        self.gw = Some(gw);
        !recovered
    }

    /// Banks the running gateway's restart counters and peak RSS, then kills it (`kill9`) or
    /// returns it for a clean stop.
    fn retire_gateway(&mut self, kill9: bool) -> Option<Gw> {
        let gw = self.gw.take()?;
        for (stage, n) in restarts_of(&gw) {
            *self.earlier_restarts.entry(stage).or_default() += n;
        }
        self.report.peak_rss_mib = self.report.peak_rss_mib.max(gw.peak_rss_mib());
        if kill9 {
            gw.kill9();
            None
        } else {
            Some(gw)
        }
    }
}

impl Drop for Rig {
    /// Stops the feeder (also when a scenario panicked); the process guards do the rest.
    fn drop(&mut self) {
        if let Some((stop, feed)) = self.feed.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = feed.join();
        }
    }
}

/// `edgegw_actor_restarts_total` per stage of a running gateway.
pub fn restarts_of(gw: &Gw) -> BTreeMap<String, f64> {
    let text = gw.get("/metrics").1;
    RESTART_STAGES
        .iter()
        .map(|s| {
            let series = format!("edgegw_actor_restarts_total{{stage=\"{s}\"}}");
            (s.to_string(), crate::harness::metric_in(&text, &series))
        })
        .filter(|(_, n)| *n > 0.0)
        .collect()
}

/// The `seq` of an uplink payload.
pub fn seq_of(payload: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()?
        .get("seq")?
        .as_u64()
}

//! Memory per live sensor, in process: the real sensor supervisor and sensor actors, without a
//! broker or MQTT, every sensor fed one batch of 128 samples as in the load benchmark's memory
//! phase (warm-up 200 samples, so no decision is made yet). Prints the sizes of the per-sensor
//! types, then resident memory idle and with every sensor live.
//!
//! Run: `cargo bench --bench sensor_memory -- --sensors 10000` (`--samples 128`,
//! `--window 64`). For the bytes by allocation site, run the bench binary under
//! `valgrind --tool=dhat`: the process exits with every sensor still live, so the heap at
//! exit (`t-end`) is the fleet.

#![allow(clippy::unwrap_used)] // benches may unwrap.

#[path = "common/mod.rs"]
mod common;

use common::arg;
use edgegw_actors::ctx::Ctx;
use edgegw_actors::inference::{PoolMsg, ScoreRequest, Scored};
use edgegw_actors::model::Scorer;
use edgegw_actors::sensor::actor::SensorState;
use edgegw_actors::sensor::baseline::feature_names;
use edgegw_actors::sensor::storm::AlertGate;
use edgegw_actors::sensor::summary::PeriodSummary;
use edgegw_actors::sensor::tracker::Tracker;
use edgegw_actors::sensor::window::{Sample, Window};
use edgegw_actors::sensor::{SampleBatch, SensorMsg, SensorPorts, SensorSupMsg, SensorSupervisor};
use edgegw_actors::store::StoreSlot;
use edgegw_actors::GatewayConfig;
use ractor::{Actor, SupervisionEvent};
use std::mem::size_of;
use std::time::{Duration, Instant};

/// Resident memory of this process, bytes.
fn rss_bytes() -> f64 {
    common::rss_mib(std::process::id()) * 1048576.0
}

fn sizes() {
    println!("type sizes (bytes, inline; heap not included):");
    for (name, size) in [
        ("SensorMsg", size_of::<SensorMsg>()),
        ("SensorSupMsg", size_of::<SensorSupMsg>()),
        ("PoolMsg", size_of::<PoolMsg>()),
        ("ScoreRequest", size_of::<ScoreRequest>()),
        ("Scored", size_of::<Scored>()),
        ("ractor::SupervisionEvent", size_of::<SupervisionEvent>()),
        ("SensorState", size_of::<SensorState>()),
        ("Tracker", size_of::<Tracker>()),
        ("Window", size_of::<Window>()),
        ("PeriodSummary", size_of::<PeriodSummary>()),
        ("AlertGate", size_of::<AlertGate>()),
        ("tokio::time::Sleep", size_of::<tokio::time::Sleep>()),
    ] {
        println!("  {name:<26} {size:>5}");
    }
}

fn main() {
    sizes();
    let n = arg("--sensors", 1000) as usize;
    let per = arg("--samples", 128) as usize;
    let mut cfg = GatewayConfig::default();
    cfg.sensors.window = arg("--window", 64) as usize;
    cfg.sensors.hop = cfg.sensors.window / 4;
    cfg.sensors.warmup_samples = 200.max(cfg.sensors.window);
    cfg.sensors.max_sensors = n.max(10_000);
    let scorer = Scorer::fallback(feature_names(cfg.sensors.bands));
    let ctx = Ctx::new(cfg, scorer, StoreSlot::closed("benchmark".into()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let names: Vec<std::sync::Arc<str>> = (0..n).map(|i| format!("s{i:06}").into()).collect();
    rt.block_on(async {
        let ports = SensorPorts::unconnected(&ctx.cfg);
        let (sup, _) = Actor::spawn(None, SensorSupervisor, (ctx.clone(), ports))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = rss_bytes();
        let t0 = 1_700_000_000_000i64;
        let started = Instant::now();
        for name in &names {
            let samples: Vec<Sample> = (0..per)
                .map(|k| Sample {
                    ts: t0 + k as i64 * 100,
                    v: 20.0 + (k as f64 * 0.3).sin(),
                })
                .collect();
            let batch = SampleBatch {
                permit: ctx.ingest_gate.acquire(samples.len() * 16),
                samples,
                received: Instant::now(),
            };
            sup.cast(SensorSupMsg::Deliver {
                sensor: name.clone(),
                batch,
            })
            .unwrap();
        }
        let want = (n * per) as u64;
        while ctx.metrics.samples_ingested.get() < want {
            assert!(started.elapsed() < Duration::from_secs(600), "fleet stuck");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let live = rss_bytes();
        let per_sensor = (live - idle) / n as f64;
        println!(
            "{n} sensors × {per} samples: RSS idle {:.1} MiB, live {:.1} MiB; {:.0} bytes per sensor \
             ({:.1} MB per 1k); filled in {:.2} s",
            idle / 1048576.0,
            live / 1048576.0,
            per_sensor,
            per_sensor / 1000.0,
            started.elapsed().as_secs_f64()
        );
        // Exit with the fleet still live, so a heap profiler's end-of-run snapshot is the fleet.
        std::process::exit(0);
    });
}

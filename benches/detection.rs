//! Detection quality of the shipped model on simulated fleets it was not trained on: the
//! false-alert rate on normal sensors, and the detection rate and delay for each injected
//! anomaly kind. Runs the live decision path (window → baseline → model → calibration →
//! threshold → alert gate, [`edgegw_actors::eval::detect`]) without the network.
//!
//! `cargo bench --bench detection -- [--sensors 100] [--minutes 20] [--seed 1001]`
//! Figures go to docs/benchmarks.md. Not a test: nothing passes or fails here.

#![allow(clippy::unwrap_used)] // benches may unwrap: a failure should stop the run loudly.

mod common;

use common::arg;
use edgegw_actors::eval::detect;
use edgegw_actors::model::{self, Scorer};
use edgegw_actors::sensor::SensorsConfig;
use edgegw_actors::sim::{Anomaly, AnomalyKind, Fleet, FleetConfig};
use std::sync::Arc;

/// Window end times (ms) of every alert raised for one sensor's series, and the decisions
/// made: the same offline detection path as `edgegw eval`.
fn alerts(cfg: &SensorsConfig, scorer: &Scorer, series: &[(i64, f64)]) -> (Vec<i64>, u64) {
    let run = detect::run_series(cfg, scorer, series.iter().copied()).unwrap();
    (run.alerts.iter().map(|a| a.ts).collect(), run.decisions)
}

fn main() {
    let sensors = arg("--sensors", 100) as usize;
    let minutes = arg("--minutes", 20) as i64;
    let seed = arg("--seed", 1001);
    let cfg = SensorsConfig::default();
    let scorer = Scorer::Model(Arc::new(model::load_builtin().unwrap()));
    let start = 1_700_000_000_000i64;
    let end = start + minutes * 60_000;
    let series = |fleet: &mut Fleet| {
        let mut out = Vec::new();
        fleet.tick(end, &mut out);
        let mut per: Vec<Vec<(i64, f64)>> = vec![Vec::new(); sensors];
        for (i, t, v) in out {
            per[i].push((t, v));
        }
        per
    };
    let fleet_cfg = FleetConfig {
        sensors,
        rate_hz: 10.0,
        seed,
        anomaly_every_s: None,
        jitter_frac: 0.1,
    };

    // Normal fleet: every alert is a false alert.
    let mut fleet = Fleet::new(fleet_cfg.clone(), start);
    let (mut false_alerts, mut decisions) = (0usize, 0u64);
    for s in series(&mut fleet) {
        let (a, d) = alerts(&cfg, &scorer, &s);
        false_alerts += a.len();
        decisions += d;
    }
    let hours = sensors as f64 * minutes as f64 / 60.0;
    println!("model {} {} threshold {:.3}; fleet seed {seed}: {sensors} sensors x {minutes} min at 10 Hz", scorer.name(), scorer.version(), scorer.threshold());
    println!(
        "normal fleet: {decisions} decisions, {false_alerts} alerts ({:.3} per sensor-hour)",
        false_alerts as f64 / hours
    );

    // One anomaly per sensor, at 2/3 of the run, for each kind.
    let at = start + minutes * 40_000;
    let kinds = [
        (
            "spike 10σ",
            AnomalyKind::Spike {
                magnitude_sigma: 10.0,
            },
            500,
        ),
        (
            "level shift 8σ",
            AnomalyKind::LevelShift { sigma: 8.0 },
            20_000,
        ),
        ("stuck value", AnomalyKind::Stuck, 20_000),
        (
            "noise burst x5",
            AnomalyKind::NoiseBurst { factor: 5.0 },
            20_000,
        ),
    ];
    println!(
        "{:<16} {:>9} {:>16} {:>16}",
        "anomaly", "detected", "median delay ms", "alerts outside"
    );
    for (name, kind, dur) in kinds {
        let mut fleet = Fleet::new(fleet_cfg.clone(), start);
        for i in 0..sensors {
            fleet.inject(
                i,
                Anomaly {
                    kind,
                    start_ms: at,
                    duration_ms: dur,
                },
            );
        }
        let (mut hit, mut delays, mut outside) = (0usize, Vec::new(), 0usize);
        // A window still contains the anomaly up to `window` samples after it ends.
        let grace = (cfg.window as i64) * 100 + 1000;
        for s in series(&mut fleet) {
            let (a, _) = alerts(&cfg, &scorer, &s);
            let inside: Vec<i64> = a
                .iter()
                .copied()
                .filter(|t| *t >= at && *t <= at + dur + grace)
                .collect();
            outside += a.len() - inside.len();
            if let Some(first) = inside.first() {
                hit += 1;
                delays.push(first - at);
            }
        }
        delays.sort_unstable();
        let median = delays.get(delays.len() / 2).copied().unwrap_or(-1);
        println!(
            "{name:<16} {:>8.1}% {median:>16} {outside:>16}",
            100.0 * hit as f64 / sensors as f64
        );
    }
}

//! Alert storms end to end: the `edgegw` binary between mosquitto and `mosquitto_pub`/`_sub`,
//! fed a simulated fleet backfilled over minutes of event time (episodes, cooldowns and
//! reminders run on event time, so a backfill alerts like the live data it reproduces).
//!
//! Checked from what arrives upstream: the number of alerts is bounded, and for every sensor
//! alerts + Σ `alerts_suppressed` (over its alerts and summaries) = its anomalous decisions
//! (Σ summary `anomalous`); over all sensors Σ `alerts_suppressed` equals
//! `edgegw_alerts_suppressed_total`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use edgegw_actors::sim::{Anomaly, AnomalyKind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn config(mq: &Mosquitto, extra: &str) -> String {
    let url = mq.url();
    format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [summary]\nperiod = \"1s\"\n{extra}"
    )
}

/// Per sensor, from the upstream messages.
#[derive(Debug, Default)]
struct Account {
    alerts: u64,
    suppressed: u64,
    anomalous: u64,
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing or not a count: {v}"))
}

/// Waits until every sample is in, decisions have stopped and everything they produced is
/// upstream (alerts as counted, suppressions all carried); returns the accounts per sensor.
fn settle(gw: &Gw, sub: &Sub, samples: usize) -> BTreeMap<String, Account> {
    wait_until(Duration::from_secs(180), "all samples ingested", || {
        gw.metric("edgegw_samples_ingested_total") >= samples as f64
    });
    let mut last = -1.0;
    wait_until(Duration::from_secs(60), "decisions to settle", || {
        let d = gw.metric("edgegw_decisions_total");
        let done = d == last;
        last = d;
        std::thread::sleep(Duration::from_millis(500));
        done
    });
    let mut accounts = BTreeMap::new();
    wait_until(
        Duration::from_secs(30),
        "every suppression upstream",
        || {
            accounts = accounts_of(sub);
            let alerts: u64 = accounts.values().map(|a: &Account| a.alerts).sum();
            let suppressed: u64 = accounts.values().map(|a| a.suppressed).sum();
            alerts as f64 == gw.metric("edgegw_alerts_total")
                && suppressed as f64 == gw.metric("edgegw_alerts_suppressed_total")
        },
    );
    accounts
}

fn accounts_of(sub: &Sub) -> BTreeMap<String, Account> {
    let mut acc: BTreeMap<String, Account> = BTreeMap::new();
    for (_, a) in sub.json("/alerts/") {
        let e = acc
            .entry(a["sensor"].as_str().unwrap().to_string())
            .or_default();
        e.alerts += 1;
        e.suppressed += n(&a, "alerts_suppressed");
    }
    for (_, s) in sub.json("/summaries/") {
        let e = acc
            .entry(s["sensor"].as_str().unwrap().to_string())
            .or_default();
        e.suppressed += n(&s, "alerts_suppressed");
        e.anomalous += n(&s, "anomalous");
    }
    acc
}

fn assert_accounts(gw: &Gw, accounts: &BTreeMap<String, Account>) {
    for (sensor, a) in accounts {
        assert_eq!(
            a.alerts + a.suppressed,
            a.anomalous,
            "{sensor}: alerts + suppressed != anomalous decisions: {a:?}"
        );
    }
    let suppressed: u64 = accounts.values().map(|a| a.suppressed).sum();
    let anomalous: u64 = accounts.values().map(|a| a.anomalous).sum();
    assert_eq!(
        suppressed as f64,
        gw.metric("edgegw_alerts_suppressed_total")
    );
    assert_eq!(
        anomalous as f64,
        gw.metric("edgegw_alerts_total") + gw.metric("edgegw_alerts_suppressed_total")
    );
    let by_reason: f64 = gw
        .metric_family("edgegw_alerts_suppressed_by_reason_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(by_reason, gw.metric("edgegw_alerts_suppressed_total"));
}

#[test]
fn flapping_sensor_alerts_once_per_cooldown_and_reports_what_it_suppressed() {
    let mq = Mosquitto::start();
    // The cap is out of the way here: this is the per-sensor gate alone.
    let gw = Gw::start(&config(
        &mq,
        "[sensors]\nalert_cooldown = 300\nalert_repeat = 6000\nepisode_end = 3\n\
         [alerts]\nmax_per_minute = 100000\n",
    ));
    let sub = Sub::start(mq.port, "edgegw/gw-01/#");

    let start = edgegw_actors::status::now_ms() - 900_000;
    let flap_from = start + 120_000;
    let flap_s = 480;
    let mut f = quiet_fleet(3, 21, start);
    // On for 5 s, off for 15 s: a new episode every 20 s (the off part outlasts the window and
    // `episode_end` normal decisions), for 8 minutes.
    for k in 0..flap_s / 20 {
        f.inject(
            1,
            Anomaly {
                kind: AnomalyKind::LevelShift { sigma: 12.0 },
                start_ms: flap_from + k * 20_000,
                duration_ms: 5_000,
            },
        );
    }
    let flapper = f.id(1).to_string();
    let mut out = Vec::new();
    f.tick(flap_from + flap_s * 1000 + 60_000, &mut out);
    publish_fleet(mq.port, &f, &out, 20);
    let accounts = settle(&gw, &sub, out.len());
    println!("accounts: {accounts:?}");
    assert_accounts(&gw, &accounts);

    let mut ends: Vec<i64> = sub
        .json(&format!("/alerts/{flapper}"))
        .iter()
        .map(|(_, a)| a["window"]["end"].as_i64().unwrap())
        .collect();
    ends.sort();
    let fl = &accounts[&flapper];
    println!("flapper: {} alerts at {ends:?}, {fl:?}", ends.len());
    // Bounded: at most one alert per cooldown over the flapping span (+ its tail).
    assert!(!ends.is_empty(), "the flapping sensor never alerted");
    assert!(
        ends.len() as i64 <= (flap_s + 60) / 30 + 1,
        "{} alerts",
        ends.len()
    );
    assert!(
        ends.windows(2).all(|w| w[1] - w[0] >= 30_000),
        "alerts closer than the cooldown: {ends:?}"
    );
    // It stormed: more anomalous decisions than alerts, and the difference is reported.
    assert!(fl.suppressed > 0 && fl.anomalous > fl.alerts, "{fl:?}");
    for (_, a) in sub.json(&format!("/alerts/{flapper}")) {
        let ep = &a["episode"];
        let (s, d) = (
            ep["start"].as_i64().unwrap(),
            ep["decisions"].as_u64().unwrap(),
        );
        assert!(d >= 1 && s <= a["window"]["end"].as_i64().unwrap(), "{a}");
        assert!(s >= flap_from, "episode before the flapping: {a}");
    }
}

#[test]
fn storm_across_sensors_is_capped_and_the_excess_accounted() {
    let mq = Mosquitto::start();
    let cap = 5;
    let gw = Gw::start(&config(
        &mq,
        &format!("[sensors]\nalert_cooldown = 300\nalert_repeat = 300\n[alerts]\nmax_per_minute = {cap}\n"),
    ));
    let sub = Sub::start(mq.port, "edgegw/gw-01/#");
    let began = Instant::now();

    let sensors = 16;
    let start = edgegw_actors::status::now_ms() - 900_000;
    let shift_at = start + 90_000;
    let mut f = quiet_fleet(sensors, 5, start);
    for i in 0..sensors {
        f.inject(
            i,
            Anomaly {
                kind: AnomalyKind::LevelShift { sigma: 12.0 },
                start_ms: shift_at,
                duration_ms: 1_000_000,
            },
        );
    }
    let mut out = Vec::new();
    f.tick(shift_at + 60_000, &mut out);
    publish_fleet(mq.port, &f, &out, 20);
    let accounts = settle(&gw, &sub, out.len());
    let elapsed = began.elapsed().as_secs_f64();
    println!("accounts after {elapsed:.0} s: {accounts:?}");
    assert_accounts(&gw, &accounts);

    let alerts = sub.json("/alerts/").len() as f64;
    let capped = gw.metric("edgegw_alerts_suppressed_by_reason_total{reason=\"cap\"}");
    // The cap's burst, plus its refill over the wall time the run took.
    let bound = cap as f64 + (elapsed / 60.0 * cap as f64).ceil();
    println!("{alerts} alerts (bound {bound}), {capped} suppressed by the cap");
    assert!(
        alerts >= 1.0 && alerts <= bound,
        "{alerts} alerts, bound {bound}"
    );
    assert!(capped > 0.0, "the cap never refused an alert");
    // Without the cap every shifted sensor would have alerted: the ones that did not still
    // report their anomalous decisions and suppressions upstream.
    let silent: Vec<_> = accounts
        .iter()
        .filter(|(_, a)| a.alerts == 0 && a.anomalous > 0)
        .collect();
    if bound < sensors as f64 {
        assert!(!silent.is_empty(), "{accounts:?}");
    }
    assert!(silent.iter().all(|(_, a)| a.suppressed == a.anomalous));
}

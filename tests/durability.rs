//! The delivery promise, black-box: every message the gateway committed reaches a real
//! mosquitto upstream, in spite of a cut link, kill -9 and a corrupt store; no seq is reused.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use edgegw_chaos::oracle::{judge, Received};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything received upstream, by seq: (id, payload). Panics if one seq came with two
/// different payloads (a reused seq).
fn received(sub: &Sub) -> BTreeMap<u64, (String, String)> {
    let mut by_seq: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for (t, p) in sub.lines.lock().unwrap().iter() {
        if t.ends_with("/status") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        if let Some((old_id, old)) = by_seq.get(&seq) {
            assert_eq!((old_id, old), (&id, p), "seq {seq} was reused");
        } else {
            by_seq.insert(seq, (id, p.clone()));
        }
    }
    by_seq
}

fn duplicates(sub: &Sub) -> usize {
    let n = sub
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| !t.ends_with("/status"))
        .count();
    n - received(sub).len()
}

/// Committed messages so far: seqs 1 ..= next_seq - 1 of this store, less evictions.
fn committed(gw: &Gw) -> u64 {
    gw.status()["store"]["next_seq"].as_u64().unwrap() - 1
}

fn backlog(gw: &Gw) -> u64 {
    let b = &gw.status()["store"]["backlog"];
    ["alert", "summary", "raw"]
        .iter()
        .map(|c| b[c].as_u64().unwrap_or(0))
        .sum()
}

/// `edgegw store inspect --path data`.
fn inspect(data: &std::path::Path) -> std::process::Output {
    std::process::Command::new(bin())
        .args(["store", "inspect", "--path"])
        .arg(data)
        .output()
        .unwrap()
}

/// Stops the feeder, waits for the store's backlog to drain, then judges the upstream record;
/// returns the highest committed seq.
fn finish_and_judge(
    gw: &Gw,
    sub: &Sub,
    stop: &AtomicBool,
    feed: std::thread::JoinHandle<()>,
    max_duplicates: usize,
) -> u64 {
    stop.store(true, Ordering::Relaxed);
    feed.join().unwrap();
    wait_until(Duration::from_secs(60), "backlog drained", || {
        backlog(gw) == 0
    });
    let hw = committed(gw);
    assert!(hw >= 30, "too little committed to judge: {hw}");
    assert_all_arrived(sub, gw, hw, max_duplicates);
    hw
}

/// Waits until every committed seq arrived, then has the chaos suite's judge check the whole
/// upstream record: nothing missing, nothing unexpected, no seq reused, duplicates bounded.
fn assert_all_arrived(sub: &Sub, gw: &Gw, hw: u64, max_duplicates: usize) {
    wait_until(
        Duration::from_secs(60),
        "every committed seq upstream",
        || {
            let got = received(sub);
            (1..=hw).all(|s| got.contains_key(&s))
        },
    );
    let status = gw.status();
    let epoch = status["epoch"].as_i64().unwrap();
    let ev = &status["store"]["evicted"];
    let evicted: u64 = ["alert", "summary", "raw"]
        .iter()
        .map(|c| ev[c].as_u64().unwrap())
        .sum();
    let record: Vec<Received> = sub
        .lines
        .lock()
        .unwrap()
        .iter()
        .map(|(t, p)| Received {
            topic: t.clone(),
            payload: p.clone().into_bytes(),
        })
        .collect();
    let verdict = judge(&record, "gw-01", epoch, hw, evicted, max_duplicates);
    println!("verdict: {verdict:?}");
    verdict.holds().unwrap();
}

#[test]
fn a_cut_uplink_loses_nothing_and_the_backlog_drains() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = Mosquitto::start();
    let proxy = rt
        .block_on(edgegw_chaos::proxy::FaultProxy::start(
            ([127, 0, 0, 1], up.port).into(),
        ))
        .unwrap();
    let port = free_port();
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
         [uplink]\nurl = \"mqtt://{}\"\nreconnect_max = \"1s\"\nreplay_rate = 200\n[summary]\nperiod = \"1s\"\n",
        proxy.addr()
    ));
    let sub = Sub::start(up.port, "edgegw/gw-01/#");
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(port, 8, stop.clone());
    wait_until(Duration::from_secs(30), "messages upstream", || {
        received(&sub).len() >= 10
    });

    proxy.cut();
    wait_until(Duration::from_secs(10), "offline mode", || {
        gw.status()["mode"]["state"] == "offline"
    });
    std::thread::sleep(Duration::from_secs(6));
    let held = backlog(&gw);
    assert!(
        held >= 20,
        "the backlog builds while the link is cut: {held}"
    );
    let before_heal = received(&sub).len();
    proxy.heal();
    std::thread::sleep(Duration::from_secs(2));
    let hw = finish_and_judge(&gw, &sub, &stop, feed, 100 + 8);
    let dups = duplicates(&sub);
    println!("committed {hw}, upstream before heal {before_heal}, backlog at heal {held}, duplicates {dups}");
    assert!(
        dups <= 100 + 8,
        "duplicates beyond the in-flight window: {dups}"
    );
    assert_eq!(gw.status()["mode"]["state"], "online");
    assert_eq!(gw.stop(), Some(0));
}

#[test]
fn kill_9_ten_times_loses_nothing_and_never_reuses_a_seq() {
    let seed: u64 = std::env::var("EDGEGW_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed {seed} (EDGEGW_TEST_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mq = Mosquitto::start();
    let url = mq.url();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n[summary]\nperiod = \"1s\"\n"
    );
    let sub = Sub::start(mq.port, "edgegw/gw-01/#");
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(mq.port, 6, stop.clone());
    for round in 0..10 {
        let gw = Gw::start_in(dir.path(), &toml);
        let s = gw.status();
        assert!(
            !s["mode"]["reasons"].to_string().contains("store_recovered"),
            "round {round}: the store had to be recreated after kill -9: {s}"
        );
        std::thread::sleep(Duration::from_millis(rng.random_range(800..2500)));
        gw.kill9();
    }
    let gw = Gw::start_in(dir.path(), &toml);
    std::thread::sleep(Duration::from_secs(2));
    // Each kill can leave up to the in-flight window to be resent.
    let hw = finish_and_judge(&gw, &sub, &stop, feed, 11 * 100);
    println!(
        "committed {hw} across 11 runs, duplicates {}",
        duplicates(&sub)
    );
    assert_eq!(gw.stop(), Some(0));
}

#[test]
fn a_corrupt_store_is_moved_aside_reported_and_replaced() {
    let mq = Mosquitto::start();
    let url = mq.url();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n"
    );
    let gw = Gw::start_in(dir.path(), &toml);
    publish_once(mq.port, "sensors/x/data", "not json");
    wait_until(Duration::from_secs(10), "dead letter stored", || {
        gw.status()["dead_letters"]["held"] == 1
    });
    assert_eq!(gw.stop(), Some(0));

    // Offline inspection of the healthy store works, and shows the dead letter.
    let data = dir.path().join("data");
    let out = inspect(&data);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dead_letters"], 1, "{report}");

    for f in std::fs::read_dir(&data).unwrap().flatten() {
        if f.path().is_file() {
            std::fs::write(f.path(), vec![0x5Au8; 8192]).unwrap();
        }
    }
    let out = inspect(&data);
    assert_eq!(
        out.status.code(),
        Some(1),
        "inspect refuses a corrupt store without touching it"
    );
    assert!(data.exists());

    let sub = Sub::start(mq.port, "edgegw/gw-01/alerts/_gateway");
    let gw = Gw::start_in(dir.path(), &toml);
    let s = gw.status();
    assert!(
        s["mode"]["reasons"].to_string().contains("store_recovered"),
        "{s}"
    );
    assert_eq!(s["mode"]["state"], "degraded");
    wait_until(Duration::from_secs(20), "gateway alert upstream", || {
        !sub.json("_gateway").is_empty()
    });
    assert_eq!(sub.json("_gateway")[0].1["kind"], "store_recovered");
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(aside, 1, "the corrupt store is kept aside for inspection");
    // A second instance on the same store is refused, and does not disturb the first.
    let out = inspect(&data);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gw.stop(), Some(0));
}

//! The store's durability, black-box: a corrupt store is moved aside, reported and replaced,
//! and offline inspection refuses to touch it. (Cut links, broker restarts and repeated
//! kill -9 are chaos scenarios: `chaos/tests/scenarios/`.)

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use std::time::Duration;

/// `edgegw store inspect --path data`.
fn inspect(data: &std::path::Path) -> std::process::Output {
    bin_command()
        .args(["store", "inspect", "--path"])
        .arg(data)
        .output()
        .unwrap()
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

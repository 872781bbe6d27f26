//! `edgegw eval` judges what `run` does: NAB files replayed over MQTT (`edgegw replay`, QoS 1)
//! into a gateway on the shipped defaults — only the wall-clock alert cap lifted, since a
//! replay packs months into seconds — raise exactly the alerts, at exactly the timestamps,
//! that `edgegw eval` computes for the same files offline. The alerts are taken from the
//! uplink with `mosquitto_sub` and scored by `edgegw eval --alerts`.
//!
//! A representative handful of files runs in CI; the whole corpus is
//! `cargo test --release --test nab_pipeline -- --ignored`.

#![allow(clippy::unwrap_used)] // tests and benches may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One file of each kind: a machine failure, a cloud metric, traffic, a synthetic jump,
/// ad-exchange rates, and a signal that must stay silent.
const FILES: &[&str] = &[
    "realKnownCause/machine_temperature_system_failure.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    "realTraffic/speed_t4013.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realAdExchange/exchange-2_cpc_results.csv",
    "artificialNoAnomaly/art_daily_no_noise.csv",
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/nab")
}

fn labels() -> String {
    corpus()
        .join("labels/combined_windows.json")
        .display()
        .to_string()
}

fn all_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(corpus().join("data")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "csv") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

/// Rows of a NAB file (header excluded).
fn rows(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

/// Runs `cmd` to its end; it must succeed (its stderr is shown otherwise).
fn succeed(mut cmd: std::process::Command, what: &str) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `edgegw eval FILES --labels … [extra]` → per-file detections.
fn eval(files: &[PathBuf], extra: &[&str]) -> BTreeMap<String, Vec<i64>> {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eval.json");
    let mut cmd = bin_command();
    cmd.arg("eval")
        .args(files)
        .args(["--labels", &labels(), "--json"])
        .arg(&json)
        .args(extra);
    succeed(cmd, &format!("eval {extra:?}"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let d = f["detections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap())
                .collect();
            (f["file"].as_str().unwrap().to_string(), d)
        })
        .collect()
}

fn check(files: &[PathBuf]) {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n\
         [ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [alerts]\nmax_per_minute = 1000000\n"
    ));
    let sub = Sub::start_ready(port, "edgegw/gw-01/alerts/#");
    let mut replay = bin_command();
    replay
        .arg("replay")
        .args(files)
        .args(["--speed", "max", "--format", "batch", "--broker", &url])
        .args(["--connect-timeout", "60s"]);
    succeed(replay, "replay");
    // Every row arrives: taken into its sensor's window, or refused by it as `eval` refuses
    // it (a few NAB files repeat a timestamp).
    let samples: usize = files.iter().map(|f| rows(f)).sum();
    let arrived = || {
        gw.metric("edgegw_samples_ingested_total")
            + gw.metric_family("edgegw_ingest_rejected_total")
                .iter()
                .map(|(_, v)| v)
                .sum::<f64>()
    };
    wait_until(
        Duration::from_secs(300),
        "every row ingested or refused",
        || arrived() >= samples as f64,
    );
    settle(&gw, gw.metric("edgegw_samples_ingested_total"));
    // Nothing was lost on the way in or held back on the way out: every row was decided on
    // or refused, and every alert raised reached the uplink.
    assert_eq!(
        gw.metric("edgegw_ingest_rejected_total{reason=\"broker_dropped\"}"),
        0.0
    );
    assert_eq!(arrived(), samples as f64);
    let raised = gw.metric("edgegw_alerts_total");
    wait_until(Duration::from_secs(60), "every alert on the uplink", || {
        sub.json("/alerts/").len() as f64 >= raised
    });
    let dir = tempfile::tempdir().unwrap();
    let captured = dir.path().join("alerts.jsonl");
    let lines: Vec<String> = sub
        .json("/alerts/")
        .into_iter()
        .map(|(topic, v)| format!("{topic} {v}"))
        .collect();
    std::fs::write(&captured, lines.join("\n") + "\n").unwrap();
    drop(gw);

    let live = eval(files, &["--alerts", captured.to_str().unwrap()]);
    let offline = eval(files, &[]);
    let alerts: usize = offline.values().map(Vec::len).sum();
    println!(
        "{} files, {samples} samples, {alerts} alerts offline, {} on the uplink",
        files.len(),
        lines.len()
    );
    // The comparison proves something only if there were alerts to compare.
    assert!(alerts > 0, "no file raised an alert");
    assert_eq!(live, offline);
}

#[test]
fn replayed_nab_files_raise_the_alerts_eval_computes() {
    let files: Vec<PathBuf> = FILES
        .iter()
        .map(|f| corpus().join("data").join(f))
        .collect();
    check(&files);
}

#[test]
#[ignore = "the whole corpus, 365 551 samples: run with --ignored"]
fn the_whole_nab_corpus_raises_the_alerts_eval_computes() {
    check(&all_files());
}

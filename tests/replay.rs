//! `edgegw replay` end to end: the real binary publishing recorded CSV files (a real NAB file,
//! a SKAB-layout fixture, generated files) to a real mosquitto, checked by `mosquitto_sub` and
//! by a real gateway ingesting what was replayed.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// A small real NAB file: 1127 rows of `timestamp,value`, 5-minute steps from
/// 2015-09-08 11:39:00.
const NAB_FILE: &str = "realTraffic/speed_7578.csv";
const NAB_ROWS: usize = 1127;
/// 2015-09-08T11:39:00Z, the file's first timestamp.
const NAB_FIRST_TS: i64 = 1_441_712_340_000;

/// The NAB corpus: `EDGEGW_NAB_DIR`, else `shared/nab` beside the repository.
fn nab(file: &str) -> PathBuf {
    let dir = std::env::var_os("EDGEGW_NAB_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/nab"),
        PathBuf::from,
    );
    let p = dir.join("data").join(file);
    assert!(
        p.is_file(),
        "{} missing: the NAB corpus is expected in shared/nab beside the repository (or set EDGEGW_NAB_DIR)",
        p.display()
    );
    p
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `edgegw replay ARGS… --broker mqtt://127.0.0.1:PORT` to the end.
fn replay(port: u16, args: &[&str]) -> Output {
    let out = bin_command()
        .arg("replay")
        .args(args)
        .args(["--broker", &format!("mqtt://127.0.0.1:{port}")])
        .output()
        .unwrap();
    println!(
        "replay {args:?}: {}\nstdout: {}stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `(topic, ts, v)` of every JSON sample `sub` received on `sensors/…`, in arrival order
/// (a batch contributes its samples in order).
fn samples(sub: &Sub) -> Vec<(String, i64, f64)> {
    let mut out = Vec::new();
    for (topic, p) in sub.json("sensors/") {
        if let Some(batch) = p["samples"].as_array() {
            for pair in batch {
                out.push((
                    topic.clone(),
                    pair[0].as_i64().unwrap(),
                    pair[1].as_f64().unwrap(),
                ));
            }
        } else {
            out.push((topic, p["ts"].as_i64().unwrap(), p["v"].as_f64().unwrap()));
        }
    }
    out
}

/// Waits until `sub` holds `n` samples, then a moment longer to catch any extra one.
fn wait_samples(sub: &Sub, n: usize) -> Vec<(String, i64, f64)> {
    wait_until(Duration::from_secs(30), &format!("{n} samples"), || {
        samples(sub).len() >= n
    });
    std::thread::sleep(Duration::from_millis(300));
    samples(sub)
}

/// `(ts, value)` of every row of a NAB file, read independently of the replay code.
fn nab_rows(path: &Path) -> Vec<(i64, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (t, v) = l.trim_end().split_once(',').unwrap();
            let t = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap();
            (t.and_utc().timestamp_millis(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn nab_file_arrives_whole_once_in_order_with_utc_timestamps() {
    let mq = Mosquitto::start();
    let sub = Sub::start_ready(mq.port, "sensors/+/data");
    let path = nab(NAB_FILE);
    let want = nab_rows(&path);
    assert_eq!(want.len(), NAB_ROWS);
    assert_eq!(want[0].0, NAB_FIRST_TS);

    let out = replay(mq.port, &[path.to_str().unwrap(), "--speed", "max"]);
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!("{NAB_ROWS} samples published")),
        "{summary}"
    );
    assert!(summary.contains("0 rows skipped"), "{summary}");

    let got = wait_samples(&sub, NAB_ROWS);
    assert_eq!(got.len(), NAB_ROWS, "every sample exactly once");
    // A single-value-column file is the sensor named after its file stem.
    assert!(got.iter().all(|(t, _, _)| t == "sensors/speed_7578/data"));
    let got: Vec<(i64, f64)> = got.iter().map(|(_, ts, v)| (*ts, *v)).collect();
    assert_eq!(got, want, "same timestamps (UTC), values and order");
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn skab_layout_semicolons_labels_left_out_names_normalised() {
    let mq = Mosquitto::start();
    let sub = Sub::start_ready(mq.port, "sensors/+/data");
    let path = fixture("skab_valve1_0.csv");
    let out = replay(
        mq.port,
        &[
            path.to_str().unwrap(),
            "--speed",
            "max",
            "--sensor-prefix",
            "valve1_",
            // At QoS 0 too, everything is on the wire before the process exits.
            "--qos",
            "0",
        ],
    );
    assert!(out.status.success());
    let rows = 8;
    let got = wait_samples(&sub, rows * 8);
    assert_eq!(got.len(), rows * 8);
    let topics: BTreeSet<&str> = got.iter().map(|(t, _, _)| t.as_str()).collect();
    let want: BTreeSet<String> = [
        "accelerometer1rms",
        "accelerometer2rms",
        "current",
        "pressure",
        "temperature",
        "thermocouple",
        "voltage",
        "volume_flow_raterms",
    ]
    .iter()
    .map(|c| format!("sensors/valve1_{c}/data"))
    .collect();
    assert_eq!(
        topics,
        want.iter().map(String::as_str).collect(),
        "labels (anomaly, changepoint) are not published"
    );
    // First row, 2020-03-09 10:14:33 UTC; a negative value from the third row.
    let t0 = 1_583_748_873_000;
    assert!(got.contains(&("sensors/valve1_voltage/data".into(), t0, 223.054)));
    assert!(got.contains(&(
        "sensors/valve1_volume_flow_raterms/data".into(),
        t0 + 7000,
        32.0
    )));
    assert!(got.contains(&("sensors/valve1_pressure/data".into(), t0 + 2000, -0.273216)));
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "timestamp order");
}

#[test]
fn files_merge_in_global_timestamp_order() {
    let mq = Mosquitto::start();
    let sub = Sub::start_ready(mq.port, "sensors/+/data");
    let dir = tempfile::tempdir().unwrap();
    // Three ways to write the same clock: ISO 8601 with Z, epoch seconds, +02:00 offsets.
    let a = write(
        dir.path(),
        "a.csv",
        "timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:00:03Z,4\n2024-01-01T00:00:05.500Z,6\n",
    );
    let b = write(
        dir.path(),
        "b.csv",
        "ts;value\n1704067201;2\n1704067203;5\n1704067207;8\n",
    );
    let c = write(
        dir.path(),
        "c.csv",
        "time,value\n2024-01-01 02:00:02+02:00,3\n2024-01-01 02:00:06+02:00,7\n",
    );
    let out = replay(
        mq.port,
        &[
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            c.to_str().unwrap(),
            "--speed",
            "max",
        ],
    );
    assert!(out.status.success());
    let got = wait_samples(&sub, 8);
    let t0 = 1_704_067_200_000;
    let want = [
        ("a", 0, 1.0),
        ("b", 1000, 2.0),
        ("c", 2000, 3.0),
        ("a", 3000, 4.0),
        ("b", 3000, 5.0),
        ("a", 5500, 6.0),
        ("c", 6000, 7.0),
        ("b", 7000, 8.0),
    ]
    .map(|(s, dt, v)| (format!("sensors/{s}/data"), t0 + dt, v));
    assert_eq!(got, want.to_vec());
}

#[test]
fn speed_paces_by_event_time() {
    let mq = Mosquitto::start();
    let sub = Sub::start_ready(mq.port, "sensors/+/data");
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "slow.csv",
        "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:01,2\n2024-01-01 00:00:02,3\n",
    );
    let started = Instant::now();
    let out = replay(mq.port, &[f.to_str().unwrap(), "--speed", "2"]);
    let took = started.elapsed();
    assert!(out.status.success());
    // 2 s of event time at 2× real time: at least 1 s (a lower bound only).
    assert!(took >= Duration::from_millis(950), "took {took:?}");
    let got = wait_samples(&sub, 3);
    assert_eq!(got.len(), 3);
    let arrivals: Vec<Instant> = sub
        .snapshot()
        .into_iter()
        .filter(|(t, _, _)| t.starts_with("sensors/"))
        .map(|(_, _, at)| at)
        .collect();
    assert!(
        arrivals[2] - arrivals[0] >= Duration::from_millis(900),
        "the last sample arrived {:?} after the first",
        arrivals[2] - arrivals[0]
    );
}

#[test]
fn missing_file_or_no_timestamp_column_exits_2_naming_it() {
    // Nothing is contacted: the files are checked before the broker.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.csv");
    let out = replay(port, &[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no-such-file.csv"),
        "{}",
        stderr(&out)
    );

    let bad = write(dir.path(), "when.csv", "when,value\n1,2\n");
    let good = nab(NAB_FILE);
    let out = replay(port, &[good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("when.csv") && err.contains("no timestamp column"),
        "{err}"
    );

    let out = replay(port, &[good.to_str().unwrap(), "--sensor-prefix", "a/b"]);
    assert_eq!(out.status.code(), Some(2));
    let out = replay(port, &[good.to_str().unwrap(), "--speed", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = bin_command()
        .args(["replay", "--broker", "http://127.0.0.1:1"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--broker"), "{}", stderr(&out));
}

#[test]
fn unreachable_broker_exits_1() {
    let port = free_port(); // nothing listens there
    let out = replay(
        port,
        &[nab(NAB_FILE).to_str().unwrap(), "--connect-timeout", "1s"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the broker") && err.contains(&port.to_string()),
        "{err}"
    );
}

#[test]
fn bad_rows_are_skipped_counted_and_reported_with_file_and_line() {
    let mq = Mosquitto::start();
    let sub = Sub::start_ready(mq.port, "sensors/+/data");
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.csv",
        "timestamp;a;b\r\n\
         2024-01-01 00:00:00;1;10\r\n\
         not a time;2;20\r\n\
         2024-01-01 00:00:02;;30\r\n\
         \r\n\
         2024-01-01 00:00:03;4;oops\r\n\
         2024-01-01 00:00:04;NaN;50\r\n",
    );
    let out = replay(mq.port, &[f.to_str().unwrap(), "--speed", "max"]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.csv:3: bad timestamp"), "{err}");
    assert!(err.contains("bad.csv:6: bad value \"oops\" for b"), "{err}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("4 samples published"), "{summary}");
    assert!(summary.contains("2 rows skipped"), "{summary}");
    assert!(summary.contains("1 non-finite values skipped"), "{summary}");
    let got = wait_samples(&sub, 4);
    let t0 = 1_704_067_200_000;
    assert_eq!(
        got,
        vec![
            ("sensors/a/data".into(), t0, 1.0),
            ("sensors/b/data".into(), t0, 10.0),
            ("sensors/b/data".into(), t0 + 2000, 30.0),
            ("sensors/b/data".into(), t0 + 4000, 50.0),
        ]
    );
}

#[test]
fn batch_and_binary_replays_are_ingested_by_a_gateway() {
    let mq = Mosquitto::start();
    let url = mq.url();
    let gw = Gw::start(&format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n"
    ));
    // Only the JSON batches are recorded: mosquitto_sub prints binary payloads raw.
    let sub = Sub::start_ready(mq.port, "sensors/batch_speed_7578/data");
    let path = nab(NAB_FILE);
    let path = path.to_str().unwrap();
    let out = replay(
        mq.port,
        &[
            path,
            "--speed",
            "max",
            "--format",
            "batch",
            "--sensor-prefix",
            "batch_",
        ],
    );
    assert!(out.status.success());
    for (format, prefix) in [("binary", "bin_"), ("binary64", "bin64_")] {
        let args = [
            path,
            "--speed",
            "max",
            "--format",
            format,
            "--batch",
            "250",
            "--sensor-prefix",
            prefix,
        ];
        assert!(replay(mq.port, &args).status.success());
    }

    let got = wait_samples(&sub, NAB_ROWS);
    assert_eq!(got.len(), NAB_ROWS);
    let batches = sub.json("sensors/");
    assert_eq!(batches.len(), NAB_ROWS.div_ceil(100), "full batches of 100");
    assert_eq!(
        got.iter().map(|(_, t, v)| (*t, *v)).collect::<Vec<_>>(),
        nab_rows(Path::new(path))
    );

    let want = (3 * NAB_ROWS) as f64;
    wait_until(
        Duration::from_secs(60),
        "every replayed sample ingested",
        || gw.metric("edgegw_samples_ingested_total") >= want,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(gw.metric("edgegw_samples_ingested_total"), want);
    let rejected: f64 = gw
        .metric_family("edgegw_ingest_rejected_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(rejected, 0.0);
    assert_eq!(gw.stop(), Some(0));
}

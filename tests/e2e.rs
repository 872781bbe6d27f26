//! End to end over real brokers and real MQTT clients: the `edgegw` binary between a
//! mosquitto (or its embedded rumqttd) and `mosquitto_pub`/`mosquitto_sub`.

#![allow(clippy::unwrap_used)] // tests and benches may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The exposition without its sample-less families, and their names. OpenMetrics allows a
/// family without samples, but the PEG grammar of `openmetrics-parser` reads the descriptors
/// of such a family and of the next one as one family and fails; so those are set aside.
fn split_empty_families(text: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut empty = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let mut flush = |block: &mut Vec<&str>, out: &mut String| {
        if block.iter().any(|l| !l.starts_with('#')) {
            for l in block.iter() {
                out.push_str(l);
                out.push('\n');
            }
        } else if let Some(t) = block.iter().find_map(|l| l.strip_prefix("# TYPE ")) {
            empty.push(t.split(' ').next().unwrap_or("").to_string());
        }
        block.clear();
    };
    for line in text.lines() {
        if line.starts_with("# HELP ") || line == "# EOF" {
            flush(&mut block, &mut out);
        }
        if line == "# EOF" {
            out.push_str("# EOF\n");
            break;
        }
        block.push(line);
    }
    flush(&mut block, &mut out);
    (out, empty)
}

#[test]
fn level_shift_alerts_normal_sensors_stay_quiet_and_summaries_flow() {
    let mq = Mosquitto::start();
    let url = mq.url();
    let gw = Gw::start(&format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [summary]\nperiod = \"1s\"\n[sensors]\nalert_cooldown = 0\nalert_repeat = 100\n"
    ));
    // A level shift is a change, not a new permanent state: the sensor flags it at onset and
    // then learns the new level (its baseline adapts), so the episode ends after a few windows.
    // `alert_repeat` would remind every 100 samples (10 s at 10 Hz) while it lasted.
    // This backfill queues minutes of windows at once and the default two inference workers
    // finish a sensor's batches in either order; the sensor applies its decisions in window
    // order, so the detection delay asserted below is the detector's, not the scheduler's.
    let sub = Sub::start(mq.port, "edgegw/gw-01/#");

    let sensors = 10;
    let secs = 240;
    let start = edgegw_actors::status::now_ms() - 600_000;
    let shift_at = start + 150_000;
    let mut fleet = quiet_fleet(sensors, 7, start);
    shift_level(&mut fleet, 3, shift_at, 1_000_000);
    let shifted = fleet.id(3).to_string();
    let mut out = Vec::new();
    fleet.tick(start + secs * 1000 - 1, &mut out);
    let total = out.len();
    publish_fleet(mq.port, &fleet, &out, 20);
    settle(&gw, total as f64);

    // The operator figures of /status come from the same instruments, over their windows.
    let mut figures = serde_json::Value::Null;
    wait_until(Duration::from_secs(10), "figures on /status", || {
        figures = gw.status()["figures"].clone();
        figures["alerts_per_min"].as_f64().is_some_and(|a| a > 0.0)
    });
    println!("/status figures after the run: {figures}");
    let p99 = figures["decision_latency_p99_ms"].as_f64().unwrap();
    assert!(p99 > 0.0 && p99 < 10_000.0, "p99 {p99} ms");
    assert!(figures["window_s"].as_f64().unwrap() > 0.0);

    // /metrics is valid OpenMetrics, checked by an independent parser, and carries every
    // instrument SPEC.md names (a family without samples yet, e.g. no rejection so far, by
    // its `# TYPE` line).
    let text = gw.get("/metrics").1;
    let (with_samples, empty) = split_empty_families(&text);
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&with_samples)
        .unwrap_or_else(|e| panic!("/metrics is not valid OpenMetrics: {e:?}\n{text}"));
    for name in SPEC_FAMILIES {
        assert!(
            exposition.families.contains_key(name) || empty.iter().any(|e| e == name),
            "{name} missing from /metrics"
        );
    }
    assert!(exposition.families.len() > empty.len());

    let decisions = gw.metric("edgegw_decisions_total");
    wait_until(Duration::from_secs(20), "alerts upstream", || {
        sub.json("/alerts/").len() as f64 >= gw.metric("edgegw_alerts_total")
    });
    let alerts = sub.json("/alerts/");
    let (on_shifted, others): (Vec<_>, Vec<_>) = alerts
        .iter()
        .partition(|(t, _)| t.ends_with(&format!("/{shifted}")));
    let per_sensor = decisions / sensors as f64;
    let false_rate = others.len() as f64 / (decisions - per_sensor).max(1.0);
    println!(
        "decisions {decisions}, alerts on the shifted sensor {}, false alerts on {} normal sensors: {} ({:.3}% of their decisions)",
        on_shifted.len(),
        sensors - 1,
        others.len(),
        false_rate * 100.0
    );
    assert!(
        decisions >= (sensors as f64) * 80.0,
        "too few decisions: {decisions}"
    );
    // Detected at onset: the first alert's window ends within 10 s of the shift.
    let first = on_shifted
        .iter()
        .map(|(_, a)| a["window"]["end"].as_i64().unwrap())
        .min();
    println!(
        "first alert {} ms after the shift",
        first.map_or(-1, |f| f - shift_at)
    );
    assert!(
        !on_shifted.is_empty(),
        "the level shift raised no alert ({} on the shifted sensor)",
        on_shifted.len()
    );
    assert!(
        first.is_some_and(|f| f - shift_at <= 10_000),
        "late detection: {first:?}"
    );
    assert!(
        false_rate <= 0.01,
        "false-alert rate {false_rate} above 1%: {others:?}"
    );
    for (topic, a) in &on_shifted {
        assert_eq!(topic, &format!("edgegw/gw-01/alerts/{shifted}"));
        for k in [
            "id",
            "seq",
            "ts",
            "trace_id",
            "sensor",
            "window",
            "score",
            "threshold",
            "model",
            "features",
        ] {
            assert!(a.get(k).is_some(), "alert lacks {k}: {a}");
        }
        assert!(
            a["window"]["end"].as_i64().unwrap() >= shift_at,
            "alert before the shift: {a}"
        );
        assert_eq!(a["window"]["n"], 64);
        assert!(a["score"].as_f64().unwrap() > a["threshold"].as_f64().unwrap());
        assert_eq!(a["features"].as_object().unwrap().len(), 11);
        assert_eq!(a["trace_id"].as_str().unwrap().len(), 32);
        assert!(a["model"]["name"].is_string() && a["model"]["version"].is_string());
    }

    wait_until(
        Duration::from_secs(20),
        "a summary for every sensor",
        || {
            sub.json("/summaries/")
                .iter()
                .map(|(t, _)| t.clone())
                .collect::<BTreeSet<_>>()
                .len()
                >= sensors
        },
    );
    for (_, s) in sub.json("/summaries/") {
        for k in [
            "id", "seq", "ts", "trace_id", "sensor", "period", "count", "mean", "std", "min",
            "max", "p50", "p95", "alerts", "model",
        ] {
            assert!(s.get(k).is_some(), "summary lacks {k}: {s}");
        }
        assert!(s["min"].as_f64() <= s["p50"].as_f64() && s["p50"].as_f64() <= s["max"].as_f64());
        assert!(s["period"]["end"].as_i64() > s["period"]["start"].as_i64());
    }

    // Raw troubleshooting windows: the alert's window and the 64 samples after it (fewer
    // "before" samples when the decision came back after the ring had moved on, which this
    // test provokes by replaying faster than real time).
    wait_until(
        Duration::from_secs(20),
        "a raw window for the shifted sensor",
        || !sub.json(&format!("/raw/{shifted}")).is_empty(),
    );
    let raws: Vec<_> = sub
        .json("/raw/")
        .into_iter()
        .filter(|(_, r)| r["reason"] == "alert")
        .collect();
    assert!(!raws.is_empty());
    // Raw windows only around alerts: each one names an alert of its own sensor.
    let alerted: BTreeSet<(String, i64)> = alerts
        .iter()
        .map(|(_, a)| {
            (
                a["sensor"].as_str().unwrap().to_string(),
                a["window"]["end"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(raws
        .iter()
        .any(|(t, _)| t.ends_with(&format!("/raw/{shifted}"))));
    for (topic, r) in &raws {
        let sensor = r["sensor"].as_str().unwrap();
        assert_eq!(topic, &format!("edgegw/gw-01/raw/{sensor}"));
        assert!(
            alerted.contains(&(sensor.to_string(), r["alert_window_end"].as_i64().unwrap())),
            "raw window not around an alert of its sensor: {r}"
        );
        let samples = r["samples"].as_array().unwrap();
        assert!((64..=128).contains(&samples.len()), "{}", samples.len());
        assert_eq!(r["window"]["n"].as_u64().unwrap() as usize, samples.len());
        let end = r["alert_window_end"].as_i64().unwrap();
        let ts: Vec<i64> = samples.iter().map(|p| p[0].as_i64().unwrap()).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            ts.iter().filter(|t| **t > end).count(),
            64,
            "64 samples after the alert"
        );
    }

    // A raw-request from the cloud gets the kept samples of the span from the store; a
    // malformed one is counted and dropped. Ask for the span of a window that was sent.
    let kept = sub
        .json("/raw/")
        .into_iter()
        .find(|(_, r)| r["reason"] == "alert")
        .unwrap()
        .1;
    let (from, to) = (
        kept["window"]["start"].as_i64().unwrap(),
        kept["window"]["end"].as_i64().unwrap(),
    );
    publish_once(
        mq.port,
        "edgegw/gw-01/feedback/raw-request",
        &format!("{{\"sensor\":\"{shifted}\",\"from\":{from},\"to\":{to},\"id\":\"r1\"}}"),
    );
    publish_once(
        mq.port,
        "edgegw/gw-01/feedback/raw-request",
        "{\"sensor\": 3}",
    );
    wait_until(Duration::from_secs(20), "raw-request answered", || {
        sub.json("/raw/")
            .iter()
            .any(|(_, r)| r["request_id"] == "r1")
    });
    let answer = sub
        .json("/raw/")
        .into_iter()
        .find(|(_, r)| r["request_id"] == "r1")
        .unwrap()
        .1;
    assert_eq!(answer["found"], true, "{answer}");
    let samples = answer["samples"].as_array().unwrap();
    assert_eq!(
        samples.len() as u64,
        kept["window"]["n"].as_u64().unwrap(),
        "the whole kept window"
    );
    assert!(samples
        .iter()
        .all(|p| (from..=to).contains(&p[0].as_i64().unwrap())));
    // The malformed request came on its own connection: it may be handled after r1.
    wait_until(
        Duration::from_secs(10),
        "the malformed raw-request counted",
        || gw.metric("edgegw_feedback_dropped_total{kind=\"raw-request\"}") == 1.0,
    );
    assert_eq!(
        gw.metric("edgegw_feedback_total{kind=\"raw-request\"}"),
        1.0
    );

    // Every committed seq (1 ..= next_seq - 1) arrives: nothing committed went missing.
    let hw = gw.status()["store"]["next_seq"].as_u64().unwrap() - 1;
    let upstream = |sub: &Sub| -> Vec<(String, serde_json::Value)> {
        sub.json("/alerts/")
            .into_iter()
            .chain(sub.json("/summaries/"))
            .chain(sub.json("/raw/"))
            .collect()
    };
    wait_until(
        Duration::from_secs(20),
        "every committed seq upstream",
        || {
            let seqs: BTreeSet<u64> = upstream(&sub)
                .iter()
                .map(|(_, v)| v["seq"].as_u64().unwrap())
                .collect();
            (1..=hw).all(|s| seqs.contains(&s))
        },
    );
    let all = upstream(&sub);
    let seqs: BTreeSet<u64> = all
        .iter()
        .map(|(_, v)| v["seq"].as_u64().unwrap())
        .collect();
    let ids: BTreeSet<&str> = all.iter().map(|(_, v)| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), seqs.len(), "an id was reused");

    assert_eq!(gw.stop(), Some(0), "clean shutdown exits 0");
}

#[test]
fn malformed_payloads_are_rejected_counted_and_kept_while_good_data_flows() {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"{url}\"\nmax_payload_bytes = 1024\n[uplink]\nurl = \"{url}\"\n"
    ));
    let now = edgegw_actors::status::now_ms();
    let corpus: &[(&str, &str)] = &[
        ("not json at all", "malformed_json"),
        ("{\"v\": 1", "malformed_json"),
        ("{\"v\": \"21.5\"}", "wrong_type"),
        ("[1, 2, 3]", "wrong_type"),
        ("{\"samples\": [[1731000000000]]}", "wrong_type"),
        ("{\"samples\": \"many\"}", "wrong_type"),
        ("{\"ts\": 1731000000000}", "wrong_type"),
        ("{\"v\": 1e999}", "non_finite"),
        ("{\"ts\": 99999999999999, \"v\": 1}", "timestamp"),
        ("{\"ts\": 5, \"v\": 1}", "timestamp"),
    ];
    let mut bad = Pub::start(port, "sensors/bad/data", 1);
    for (p, _) in corpus {
        bad.send(p);
    }
    bad.send(&format!("{{\"v\": 1, \"pad\": \"{}\"}}", "x".repeat(2000)));
    bad.finish();

    // A good sensor: 700 samples, plus one duplicate and one far-too-late sample.
    let mut good = Pub::start(port, "sensors/good/data", 1);
    let t0 = now - 200_000;
    for i in 0..700 {
        let v = 20.0 + ((i as f64) * 0.3).sin();
        good.send(&format!(
            "{{\"ts\": {}, \"v\": {v}, \"unit\": \"C\"}}",
            t0 + i * 100
        ));
    }
    good.send(&format!("{{\"ts\": {}, \"v\": 1}}", t0 + 699 * 100));
    good.send(&format!("{{\"ts\": {}, \"v\": 1}}", t0));
    good.finish();

    wait_until(Duration::from_secs(30), "good samples ingested", || {
        gw.metric("edgegw_samples_ingested_total") >= 700.0
    });
    let mut expected: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, r) in corpus {
        *expected.entry(r).or_default() += 1.0;
    }
    *expected.entry("oversize").or_default() += 1.0;
    *expected.entry("duplicate").or_default() += 1.0;
    *expected.entry("late").or_default() += 1.0;
    wait_until(Duration::from_secs(10), "rejections counted", || {
        expected.iter().all(|(r, n)| {
            gw.metric(&format!("edgegw_ingest_rejected_total{{reason=\"{r}\"}}")) == *n
        })
    });
    assert_eq!(gw.metric("edgegw_samples_ingested_total"), 700.0);
    let status = gw.status();
    let held = status["dead_letters"]["held"].as_u64().unwrap();
    assert_eq!(
        held as f64,
        expected.values().sum::<f64>(),
        "every rejection kept as a dead letter"
    );
    assert!(status["dead_letters"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["reason"] == "late"));
    assert_eq!(gw.get("/healthz").0, 200);
    assert_eq!(gw.get("/readyz").0, 200);
    assert_eq!(gw.stop(), Some(0));
}

/// Publishes the bytes of `path` as one message with `mosquitto_pub -f`.
fn publish_file(port: u16, topic: &str, path: &std::path::Path) {
    let st = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-f",
        ])
        .arg(path)
        .status()
        .expect("mosquitto_pub not installed");
    assert!(st.success(), "mosquitto_pub -f {}", path.display());
}

#[test]
fn binary_batches_are_ingested_and_malformed_ones_rejected() {
    use edgegw_actors::ingest::binary::{encode, encode_with, Width};
    use edgegw_actors::sensor::window::Sample;
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let t0 = edgegw_actors::status::now_ms() - 600_000;
    let batch = |from: i64, n: i64| -> Vec<Sample> {
        (from..from + n)
            .map(|i| Sample {
                ts: t0 + i * 10,
                v: 20.0 + (i as f64 * 0.1).sin(),
            })
            .collect()
    };
    // Two sensors: f32 batches of 250 and one f64 batch of 300.
    let mut files = Vec::new();
    for (k, (sensor, samples, width)) in [
        ("b1", batch(0, 250), Width::F32),
        ("b1", batch(250, 250), Width::F32),
        ("b2", batch(0, 300), Width::F64),
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = Vec::new();
        encode_with(&samples, width, &mut p);
        let f = dir.path().join(format!("good{k}.bin"));
        std::fs::write(&f, &p).unwrap();
        files.push((sensor, f));
    }
    let mut good = Vec::new();
    encode(&batch(500, 10), &mut good);
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 3);
    let mut version = good.clone();
    version[1] = 9;
    let mut nan = Vec::new();
    let mut bad_value = batch(500, 10);
    bad_value[4].v = f64::INFINITY;
    encode(&bad_value, &mut nan);
    for (k, p) in [truncated, version, nan].iter().enumerate() {
        let f = dir.path().join(format!("bad{k}.bin"));
        std::fs::write(&f, p).unwrap();
        files.push(("bad", f));
    }
    for (sensor, f) in &files {
        publish_file(port, &format!("sensors/{sensor}/data"), f);
    }
    wait_until(Duration::from_secs(20), "binary samples ingested", || {
        gw.metric("edgegw_samples_ingested_total") >= 800.0
            && gw.metric("edgegw_ingest_rejected_total{reason=\"malformed_binary\"}") >= 2.0
            && gw.metric("edgegw_ingest_rejected_total{reason=\"non_finite\"}") >= 1.0
    });
    assert_eq!(gw.metric("edgegw_samples_ingested_total"), 800.0);
    assert_eq!(
        gw.metric("edgegw_ingest_rejected_total{reason=\"malformed_binary\"}"),
        2.0
    );
    assert_eq!(gw.status()["dead_letters"]["held"].as_u64(), Some(3));
    assert_eq!(gw.stop(), Some(0));
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[sensors]\nwindow = 0\n", "sensors.window"),
        ("[sensors]\nwindow = 32\nhop = 64\n", "sensors.hop"),
        ("[inference]\nworkers = 0\n", "inference.workers"),
        ("[sensors]\nwindow = \"large\"\n", "sensors.window"),
        ("[uplink]\nprefx = \"x\"\n", "uplink.prefx"),
        ("[summary]\nperiod = \"soon\"\n", "summary.period"),
        ("[telemetry]\nlog_window = \"0s\"\n", "telemetry.log_window"),
    ];
    for (i, (toml, key)) in cases.iter().enumerate() {
        let p = write(dir.path(), &format!("bad{i}.toml"), toml);
        for args in [
            vec!["check-config".to_string(), p.display().to_string()],
            vec!["run".into(), "--config".into(), p.display().to_string()],
        ] {
            let out = bin_command().args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(key),
                "{args:?}: message does not name {key}: {err}"
            );
        }
    }
    let good = write(dir.path(), "good.toml", "[gateway]\nid = \"gw-7\"\n");
    let out = bin_command()
        .args(["run", "--log-format", "yaml", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-format"));
    let out = bin_command()
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = bin_command()
        .args(["check-config"])
        .arg(&good)
        .env("EDGEGW_INFERENCE__MAX_BATCH", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("EDGEGW_INFERENCE__MAX_BATCH"));
}

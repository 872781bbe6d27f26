//! The feedback channel end to end: the `edgegw` binary between a real mosquitto and real
//! `mosquitto_pub` clients — a flood is limited without slowing ingest, thresholds change
//! decisions once per id, malformed and unauthorised feedback is refused and counted, a
//! signed model announcement is recorded and installed.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use ed25519_dalek::{Signer, SigningKey};
use edgegw_actors::feedback::validate::canonical_model_bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FB: &str = "edgegw/gw-01/feedback";

fn config(url: &str, extra: &str) -> String {
    format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [sensors]\nalert_cooldown = 0\n{extra}"
    )
}

fn fb_metric(gw: &Gw, name: &str, kind: &str) -> f64 {
    gw.metric(&format!("{name}{{kind=\"{kind}\"}}"))
}

/// Applied + dropped of `kind`.
fn handled(gw: &Gw, kind: &str) -> f64 {
    fb_metric(gw, "edgegw_feedback_total", kind)
        + fb_metric(gw, "edgegw_feedback_dropped_total", kind)
}

/// Sends malformed labels until one is counted: the uplink is subscribed from then on.
fn wait_subscribed(gw: &Gw, port: u16) {
    wait_until(Duration::from_secs(30), "feedback subscription", || {
        publish_once(port, &format!("{FB}/label"), "probe");
        std::thread::sleep(Duration::from_millis(200));
        fb_metric(gw, "edgegw_feedback_dropped_total", "label") >= 1.0
    });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_flood_of_feedback_is_limited_and_ingest_and_decisions_go_on() {
    let mq = Mosquitto::start();
    let gw = Gw::start(&config(
        &mq.url(),
        "[feedback]\nrate_per_sec = 20\nburst = 40\n",
    ));
    wait_subscribed(&gw, mq.port);
    let before: f64 = ["label", "raw-request"]
        .iter()
        .map(|k| handled(&gw, k))
        .sum();
    let applied_before: f64 = ["label", "raw-request"]
        .iter()
        .map(|k| fb_metric(&gw, "edgegw_feedback_total", k))
        .sum();

    // Sensors publish all along (QoS 1, every sample counted).
    let stop = Arc::new(AtomicBool::new(false));
    let sent_samples = Arc::new(AtomicU64::new(0));
    let sensors = feeder_counted(
        mq.port,
        4,
        Duration::from_millis(10),
        sent_samples.clone(),
        stop.clone(),
    );
    wait_until(Duration::from_secs(60), "first decisions", || {
        gw.metric("edgegw_decisions_total") > 0.0
    });
    let decisions_before = gw.metric("edgegw_decisions_total");

    // 100 000 feedback messages from two real clients, as fast as they go.
    let n = 50_000;
    let start = Instant::now();
    let flood: Vec<_> = ["label", "raw-request"]
        .into_iter()
        .map(|kind| {
            let port = mq.port;
            std::thread::spawn(move || {
                let mut p = Pub::start(port, &format!("{FB}/{kind}"), 1);
                for i in 0..n {
                    match kind {
                        "label" => p.send(&format!(
                            "{{\"sensor\":\"f{}\",\"from\":1,\"to\":2,\"label\":\"normal\"}}",
                            i % 4
                        )),
                        _ => p.send(&format!(
                            "{{\"sensor\":\"r{}\",\"from\":1,\"to\":2}}",
                            i % 1000
                        )),
                    }
                }
                assert!(p.finish());
            })
        })
        .collect();
    for f in flood {
        f.join().unwrap();
    }
    let sent_in = start.elapsed();
    wait_until(
        Duration::from_secs(180),
        "every feedback message counted",
        || {
            let h: f64 = ["label", "raw-request"]
                .iter()
                .map(|k| handled(&gw, k))
                .sum();
            h - before >= 2.0 * n as f64
        },
    );
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sensors.join().unwrap();

    let handled_now: f64 = ["label", "raw-request"]
        .iter()
        .map(|k| handled(&gw, k))
        .sum();
    let applied: f64 = ["label", "raw-request"]
        .iter()
        .map(|k| fb_metric(&gw, "edgegw_feedback_total", k))
        .sum::<f64>()
        - applied_before;
    println!(
        "flood: {} messages sent in {:.1} s, all counted after {elapsed:.1} s; applied {applied}, dropped {}",
        2 * n,
        sent_in.as_secs_f64(),
        handled_now - before - applied
    );
    assert_eq!(
        handled_now - before,
        2.0 * n as f64,
        "applied + dropped = sent"
    );
    assert!(
        applied <= 40.0 + 20.0 * elapsed,
        "applied {applied} in {elapsed:.1} s"
    );
    assert!(applied > 0.0);

    let samples = sent_samples.load(Ordering::Relaxed) as f64;
    wait_until(Duration::from_secs(60), "every sample ingested", || {
        gw.metric("edgegw_samples_ingested_total") >= samples
    });
    assert_eq!(gw.metric("edgegw_samples_ingested_total"), samples);
    assert!(
        gw.metric("edgegw_decisions_total") > decisions_before,
        "decisions went on"
    );
    // The per-sensor limiter held a key per sensor named; idle keys are cleaned up.
    let keys = gw.status()["feedback"]["limiter_keys"].as_u64().unwrap();
    println!("limiter keys right after the flood: {keys}");
    wait_until(
        Duration::from_secs(60),
        "idle limiter keys cleaned up",
        || gw.status()["feedback"]["limiter_keys"].as_u64() == Some(0),
    );
}

#[test]
fn threshold_feedback_changes_decisions_once_per_id_and_survives_a_restart() {
    let mq = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let toml = config(&mq.url(), "");
    let gw = Gw::start_in(dir.path(), &toml);
    wait_subscribed(&gw, mq.port);

    let start = edgegw_actors::status::now_ms() - 600_000;
    let mut fleet = quiet_fleet(2, 11, start);
    shift_level(&mut fleet, 1, start + 100_000, 10_000_000);
    let mut out = Vec::new();
    fleet.tick(start + 160_000, &mut out);
    let mut total = out.len();
    publish_fleet(mq.port, &fleet, &out, 20);
    settle(&gw, total as f64);
    let alerts = gw.metric("edgegw_alerts_total");
    assert!(alerts > 0.0, "the level shift alerts");

    // A `normal` label over the shifted span raises that sensor's threshold above its scores.
    let shifted = fleet.id(1).to_string();
    publish_once(
        mq.port,
        &format!("{FB}/label"),
        &format!(
            "{{\"sensor\":\"{shifted}\",\"from\":{},\"to\":{},\"label\":\"normal\",\"id\":\"l1\"}}",
            start,
            start + 160_000
        ),
    );
    wait_until(Duration::from_secs(20), "threshold calibrated", || {
        gw.status()["feedback"]["calibrations"] == 1
    });
    let cal = gw.status()["feedback"]["recent_calibrations"][0].clone();
    println!("calibration: {cal}");
    assert_eq!(cal["sensor"], shifted.as_str());
    assert!(cal["to"].as_f64().unwrap() > cal["from"].as_f64().unwrap());

    // No model key configured: an announcement is unauthorised.
    publish_once(mq.port, &format!("{FB}/model"), "{\"name\":\"m\",\"version\":\"2\",\"sha256\":\"00000000000000000000000000000000000000000000000000000000000000aa\",\"signature\":\"00\"}");
    // Threshold for every sensor, sent twice with the same id: applied once.
    for _ in 0..2 {
        publish_once(
            mq.port,
            &format!("{FB}/threshold"),
            "{\"sensor\":\"*\",\"threshold\":1000,\"id\":\"t1\"}",
        );
    }
    wait_until(
        Duration::from_secs(20),
        "threshold applied, duplicate seen",
        || gw.status()["feedback"]["duplicate"] == 1,
    );
    assert_eq!(fb_metric(&gw, "edgegw_feedback_total", "threshold"), 1.0);
    assert_eq!(gw.status()["feedback"]["threshold_all"], 1000.0);
    wait_until(
        Duration::from_secs(10),
        "unauthorised model counted",
        || fb_metric(&gw, "edgegw_feedback_dropped_total", "model") == 1.0,
    );

    let decisions = gw.metric("edgegw_decisions_total");
    let mut out = Vec::new();
    fleet.tick(start + 220_000, &mut out);
    total += out.len();
    publish_fleet(mq.port, &fleet, &out, 20);
    settle(&gw, total as f64);
    assert!(
        gw.metric("edgegw_decisions_total") > decisions,
        "decisions go on"
    );
    assert_eq!(
        gw.metric("edgegw_alerts_total"),
        alerts,
        "no alert above the new threshold"
    );
    assert_eq!(gw.stop(), Some(0));

    // The label is kept for retraining: `edgegw store export --labels`.
    let out = bin_command()
        .args(["store", "export", "--labels", "--path"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let labels = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(labels.lines().count(), 1, "{labels}");
    assert!(
        labels.contains("\"id\":\"l1\"") && labels.contains(&shifted),
        "{labels}"
    );

    // Restarted: the override is restored and the redelivered id is still recognised.
    let gw = Gw::start_in(dir.path(), &toml);
    assert_eq!(gw.status()["feedback"]["threshold_all"], 1000.0);
    wait_subscribed(&gw, mq.port);
    publish_once(
        mq.port,
        &format!("{FB}/threshold"),
        "{\"sensor\":\"*\",\"threshold\":3,\"id\":\"t1\"}",
    );
    wait_until(Duration::from_secs(20), "redelivery recognised", || {
        gw.status()["feedback"]["duplicate"] == 1
    });
    assert_eq!(gw.status()["feedback"]["threshold_all"], 1000.0);
    assert_eq!(fb_metric(&gw, "edgegw_feedback_total", "threshold"), 0.0);
}

#[test]
fn malformed_and_unauthorised_feedback_is_refused_signed_models_are_recorded() {
    let mq = Mosquitto::start();
    let key = SigningKey::from_bytes(&[7; 32]);
    let other = SigningKey::from_bytes(&[9; 32]);
    let gw = Gw::start(&config(
        &mq.url(),
        &format!(
            "[feedback]\npublic_key = \"{}\"\n[feedback.kinds.model]\nrate_per_sec = 10\nburst = 10\n",
            hex(key.verifying_key().as_bytes())
        ),
    ));
    wait_subscribed(&gw, mq.port);
    let dropped = |k: &str| fb_metric(&gw, "edgegw_feedback_dropped_total", k);
    let base_label = dropped("label");

    let sign = |k: &SigningKey, name: &str, sha: &str, path: &str| {
        hex(&k
            .sign(&canonical_model_bytes(name, "2", sha, path))
            .to_bytes())
    };
    let model = |name: &str, sha: &str, path: Option<&str>, sig: String| {
        let path = path.map_or(String::new(), |p| format!(",\"path\":\"{p}\""));
        format!("{{\"name\":\"{name}\",\"version\":\"2\",\"sha256\":\"{sha}\",\"signature\":\"{sig}\"{path}}}")
    };
    let sha = "96cfdaddecdd296711a4f9b3a9ab7711cb8b3b2d909299b373cb0c3b09913458";
    let pkg = format!("{}/config/model", env!("CARGO_MANIFEST_DIR"));

    let cases = [
        (
            "label",
            "{\"sensor\":\"s1\",\"from\":5,\"to\":1,\"label\":\"normal\"}".to_string(),
        ),
        (
            "label",
            "{\"sensor\":\"s1\",\"from\":1,\"to\":5,\"label\":\"maybe\"}".into(),
        ),
        ("threshold", "{\"sensor\":\"*\",\"threshold\":-1}".into()),
        ("threshold", "{\"sensor\":\"a/b\",\"threshold\":1}".into()),
        ("raw-request", "[1,2]".into()),
        ("model", model("m", sha, None, sign(&other, "m", sha, ""))),
        ("model", model("m", sha, None, "zz".into())),
    ];
    for (kind, payload) in &cases {
        publish_once(mq.port, &format!("{FB}/{kind}"), payload);
    }
    wait_until(Duration::from_secs(20), "every bad message counted", || {
        dropped("label") - base_label == 2.0
            && dropped("threshold") == 2.0
            && dropped("raw-request") == 1.0
            && dropped("model") == 2.0
    });
    let letters = gw.status()["dead_letters"]["recent"].to_string();
    assert!(
        letters.contains("unauthorised") && letters.contains("malformed"),
        "{letters}"
    );

    // Correctly signed: recorded; with a package path whose weights match, installed.
    publish_once(
        mq.port,
        &format!("{FB}/model"),
        &model("m", sha, None, sign(&key, "m", sha, "")),
    );
    wait_until(Duration::from_secs(20), "announcement recorded", || {
        gw.status()["feedback"]["model_announced"]["outcome"] == "received"
    });
    publish_once(
        mq.port,
        &format!("{FB}/model"),
        &model("m", sha, Some(&pkg), sign(&key, "m", sha, &pkg)),
    );
    wait_until(
        Duration::from_secs(30),
        "announced package installed",
        || gw.status()["feedback"]["model_announced"]["outcome"] == "installed",
    );
    assert_eq!(fb_metric(&gw, "edgegw_feedback_total", "model"), 2.0);
    // A signed announcement whose hash does not match the package: refused, model kept.
    let bad = "11".repeat(32);
    publish_once(
        mq.port,
        &format!("{FB}/model"),
        &model("m", &bad, Some(&pkg), sign(&key, "m", &bad, &pkg)),
    );
    wait_until(
        Duration::from_secs(30),
        "mismatched package refused",
        || gw.status()["feedback"]["model_announced"]["outcome"] == "refused",
    );
    let status = gw.status();
    assert_eq!(
        status["model"]["fallback"], false,
        "the running model stays"
    );
    assert!(
        status["mode"]["reasons"]
            .to_string()
            .contains("model_refused"),
        "{status}"
    );
}

/// With `feedback.public_key` set, a threshold command applies only signed by that key and
/// fresh: made by `edgegw model keygen` and `edgegw feedback sign-threshold`, as an operator
/// would; unsigned, stale and replayed ones change nothing.
#[test]
fn threshold_commands_apply_only_signed_fresh_and_once() {
    let mq = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cmd.key");
    let out = bin_command()
        .args(["model", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(public.len(), 64, "{public}");
    let sign = |threshold: &str, extra: &[&str]| {
        let out = bin_command()
            .args([
                "feedback",
                "sign-threshold",
                "--sensor",
                "*",
                "--threshold",
                threshold,
            ])
            .arg("--key")
            .arg(&key)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let gw = Gw::start(&config(
        &mq.url(),
        &format!("[feedback]\npublic_key = \"{public}\"\nmax_command_age = \"60s\"\n"),
    ));
    wait_subscribed(&gw, mq.port);
    let topic = format!("{FB}/threshold");
    let applied = || fb_metric(&gw, "edgegw_feedback_total", "threshold");
    let dropped = || fb_metric(&gw, "edgegw_feedback_dropped_total", "threshold");

    // Unsigned, and signed but stale (ten minutes old): refused as unauthorised.
    publish_once(
        mq.port,
        &topic,
        "{\"sensor\":\"*\",\"threshold\":1000,\"id\":\"u1\"}",
    );
    let old = (edgegw_actors::status::now_ms() - 600_000).to_string();
    publish_once(mq.port, &topic, &sign("1000", &["--ts", &old]));
    wait_until(Duration::from_secs(20), "both refused", || dropped() == 2.0);
    assert_eq!(applied(), 0.0);
    assert!(gw.status()["feedback"]["threshold_all"].is_null());
    let letters = gw.status()["dead_letters"]["recent"].to_string();
    assert!(
        letters.contains("unauthorised") && letters.contains("stale"),
        "{letters}"
    );

    // Signed and fresh: applied, once, though it is published twice.
    let cmd = sign("7.5", &["--id", "op-1"]);
    publish_once(mq.port, &topic, &cmd);
    publish_once(mq.port, &topic, &cmd);
    wait_until(Duration::from_secs(20), "signed threshold applied", || {
        gw.status()["feedback"]["threshold_all"] == 7.5
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(applied(), 1.0, "a replayed command is applied once");
    // Altered after signing: refused.
    publish_once(
        mq.port,
        &topic,
        &sign("7.5", &["--id", "op-2"]).replace("7.5", "900"),
    );
    wait_until(Duration::from_secs(20), "altered refused", || {
        dropped() == 3.0
    });
    assert_eq!(gw.status()["feedback"]["threshold_all"], 7.5);
    assert_eq!(gw.stop(), Some(0));
}

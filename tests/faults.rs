//! A stage made to panic (through the test-only fault hook) restarts by policy and the
//! pipeline carries on. Needs `--features fault-injection` (the README's test command sets it).
#![cfg(feature = "fault-injection")]
#![allow(clippy::unwrap_used)] // tests and benches may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn panicking_stages_restart_and_the_pipeline_carries_on() {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [summary]\nperiod = \"1s\"\n[supervisor]\nbackoff_initial = \"50ms\"\n"
    ));
    let sub = Sub::start(port, "edgegw/gw-01/summaries/#");
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(port, 4, stop.clone());
    wait_until(Duration::from_secs(60), "first decisions", || {
        gw.metric("edgegw_decisions_total") > 20.0
    });

    for stage in [
        "inference",
        "inference_worker",
        "sensor",
        "uplink",
        "ingest",
    ] {
        let (code, body) = gw.post(
            "/faults",
            &format!("{{\"stage\":\"{stage}\",\"kind\":\"panic\"}}"),
        );
        assert_eq!(code, 200, "arming {stage}: {body}");
        wait_until(
            Duration::from_secs(20),
            &format!("{stage} restart counted"),
            || gw.metric(&format!("edgegw_actor_restarts_total{{stage=\"{stage}\"}}")) >= 1.0,
        );
        let before = gw.metric("edgegw_decisions_total");
        wait_until(
            Duration::from_secs(30),
            &format!("decisions after {stage} restarted"),
            || gw.metric("edgegw_decisions_total") > before + 20.0,
        );
    }
    // Summaries still reach the uplink broker after the uplink itself restarted.
    let seen = sub.lines.lock().unwrap().len();
    wait_until(
        Duration::from_secs(20),
        "summaries after the restarts",
        || sub.lines.lock().unwrap().len() > seen,
    );
    let status = gw.status();
    for stage in ["ingest", "sensors", "inference", "uplink", "http"] {
        assert_eq!(
            status["stages"][stage]["state"], "running",
            "{stage}: {status}"
        );
    }
    assert!(status["stages"]["inference"]["restarts"].as_u64().unwrap() >= 1);
    stop.store(true, Ordering::Relaxed);
    feed.join().unwrap();
    assert_eq!(gw.stop(), Some(0));
}

#[test]
fn a_stage_that_cannot_start_degrades_the_gateway_without_a_crash_loop() {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [summary]\nperiod = \"1s\"\n[supervisor]\nbackoff_initial = \"20ms\"\nbackoff_max = \"300ms\"\nmax_restarts = 3\nperiod = \"30s\"\n"
    ));
    assert_eq!(
        gw.post("/faults", "{\"stage\":\"uplink\",\"kind\":\"fail_start\"}")
            .0,
        200
    );
    assert_eq!(
        gw.post("/faults", "{\"stage\":\"uplink\",\"kind\":\"panic\"}")
            .0,
        200
    );
    // Any message to the uplink now panics it, and every restart fails in pre_start.
    publish_once(port, "sensors/x/data", "{\"v\": 1}");
    std::thread::sleep(Duration::from_millis(200));
    wait_until(Duration::from_secs(20), "escalation", || {
        let s = gw.status();
        s["stages"]["uplink"]["state"] == "escalated" && s["mode"]["state"] != "online"
    });
    let reasons = gw.status()["mode"]["reasons"].to_string();
    assert!(reasons.contains("stage_escalated:uplink"), "{reasons}");
    // Escalated retries are slow (backoff_max), not a tight loop.
    let r1 = gw.metric("edgegw_actor_restarts_total{stage=\"uplink\"}");
    std::thread::sleep(Duration::from_secs(2));
    let r2 = gw.metric("edgegw_actor_restarts_total{stage=\"uplink\"}");
    assert!(r2 - r1 <= 10.0, "restart loop: {r1} → {r2} in 2 s");
    assert_eq!(gw.get("/healthz").0, 200);
    // Fixing the cause lets it recover.
    assert_eq!(
        gw.post(
            "/faults",
            "{\"stage\":\"uplink\",\"kind\":\"fail_start\",\"count\":0}"
        )
        .0,
        200
    );
    wait_until(Duration::from_secs(20), "uplink running again", || {
        gw.status()["stages"]["uplink"]["state"] == "running"
    });
    assert_eq!(gw.stop(), Some(0));
}

#[test]
fn the_feedback_stage_restarts_and_ids_seen_before_stay_seen() {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [supervisor]\nbackoff_initial = \"50ms\"\n"
    ));
    let topic = "edgegw/gw-01/feedback/threshold";
    let applied = || gw.metric("edgegw_feedback_total{kind=\"threshold\"}");
    wait_until(Duration::from_secs(20), "first threshold applied", || {
        publish_once(
            port,
            topic,
            "{\"sensor\":\"*\",\"threshold\":500,\"id\":\"a\"}",
        );
        std::thread::sleep(Duration::from_millis(200));
        applied() == 1.0
    });
    let (code, body) = gw.post("/faults", "{\"stage\":\"feedback\",\"kind\":\"panic\"}");
    assert_eq!(code, 200, "{body}");
    // The message in the stage's hands when it panics is lost (not remembered as seen).
    publish_once(
        port,
        topic,
        "{\"sensor\":\"*\",\"threshold\":7,\"id\":\"b\"}",
    );
    wait_until(Duration::from_secs(20), "feedback restart counted", || {
        gw.metric("edgegw_actor_restarts_total{stage=\"feedback\"}") >= 1.0
    });
    wait_until(Duration::from_secs(20), "feedback stage running", || {
        gw.status()["stages"]["feedback"]["state"] == "running"
    });
    publish_once(
        port,
        topic,
        "{\"sensor\":\"*\",\"threshold\":9,\"id\":\"a\"}",
    );
    publish_once(
        port,
        topic,
        "{\"sensor\":\"*\",\"threshold\":8,\"id\":\"c\"}",
    );
    wait_until(
        Duration::from_secs(20),
        "threshold applied after the restart",
        || applied() == 2.0,
    );
    let status = gw.status();
    assert_eq!(status["feedback"]["threshold_all"], 8.0, "{status}");
    assert_eq!(status["feedback"]["duplicate"], 1, "id a is still known");
    assert_eq!(gw.stop(), Some(0));
}

/// Panics the ingest stage under `strategy` and returns, per root stage, whether it was
/// restarted (its `since` moved) once the pipeline decides again.
fn root_stages_restarted_by_an_ingest_panic(strategy: &str) -> Vec<(&'static str, bool)> {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let gw = Gw::start(&format!(
        "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n\
         [supervisor]\nstrategy = \"{strategy}\"\nbackoff_initial = \"50ms\"\njitter = 0.0\n"
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(port, 2, stop.clone());
    wait_until(Duration::from_secs(60), "first decisions", || {
        gw.metric("edgegw_decisions_total") > 10.0
    });
    const STAGES: [&str; 5] = ["uplink", "feedback", "inference", "sensors", "http"];
    let since = |status: &serde_json::Value, stage: &str| status["stages"][stage]["since"].as_i64();
    let before = gw.status();
    let (code, body) = gw.post("/faults", "{\"stage\":\"ingest\",\"kind\":\"panic\"}");
    assert_eq!(code, 200, "{body}");
    wait_until(Duration::from_secs(20), "ingest restart counted", || {
        gw.metric("edgegw_actor_restarts_total{stage=\"ingest\"}") >= 1.0
    });
    let decided = gw.metric("edgegw_decisions_total");
    wait_until(
        Duration::from_secs(60),
        "decisions after the restart",
        || gw.metric("edgegw_decisions_total") > decided + 10.0,
    );
    let after = gw.status();
    for stage in STAGES.iter().chain(&["ingest"]) {
        assert_eq!(
            after["stages"][stage]["state"], "running",
            "{stage}: {after}"
        );
    }
    for stage in STAGES {
        assert_eq!(
            gw.metric(&format!("edgegw_actor_restarts_total{{stage=\"{stage}\"}}")),
            0.0,
            "{stage}: a sibling's restart is not its failure"
        );
    }
    stop.store(true, Ordering::Relaxed);
    feed.join().unwrap();
    assert_eq!(gw.stop(), Some(0));
    STAGES
        .into_iter()
        .map(|s| (s, since(&before, s) != since(&after, s)))
        .collect()
}

#[test]
fn one_for_one_at_the_root_restarts_the_failed_stage_alone() {
    let restarted = root_stages_restarted_by_an_ingest_panic("one_for_one");
    assert!(restarted.iter().all(|(_, r)| !r), "{restarted:?}");
}

#[test]
fn one_for_all_at_the_root_restarts_every_stage() {
    let restarted = root_stages_restarted_by_an_ingest_panic("one_for_all");
    assert!(restarted.iter().all(|(_, r)| *r), "{restarted:?}");
}

//! Bad input: a flood of malformed payloads of every kind next to valid sensors.

use edgegw_chaos::harness::{poll_until, Pub};
use edgegw_chaos::scenario::{Rig, Settings};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// The most dead letters the store keeps (configured below, well under the flood's size).
const DEAD_LETTERS_MAX: u64 = 500;

/// One kind of bad line: the reason it must be counted under and how to make line `i`.
struct Kind {
    reason: &'static str,
    topic: &'static str,
    line: fn(u64) -> String,
}

const KINDS: &[Kind] = &[
    Kind {
        reason: "malformed_json",
        topic: "sensors/junk1/data",
        line: |i| format!("not json {i}"),
    },
    Kind {
        // A NaN literal is not JSON.
        reason: "malformed_json",
        topic: "sensors/junk2/data",
        line: |i| format!("{{\"v\": NaN, \"i\": {i}}}"),
    },
    Kind {
        // "NaN" as a string is a string, not a number.
        reason: "wrong_type",
        topic: "sensors/junk3/data",
        line: |i| format!("{{\"v\": \"NaN\", \"i\": {i}}}"),
    },
    Kind {
        reason: "wrong_type",
        topic: "sensors/junk4/data",
        line: |i| format!("{{\"samples\": [[1731000000000, \"Infinity\"]], \"i\": {i}}}"),
    },
    Kind {
        reason: "wrong_type",
        topic: "sensors/junk5/data",
        line: |i| format!("{{\"samples\": \"{i}\"}}"),
    },
    Kind {
        // Out of f64 range: parses only as infinity.
        reason: "non_finite",
        topic: "sensors/junk6/data",
        line: |i| format!("{{\"v\": 1e999, \"i\": {i}}}"),
    },
    Kind {
        // Year 5138.
        reason: "timestamp",
        topic: "sensors/junk7/data",
        line: |i| format!("{{\"ts\": 99999999999999, \"v\": {i}}}"),
    },
    Kind {
        // The `+` level matched an empty sensor id.
        reason: "sensor_id",
        topic: "sensors//data",
        line: |i| format!("{{\"v\": {i}}}"),
    },
];

/// Tens of thousands of malformed payloads (soak: ten times more) flooded with
/// `mosquitto_pub -l` at QoS 1 (so the local broker drops none) while 6 valid sensors publish,
/// plus payloads over `ingest.max_payload_bytes`: every one is counted under its reason (the
/// sum equals what was sent), the dead letters held stay within `store.dead_letters_max`,
/// the valid sensors are still decided, memory stays bounded.
#[test]
fn malformed_flood() {
    let mut rig = Rig::start(
        "malformed_flood",
        Settings {
            store: format!("dead_letters_max = {DEAD_LETTERS_MAX}\n"),
            ..Settings::default()
        },
    );
    let per_kind: u64 = rig.pick(4_000, 40_000);
    let oversize: u64 = rig.pick(10, 100);
    let mut sent: BTreeMap<&str, u64> = BTreeMap::new();
    let decisions_before = rig.gw().metric("edgegw_decisions_total");
    let pubs: Vec<Pub> = KINDS
        .iter()
        .map(|k| {
            let mut p = Pub::start(rig.local.port, k.topic, 1);
            for i in 0..per_kind {
                p.send(&(k.line)(i));
            }
            *sent.entry(k.reason).or_default() += per_kind;
            p
        })
        .collect();
    let big = rig.local_dir_file(
        "oversize.json",
        &format!("{{\"v\": 1, \"pad\": \"{}\"}}", "x".repeat(300 * 1024)),
    );
    for _ in 0..oversize {
        let st = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &rig.local.port.to_string()])
            .args(["-t", "sensors/junk9/data", "-q", "1", "-f"])
            .arg(&big)
            .status()
            .unwrap();
        assert!(st.success());
    }
    *sent.entry("oversize").or_default() += oversize;
    for p in pubs {
        assert!(p.finish(), "mosquitto_pub of the flood failed");
    }
    let total: u64 = sent.values().sum();
    rig.inject(format!("{total} malformed payloads: {sent:?}"));
    let rejected = |rig: &Rig| -> f64 {
        rig.gw()
            .metric_family("edgegw_ingest_rejected_total")
            .iter()
            .map(|(_, v)| v)
            .sum()
    };
    let all_counted = poll_until(Duration::from_secs(rig.pick(60, 600)), || {
        rejected(&rig) >= total as f64
    });
    let got = rejected(&rig);
    rig.figure("rejected_total", got);
    let by_reason = rig.gw().metric_family("edgegw_ingest_rejected_total");
    rig.check(all_counted && got == total as f64, || {
        format!("{got} rejections counted, {total} sent: {by_reason:?}")
    });
    for (reason, n) in &sent {
        let c = rig.gw().metric(&format!(
            "edgegw_ingest_rejected_total{{reason=\"{reason}\"}}"
        ));
        rig.check(c == *n as f64, || {
            format!("reason {reason}: {c} counted, {n} sent")
        });
    }
    let held = rig.gw().status()["dead_letters"]["held"].as_u64();
    rig.figure("dead_letters_held", held.unwrap_or(0) as f64);
    rig.check(held.is_some_and(|h| h <= DEAD_LETTERS_MAX), || {
        format!("dead letters held {held:?}, max {DEAD_LETTERS_MAX}")
    });
    let decided = poll_until(Duration::from_secs(30), || {
        rig.gw().metric("edgegw_decisions_total") > decisions_before
    });
    rig.check(decided, || {
        "no decisions for the valid sensors during the flood".into()
    });
    rig.end_faults();
    rig.finish();
}

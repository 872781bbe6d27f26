//! Network faults on the uplink, through the fault proxy: a cut, a blackhole, flapping, a slow
//! link, and upstream broker restarts that wipe every session.

use edgegw_chaos::harness::{poll_until, Sub};
use edgegw_chaos::scenario::{Rig, Settings, GATEWAY};
use std::time::{Duration, Instant};

fn upstream_filter() -> String {
    format!("edgegw/{GATEWAY}/#")
}

/// A cut (every connection reset, new ones refused) for a compressed outage: the backlog
/// builds to hundreds of messages in the store, then drains paced by `replay_rate`.
#[test]
fn uplink_outage() {
    let mut rig = Rig::start(
        "uplink_outage",
        Settings {
            sensors: 8,
            uplink: "replay_rate = 200\n".into(),
            ..Settings::default()
        },
    );
    let outage = rig.pick(Duration::from_secs(30), Duration::from_secs(600));
    rig.inject(format!("uplink cut (reset, refused) for {outage:?}"));
    rig.proxy.cut();
    let offline = poll_until(Duration::from_secs(15), || {
        rig.gw().status()["mode"]["state"] == "offline"
    });
    rig.check(offline, || "the gateway never reported offline".into());
    // The outage itself is the fault schedule, not a wait for a condition.
    std::thread::sleep(outage);
    let held = rig.backlog().unwrap_or(0);
    rig.figure("backlog_at_heal", held as f64);
    rig.check(held >= 100, || {
        format!("the backlog should hold hundreds of messages at heal: {held}")
    });
    rig.end_faults();
    let online = poll_until(Duration::from_secs(30), || {
        rig.gw().status()["mode"]["state"] == "online"
    });
    rig.check(online, || "not online again after the outage".into());
    rig.finish();
}

/// Every byte silently dropped, no reset: only the no-ack watchdog (`uplink.ack_timeout`)
/// can notice; it must rebuild the session (a new connection through the proxy).
#[test]
fn blackholed_uplink() {
    let mut rig = Rig::start(
        "blackholed_uplink",
        Settings {
            uplink: "ack_timeout = \"3s\"\n".into(),
            ..Settings::default()
        },
    );
    let hole = rig.pick(Duration::from_secs(20), Duration::from_secs(300));
    rig.inject(format!("uplink blackholed for {hole:?} (ack_timeout 3s)"));
    let before = rig.proxy.connections();
    let t0 = Instant::now();
    rig.proxy.blackhole();
    // Correctness bound: ack_timeout (3 s) + the summary period (1 s, something is in flight)
    // + a generous 10 s margin.
    let noticed = poll_until(Duration::from_secs(14), || rig.proxy.connections() > before);
    rig.figure("watchdog_noticed_s", t0.elapsed().as_secs_f64());
    rig.check(noticed, || {
        "the uplink never rebuilt its session while blackholed".into()
    });
    std::thread::sleep(hole.saturating_sub(t0.elapsed()));
    rig.end_faults();
    rig.finish();
}

/// The link goes down and up on a seeded schedule for the whole phase.
#[test]
fn flapping_link() {
    let mut rig = Rig::start("flapping_link", Settings::default());
    let phase = rig.pick(Duration::from_secs(45), Duration::from_secs(1800));
    let end = Instant::now() + phase;
    let mut flaps = 0;
    while Instant::now() < end {
        let down = rig.random_duration(Duration::from_millis(200), Duration::from_millis(3000));
        let up = rig.random_duration(Duration::from_millis(300), Duration::from_millis(5000));
        rig.proxy.cut();
        std::thread::sleep(down);
        rig.proxy.heal();
        std::thread::sleep(up);
        flaps += 1;
    }
    rig.inject(format!(
        "{flaps} seeded flaps over {phase:?} (down 0.2–3 s, up 0.3–5 s)"
    ));
    rig.figure("flaps", flaps as f64);
    rig.end_faults();
    rig.finish();
}

/// Latency with jitter and a bandwidth cap for the whole phase: ingest and decisions are not
/// slowed by the uplink, and nothing is lost.
#[test]
fn slow_link() {
    let mut rig = Rig::start("slow_link", Settings::default());
    let phase = rig.pick(Duration::from_secs(30), Duration::from_secs(600));
    rig.inject(format!(
        "uplink latency 80 ms ± 40 ms and 16 KiB/s per direction for {phase:?}"
    ));
    rig.proxy
        .set_latency(Duration::from_millis(80), Duration::from_millis(40));
    rig.proxy.set_bandwidth(Some(16 * 1024));
    let stalls = rig.decision_stalls_over(phase);
    rig.check(stalls == 0, || {
        format!("decisions stalled in {stalls} 5 s slices of the slow link")
    });
    rig.end_faults();
    rig.finish();
}

/// The upstream broker is killed and restarted on the same port with every session and queued
/// message wiped, twice (soak: 20 times).
///
/// The gateway's promise ends at the upstream broker's PUBACK; a message the broker
/// acknowledged but had not yet passed to the recording subscriber is legitimately lost with
/// the broker. So the restart happens only when the recorder provably holds everything the
/// broker ever acknowledged: the proxy cuts the uplink first; the broker then publishes the
/// gateway's last will, and does so only after processing the dead session's last packet;
/// the will is routed to the recorder behind every message routed before it. Once the
/// recorder has that will, every acknowledged message is in the record, and the broker can
/// go. The recorder (whose session dies with the broker) is replaced by a fresh one, proven
/// subscribed with a probe, before the proxy heals.
#[test]
fn broker_restart_sessions_wiped() {
    let mut rig = Rig::start("broker_restart_sessions_wiped", Settings::default());
    let restarts = rig.pick(2, 20);
    for i in 0..restarts {
        let wills_before = last_wills(&rig);
        rig.proxy.cut();
        let will = poll_until(Duration::from_secs(20), || last_wills(&rig) > wills_before);
        rig.check(will, || {
            format!("restart {i}: the broker never published the gateway's last will")
        });
        if let Some(s) = rig.subs.last_mut() {
            s.stop();
        }
        rig.up.restart();
        let sub = Sub::start_ready(rig.up.port, &upstream_filter());
        rig.subs.push(sub);
        let down = rig.random_duration(Duration::from_millis(500), Duration::from_millis(3000));
        std::thread::sleep(down);
        rig.inject(format!(
            "restart {i}: uplink cut, broker killed and restarted (sessions wiped), down {down:?}"
        ));
        rig.proxy.heal();
        let back = poll_until(Duration::from_secs(30), || {
            rig.gw().status()["uplink_connected"] == true
        });
        rig.check(back, || {
            format!("restart {i}: the uplink never reconnected")
        });
        let up = rig.random_duration(Duration::from_millis(2000), Duration::from_millis(5000));
        std::thread::sleep(up);
    }
    rig.end_faults();
    rig.finish();
}

/// How many `offline` last wills the current recorder has seen.
fn last_wills(rig: &Rig) -> usize {
    rig.subs.last().map_or(0, |s| {
        s.snapshot()
            .iter()
            .filter(|(t, p, _)| t.ends_with("/status") && p.contains("last will"))
            .count()
    })
}

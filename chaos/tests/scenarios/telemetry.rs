//! Telemetry faults: the OTLP collector (a real rotel) behind its own fault proxy is
//! blackholed, healed, killed, brought back, and blackholed again for the shutdown. Tracing is
//! a passenger: decisions and deliveries never wait for it, spans it cannot deliver are
//! counted, export resumes when the collector does, and SIGTERM is not held by a dead exporter.

use edgegw_chaos::harness::poll_until;
use edgegw_chaos::harness::rotel::Rotel;
use edgegw_chaos::proxy::FaultProxy;
use edgegw_chaos::scenario::{Rig, Settings};
use std::time::{Duration, Instant};

const EXPORTED: &str = "edgegw_telemetry_spans_exported_total";
const DROPPED: &str = "edgegw_telemetry_spans_dropped_total";

/// Spans dropped so far, every reason.
fn dropped(rig: &Rig) -> f64 {
    rig.gw().metric_family(DROPPED).iter().map(|(_, v)| v).sum()
}

#[test]
fn collector_down() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut collector = Rotel::counting_on(edgegw_chaos::harness::free_port());
    let port = collector.port;
    let link = rt
        .block_on(FaultProxy::start(([127, 0, 0, 1], port).into()))
        .expect("collector proxy");
    let mut rig = Rig::start(
        "collector_down",
        Settings {
            // Every decision traced: the most telemetry this gateway can be asked to send.
            extra: format!(
                "[telemetry]\notlp_endpoint = \"http://{}\"\nsample_ratio = 1.0\n",
                link.addr()
            ),
            // The exporter's own shutdown bound is 3 s; a dead collector must not add more.
            shutdown_bound: Duration::from_secs(8),
            ..Settings::default()
        },
    );
    let exporting = poll_until(Duration::from_secs(30), || {
        rig.gw().metric(EXPORTED) > 0.0 && collector.received() > 0
    });
    rig.check(exporting, || {
        "no spans reached the collector before the faults".into()
    });
    let phase = rig.pick(Duration::from_secs(15), Duration::from_secs(300));

    // 1. Blackholed: nothing answers, nothing resets.
    rig.inject(format!("collector link blackholed for {phase:?}"));
    let drops_before = dropped(&rig);
    link.blackhole();
    let stalls = rig.decision_stalls_over(phase);
    rig.check(stalls == 0, || {
        format!("decisions stalled in {stalls} 5 s slices while the collector was blackholed")
    });
    let drops = dropped(&rig) - drops_before;
    rig.figure("dropped_while_blackholed", drops);
    rig.check(drops > 0.0, || {
        "no spans counted as dropped while the collector was blackholed".into()
    });

    // 2. Healed: export resumes on its own.
    link.heal();
    let (t0, exported, received) = (
        Instant::now(),
        rig.gw().metric(EXPORTED),
        collector.received(),
    );
    let resumed = poll_until(Duration::from_secs(30), || {
        rig.gw().metric(EXPORTED) > exported && collector.received() > received
    });
    rig.figure(
        "export_resumed_after_blackhole_s",
        t0.elapsed().as_secs_f64(),
    );
    rig.check(resumed, || {
        "export never resumed after the blackhole".into()
    });

    // 3. Killed: connections refused.
    rig.inject(format!("collector killed (SIGKILL) for {phase:?}"));
    collector.kill();
    let drops_before = dropped(&rig);
    let stalls = rig.decision_stalls_over(phase);
    rig.check(stalls == 0, || {
        format!("decisions stalled in {stalls} 5 s slices while the collector was down")
    });
    let drops = dropped(&rig) - drops_before;
    rig.figure("dropped_while_killed", drops);
    rig.check(drops > 0.0, || {
        "no spans counted as dropped while the collector was down".into()
    });

    // 4. Back on the same port: export resumes.
    collector = Rotel::counting_on(port);
    let (t0, exported) = (Instant::now(), rig.gw().metric(EXPORTED));
    let resumed = poll_until(Duration::from_secs(30), || {
        rig.gw().metric(EXPORTED) > exported && collector.received() > 0
    });
    rig.figure("export_resumed_after_restart_s", t0.elapsed().as_secs_f64());
    rig.check(resumed, || {
        "export never resumed after the collector came back".into()
    });

    // 5. Blackholed again through the SIGTERM: the exporter holds a batch it cannot send, and
    // the shutdown must still end within `shutdown_bound`.
    rig.inject("collector link blackholed again through the SIGTERM");
    link.blackhole();
    rig.end_faults();
    rig.finish();
    drop(link);
    drop(collector);
}

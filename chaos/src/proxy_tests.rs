//! Tests for the fault proxy: real TCP on loopback against in-test upstream servers. Timing
//! assertions are lower bounds only (or upper bounds of several seconds), so a loaded machine
//! cannot make them flake.

use super::*;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Generous bound for anything that must eventually happen.
const EVENTUALLY: Duration = Duration::from_secs(10);

/// Spawns an echo server and returns its address.
async fn echo_server() -> SocketAddr {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 4096];
                while let Ok(n) = s.read(&mut b).await {
                    if n == 0 || s.write_all(&b[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    up
}

/// Writes `msg` and expects it back.
async fn round_trip(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).await.unwrap();
    let mut b = vec![0u8; msg.len()];
    timeout(EVENTUALLY, c.read_exact(&mut b))
        .await
        .expect("echo must come back")
        .unwrap();
    assert_eq!(b, msg);
}

/// Polls `cond` until it holds, failing after [`EVENTUALLY`].
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn forwards_cuts_and_heals() {
    let up = echo_server().await;
    let p = FaultProxy::start(up).await.unwrap();
    let mut c = TcpStream::connect(p.addr()).await.unwrap();
    c.write_all(b"hi").await.unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"hi");
    p.cut();
    let mut rest = Vec::new();
    let n = c.read_to_end(&mut rest).await.unwrap_or(0);
    assert_eq!(n, 0, "connection must close on cut");
    let mut c2 = TcpStream::connect(p.addr()).await.unwrap();
    assert_eq!(
        c2.read(&mut b).await.unwrap_or(0),
        0,
        "new connections refused while cut"
    );
    p.heal();
    let mut c3 = TcpStream::connect(p.addr()).await.unwrap();
    c3.write_all(b"ok").await.unwrap();
    c3.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"ok");
    // The echo can reach the client a moment before the pump bumps its counter.
    eventually("forwarded counters", || p.bytes_forwarded() == (4, 4)).await;
    assert_eq!(p.bytes_dropped(), (0, 0));
}

#[tokio::test]
async fn blackhole_drops_silently_and_heals() {
    let up = echo_server().await;
    let p = FaultProxy::start(up).await.unwrap();
    let mut c1 = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut c1, b"before").await;

    p.blackhole();
    assert!(p.is_blackholed());
    c1.write_all(b"lost").await.unwrap();
    let mut b = [0u8; 16];
    let r = timeout(Duration::from_millis(300), c1.read(&mut b)).await;
    assert!(r.is_err(), "blackholed read must time out, got {r:?}");
    eventually("dropped bytes on the live connection", || {
        p.bytes_dropped().0 >= 4
    })
    .await;
    // Still open: another read times out instead of returning 0 (EOF) or an error.
    let r = timeout(Duration::from_millis(300), c1.read(&mut b)).await;
    assert!(r.is_err(), "connection must stay open, got {r:?}");

    // New connections are accepted while blackholed, and their bytes vanish too.
    let mut c2 = TcpStream::connect(p.addr()).await.unwrap();
    c2.write_all(b"gone").await.unwrap();
    let r = timeout(Duration::from_millis(300), c2.read(&mut b)).await;
    assert!(
        r.is_err(),
        "new blackholed connection must stay silent, got {r:?}"
    );
    eventually("dropped bytes on the new connection", || {
        p.bytes_dropped().0 >= 8
    })
    .await;

    p.heal();
    assert!(!p.is_blackholed());
    let mut c3 = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut c3, b"after").await;
    // The live connection survived: it echoes again (the dropped bytes stay dropped).
    round_trip(&mut c1, b"again").await;
    assert_eq!(p.bytes_dropped(), (8, 0));
}

#[tokio::test]
async fn latency_delays_round_trips() {
    let up = echo_server().await;
    let p = FaultProxy::start_seeded(up, 7).await.unwrap();
    assert_eq!(p.seed(), 7);
    let mut c = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut c, b"warm").await;

    p.set_latency(Duration::from_millis(200), Duration::from_millis(20));
    let t = Instant::now();
    round_trip(&mut c, b"slow").await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "round trip took {took:?}"
    );
    assert!(took < Duration::from_secs(5), "round trip took {took:?}");

    p.heal();
    round_trip(&mut c, b"fast").await;
}

#[tokio::test]
async fn jitter_is_seeded_and_bounded() {
    let up = echo_server().await;
    let draws =
        |p: &FaultProxy| -> Vec<Duration> { (0..32).map(|_| p.shared.chunk_delay(1)).collect() };
    let a = FaultProxy::start_seeded(up, 42).await.unwrap();
    let b = FaultProxy::start_seeded(up, 42).await.unwrap();
    for p in [&a, &b] {
        p.set_latency(Duration::from_millis(100), Duration::from_millis(50));
    }
    let (da, db) = (draws(&a), draws(&b));
    assert_eq!(da, db, "same seed, same jitter");
    assert!(da
        .iter()
        .all(|d| (Duration::from_millis(50)..=Duration::from_millis(150)).contains(d)));
    assert!(da.iter().any(|d| *d != da[0]), "jitter must vary");
}

#[tokio::test]
async fn bandwidth_cap_slows_bulk_transfer() {
    const SIZE: usize = 64 * 1024;
    let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = sink.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = sink.accept().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        let _ = tx.send(all.len());
    });
    let p = FaultProxy::start(up).await.unwrap();
    p.set_bandwidth(Some(32 * 1024));
    let mut c = TcpStream::connect(p.addr()).await.unwrap();
    let t = Instant::now();
    c.write_all(&vec![7u8; SIZE]).await.unwrap();
    c.shutdown().await.unwrap();
    let got = timeout(Duration::from_secs(30), rx).await.unwrap().unwrap();
    let took = t.elapsed();
    assert_eq!(got, SIZE);
    assert!(
        took >= Duration::from_secs(1),
        "64 KiB at 32 KiB/s took {took:?}"
    );
    assert_eq!(p.bytes_forwarded(), (SIZE as u64, 0));
}

#[tokio::test]
async fn flapping_toggles_until_stopped() {
    let up = echo_server().await;
    let p = FaultProxy::start(up).await.unwrap();
    p.flap(Duration::from_millis(100), Duration::from_millis(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    eventually("four flaps", || p.flaps() >= 4).await;
    p.stop_flapping();
    assert!(!p.is_cut(), "stop_flapping leaves the link up");
    let settled = p.flaps();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.flaps(), settled, "no flaps after stop");
    assert!(!p.is_cut());
    let mut c = TcpStream::connect(p.addr()).await.unwrap();
    round_trip(&mut c, b"steady").await;

    // heal() stops a flapper as well.
    p.flap(Duration::from_millis(50), Duration::from_millis(50));
    eventually("a flap", || p.flaps() > settled).await;
    p.heal();
    let settled = p.flaps();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.flaps(), settled, "no flaps after heal");
    assert!(!p.is_cut());
}

//! A TCP fault proxy: forwards connections to an upstream address and injects the network
//! faults of a chaos suite on command — cut, blackhole, latency, bandwidth cap and flapping.
//!
//! Design constraints:
//! - `cut` closes every live connection at once and refuses new ones until `heal`, which is
//!   what a dead uplink looks like to the gateway (connection errors, not silence).
//! - `blackhole` is the opposite failure: connections stay open (no reset, no FIN) and every
//!   byte is silently dropped, so only the gateway's own timeouts can notice it.
//! - Forwarding is byte-for-byte by two directional pumps (client→server, server→client), so
//!   MQTT sessions through the proxy are real sessions. Each pump reads a chunk, consults the
//!   shared fault state (plain atomics, readable at any time from a test), waits out latency
//!   and the bandwidth budget, then writes. Delaying the pump itself means bytes are never
//!   reordered within a direction; the price is that latency also bounds throughput (one
//!   chunk per delay), which is fine for a chaos suite and keeps the proxy simple.
//! - Jitter comes from a seeded RNG (`start_seeded`), so a failing run can be replayed.
//! - `heal` clears every fault, including a running flapper. The proxy stops when dropped.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Index of the client→server direction in the counters.
const C2S: usize = 0;
/// Index of the server→client direction in the counters.
const S2C: usize = 1;
/// Largest chunk a pump reads at once.
const CHUNK: usize = 16 * 1024;
/// How often a pump holding back a FIN re-checks whether the blackhole has lifted.
const FIN_POLL: Duration = Duration::from_millis(20);

/// The flapping task and the generation that is allowed to toggle the link.
#[derive(Default)]
struct Flapper {
    generation: u64,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    cut: AtomicBool,
    blackhole: AtomicBool,
    latency_base_us: AtomicU64,
    latency_jitter_us: AtomicU64,
    /// Bytes per second per direction; 0 means unlimited.
    bandwidth: AtomicU64,
    connections: AtomicU64,
    forwarded: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    flaps: AtomicU64,
    flapper: Mutex<Flapper>,
    rng: Mutex<StdRng>,
    epoch: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Shared {
    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Release);
        if cut {
            self.epoch.send_modify(|e| *e += 1);
        }
    }

    fn blackholed(&self) -> bool {
        self.blackhole.load(Ordering::Acquire)
    }

    /// Largest read for the next chunk: small under a bandwidth cap, so the flow stays smooth.
    fn chunk_limit(&self, buf: usize) -> usize {
        match self.bandwidth.load(Ordering::Relaxed) {
            0 => buf,
            bps => usize::try_from(bps / 20).unwrap_or(buf).clamp(1, buf),
        }
    }

    /// How long to hold a chunk of `n` bytes: latency ± jitter plus its bandwidth budget.
    fn chunk_delay(&self, n: usize) -> Duration {
        let base = self.latency_base_us.load(Ordering::Relaxed);
        let jitter = self.latency_jitter_us.load(Ordering::Relaxed);
        let us = if jitter == 0 {
            base
        } else {
            let offset = lock(&self.rng).random_range(0..=jitter.saturating_mul(2));
            base.saturating_add(offset).saturating_sub(jitter)
        };
        let mut delay = Duration::from_micros(us);
        let bps = self.bandwidth.load(Ordering::Relaxed);
        if bps > 0 {
            delay = delay.saturating_add(Duration::from_secs_f64(n as f64 / bps as f64));
        }
        delay
    }

    /// One flapper transition; false when this flapper has been superseded or stopped.
    fn flap_to(&self, generation: u64, cut: bool) -> bool {
        let f = lock(&self.flapper);
        if f.generation != generation {
            return false;
        }
        self.set_cut(cut);
        self.flaps.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// Copies one direction chunk by chunk, applying the faults before every write.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Shared>,
    dir: usize,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let limit = shared.chunk_limit(buf.len());
        let n = from.read(&mut buf[..limit]).await?;
        if n == 0 {
            // A blackhole swallows the FIN too: hold it back until the blackhole lifts.
            while shared.blackholed() {
                tokio::time::sleep(FIN_POLL).await;
            }
            return to.shutdown().await;
        }
        if !shared.blackholed() {
            let delay = shared.chunk_delay(n);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        if shared.blackholed() {
            shared.dropped[dir].fetch_add(n as u64, Ordering::Relaxed);
            continue;
        }
        to.write_all(&buf[..n]).await?;
        shared.forwarded[dir].fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Connects to `upstream` and runs both pumps until both sides finish or one fails.
async fn forward(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) -> io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::try_join!(pump(cr, sw, shared.clone(), C2S), pump(sr, cw, shared, S2C))?;
    Ok(())
}

/// A running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    runtime: Handle,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`, jitter seeded at random.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        Self::start_seeded(upstream, rand::random()).await
    }

    /// Like [`FaultProxy::start`], with the latency-jitter RNG seeded by `seed`.
    pub async fn start_seeded(upstream: SocketAddr, seed: u64) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (epoch, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            cut: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            latency_base_us: AtomicU64::new(0),
            latency_jitter_us: AtomicU64::new(0),
            bandwidth: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            forwarded: [AtomicU64::new(0), AtomicU64::new(0)],
            dropped: [AtomicU64::new(0), AtomicU64::new(0)],
            flaps: AtomicU64::new(0),
            flapper: Mutex::new(Flapper::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            epoch,
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Subscribe before checking, so a cut racing this accept still closes it.
                let mut stop = s.epoch.subscribe();
                if s.cut.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                s.connections.fetch_add(1, Ordering::Relaxed);
                let shared = s.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        r = forward(client, upstream, shared) => {
                            if let Err(e) = r {
                                tracing::debug!(error = %e, "fault proxy connection ended");
                            }
                        }
                        _ = stop.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            seed,
            shared,
            runtime: Handle::current(),
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed of the latency-jitter RNG (log it to replay a run).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.set_cut(true);
    }

    /// Clears every fault: cut, blackhole, latency, bandwidth cap, and stops flapping.
    pub fn heal(&self) {
        self.stop_flapping();
        let s = &self.shared;
        s.blackhole.store(false, Ordering::Release);
        s.latency_base_us.store(0, Ordering::Relaxed);
        s.latency_jitter_us.store(0, Ordering::Relaxed);
        s.bandwidth.store(0, Ordering::Relaxed);
        s.set_cut(false);
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::Acquire)
    }

    /// Silently drops all bytes both ways, on live and new connections; nothing is closed.
    pub fn blackhole(&self) {
        self.shared.blackhole.store(true, Ordering::Release);
    }

    /// Whether bytes are being blackholed.
    pub fn is_blackholed(&self) -> bool {
        self.shared.blackholed()
    }

    /// Delays every chunk, each direction, by `base` ± a uniform draw from `jitter`.
    pub fn set_latency(&self, base: Duration, jitter: Duration) {
        self.shared
            .latency_jitter_us
            .store(micros(jitter), Ordering::Relaxed);
        self.shared
            .latency_base_us
            .store(micros(base), Ordering::Relaxed);
    }

    /// Caps throughput per direction to `bytes_per_sec` (`Some(0)` acts as 1); `None` lifts it.
    pub fn set_bandwidth(&self, bytes_per_sec: Option<u64>) {
        let bps = bytes_per_sec.map_or(0, |b| b.max(1));
        self.shared.bandwidth.store(bps, Ordering::Relaxed);
    }

    /// Starts a background task that heals the link, then alternates `up` time connected and
    /// `down` time cut, until [`stop_flapping`](Self::stop_flapping), `heal` or drop. Replaces
    /// any earlier flapper.
    pub fn flap(&self, up: Duration, down: Duration) {
        let mut f = lock(&self.shared.flapper);
        f.generation += 1;
        if let Some(old) = f.task.take() {
            old.abort();
        }
        self.shared.set_cut(false);
        let generation = f.generation;
        let shared = self.shared.clone();
        f.task = Some(self.runtime.spawn(async move {
            loop {
                tokio::time::sleep(up).await;
                if !shared.flap_to(generation, true) {
                    return;
                }
                tokio::time::sleep(down).await;
                if !shared.flap_to(generation, false) {
                    return;
                }
            }
        }));
    }

    /// Stops the flapper, if any, and leaves the link up.
    pub fn stop_flapping(&self) {
        let mut f = lock(&self.shared.flapper);
        f.generation += 1;
        if let Some(task) = f.task.take() {
            task.abort();
            self.shared.set_cut(false);
        }
    }

    /// Cut/heal transitions made by flappers so far.
    pub fn flaps(&self) -> u64 {
        self.shared.flaps.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Bytes written out so far: (client→server, server→client).
    pub fn bytes_forwarded(&self) -> (u64, u64) {
        let f = &self.shared.forwarded;
        (
            f[C2S].load(Ordering::Relaxed),
            f[S2C].load(Ordering::Relaxed),
        )
    }

    /// Bytes swallowed by a blackhole so far: (client→server, server→client).
    pub fn bytes_dropped(&self) -> (u64, u64) {
        let d = &self.shared.dropped;
        (
            d[C2S].load(Ordering::Relaxed),
            d[S2C].load(Ordering::Relaxed),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop_flapping();
        self.cut();
        self.task.abort();
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;

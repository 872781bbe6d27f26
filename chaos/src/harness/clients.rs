//! MQTT clients of the harness: `mosquitto_sub` recording what arrives, `mosquitto_pub -l`
//! publishing lines, and the sensor feeder.
//!
//! Design constraints: the recorder keeps every line with its arrival instant (the chaos
//! suite measures recovery from them) and never parses on the reading thread; a subscriber
//! that must not miss anything is started with [`Sub::start_ready`], which proves the
//! subscription is live with a probe message instead of sleeping.

use super::{free_port, poll_until, Proc};
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A mosquitto client (`mosquitto_pub`/`mosquitto_sub`) aimed at the broker on `port`.
fn mosquitto_client(bin: &str, port: u16) -> Command {
    let mut c = Command::new(bin);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    c
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `mosquitto_sub` (QoS 1, clean session) collecting `(topic, payload)` lines.
pub struct Sub {
    /// Every line received, in order.
    pub lines: Arc<Mutex<Vec<(String, String)>>>,
    /// When each line of `lines` arrived (same index).
    pub arrivals: Arc<Mutex<Vec<Instant>>>,
    proc: Proc,
}

impl Sub {
    /// Subscribes to `filter`; gives the client a moment to subscribe (see [`Sub::start_ready`]
    /// for a subscriber that must not miss anything).
    pub fn start(port: u16, filter: &str) -> Self {
        let sub = Self::spawn(port, &[filter]);
        std::thread::sleep(Duration::from_millis(300));
        sub
    }

    /// Subscribes to `filter` and returns once the subscription provably works: probes are
    /// published on a private `chaos/probe/…` topic until one is received (those probe lines
    /// stay in the record; filter them out by topic).
    pub fn start_ready(port: u16, filter: &str) -> Self {
        let probe = format!("chaos/probe/{}", free_port());
        let sub = Self::spawn(port, &[filter, &probe]);
        let ok = poll_until(Duration::from_secs(20), || {
            publish_once(port, &probe, "probe");
            poll_until(Duration::from_millis(300), || {
                lock(&sub.lines).iter().any(|(t, _)| *t == probe)
            })
        });
        assert!(ok, "mosquitto_sub on port {port} never received its probe");
        sub
    }

    fn spawn(port: u16, filters: &[&str]) -> Self {
        let mut cmd = mosquitto_client("mosquitto_sub", port);
        for f in filters {
            cmd.args(["-t", f]);
        }
        let mut child = cmd
            .args(["-v", "-q", "1", "-i"])
            .arg(format!("test-sub-{}", free_port()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub not installed");
        let out = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (l, a) = (lines.clone(), arrivals.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some((t, p)) = line.split_once(' ') {
                    let mut l = lock(&l);
                    l.push((t.to_string(), p.to_string()));
                    lock(&a).push(Instant::now());
                }
            }
        });
        Sub {
            lines,
            arrivals,
            proc: Proc(child),
        }
    }

    /// Parsed JSON payloads of topics containing `part`.
    pub fn json(&self, part: &str) -> Vec<(String, serde_json::Value)> {
        lock(&self.lines)
            .iter()
            .filter(|(t, _)| t.contains(part))
            .filter_map(|(t, p)| serde_json::from_str(p).ok().map(|v| (t.clone(), v)))
            .collect()
    }

    /// A copy of the record: `(topic, payload, arrival)`.
    pub fn snapshot(&self) -> Vec<(String, String, Instant)> {
        let lines = lock(&self.lines);
        let arrivals = lock(&self.arrivals);
        lines
            .iter()
            .zip(arrivals.iter())
            .map(|((t, p), a)| (t.clone(), p.clone(), *a))
            .collect()
    }

    /// Number of lines received so far.
    pub fn len(&self) -> usize {
        lock(&self.lines).len()
    }

    /// Whether nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kills the client; the record stays readable.
    pub fn stop(&mut self) {
        self.proc.kill();
    }
}

/// `mosquitto_pub -l`: one message per line written to it, on `topic`.
pub struct Pub {
    stdin: Option<ChildStdin>,
    proc: Proc,
}

impl Pub {
    /// Starts `mosquitto_pub -l` on `topic` with `qos`.
    pub fn start(port: u16, topic: &str, qos: u8) -> Self {
        let mut child = mosquitto_client("mosquitto_pub", port)
            .args(["-t", topic, "-l", "-q", &qos.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_pub not installed");
        Pub {
            stdin: child.stdin.take(),
            proc: Proc(child),
        }
    }

    /// Sends one line (one message). Panics if mosquitto_pub went away.
    pub fn send(&mut self, line: &str) {
        let s = self.stdin.as_mut().expect("stdin open until finish");
        s.write_all(line.as_bytes())
            .and_then(|()| s.write_all(b"\n"))
            .expect("mosquitto_pub exited");
    }

    /// Closes stdin and waits for mosquitto_pub to send everything and exit; returns whether
    /// it exited successfully.
    pub fn finish(mut self) -> bool {
        drop(self.stdin.take());
        let mut ok = false;
        let exited = poll_until(Duration::from_secs(60), || match self.proc.0.try_wait() {
            Ok(Some(st)) => {
                ok = st.success();
                true
            }
            _ => false,
        });
        assert!(exited, "mosquitto_pub did not finish");
        ok
    }
}

/// Publishes one message with `mosquitto_pub -m` (QoS 1).
pub fn publish_once(port: u16, topic: &str, payload: &str) {
    let st = mosquitto_client("mosquitto_pub", port)
        .args(["-t", topic, "-m", payload, "-q", "1"])
        .status()
        .expect("mosquitto_pub not installed");
    assert!(st.success(), "mosquitto_pub -t {topic} failed");
}

/// Feeds `sensors` sensors (`sensors/f{i}/data`) continuously, a batch of 10 samples per
/// sensor every 20 ms, until `stop` is set.
/// The sample timestamps advance 100 ms per sample from an hour in the past (50× real time,
/// so keep such runs short); see [`feeder_with`] for long runs. The clock starts with the
/// feeder and passes the gateway's `ingest.max_clock_skew` (5 min) after about 80 s: start it
/// once the gateway is up, never before a [`Gw`](super::Gw) start that may build the binary.
pub fn feeder(port: u16, sensors: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    feed(
        port,
        sensors,
        Duration::from_millis(20),
        100,
        Counted::No,
        stop,
    )
}

/// [`feeder`] with a batch every `every`, at QoS 1, adding every sample it publishes to
/// `sent`: for tests that must account for each sample. The thread panics (seen at `join`) if a
/// publisher did not exit cleanly.
pub fn feeder_counted(
    port: u16,
    sensors: usize,
    every: Duration,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    feed(port, sensors, every, 100, Counted::Into(sent), stop)
}

/// Whether a feeder publishes at QoS 1 and counts what it sends.
enum Counted {
    /// QoS 0, nothing counted.
    No,
    /// QoS 1, every sample added here, publishers checked at the end.
    Into(Arc<AtomicU64>),
}

/// [`feeder`] with a batch every `every` and timestamps that follow real time (10 samples
/// spaced `every / 10`, starting a minute in the past), so it can run for hours without its
/// event time running ahead of the gateway's clock.
pub fn feeder_with(
    port: u16,
    sensors: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let step = (every.as_millis() as i64 / 10).max(1);
    feed(port, sensors, every, step, Counted::No, stop)
}

fn feed(
    port: u16,
    sensors: usize,
    every: Duration,
    step_ms: i64,
    counted: Counted,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let qos = if matches!(counted, Counted::No) { 0 } else { 1 };
        let mut pubs: Vec<Pub> = (0..sensors)
            .map(|i| Pub::start(port, &format!("sensors/f{i}/data"), qos))
            .collect();
        let lead = if step_ms >= 100 { 3_600_000 } else { 60_000 };
        let mut ts = edgegw_actors::status::now_ms() - lead;
        let mut k = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for (i, p) in pubs.iter_mut().enumerate() {
                let body: Vec<String> = (0..10)
                    .map(|j| {
                        let x = (k + j) as f64;
                        format!(
                            "[{},{}]",
                            ts + j as i64 * step_ms,
                            50.0 + i as f64 + (x * 0.2).sin() + 0.1 * (x * 1.7).cos()
                        )
                    })
                    .collect();
                p.send(&format!("{{\"samples\":[{}]}}", body.join(",")));
                if let Counted::Into(sent) = &counted {
                    sent.fetch_add(10, Ordering::Relaxed);
                }
            }
            ts += 10 * step_ms;
            k += 10;
            std::thread::sleep(every);
        }
        for p in pubs {
            let ok = p.finish();
            assert!(ok || matches!(counted, Counted::No), "mosquitto_pub failed");
        }
    })
}

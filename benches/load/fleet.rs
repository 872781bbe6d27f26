//! The load's publishing side: N simulated sensors over a few real MQTT connections, in one
//! of the three payload formats; and the bare subscriber, a plain rumqttc client that only
//! counts what the broker delivers to it.

use edgegw_actors::ingest::{binary, encode as json};
use edgegw_actors::sensor::window::Sample;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Payload format of the simulated sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"ts", "v"}`: one sample per message.
    Json,
    /// `{"samples": [[ts, v], …]}`.
    JsonBatch,
    /// The binary batch of `docs/wire.md`, f32 values.
    Binary,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Format::Json),
            "batch" => Some(Format::JsonBatch),
            "binary" => Some(Format::Binary),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::JsonBatch => "batch",
            Format::Binary => "binary",
        }
    }

    /// Samples per message for a requested batch size.
    pub fn per_message(self, batch: usize) -> usize {
        if self == Format::Json {
            1
        } else {
            batch.max(1)
        }
    }
}

/// What the fleet publishes.
#[derive(Debug, Clone)]
pub struct FleetOpts {
    pub sensors: usize,
    /// Number of the first sensor: the fleet is sensors `first..first + sensors`.
    pub first: usize,
    pub conns: usize,
    pub format: Format,
    pub batch: usize,
    /// Samples per second per sensor; 0 = as fast as the broker accepts (QoS 1 back-pressure).
    pub rate: f64,
    /// Topic of sensor `i`: `{prefix}/s{i}/data`.
    pub prefix: &'static str,
    /// Messages per sensor before a publisher stops by itself; 0 = until stopped.
    pub messages_per_sensor: u64,
    /// At a fixed rate, every sensor publishes at the start of each period (a synchronised
    /// fleet) instead of at its own phase of it, as unsynchronised devices do.
    pub burst: bool,
}

/// The latest event time any fleet of this process has published: a new fleet starts after
/// it, so sensors that live on in the gateway never see its samples as late or duplicate.
static EVENT_CLOCK: AtomicI64 = AtomicI64::new(1_700_000_000_000);

/// Where each sensor's signal stands (its next sample index `k`), across fleets: a later
/// phase continues every sensor's course where the previous one left it, so the phase change
/// is not a discontinuity the detector would rightly flag (and alert on, 1 000 sensors at once).
static SAMPLE_CLOCKS: std::sync::Mutex<std::collections::BTreeMap<usize, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// A running fleet.
pub struct Fleet {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Sample `k` of sensor `s`: a slow sine, a faster texture, each sensor on its own level.
fn sample(s: usize, k: u64, ts: i64) -> Sample {
    let x = k as f64;
    Sample {
        ts,
        v: 100.0 + s as f64 + (x * 0.3).sin() + 0.2 * (x * 7.1 + s as f64).sin(),
    }
}

/// Writes the message of `samples` in `format` into `out` (cleared first).
pub fn encode(format: Format, samples: &[Sample], out: &mut Vec<u8>) {
    out.clear();
    match format {
        Format::Binary => binary::encode(samples, out),
        Format::Json => samples.iter().for_each(|s| json::json_single(*s, out)),
        Format::JsonBatch => json::json_batch(samples, out),
    }
}

/// A connected client whose event loop is polled in its own task; `on_publish` sees every
/// incoming publish.
pub fn connect(
    port: u16,
    id: &str,
    on_publish: impl Fn() + Send + 'static,
) -> (AsyncClient, JoinHandle<()>) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_inflight(200);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(o, 1000);
    let poller = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(_))) => on_publish(),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    (client, poller)
}

impl Fleet {
    /// Starts publishing on the current tokio runtime.
    pub fn start(port: u16, o: &FleetOpts) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let per_msg = o.format.per_message(o.batch);
        for c in 0..o.conns.max(1) {
            let (client, poller) = connect(port, &format!("load-{}-{c}", o.prefix), || {});
            tasks.push(poller);
            let o = o.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mine: Vec<usize> = (o.first + c..o.first + o.sensors)
                    .step_by(o.conns.max(1))
                    .collect();
                let topics: Vec<String> = mine
                    .iter()
                    .map(|s| format!("{}/s{s}/data", o.prefix))
                    .collect();
                let period = Duration::from_secs_f64(per_msg as f64 / o.rate.max(1e-9));
                let mut tick = (o.rate > 0.0).then(|| {
                    let mut t = tokio::time::interval(period);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                let share = mine.len().max(1) as u32;
                // Event time advances 10 ms per sample from a past instant (2023), so every
                // timestamp is valid however fast the run goes.
                let mut ts = EVENT_CLOCK.load(Ordering::Relaxed) + 1000;
                let mut ks: Vec<u64> = {
                    let clocks = SAMPLE_CLOCKS.lock().unwrap_or_else(|e| e.into_inner());
                    mine.iter()
                        .map(|s| clocks.get(s).copied().unwrap_or(0))
                        .collect()
                };
                let save = |ks: &[u64]| {
                    let mut clocks = SAMPLE_CLOCKS.lock().unwrap_or_else(|e| e.into_inner());
                    for (s, k) in mine.iter().zip(ks) {
                        clocks.insert(*s, *k);
                    }
                };
                let mut round = 0u64;
                let mut buf = Vec::with_capacity(per_msg * 40);
                let mut samples = Vec::with_capacity(per_msg);
                while !stop.load(Ordering::Relaxed)
                    && (o.messages_per_sensor == 0 || round < o.messages_per_sensor)
                {
                    let start = match tick.as_mut() {
                        Some(t) => Some(t.tick().await),
                        None => None,
                    };
                    for (i, (s, topic)) in mine.iter().zip(&topics).enumerate() {
                        if let Some(start) = start.filter(|_| !o.burst) {
                            tokio::time::sleep_until(start + period * i as u32 / share).await;
                        }
                        samples.clear();
                        let k = ks[i];
                        samples.extend(
                            (0..per_msg).map(|j| sample(*s, k + j as u64, ts + j as i64 * 10)),
                        );
                        ks[i] += per_msg as u64;
                        encode(o.format, &samples, &mut buf);
                        if client
                            .publish(topic.as_str(), QoS::AtLeastOnce, false, buf.clone())
                            .await
                            .is_err()
                        {
                            save(&ks);
                            return;
                        }
                    }
                    ts += per_msg as i64 * 10;
                    EVENT_CLOCK.fetch_max(ts, Ordering::Relaxed);
                    round += 1;
                }
                save(&ks);
            }));
        }
        Fleet { stop, tasks }
    }

    /// Stops every publisher and its connection.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The bare subscriber: subscribes to `filter` and counts the publishes it receives. It runs
/// on its own thread and single-threaded runtime, like the gateway's ingest connection (one
/// event loop), so it does not share a scheduler with the publishers.
pub struct BareSubscriber {
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareSubscriber {
    pub fn start(port: u16, filter: &str, qos: u8) -> Self {
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, halt, filter) = (received.clone(), stop.clone(), filter.to_string());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (client, poller) = connect(port, "load-bare-subscriber", move || {
                    r.fetch_add(1, Ordering::Relaxed);
                });
                let qos = if qos == 0 {
                    QoS::AtMostOnce
                } else {
                    QoS::AtLeastOnce
                };
                let _ = client.subscribe(filter, qos).await;
                // Let the SUBACK land before the load starts.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = ready_tx.send(());
                while !halt.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = client.try_disconnect();
                poller.abort();
            });
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(10));
        BareSubscriber {
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

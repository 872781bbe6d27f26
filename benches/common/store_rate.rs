//! Store rates, shared by the store benchmark and the load benchmark: how many records per
//! second become durable for a given group size, and how fast a backlog is replayed (in
//! process through the store's read path, and end to end through the gateway binary).
//!
//! Every function works in a directory it is given, on summary-sized records (~350 bytes of
//! JSON, like the gateway's), and cleans up what it created there. Nothing passes or fails.

use super::{free_port, get};
use edgegw_actors::outbound::Class;
use edgegw_actors::store::{Store, StoreConfig};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Topic of the records the measurements commit.
pub const SUMMARY_TOPIC: &str = "edgegw/gw-01/summaries/s0001";

/// A summary-sized payload (~330 bytes, like the gateway's) for `seq` of sensor `sensor`.
pub fn summary(seq: u64, sensor: u64) -> Vec<u8> {
    format!(
        "{{\"id\":\"gw-01:1700000000000:{seq}\",\"seq\":{seq},\"ts\":1700000060000,\"trace_id\":\"0123456789abcdef0123456789abcdef\",\
         \"sensor\":\"s{sensor:04}\",\"period\":{{\"start\":1700000000000,\"end\":1700000060000}},\"count\":600,\"mean\":21.53125,\
         \"std\":0.812,\"min\":19.75,\"max\":23.5,\"p50\":21.5,\"p95\":22.875,\"alerts\":0,\"model\":{{\"name\":\"edgegw-ae\",\"version\":\"1.0.0\"}}}}"
    )
    .into_bytes()
}

/// The gateway's default store config at `path` with budget `max_bytes`.
pub fn config(path: &Path, max_bytes: u64) -> StoreConfig {
    StoreConfig {
        path: path.to_path_buf(),
        max_bytes,
        ..StoreConfig::default()
    }
}

/// How [`durable_commits_per_second`] commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// One `Store::commit` per record (one sled batch each: the record and the high-water
    /// mark), a blocking flush after every `group` records.
    PerRecord,
    /// `group` records per `Store::group` (one sled batch, one high-water write), then a
    /// blocking flush: group commit with the flush in line.
    Grouped,
    /// As the uplink commits: `group` records per `Store::group`, while one flush at a time
    /// runs on another thread, each covering every group inserted before it started (the
    /// uplink's `flush_async`). The clock stops when a flush covering the last record ends.
    Pipelined,
}

/// Durable commits per second: `records` summary-sized records committed `group` at a time
/// as `how` says into a fresh store under `dir` (removed afterwards). The time includes the
/// flush that makes the last record durable, so every record counted was durable.
pub fn durable_commits_per_second(dir: &Path, records: u64, group: u64, how: Commit) -> f64 {
    let path = dir.join(format!("commits-{how:?}-{group}"));
    let _ = std::fs::remove_dir_all(&path);
    let s = Store::open(&config(&path, 1 << 40)).unwrap().store;
    let group = group.max(1);
    let t = Instant::now();
    match how {
        Commit::PerRecord => {
            for i in 0..records {
                s.commit(Class::Summary, SUMMARY_TOPIC, |seq| summary(seq, i % 1000))
                    .unwrap();
                if (i + 1) % group == 0 {
                    s.flush().unwrap();
                }
            }
            s.flush().unwrap();
        }
        Commit::Grouped => {
            for first in (0..records).step_by(group as usize) {
                commit_group(&s, first, group.min(records - first));
                s.flush().unwrap();
            }
        }
        Commit::Pipelined => {
            let done = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|scope| {
                let (store, done) = (&s, &done);
                let flusher = scope.spawn(move || {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        store.flush().unwrap();
                    }
                });
                for first in (0..records).step_by(group as usize) {
                    commit_group(&s, first, group.min(records - first));
                }
                done.store(true, std::sync::atomic::Ordering::Release);
                flusher.join().unwrap();
            });
            // The flush covering the last group.
            s.flush().unwrap();
        }
    }
    let rate = records as f64 / t.elapsed().as_secs_f64();
    drop(s);
    let _ = std::fs::remove_dir_all(&path);
    rate
}

/// A fresh store at `path` holding `records` summary-sized records (committed 1 000 per
/// group), flushed.
fn fill_summaries(path: &Path, records: u64) -> Store {
    let s = Store::open(&config(path, 1 << 40)).unwrap().store;
    for first in (0..records).step_by(1000) {
        commit_group(&s, first, 1000.min(records - first));
    }
    s.flush().unwrap();
    s
}

/// Commits records `first..first + n` as one group.
fn commit_group(s: &Store, first: u64, n: u64) {
    let mut g = s.group();
    for i in first..first + n {
        g.add(Class::Summary, SUMMARY_TOPIC, |seq| summary(seq, i % 1000));
    }
    g.commit().unwrap();
}

/// Fills the store at `path` with the backlog an uplink outage of `minutes` at `sensors`
/// sensors leaves: a summary per sensor per minute, then for a tenth of the sensors an alert
/// and its raw window (128 samples). Returns the messages held.
pub fn fill_outage_backlog(path: &Path, sensors: u64, minutes: u64) -> u64 {
    let s = Store::open(&config(path, 1 << 30)).unwrap().store;
    let n_summaries = sensors * minutes;
    let n_alerts = (sensors / 10).max(1);
    for first in (0..n_summaries).step_by(1000) {
        let mut g = s.group();
        for i in first..(first + 1000).min(n_summaries) {
            let topic = format!("edgegw/gw-01/summaries/s{:04}", i % sensors);
            g.add(Class::Summary, &topic, |seq| summary(seq, i % sensors));
        }
        g.commit().unwrap();
    }
    let raw: String = (0..128)
        .map(|k| {
            format!(
                "[{},{:.3}]",
                1_700_000_000_000i64 + k * 100,
                21.0 + k as f64 * 0.01
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut g = s.group();
    for i in 0..n_alerts {
        g.add(Class::Alert, "edgegw/gw-01/alerts/s0001", |seq| {
            summary(seq, i)
        });
        g.add(Class::Raw, "edgegw/gw-01/raw/s0001", |seq| {
            format!("{{\"seq\":{seq},\"samples\":[{raw}]}}").into_bytes()
        });
    }
    g.commit().unwrap();
    s.flush().unwrap();
    n_summaries + 2 * n_alerts
}

/// The store's side of a replay, in process: `records` summary-sized records committed into
/// a fresh store under `dir` (removed afterwards), then read back in seq order with
/// `next_in` and deleted with `ack` one by one, as the uplink's pump and its PUBACKs do.
/// Records per second of that walk: the ceiling the store puts on any replay.
pub fn store_replay_per_second(dir: &Path, records: u64) -> f64 {
    let path = dir.join("store-replay");
    let _ = std::fs::remove_dir_all(&path);
    let s = fill_summaries(&path, records);
    let t = Instant::now();
    let mut from = 0;
    let mut n = 0u64;
    while let Some(r) = s.next_in(from, u64::MAX).unwrap() {
        from = r.seq + 1;
        assert!(s.ack(r.class, r.seq).unwrap());
        n += 1;
    }
    s.flush().unwrap();
    let rate = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(n, records);
    drop(s);
    let _ = std::fs::remove_dir_all(&path);
    rate
}

/// What a replay through the gateway took.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// Messages held in the store when the gateway started.
    pub messages: u64,
    /// From the store being open (first `/status` with a backlog) to an empty backlog.
    pub seconds: f64,
}

impl Replay {
    /// Messages delivered (and acknowledged) per second.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }
}

/// Replays the store directory `data` (holding `messages` records) through the gateway
/// binary `bin` (`edgegw run`, its embedded broker as the upstream broker, `uplink.replay_rate`
/// = `replay_rate`, `uplink.inflight` at its default): the time from the store being open to
/// every record being acknowledged and deleted. The gateway works on `data` in place (the
/// backlog is consumed); its config file goes next to `data`. Gives up after 10 minutes.
pub fn replay_through_gateway(bin: &Path, data: &Path, messages: u64, replay_rate: u32) -> Replay {
    let (broker, http) = (free_port(), free_port());
    let conf = data.with_extension("toml");
    std::fs::write(
        &conf,
        format!(
            "[broker]\nbind = \"127.0.0.1:{broker}\"\n[ingest]\nurl = \"mqtt://127.0.0.1:{broker}\"\n[uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\nreplay_rate = {replay_rate}\nreplay_burst = {}\n\
             [http]\nbind = \"127.0.0.1:{http}\"\n[store]\npath = \"{}\"\n",
            replay_rate.min(1000),
            data.display()
        ),
    )
    .unwrap();
    let mut gw = Command::new(bin)
        .args(["run", "--config"])
        .arg(&conf)
        .env("RUST_LOG", "warn")
        // Every other `EDGEGW_*` variable would be read as a config override.
        .env_remove("EDGEGW_BIN")
        .stdout(Stdio::null())
        .spawn()
        .expect("edgegw binary");
    let t = Instant::now();
    let deadline = t + Duration::from_secs(600);
    let mut started = None;
    loop {
        let st: serde_json::Value = serde_json::from_str(&get(http, "/status")).unwrap_or_default();
        let b = &st["store"]["backlog"];
        if b.is_object() && started.is_none() {
            started = Some(Instant::now());
        }
        let left: u64 = ["alert", "summary", "raw"]
            .iter()
            .map(|c| b[c].as_u64().unwrap_or(u64::MAX / 4))
            .sum();
        if left == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.unwrap_or(t).elapsed().as_secs_f64();
    let _ = Command::new("kill")
        .args(["-TERM", &gw.id().to_string()])
        .status();
    let _ = gw.wait();
    let _ = std::fs::remove_file(&conf);
    Replay { messages, seconds }
}

/// End-to-end replay rate with pacing lifted: a backlog of `messages` summary-sized records
/// is written into a fresh store under `dir`, then drained through the gateway binary `bin`
/// with `uplink.replay_rate` at 1 000 000/s (see [`replay_through_gateway`]). The store is
/// removed afterwards.
pub fn replay_per_second(bin: &Path, dir: &Path, messages: u64) -> Replay {
    let data = dir.join("replay-backlog");
    let _ = std::fs::remove_dir_all(&data);
    drop(fill_summaries(&data, messages));
    let r = replay_through_gateway(bin, &data, messages, 1_000_000);
    let _ = std::fs::remove_dir_all(&data);
    r
}

//! Store figures: durable commits/s by group-commit size, on-disk bytes per message and space
//! amplification, time to reopen a ~1 GB store, and how fast the gateway drains the backlog
//! of a 10-minute uplink outage at 1 000 sensors.
//!
//! `cargo bench --bench store -- [--records 200000] [--reopen-mib 1024] [--sensors 1000]`
//! Figures go to docs/benchmarks.md. Not a test: nothing passes or fails here.

#![allow(clippy::unwrap_used)] // benches may unwrap: a failure should stop the run loudly.

mod common;

use common::{arg, free_port, get, rss_mib};
use edgegw_actors::store::{Store, StoreConfig};
use edgegw_actors::uplink::Class;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A summary-sized payload (~330 bytes, like the gateway's).
fn summary(seq: u64, sensor: u64) -> Vec<u8> {
    format!(
        "{{\"id\":\"gw-01:1700000000000:{seq}\",\"seq\":{seq},\"ts\":1700000060000,\"trace_id\":\"0123456789abcdef0123456789abcdef\",\
         \"sensor\":\"s{sensor:04}\",\"period\":{{\"start\":1700000000000,\"end\":1700000060000}},\"count\":600,\"mean\":21.53125,\
         \"std\":0.812,\"min\":19.75,\"max\":23.5,\"p50\":21.5,\"p95\":22.875,\"alerts\":0,\"model\":{{\"name\":\"edgegw-ae\",\"version\":\"1.0.0\"}}}}"
    )
    .into_bytes()
}

fn cfg(path: &Path, max_bytes: u64) -> StoreConfig {
    StoreConfig {
        path: path.to_path_buf(),
        max_bytes,
        ..StoreConfig::default()
    }
}

fn commits_per_second(dir: &Path, n: u64, group: u64) -> f64 {
    let path = dir.join(format!("g{group}"));
    let s = Store::open(&cfg(&path, 1 << 40)).unwrap().store;
    let t = Instant::now();
    for i in 0..n {
        s.commit(Class::Summary, "edgegw/gw-01/summaries/s0001", |seq| {
            summary(seq, i % 1000)
        })
        .unwrap();
        if (i + 1) % group == 0 {
            s.db().flush().unwrap();
        }
    }
    s.db().flush().unwrap();
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let records = arg("--records", 200_000);
    let reopen_mib = arg("--reopen-mib", 1024);
    let sensors = arg("--sensors", 1000);
    // Phases to run, as a bit set: 1 commits/s, 2 size, 4 reopen (with RSS while filling), 8 replay.
    let phases = arg("--phases", 15);
    let tmp = std::env::temp_dir().join(format!("edgegw-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();

    if phases & 1 != 0 {
        println!("durable commits/s (summary-sized records, flush every N commits):");
        for group in [1u64, 16, 256, 4096] {
            let n = if group == 1 {
                2000
            } else {
                records.min(100_000)
            };
            println!(
                "  group {group:>5}: {:>9.0} commits/s",
                commits_per_second(&tmp, n, group)
            );
        }
    }

    let path = tmp.join("size");
    if phases & 2 != 0 {
        let s = Store::open(&cfg(&path, 1 << 40)).unwrap().store;
        for i in 0..records {
            s.commit(Class::Summary, "edgegw/gw-01/summaries/s0001", |seq| {
                summary(seq, i % 1000)
            })
            .unwrap();
            if i % 4096 == 0 {
                s.db().flush().unwrap();
            }
        }
        s.db().flush().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        s.refresh().unwrap();
        let r = s.report();
        println!(
            "{records} records: logical {:.1} MiB, on disk {:.1} MiB → {:.0} bytes/message on disk, amplification {:.2}",
            r.logical_bytes as f64 / 1048576.0,
            r.disk_bytes as f64 / 1048576.0,
            r.disk_bytes as f64 / records as f64,
            r.disk_bytes as f64 / r.logical_bytes.max(1) as f64
        );
    }

    // A store of about `reopen_mib` on disk: how long does reopening (and scanning) take?
    let big = tmp.join("big");
    if phases & 4 != 0 {
        let s = Store::open(&cfg(&big, 1 << 40)).unwrap().store;
        let mut i = 0u64;
        loop {
            for _ in 0..20_000 {
                s.commit(Class::Summary, "edgegw/gw-01/summaries/s0001", |seq| {
                    summary(seq, i % 1000)
                })
                .unwrap();
                i += 1;
            }
            s.db().flush().unwrap();
            if i % 200_000 == 0 {
                println!(
                    "  {i} records held: process RSS {:.1} MiB",
                    rss_mib(std::process::id())
                );
            }
            if s.db().size_on_disk().unwrap() >= reopen_mib << 20 {
                break;
            }
        }
        println!(
            "filled {:.0} MiB on disk with {i} records",
            s.db().size_on_disk().unwrap() as f64 / 1048576.0
        );
    }
    if phases & 4 != 0 {
        let t = Instant::now();
        let s = Store::open(&cfg(&big, 1 << 40)).unwrap().store;
        println!(
            "reopen of that store (open + full scan): {:.2} s, next seq {}",
            t.elapsed().as_secs_f64(),
            s.next_seq()
        );
        drop(s);
        let _ = std::fs::remove_dir_all(&big);
    }

    if phases & 8 == 0 {
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    // The backlog of a 10-minute outage at `sensors` sensors: a summary per sensor per minute,
    // plus alerts and their raw windows at the measured false-alert rate and then some.
    let outage = tmp.join("outage");
    let data = outage.join("data");
    let n_summaries = sensors * 10;
    let n_alerts = (sensors / 10).max(1);
    {
        let s = Store::open(&cfg(&data, 1 << 30)).unwrap().store;
        for i in 0..n_summaries {
            s.commit(
                Class::Summary,
                &format!("edgegw/gw-01/summaries/s{:04}", i % sensors),
                |seq| summary(seq, i % sensors),
            )
            .unwrap();
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
        for i in 0..n_alerts {
            s.commit(Class::Alert, "edgegw/gw-01/alerts/s0001", |seq| {
                summary(seq, i)
            })
            .unwrap();
            s.commit(Class::Raw, "edgegw/gw-01/raw/s0001", |seq| {
                format!("{{\"seq\":{seq},\"samples\":[{raw}]}}").into_bytes()
            })
            .unwrap();
        }
        s.db().flush().unwrap();
    }
    let backlog = n_summaries + 2 * n_alerts;
    for rate in [500u64, 100_000] {
        let dir = tmp.join(format!("replay{rate}"));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&outage, &dir);
        let (broker, http) = (free_port(), free_port());
        let conf = dir.join("gw.toml");
        std::fs::write(
            &conf,
            format!(
                "[broker]\nbind = \"127.0.0.1:{broker}\"\n[ingest]\nurl = \"mqtt://127.0.0.1:{broker}\"\n[uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\nreplay_rate = {rate}\nreplay_burst = {}\n\
                 [http]\nbind = \"127.0.0.1:{http}\"\n[store]\npath = \"{}\"\n",
                rate.min(1000),
                dir.join("data").display()
            ),
        )
        .unwrap();
        let t = Instant::now();
        let mut gw = Command::new(env!("CARGO_BIN_EXE_edgegw"))
            .args(["run", "--config"])
            .arg(&conf)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut started = None;
        loop {
            let st: serde_json::Value =
                serde_json::from_str(&get(http, "/status")).unwrap_or_default();
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
            std::thread::sleep(Duration::from_millis(50));
        }
        let drain = started.map(|s| s.elapsed()).unwrap_or(t.elapsed());
        println!(
            "replay of a 10-min outage at {sensors} sensors ({backlog} messages) with replay_rate {rate}: {:.1} s ({:.0} messages/s)",
            drain.as_secs_f64(),
            backlog as f64 / drain.as_secs_f64()
        );
        let _ = Command::new("kill")
            .args(["-TERM", &gw.id().to_string()])
            .status();
        let _ = gw.wait();
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

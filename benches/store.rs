//! Store figures: durable commits/s by group-commit size (per record, grouped, and pipelined
//! as the uplink commits), on-disk bytes per message and space amplification, time to reopen
//! a ~1 GB store, how fast the gateway drains the backlog of a 10-minute uplink outage at
//! 1 000 sensors, and the replay rate with pacing lifted (store read path alone, and end to
//! end through the gateway). The measurements themselves are in `common/store_rate.rs`, so
//! the load benchmark reports the same figures.
//!
//! `cargo bench --bench store -- [--records 200000] [--reopen-mib 1024] [--sensors 1000]
//! [--replay-records 100000] [--phases 31]` (`EDGEGW_BIN=path` replays through another
//! build of the gateway).
//! Figures go to docs/benchmarks.md. Not a test: nothing passes or fails here.

#![allow(clippy::unwrap_used)] // benches may unwrap: a failure should stop the run loudly.

mod common;

use common::store_rate::{self, config as cfg, summary, Commit, SUMMARY_TOPIC};
use common::{arg, rss_mib};
use edgegw_actors::outbound::Class;
use edgegw_actors::store::Store;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let records = arg("--records", 200_000);
    let reopen_mib = arg("--reopen-mib", 1024);
    let sensors = arg("--sensors", 1000);
    let replay_records = arg("--replay-records", 100_000);
    // Phases to run, as a bit set: 1 commits/s, 2 size, 4 reopen (with RSS while filling),
    // 8 outage replay, 16 replay rate with pacing lifted.
    let phases = arg("--phases", 31);
    let tmp = std::env::temp_dir().join(format!("edgegw-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    // The gateway replayed through (phases 8 and 16); `EDGEGW_BIN` compares another build.
    let bin = std::env::var_os("EDGEGW_BIN").map_or_else(
        || env!("CARGO_BIN_EXE_edgegw").into(),
        std::path::PathBuf::from,
    );
    let bin = bin.as_path();

    if phases & 1 != 0 {
        println!("durable commits/s (summary-sized records; a group = N records then a flush):");
        println!(
            "  {:>6}  {:>11}  {:>11}  {:>11}",
            "N", "per record", "grouped", "pipelined"
        );
        for group in [1u64, 16, 256, 4096] {
            let n = if group == 1 {
                2000
            } else {
                records.min(100_000)
            };
            let rate = |how| store_rate::durable_commits_per_second(&tmp, n, group, how);
            let (per, grouped, piped) = (
                rate(Commit::PerRecord),
                rate(Commit::Grouped),
                rate(Commit::Pipelined),
            );
            println!("  {group:>6}  {per:>11.0}  {grouped:>11.0}  {piped:>11.0}");
        }
    }

    let path = tmp.join("size");
    if phases & 2 != 0 {
        let s = Store::open(&cfg(&path, 1 << 40)).unwrap().store;
        for i in 0..records {
            s.commit(Class::Summary, SUMMARY_TOPIC, |seq| summary(seq, i % 1000))
                .unwrap();
            if i % 4096 == 0 {
                s.flush().unwrap();
            }
        }
        s.flush().unwrap();
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
                s.commit(Class::Summary, SUMMARY_TOPIC, |seq| summary(seq, i % 1000))
                    .unwrap();
                i += 1;
            }
            s.flush().unwrap();
            if i % 200_000 == 0 {
                println!(
                    "  {i} records held: process RSS {:.1} MiB",
                    rss_mib(std::process::id())
                );
            }
            if s.size_on_disk().unwrap() >= reopen_mib << 20 {
                break;
            }
        }
        println!(
            "filled {:.0} MiB on disk with {i} records",
            s.size_on_disk().unwrap() as f64 / 1048576.0
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

    if phases & 8 != 0 {
        // The backlog of a 10-minute outage at `sensors` sensors: a summary per sensor per
        // minute, plus alerts and their raw windows at the measured false-alert rate and then
        // some.
        let outage = tmp.join("outage");
        let backlog = store_rate::fill_outage_backlog(&outage, sensors, 10);
        for rate in [500u32, 100_000] {
            let dir = tmp.join(format!("replay{rate}"));
            let _ = std::fs::remove_dir_all(&dir);
            copy_dir(&outage, &dir);
            let r = store_rate::replay_through_gateway(bin, &dir, backlog, rate);
            println!(
                "replay of a 10-min outage at {sensors} sensors ({backlog} messages) with replay_rate {rate}: {:.1} s ({:.0} messages/s)",
                r.seconds,
                r.per_second()
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    if phases & 16 != 0 {
        println!("replay with pacing lifted, {replay_records} summary-sized records:");
        println!(
            "  store read path (next_in + ack per record, in process): {:.0} records/s",
            store_rate::store_replay_per_second(&tmp, replay_records)
        );
        let r = store_rate::replay_per_second(bin, &tmp, replay_records);
        println!(
            "  through the gateway (embedded broker, PUBACK deletes): {:.1} s, {:.0} messages/s",
            r.seconds,
            r.per_second()
        );
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

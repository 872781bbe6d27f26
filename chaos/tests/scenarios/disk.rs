//! Disk faults, black-box: the store on a size-limited filesystem that fills up, and on one
//! that is read-only when the gateway starts. Real filesystems (tmpfs mounted by the test,
//! which needs root or passwordless sudo), real mosquitto, the real binary.

use edgegw_chaos::harness::*;
use edgegw_chaos::report::Report;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tmpfs of `size` mounted at `path`, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

fn mount(args: &[&str]) {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let st = if root {
        Command::new("mount").args(args).status()
    } else {
        Command::new("sudo")
            .arg("-n")
            .arg("mount")
            .args(args)
            .status()
    }
    .unwrap();
    assert!(
        st.success(),
        "mount {args:?} failed: disk-fault tests need root or passwordless sudo"
    );
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            path.to_str().unwrap(),
        ]);
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    fn remount(&self, opts: &str) {
        mount(&[
            "-o",
            &format!("remount,{opts}"),
            self.path.to_str().unwrap(),
        ]);
    }

    /// Fills the filesystem but for `leave` bytes.
    fn fill(&self, leave: u64) -> PathBuf {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.path)
            .output()
            .unwrap();
        let avail: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let ballast = self.path.join("ballast");
        let st = Command::new("fallocate")
            .args(["-l", &avail.saturating_sub(leave).to_string()])
            .arg(&ballast)
            .status()
            .unwrap();
        assert!(st.success());
        ballast
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn store_state(gw: &Gw) -> String {
    gw.status()["store"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A report for disk scenario `name`, filled from the judge's verdict.
fn report(name: &str, injected: &str, gw: &Gw, v: &edgegw_chaos::oracle::Verdict) -> Report {
    Report {
        scenario: name.into(),
        injected: vec![injected.to_string()],
        produced: gw.status()["store"]["next_seq"].as_u64().unwrap_or(1) - 1,
        delivered: v.delivered,
        missing_count: v.missing.len(),
        duplicated: v.duplicates,
        max_duplicates: v.max_duplicates,
        peak_rss_mib: gw.peak_rss_mib(),
        rss_bound_mib: edgegw_chaos::scenario::RSS_BOUND_MIB,
        pass: v.holds().is_ok(),
        ..Report::default()
    }
}

/// Judges everything `sub` recorded once every committed seq arrived.
fn judge_all(gw: &Gw, sub: &Sub, max_duplicates: usize) -> edgegw_chaos::oracle::Verdict {
    let status = gw.status();
    let hw = status["store"]["next_seq"].as_u64().unwrap() - 1;
    wait_until(
        Duration::from_secs(60),
        "every committed seq upstream",
        || {
            let seqs: std::collections::BTreeSet<u64> = sub
                .json("/")
                .iter()
                .filter(|(t, _)| !t.ends_with("/status"))
                .filter_map(|(_, v)| v["seq"].as_u64())
                .collect();
            (1..=hw).all(|s| seqs.contains(&s))
        },
    );
    let epoch = status["epoch"].as_i64().unwrap();
    let record: Vec<edgegw_chaos::oracle::Received> = sub
        .lines
        .lock()
        .unwrap()
        .iter()
        .map(|(t, p)| edgegw_chaos::oracle::Received {
            topic: t.clone(),
            payload: p.clone().into_bytes(),
        })
        .collect();
    let v = edgegw_chaos::oracle::judge(&record, "gw-01", epoch, hw, 0, max_duplicates);
    println!("verdict: {v:?}");
    v.holds().unwrap();
    v
}

#[test]
fn disk_full() {
    let mq = Mosquitto::start();
    let url = mq.url();
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("data"), "32m");
    let gw = Gw::start_in(
        dir.path(),
        &format!("[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n[summary]\nperiod = \"1s\"\n"),
    );
    let sub = Sub::start(mq.port, "edgegw/gw-01/#");
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(mq.port, 6, stop.clone());
    wait_until(Duration::from_secs(30), "summaries upstream", || {
        sub.json("summaries").len() >= 10
    });

    let ballast = fs.fill(0);
    // While full, the store cycles: closed, reopened (opening needs no space), closed again
    // at the next failed flush. Each snapshot while closed must say so.
    wait_until(
        Duration::from_secs(30),
        "store closed on a full disk, gateway degraded",
        || {
            let s = gw.status();
            s["store"]["state"] == "closed"
                && s["mode"]["state"] == "degraded"
                && s["mode"]["reasons"].to_string().contains("store_error")
        },
    );
    assert_eq!(gw.get("/healthz").0, 200);
    // Decisions go on; what cannot be committed is counted.
    let d0 = gw.metric("edgegw_decisions_total");
    wait_until(
        Duration::from_secs(30),
        "decisions and counted drops while full",
        || {
            gw.metric("edgegw_decisions_total") > d0 + 50.0
                && gw.metric("edgegw_uplink_dropped_total{reason=\"store_error\"}") >= 6.0
        },
    );
    let dropped = gw.metric("edgegw_uplink_dropped_total{reason=\"store_error\"}");

    std::fs::remove_file(&ballast).unwrap();
    let freed = Instant::now();
    wait_until(
        Duration::from_secs(90),
        "store reopened after space returned",
        || store_state(&gw) == "open",
    );
    let reopen_s = freed.elapsed().as_secs_f64();
    let hw_reopen = gw.status()["store"]["next_seq"].as_u64().unwrap();
    wait_until(
        Duration::from_secs(30),
        "fresh messages committed after the reopen",
        || gw.status()["store"]["next_seq"].as_u64().unwrap() > hw_reopen + 12,
    );
    stop.store(true, Ordering::Relaxed);
    feed.join().unwrap();
    wait_until(Duration::from_secs(60), "backlog drained", || {
        let b = &gw.status()["store"]["backlog"];
        ["alert", "summary", "raw"].iter().all(|c| b[c] == 0)
    });
    let v = judge_all(&gw, &sub, 2 * 100);
    let mut r = report(
        "disk_full",
        "store on a 32 MiB tmpfs filled to the last byte, then the ballast removed",
        &gw,
        &v,
    );
    r.figures.insert("dropped_store_error".into(), dropped);
    r.figures.insert("space_back_to_reopen_s".into(), reopen_s);
    r.publish();
    assert!(
        r.peak_rss_mib < r.rss_bound_mib,
        "peak RSS {} MiB",
        r.peak_rss_mib
    );
    assert_eq!(gw.status()["mode"]["state"], "online");
    assert_eq!(gw.stop(), Some(0));
    drop(fs);
}

#[test]
fn store_read_only_at_start() {
    let mq = Mosquitto::start();
    let url = mq.url();
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("data"), "64m");
    // A backlog held on disk: the uplink points at a port nobody listens on.
    let dead = free_port();
    let offline = format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"mqtt://127.0.0.1:{dead}\"\n[summary]\nperiod = \"1s\"\n"
    );
    // The gateway first: the feeder's event time runs at 50× real time from the moment it
    // starts, so it must not run while the harness is still building the binary, or its
    // samples are past `ingest.max_clock_skew` by the time the gateway reads them.
    let gw = Gw::start_in(dir.path(), &offline);
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(mq.port, 4, stop.clone());
    wait_until(Duration::from_secs(30), "a backlog on disk", || {
        gw.status()["store"]["backlog"]["summary"]
            .as_u64()
            .unwrap_or(0)
            >= 20
    });
    assert_eq!(gw.stop(), Some(0));
    let held = inspect_backlog(&dir.path().join("data"));

    fs.remount("ro");
    let online = format!(
        "[broker]\nembedded = false\n[ingest]\nurl = \"{url}\"\n[uplink]\nurl = \"{url}\"\n[summary]\nperiod = \"1s\"\n"
    );
    let sub = Sub::start(mq.port, "edgegw/gw-01/#");
    let gw = Gw::start_unready_in(dir.path(), &online);
    wait_until(
        Duration::from_secs(30),
        "running with the store closed",
        || {
            let s = gw.status();
            s["store"]["state"] == "closed"
                && s["mode"]["reasons"].to_string().contains("store_error")
        },
    );
    assert_eq!(
        gw.get("/readyz").0,
        503,
        "not ready while nothing can be committed"
    );
    let d0 = gw.metric("edgegw_decisions_total");
    wait_until(Duration::from_secs(30), "decisions without a store", || {
        gw.metric("edgegw_decisions_total") > d0 + 20.0
    });
    assert!(
        !dir.path()
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-")),
        "an unwritable store is not corrupt: never moved aside"
    );

    fs.remount("rw");
    let writable = Instant::now();
    wait_until(Duration::from_secs(90), "store reopened", || {
        store_state(&gw) == "open"
    });
    let reopen_s = writable.elapsed().as_secs_f64();
    assert_eq!(gw.get("/readyz").0, 200);
    stop.store(true, Ordering::Relaxed);
    feed.join().unwrap();
    wait_until(Duration::from_secs(60), "backlog drained", || {
        let b = &gw.status()["store"]["backlog"];
        ["alert", "summary", "raw"].iter().all(|c| b[c] == 0)
    });
    // The backlog held before the restart is among what arrived (the subscriber started
    // after it was committed, so judge from seq 1 on this store).
    let v = judge_all(&gw, &sub, 100);
    let mut r = report(
        "store_read_only_at_start",
        "a store holding a backlog remounted read-only before the gateway starts, then read-write",
        &gw,
        &v,
    );
    r.figures.insert("held_before_restart".into(), held as f64);
    r.figures.insert("writable_to_reopen_s".into(), reopen_s);
    r.publish();
    assert!(
        r.peak_rss_mib < r.rss_bound_mib,
        "peak RSS {} MiB",
        r.peak_rss_mib
    );
    assert!(
        v.delivered as u64 >= held,
        "{} delivered, {held} were held",
        v.delivered
    );
    assert_eq!(gw.stop(), Some(0));
    drop(fs);
}

/// Records held in the store at `data`, by `edgegw store inspect`.
fn inspect_backlog(data: &Path) -> u64 {
    let out = gateway_command(&gateway_bin())
        .args(["store", "inspect", "--path"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("held before the restart: {r}");
    // `backlog` is `[[class, {count, bytes}], …]`.
    r["backlog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[1]["count"].as_u64().unwrap())
        .sum()
}
